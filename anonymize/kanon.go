package anonymize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// kanonAcc is the k-anonymity histogram: the quasi-identifier
// combinations of pass 1, and the search over them (search). With
// PerSubject it counts distinct subjects per combination: one vehicle with
// 500 readings is one member of its class, not 500, or k would be
// overstated. Without a mobility block it is a measure of its own (pass1);
// with one, cellSuppression numbers the combinations into the row keys
// (comboIDsOf) and the survivors of cell suppression are counted from them
// between the passes (addPair).
type kanonAcc struct {
	noHooks
	pol        *KAnonPolicy
	hier       []kanon.Hierarchy // per quasi-identifier
	qi         []string
	qiIdx      []int
	subject    string
	subjIdx    int
	perSubject bool
	mem        memory.Allocator
	in         []*interner // per quasi-identifier
	subj       *interner
	// combos maps packed raw ids to rows (or, per subject, to the subjects
	// seen with that combination).
	combos map[string]int64
	pairs  map[string]struct{} // per subject: packed (combo, subject)
	last   []string            // per subject id: the combination last recorded
	ids    [][]uint32
	sid    []uint32
	key    []byte
	div    *divAcc // sensitive values for l/t (diversity.go), or nil
	// With cell suppression the combinations are numbered in pass 1
	// (comboIDsOf) and counted later from the row keys (addPair).
	num comboNumbers
}

// comboNumbers numbers the raw quasi-identifier combinations for the row
// keys (with cell suppression).
type comboNumbers struct {
	ids  map[string]uint32
	keys []string // combination id → packed raw ids
	last []uint32 // per subject id: combination id + 1 last counted (addPair)
	// comboIDsOf's shortcut: per subject id, the last combination's raw ids
	// (len(qi) each) and its id + 1.
	subjLast   []uint32
	subjLastID []uint32
}

// nullCombo marks, in the row keys, a row with a null quasi-identifier:
// nullCombo - j for the j-th quasi-identifier. Such a row is an error only
// if it survives cell suppression (countSurvivors), as before the keys.
const nullCombo = ^uint32(0)

// comboIDsOf numbers the raw quasi-identifier combination of every row of
// rec (pass 1), interning values as add does, into dst. subj holds the rows'
// dense subject ids: a subject's combination rarely changes, so a row whose
// values equal its subject's last combination skips the map.
func (a *kanonAcc) comboIDsOf(rec arrow.RecordBatch, rowBase int64, subj, dst []uint32) error {
	n := int(rec.NumRows())
	var nulls []bool
	for j, c := range a.qiIdx {
		a.ids[j] = growU32(a.ids[j], n)
		col := rec.Column(c)
		if col.NullN() == 0 {
			if err := a.in[j].column(a.qi[j], col, rowBase, a.ids[j]); err != nil {
				return err
			}
			continue
		}
		if nulls == nil {
			nulls = make([]bool, n)
		}
		for i := range n {
			if col.IsNull(i) {
				if !nulls[i] {
					nulls[i] = true
					dst[i] = nullCombo - uint32(j)
				}
				continue
			}
			v, err := valueText(col, i)
			if err != nil {
				return rowerr.At(rowerr.Row(rowBase, i), a.qi[j], err)
			}
			a.ids[j][i] = a.in[j].id(v)
		}
	}
	if a.num.ids == nil {
		a.num.ids = map[string]uint32{}
	}
	nq := len(a.qi)
	comp := make([]uint32, nq)
	for i := range n {
		if nulls != nil && nulls[i] {
			continue
		}
		for j := range a.qi {
			comp[j] = a.ids[j][i]
		}
		s := int(subj[i])
		if s >= len(a.num.subjLastID) {
			a.num.subjLastID = append(a.num.subjLastID, make([]uint32, s+1-len(a.num.subjLastID))...)
			a.num.subjLast = append(a.num.subjLast, make([]uint32, (s+1)*nq-len(a.num.subjLast))...)
		}
		last := a.num.subjLast[s*nq : (s+1)*nq]
		if a.num.subjLastID[s] != 0 && slices.Equal(last, comp) {
			dst[i] = a.num.subjLastID[s] - 1
			continue
		}
		a.key = packKey(a.key[:0], comp...)
		id, ok := a.num.ids[string(a.key)]
		if !ok {
			if len(a.num.keys) >= int(nullCombo)-len(a.qi) {
				return fmt.Errorf("kanon: more than %d quasi-identifier combinations", len(a.num.keys))
			}
			id = uint32(len(a.num.keys))
			k := string(a.key)
			a.num.ids[k] = id
			a.num.keys = append(a.num.keys, k)
		}
		dst[i] = id
		copy(last, comp)
		a.num.subjLastID[s] = id + 1
	}
	return nil
}

// addPair counts one surviving row by its combination and subject ids, as
// add counts a row of a batch.
func (a *kanonAcc) addPair(combo, sid uint32) {
	key := a.num.keys[combo]
	if !a.perSubject {
		a.combos[key]++
		return
	}
	if int(sid) < len(a.num.last) && a.num.last[sid] == combo+1 {
		return
	}
	a.key = append(append(a.key[:0], key...), byte(sid), byte(sid>>8), byte(sid>>16), byte(sid>>24))
	if _, ok := a.pairs[string(a.key)]; !ok {
		a.pairs[string(a.key)] = struct{}{}
		a.combos[key]++
		a.subj.id(string(a.key[len(key):]))
	}
	for int(sid) >= len(a.num.last) {
		a.num.last = append(a.num.last, 0)
	}
	a.num.last[sid] = combo + 1
}

// newKanonAcc counts the combinations of pl.trans's quasi-identifiers
// (hier: their hierarchies) and, with an l or t block, their sensitive
// values.
func newKanonAcc(pol *KAnonPolicy, pl *plan, subject string, hier map[string]kanon.Hierarchy, mem memory.Allocator) (*kanonAcc, error) {
	a := &kanonAcc{pol: pol, qi: pol.QuasiIdentifiers, qiIdx: pl.qiIdx, subject: subject, subjIdx: pl.subjTrans,
		perSubject: pol.PerSubject == nil || *pol.PerSubject, mem: mem, subj: newInterner(),
		combos: map[string]int64{}, pairs: map[string]struct{}{}}
	for _, q := range a.qi {
		a.in = append(a.in, newInterner())
		a.hier = append(a.hier, hier[q])
	}
	a.ids = make([][]uint32, len(a.qi))
	div, err := newDivAcc(pol, pl)
	if err != nil {
		return nil, err
	}
	a.div = div
	return a, nil
}

// pass1 counts a batch's combinations (without cell suppression).
func (a *kanonAcc) pass1(_ context.Context, rec arrow.RecordBatch, base int64) error {
	return a.add(rec, base)
}

func (a *kanonAcc) add(rec arrow.RecordBatch, rowBase int64) error {
	n := int(rec.NumRows())
	for j, c := range a.qiIdx {
		a.ids[j] = growU32(a.ids[j], n)
		if err := a.in[j].column(a.qi[j], rec.Column(c), rowBase, a.ids[j]); err != nil {
			return err
		}
	}
	if a.perSubject {
		a.sid = growU32(a.sid, n)
		if err := a.subj.column(a.subject, rec.Column(a.subjIdx), rowBase, a.sid); err != nil {
			return err
		}
	}
	comp := make([]uint32, len(a.qi))
	for i := range n {
		for j := range a.qi {
			comp[j] = a.ids[j][i]
		}
		a.key = packKey(a.key[:0], comp...)
		if !a.perSubject {
			a.combos[string(a.key)]++
			continue
		}
		// Quasi-identifiers rarely change within a subject: compare with the
		// subject's last combination before touching the pair map.
		sid := a.sid[i]
		if int(sid) < len(a.last) && a.last[sid] == string(a.key) {
			continue
		}
		nk := len(a.key)
		a.key = packKey(a.key, sid)
		if _, ok := a.pairs[string(a.key)]; !ok {
			a.pairs[string(a.key)] = struct{}{}
			a.combos[string(a.key[:nk])]++
		}
		for int(sid) >= len(a.last) {
			a.last = append(a.last, "")
		}
		a.last[sid] = string(a.key[:nk])
	}
	if a.div != nil {
		return a.div.add(a, rec, rowBase)
	}
	return nil
}

// kanonResult is the chosen generalisation and which generalised classes
// are suppressed.
type kanonResult struct {
	a          *kanonAcc
	res        *kanon.Result
	levels     []int
	hier       []kanon.Hierarchy
	suppressed map[string]bool // generalised class key (values joined by \x00) → suppressed
	classes    map[string]int64
	before     []int64 // class sizes at level 0
	// verification of the written output: distinct subjects (or rows) per
	// generalised class
	outSubjects map[uint64]struct{} // class id << 32 | subject id
	outClasses  map[string]int64
	classIDs    map[string]uint32
	lastClass   []int64 // per output subject id: class id last counted, or -1
	outIntern   []*interner
	outSubj     *interner
	alloc       memory.Allocator
	histRows    int64 // members in the search's histogram (the suppression limit's base)
}

// search builds kanon's histogram from the counted combinations (one row per
// combination and, per subject, per subject) and runs the optimal search.
func (a *kanonAcc) search() (*kanonResult, error) {
	k := a.pol
	if len(a.combos) == 0 {
		return nil, errors.New("kanon: no rows left for k-anonymity")
	}
	keys := make([]string, 0, len(a.combos))
	for key := range a.combos {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	if err := a.checkValues(keys); err != nil {
		return nil, err
	}
	hier := make(map[string]kanon.Hierarchy, len(a.qi))
	for i, q := range a.qi {
		hier[q] = a.hier[i]
	}
	hb, err := kanon.NewHistogramBuilder(kanon.HistogramOptions{QuasiIdentifiers: a.qi, Hierarchies: hier})
	if err != nil {
		return nil, fmt.Errorf("k-anonymity histogram: %w", err)
	}
	// Feed the histogram in batches of string columns: every combination
	// repeated by its count (rows, or distinct subjects).
	fields := make([]arrow.Field, len(a.qi))
	for i, q := range a.qi {
		fields[i] = arrow.Field{Name: q, Type: arrow.BinaryTypes.String}
	}
	schema := arrow.NewSchema(fields, nil)
	mem := memory.NewGoAllocator()
	bld := array.NewRecordBuilder(mem, schema)
	defer bld.Release()
	flush := func() error {
		rec := bld.NewRecordBatch()
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		if err := hb.Add(rec); err != nil {
			return fmt.Errorf("k-anonymity histogram: %w", err)
		}
		return nil
	}
	var before []int64
	for _, key := range keys {
		n := a.combos[key]
		before = append(before, n)
		for rep := int64(0); rep < n && a.div == nil; rep++ { // with l/t, a.div.histogram builds it
			for i := range a.qi {
				bld.Field(i).(*array.StringBuilder).Append(a.in[i].vals[unpack(key, i)])
			}
			if bld.Field(0).Len() >= 1<<16 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	h, err := hb.Histogram()
	if err != nil {
		return nil, fmt.Errorf("k-anonymity histogram: %w", err)
	}
	if a.div != nil {
		if h, err = a.div.histogram(a, hier); err != nil {
			return nil, err
		}
	}
	metric, err := kanon.ParseMetric(k.Metric)
	if err != nil {
		return nil, fmt.Errorf("k-anonymity search: %w", err)
	}
	opts := kanon.Options{K: k.K, SuppressionLimit: k.Suppression, Metric: metric}
	a.div.options(&opts)
	res, err := kanon.Search(context.Background(), h, opts)
	if err != nil {
		return nil, fmt.Errorf("k-anonymity search, k=%d over %v: %w", k.K, a.qi, err)
	}
	kr := &kanonResult{a: a, res: res, levels: res.Levels, hier: a.hier, suppressed: map[string]bool{}, classes: map[string]int64{}, before: before,
		outSubjects: map[uint64]struct{}{}, outClasses: map[string]int64{}, classIDs: map[string]uint32{}, outSubj: newInterner(),
		alloc: a.mem, histRows: h.Rows()}
	// Class sizes at the chosen levels, from our own counts: distinct
	// subjects per class (a subject seen with two raw combinations that meet
	// in one class counts once).
	memberSeen := map[string]struct{}{}
	gen := kr.classOf
	if a.perSubject {
		nq := 4 * len(a.qi)
		for pair := range a.pairs {
			c, err := gen(pair[:nq])
			if err != nil {
				return nil, err
			}
			mk := c + pair[nq:]
			if _, ok := memberSeen[mk]; ok {
				continue
			}
			memberSeen[mk] = struct{}{}
			kr.classes[c]++
		}
	} else {
		for key, n := range a.combos {
			c, err := gen(key)
			if err != nil {
				return nil, err
			}
			kr.classes[c] += n
		}
	}
	var supp int64
	for c, n := range kr.classes {
		if n < int64(k.K) {
			kr.suppressed[c] = true
			supp += n
		}
	}
	if supp, err = a.div.decide(kr, supp); err != nil {
		return nil, err
	}
	// Cross-check against the search: both count suppressed members the same
	// way unless a subject straddles classes, where ours is the exact count.
	if a.perSubject && len(a.pairs) == len(a.subj.vals) && supp != res.SuppressedRows {
		return nil, fmt.Errorf("kanon: internal check failed: search suppresses %d members, recount %d", res.SuppressedRows, supp)
	}
	if limit := int64(math.Floor(k.Suppression * float64(h.Rows()))); supp > limit {
		return nil, fmt.Errorf("kanon: %d members would be suppressed, above the limit %d", supp, limit)
	}
	for range a.qi {
		kr.outIntern = append(kr.outIntern, newInterner())
	}
	return kr, nil
}

// checkValues fails on the first quasi-identifier value of the counted
// combinations (keys, in order) that its hierarchy cannot generalise to
// every level, naming the column and the value. kanon's histogram would
// fail on it too, but at a row of the histogram search feeds it, which is
// no data row.
func (a *kanonAcc) checkValues(keys []string) error {
	for j, h := range a.hier {
		checked := make([]bool, len(a.in[j].vals))
		for _, key := range keys {
			id := unpack(key, j)
			if checked[id] {
				continue
			}
			checked[id] = true
			for lvl := range h.Levels() {
				if _, err := h.Generalize(a.in[j].vals[id], lvl); err != nil {
					return rowerr.At(0, a.qi[j], err)
				}
			}
		}
	}
	return nil
}

// classOf is the generalised class (values joined by \x00) of a packed
// combination of raw ids, at the chosen levels.
func (kr *kanonResult) classOf(key string) (string, error) {
	a := kr.a
	var g []byte
	for i := range a.qi {
		v, err := kr.hier[i].Generalize(a.in[i].vals[unpack(key, i)], kr.levels[i])
		if err != nil {
			return "", rowerr.At(0, a.qi[i], err)
		}
		g = append(g, v...)
		g = append(g, 0)
	}
	return string(g), nil
}

// apply returns rec (pl.trans) as pl.gen: quasi-identifiers generalised,
// suppressed classes removed. It also feeds the output
// verification. Not safe for concurrent use (the verifier's state).
func (kr *kanonResult) apply(ctx context.Context, pl *plan, rec arrow.RecordBatch, mem memory.Allocator, rowBase int64) (arrow.RecordBatch, int64, error) {
	a := kr.a
	n := int(rec.NumRows())
	cols := make([]arrow.Array, len(rec.Columns()))
	for i := range cols {
		cols[i] = rec.Column(i)
	}
	var owned []arrow.Array
	defer func() {
		for _, c := range owned {
			c.Release()
		}
	}()
	ids := make([][]uint32, len(a.qi))
	for j, c := range a.qiIdx {
		h, lvl := kr.hier[j], kr.levels[j]
		g, err := mapValues(mem, a.qi[j], rec.Column(c), rowBase, func(s string) (string, error) { return h.Generalize(s, lvl) })
		if err != nil {
			return nil, 0, fmt.Errorf("kanon: %w", err)
		}
		owned = append(owned, g)
		cols[c] = g
		ids[j] = make([]uint32, n)
		if err := kr.outIntern[j].column(a.qi[j], g, rowBase, ids[j]); err != nil {
			return nil, 0, err
		}
	}
	// Class of every row, and the suppression mask.
	type class struct {
		key        string
		id         uint32
		suppressed bool
	}
	keyOf := make(map[string]class)
	mb := array.NewBooleanBuilder(mem)
	defer mb.Release()
	mb.Reserve(n)
	var sid []uint32
	if a.perSubject {
		sid = make([]uint32, n)
		if err := kr.outSubj.column(pl.trans.Field(a.subjIdx).Name, rec.Column(a.subjIdx), rowBase, sid); err != nil {
			return nil, 0, err
		}
	}
	var suppressed int64
	var packed []byte
	comp := make([]uint32, len(a.qi))
	for i := range n {
		for j := range a.qi {
			comp[j] = ids[j][i]
		}
		packed = packKey(packed[:0], comp...)
		cls, ok := keyOf[string(packed)]
		if !ok {
			var g []byte
			for j := range a.qi {
				g = append(g, kr.outIntern[j].vals[comp[j]]...)
				g = append(g, 0)
			}
			cls.key = string(g)
			id, seen := kr.classIDs[cls.key]
			if !seen {
				id = uint32(len(kr.classIDs))
				kr.classIDs[cls.key] = id
			}
			cls.id, cls.suppressed = id, kr.suppressed[cls.key]
			keyOf[string(packed)] = cls
		}
		if cls.suppressed {
			mb.UnsafeAppend(false)
			suppressed++
			continue
		}
		mb.UnsafeAppend(true)
		if a.perSubject {
			s := sid[i]
			for int(s) >= len(kr.lastClass) {
				kr.lastClass = append(kr.lastClass, -1)
			}
			if kr.lastClass[s] == int64(cls.id) {
				continue
			}
			kr.lastClass[s] = int64(cls.id)
			mk := uint64(cls.id)<<32 | uint64(s)
			if _, ok := kr.outSubjects[mk]; !ok {
				kr.outSubjects[mk] = struct{}{}
				kr.outClasses[cls.key]++
			}
		} else {
			kr.outClasses[cls.key]++
		}
	}
	full := array.NewRecordBatch(pl.gen, cols, int64(n))
	if suppressed == 0 {
		return full, 0, nil
	}
	defer full.Release()
	mask := mb.NewArray()
	defer mask.Release()
	f, err := compute.FilterRecordBatch(ctx, full, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, 0, fmt.Errorf("kanon: suppressing rows: %w", err)
	}
	return f, suppressed, nil
}

// figures verifies the written output independently of the search (every
// written class has at least k members) and returns the decision and the
// written classes' members for the report.
func (kr *kanonResult) figures() (*KAnonFigures, error) {
	k := kr.a.pol.K
	sizes := make([]int64, 0, len(kr.outClasses))
	for cls, n := range kr.outClasses {
		if n < int64(k) {
			return nil, fmt.Errorf("kanon: verification failed: an output class has %d members < k=%d (class %q)", n, k, cls)
		}
		sizes = append(sizes, n)
	}
	return &KAnonFigures{Decision: kr.decision(), Sizes: sizes, Members: kr.a.div.writtenMembers()}, nil
}

// decision is the search's outcome as engines exchange it (with the
// classes settle added).
func (kr *kanonResult) decision() *KAnonDecision {
	a := kr.a
	d := &KAnonDecision{QuasiIdentifiers: a.qi, Levels: kr.levels, Transformation: kr.res.Transformation,
		InformationLoss: kr.res.InformationLoss, ColumnLoss: kr.res.PerColumnLoss, Classes: kr.classes,
		Before: kr.before, PerSubject: a.perSubject, HistRows: kr.histRows}
	if a.div != nil {
		d.Reference, d.DiversitySuppressed = a.div.ref, a.div.extra
	}
	for c := range kr.suppressed {
		d.Suppressed = append(d.Suppressed, c)
	}
	sort.Strings(d.Suppressed)
	return d
}

// kanonReport checks that every written class (sizes: members per class)
// has at least k members and fills the report's kanon and risk blocks.
// Called by the report builder (report_build.go).
func kanonReport(rep *Report, k int, qi []string, perSubject bool, res *kanon.Result, suppressedClasses int, before, sizes []int64) error {
	minOut := int64(math.MaxInt64)
	var members int64
	for _, n := range sizes {
		if n < int64(k) {
			return fmt.Errorf("kanon: verification failed: an output class has %d members < k=%d", n, k)
		}
		minOut = min(minOut, n)
		members += n
	}
	rep.KAnon = &KAnonReport{K: k, QuasiIdentifiers: qi, PerSubject: perSubject, Transformation: res.Transformation,
		InformationLoss: res.InformationLoss, ColumnLoss: res.PerColumnLoss, Classes: len(sizes),
		ClassSizes: sizeBins(sizes, int64(k)), SuppressedClasses: suppressedClasses, Verified: true}
	if len(sizes) > 0 {
		rep.KAnon.SmallestClass = minOut
	}
	if rep.Risk == nil {
		rep.Risk = &RiskReport{}
	}
	var totalBefore int64
	minBefore := int64(math.MaxInt64)
	for _, n := range before {
		totalBefore += n
		minBefore = min(minBefore, n)
	}
	// Prosecutor risk is the highest re-identification probability of any
	// member, 1/smallest class; journalist risk equals it when the data is
	// its own population (no population table is given); marketer risk is
	// the expected share re-identified, classes/members.
	rep.Risk.Before.Prosecutor = ptr(1 / float64(minBefore))
	rep.Risk.Before.Journalist = ptr(1 / float64(minBefore))
	rep.Risk.Before.Marketer = ptr(float64(len(before)) / float64(totalBefore))
	if len(sizes) > 0 {
		rep.Risk.After.Prosecutor = ptr(1 / float64(minOut))
		rep.Risk.After.Journalist = ptr(1 / float64(minOut))
		rep.Risk.After.Marketer = ptr(float64(len(sizes)) / float64(members))
	}
	return nil
}

// sizeBins is a histogram of class sizes (all >= k) in bins that double
// from k: k..2k-1, 2k..4k-1, ... (empty bins between two others kept), so
// the first bar starts at k and a reader sees how many classes sit just at
// the threshold.
func sizeBins(sizes []int64, k int64) []SizeBin {
	if len(sizes) == 0 {
		return nil
	}
	k = max(k, 1)
	bins := map[int]int64{}
	maxb := 0
	for _, s := range sizes {
		b := 0
		for k<<(b+1) <= s {
			b++
		}
		bins[b]++
		maxb = max(maxb, b)
	}
	out := make([]SizeBin, 0, maxb+1)
	for b := 0; b <= maxb; b++ {
		out = append(out, SizeBin{Min: k << b, Max: k<<(b+1) - 1, Classes: bins[b]})
	}
	return out
}
