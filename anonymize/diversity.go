package anonymize

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// This file adds l-diversity and t-closeness of the policy's sensitive
// column (kanon.l, kanon.t) to the Runner's k-anonymity. The models are
// kanon's: the search gets a histogram with the sensitive column
// (kanon.HistogramOptions.Sensitive) and the models in kanon.Options; the
// Runner's own decisions (which generalised classes to suppress, the settle
// rounds, the check of the written rows) run kanon.Verify, the independent
// checker, over a table with one row per counted member. The rest of the
// k-anonymity code calls in here at a few points (divAcc methods are safe on
// a nil receiver: no l/t block, nothing to do).
//
// How the sensitive distribution of a class is counted (see doc.go):
//   - per_subject (the default): each subject counts once, with its one
//     sensitive value, so a class's distribution is the number of subjects
//     holding each value (distinct (subject, value) pairs, where a subject
//     may hold one value). A subject whose rows carry two different values
//     is an error naming the column and row.
//   - per_subject false: rows, as ARX counts them (every row is a subject).

// divAcc collects, in pass 1, the sensitive value of the members kanonAcc
// counts, and decides which generalised classes fail l/t.
type divAcc struct {
	k          int    // the policy's k (kanon.Verify checks it with l and t)
	col        string // sensitive column
	idx        int    // its index in pl.trans (and pl.gen)
	perSubject bool
	l          *kanon.LDiversity
	t          *kanon.TCloseness
	vals       *interner
	sid        []uint32         // scratch: sensitive ids of a batch
	subjSens   []int32          // per subject id (kanonAcc.subj): sensitive id, -1 unseen
	rows       map[string]int64 // per row: packed (combination ids, sensitive id) → rows
	ref        map[string]int64 // the distribution the decision used: value → members
	extra      int              // classes suppressed for l/t only
	out        *divCollector    // pass 2: the written rows
}

// newDivAcc returns nil without an l or t block.
func newDivAcc(k *KAnonPolicy, pl *plan) (*divAcc, error) {
	if k == nil || (k.L == nil && k.T == nil) {
		return nil, nil
	}
	d := &divAcc{k: k.K, perSubject: k.PerSubject == nil || *k.PerSubject, vals: newInterner(), rows: map[string]int64{}}
	if k.L != nil {
		d.l = &kanon.LDiversity{Sensitive: k.L.Sensitive, L: k.L.L, Variant: kanon.LVariant(k.L.Variant), C: k.L.C}
		d.col = k.L.Sensitive
	}
	if k.T != nil {
		d.t = &kanon.TCloseness{Sensitive: k.T.Sensitive, T: k.T.T, Distance: kanon.TDistance(k.T.Distance)}
		d.col = k.T.Sensitive
	}
	idx := pl.trans.FieldIndices(d.col)
	if len(idx) != 1 {
		return nil, fmt.Errorf("kanon: sensitive column %q is not in the transformed data", d.col)
	}
	d.idx = idx[0]
	return d, nil
}

// add records the sensitive values of a batch kanonAcc.add has just counted
// (a.ids and, per subject, a.sid hold the batch's ids).
func (d *divAcc) add(a *kanonAcc, rec arrow.RecordBatch, rowBase int64) error {
	n := int(rec.NumRows())
	col := rec.Column(d.idx)
	if err := sensitiveNulls(d.col, col, rowBase); err != nil {
		return err
	}
	d.sid = growU32(d.sid, n)
	if err := d.vals.column(d.col, col, rowBase, d.sid); err != nil {
		return fmt.Errorf("kanon: %w", err)
	}
	if d.perSubject {
		for i := range n {
			if err := d.recordSubject(a.sid[i], d.sid[i], rowBase+int64(i)+1); err != nil {
				return err
			}
		}
		return nil
	}
	comp := make([]uint32, len(a.qi)+1)
	var key []byte
	for i := range n {
		for j := range a.qi {
			comp[j] = a.ids[j][i]
		}
		comp[len(a.qi)] = d.sid[i]
		key = packKey(key[:0], comp...)
		d.rows[string(key)]++
	}
	return nil
}

// recordSubject records subject s's sensitive value v (ids), and fails
// when the subject was seen with another value (row: the data row for the
// message, 0 when unknown).
func (d *divAcc) recordSubject(s, v uint32, row int64) error {
	for int(s) >= len(d.subjSens) {
		d.subjSens = append(d.subjSens, -1)
	}
	switch d.subjSens[s] {
	case -1:
		d.subjSens[s] = int32(v)
	case int32(v):
	default:
		return fmt.Errorf("kanon: %w", rowerr.Atf(row, d.col, "the subject of this row has another value in an earlier row; "+
			"with per_subject, l-diversity and t-closeness count each subject once with its value, so the sensitive column "+
			"must hold one value per subject (an attribute of the subject, not a per-reading measurement)"))
	}
	return nil
}

// sensIDs numbers the sensitive values of a transformed batch (pass 1 with
// cell suppression: the ids go to the row keys, and countSurvivors and the
// settle rounds read them back).
func (d *divAcc) sensIDs(rec arrow.RecordBatch, rowBase int64, dst []uint32) error {
	col := rec.Column(d.idx)
	if err := sensitiveNulls(d.col, col, rowBase); err != nil {
		return err
	}
	if err := d.vals.column(d.col, col, rowBase, dst); err != nil {
		return fmt.Errorf("kanon: %w", err)
	}
	return nil
}

// addPair records the sensitive value of a row that survives cell
// suppression, as add does for a batch: combo and sid are the row keys'
// combination and subject ids (kanonAcc.addPair keys its pairs by the same
// subject id), sens the value's id from sensIDs. The row keys' rows are
// trips' rows, no data rows: an error names none.
func (d *divAcc) addPair(a *kanonAcc, combo, sid, sens uint32) error {
	if d.perSubject {
		return d.recordSubject(sid, sens, 0)
	}
	d.rows[a.num.keys[combo]+string(packKey(nil, sens))]++
	return nil
}

// sensitiveNulls fails on the first null of the sensitive column: a class's
// diversity cannot be judged on a value that is not there, and "<null>" as
// a value of its own would count missing data as diversity.
func sensitiveNulls(name string, col arrow.Array, rowBase int64) error {
	if col.NullN() == 0 {
		return nil
	}
	for i := range col.Len() {
		if col.IsNull(i) {
			return fmt.Errorf("kanon: %w", rowerr.Atf(rowerr.Row(rowBase, i), name,
				"null value in the sensitive column (l-diversity and t-closeness need a value in every row they count: fill or drop such rows first)"))
		}
	}
	return nil
}

// histogram builds the search's histogram with the sensitive column: per
// subject one row per (combination, subject) pair, as without l/t, carrying
// the subject's value; otherwise one row per counted row.
func (d *divAcc) histogram(a *kanonAcc, hier map[string]kanon.Hierarchy) (*kanon.Histogram, error) {
	hb, err := kanon.NewHistogramBuilder(kanon.HistogramOptions{QuasiIdentifiers: a.qi, Hierarchies: hier, Sensitive: d.col})
	if err != nil {
		return nil, fmt.Errorf("k-anonymity histogram: %w", err)
	}
	fields := make([]arrow.Field, 0, len(a.qi)+1)
	for _, q := range a.qi {
		fields = append(fields, arrow.Field{Name: q, Type: arrow.BinaryTypes.String})
	}
	fields = append(fields, arrow.Field{Name: d.col, Type: arrow.BinaryTypes.String})
	bld := array.NewRecordBuilder(memory.NewGoAllocator(), arrow.NewSchema(fields, nil))
	defer bld.Release()
	nq := len(a.qi)
	emit := func(key string, sens uint32, n int64) error {
		for range n {
			for i := range nq {
				bld.Field(i).(*array.StringBuilder).Append(a.in[i].vals[unpack(key, i)])
			}
			bld.Field(nq).(*array.StringBuilder).Append(d.vals.vals[sens])
			if bld.Field(0).Len() >= 1<<16 {
				if err := addBatch(hb, bld); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if d.perSubject {
		for _, pair := range sortedKeys(a.pairs) {
			s := d.subjSens[unpack(pair, nq)]
			if s < 0 {
				return nil, fmt.Errorf("kanon: internal error: a counted subject has no sensitive value")
			}
			if err := emit(pair, uint32(s), 1); err != nil {
				return nil, err
			}
		}
	} else {
		for _, key := range sortedKeys(d.rows) {
			if err := emit(key, unpack(key, nq), d.rows[key]); err != nil {
				return nil, err
			}
		}
	}
	if err := addBatch(hb, bld); err != nil {
		return nil, err
	}
	h, err := hb.Histogram()
	if err != nil {
		return nil, fmt.Errorf("k-anonymity histogram: %w", err)
	}
	return h, nil
}

func addBatch(hb *kanon.HistogramBuilder, bld *array.RecordBuilder) error {
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

// options adds the models to the search's options.
func (d *divAcc) options(o *kanon.Options) {
	if d != nil {
		o.LDiversity, o.TCloseness = d.l, d.t
	}
}

// decide suppresses, in addition to the classes below k, the generalised
// classes (at the levels the search chose) whose members fail l/t, checked
// by kanon.Verify on one row per member: per subject one per distinct
// (class, subject), whatever raw combinations the subject was seen with.
// supp is the members suppressed so far; it returns the new total.
func (d *divAcc) decide(kr *kanonResult, supp int64) (int64, error) {
	if d == nil {
		return supp, nil
	}
	a := kr.a
	nq := len(a.qi)
	tab := newDivTable(d.vals)
	gen := map[string]uint32{}
	classOf := func(combo string) (uint32, error) {
		if id, ok := gen[combo]; ok {
			return id, nil
		}
		var g []byte
		for i := range nq {
			v, err := kr.hier[i].Generalize(a.in[i].vals[unpack(combo, i)], kr.levels[i])
			if err != nil {
				return 0, rowerr.At(0, a.qi[i], err)
			}
			g = append(g, v...)
			g = append(g, 0)
		}
		id := tab.class(string(g))
		gen[combo] = id
		return id, nil
	}
	if d.perSubject {
		seen := map[uint64]struct{}{}
		for pair := range a.pairs {
			c, err := classOf(pair[:4*nq])
			if err != nil {
				return 0, err
			}
			s := unpack(pair, nq)
			if _, ok := seen[uint64(c)<<32|uint64(s)]; ok {
				continue
			}
			seen[uint64(c)<<32|uint64(s)] = struct{}{}
			tab.add(c, uint32(d.subjSens[s]), 1)
		}
	} else {
		for key, n := range d.rows {
			c, err := classOf(key[:4*nq])
			if err != nil {
				return 0, err
			}
			tab.add(c, unpack(key, nq), n)
		}
	}
	d.ref = tab.distribution()
	bad, _, err := tab.verify(d, kr.alloc)
	if err != nil {
		return 0, err
	}
	for _, cls := range bad {
		if !kr.suppressed[cls] {
			kr.suppressed[cls] = true
			supp += kr.classes[cls]
			d.extra++
		}
	}
	d.out = newDivCollector(d, kr, newInterner())
	return supp, nil
}

// keyCollector returns a collector for one settle round fed from the row
// keys (addMember), or nil without l/t. Its sensitive ids are divAcc.vals'.
func (d *divAcc) keyCollector(kr *kanonResult) *divCollector {
	if d == nil {
		return nil
	}
	c := newDivCollector(d, kr, d.vals)
	return c
}

// addMember counts one surviving row of a settle round by its generalised
// class key, subject id and sensitive id (d.vals): per subject once per
// (class, subject), otherwise once per row.
func (c *divCollector) addMember(class string, subj, sens uint32) {
	id := c.tab.class(class)
	if c.d.perSubject {
		mk := uint64(id)<<32 | uint64(subj)
		if _, seen := c.members[mk]; seen {
			return // one value per subject: recordSubject checked it
		}
		c.members[mk] = sens
	}
	c.tab.add(id, sens, 1)
}

// observe feeds a written batch (pl.gen, after suppression) to the output
// check.
func (d *divAcc) observe(rec arrow.RecordBatch, rowBase int64) error {
	if d == nil {
		return nil
	}
	return d.out.add(rec, rowBase)
}

// writtenMembers are the members of the written rows per (class,
// sensitive value), for the report builder's check (finishTable); nil
// without l/t.
func (d *divAcc) writtenMembers() []KAnonMember {
	if d == nil {
		return nil
	}
	return d.out.tab.members()
}

// finishTable checks l/t on the members of the written rows in tab,
// independently of the search and of the decisions (kanon.Verify over the
// members the output holds, against the distribution the search used), and
// fills the report.
func (d *divAcc) finishTable(rep *Report, tab *divTable, mem memory.Allocator) error {
	bad, why, err := tab.verify(d, mem)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("kanon: verification failed: %d written classes fail l-diversity/t-closeness of %q (e.g. %s)", len(bad), d.col, why)
	}
	k := rep.KAnon
	if d.l != nil {
		k.LDiversity = &LDiversityReport{Sensitive: d.col, L: d.l.L, Variant: string(d.l.Variant), C: d.l.C}
	}
	if d.t != nil {
		k.TCloseness = &TClosenessReport{Sensitive: d.col, T: d.t.T, Distance: string(d.t.Distance)}
	}
	k.SensitiveCounted = "rows"
	if d.perSubject {
		k.SensitiveCounted = "subjects"
	}
	k.DiversitySuppressedClasses = d.extra
	return nil
}

// divCollector gathers the members of generalised classes and their
// sensitive values: in a settle round from the row keys (addMember) and over
// the written rows (add, pl.gen batches), for kanon.Verify.
type divCollector struct {
	d        *divAcc
	kr       *kanonResult
	qi       []*interner
	gen      [][]string // per quasi-identifier: generalised value per id
	ids      map[string]uint32
	subj     *interner
	sens     *interner
	members  map[uint64]uint32 // per subject: (class, subject) → sensitive id
	tab      *divTable
	scratch  [][]uint32
	sid, vid []uint32
}

// newDivCollector numbers sensitive values with sens: a fresh interner for
// written batches, divAcc.vals for the row keys' ids.
func newDivCollector(d *divAcc, kr *kanonResult, sens *interner) *divCollector {
	c := &divCollector{d: d, kr: kr, ids: map[string]uint32{}, subj: newInterner(),
		sens: sens, members: map[uint64]uint32{}}
	c.tab = newDivTable(c.sens)
	for range kr.a.qi {
		c.qi = append(c.qi, newInterner())
		c.gen = append(c.gen, nil)
		c.scratch = append(c.scratch, nil)
	}
	return c
}

// add counts the members of rec's rows (none of them of a suppressed class).
// It does not release rec.
func (c *divCollector) add(rec arrow.RecordBatch, rowBase int64) error {
	if c == nil {
		return nil
	}
	a := c.kr.a
	n := int(rec.NumRows())
	for j, col := range a.qiIdx {
		c.scratch[j] = growU32(c.scratch[j], n)
		if err := c.qi[j].column(a.qi[j], rec.Column(col), rowBase, c.scratch[j]); err != nil {
			return fmt.Errorf("kanon: %w", err)
		}
		for len(c.gen[j]) < len(c.qi[j].vals) {
			c.gen[j] = append(c.gen[j], c.qi[j].vals[len(c.gen[j])])
		}
	}
	scol := rec.Column(c.d.idx)
	if err := sensitiveNulls(c.d.col, scol, rowBase); err != nil {
		return err
	}
	c.vid = growU32(c.vid, n)
	if err := c.sens.column(c.d.col, scol, rowBase, c.vid); err != nil {
		return fmt.Errorf("kanon: %w", err)
	}
	if c.d.perSubject {
		c.sid = growU32(c.sid, n)
		if err := c.subj.column(rec.Schema().Field(a.subjIdx).Name, rec.Column(a.subjIdx), rowBase, c.sid); err != nil {
			return fmt.Errorf("kanon: %w", err)
		}
	}
	comp := make([]uint32, len(a.qi))
	var packed []byte
	for i := range n {
		for j := range a.qi {
			comp[j] = c.scratch[j][i]
		}
		packed = packKey(packed[:0], comp...)
		id, ok := c.ids[string(packed)]
		if !ok {
			var g []byte
			for j := range a.qi {
				g = append(g, c.gen[j][comp[j]]...)
				g = append(g, 0)
			}
			id = c.tab.class(string(g))
			c.ids[string(packed)] = id
		}
		if !c.d.perSubject {
			c.tab.add(id, c.vid[i], 1)
			continue
		}
		mk := uint64(id)<<32 | uint64(c.sid[i])
		if v, seen := c.members[mk]; seen {
			if v != c.vid[i] {
				return fmt.Errorf("kanon: %w", rowerr.Atf(rowerr.Row(rowBase, i), c.d.col, "a subject has two values in one class"))
			}
			continue
		}
		c.members[mk] = c.vid[i]
		c.tab.add(id, c.vid[i], 1)
	}
	return nil
}

// decide suppresses the classes of a settle round that fail l/t on the rows
// that survived every suppression so far, and returns how many it added.
func (c *divCollector) decide() (int, error) {
	if c == nil {
		return 0, nil
	}
	bad, _, err := c.tab.verify(c.d, c.kr.alloc)
	if err != nil {
		return 0, err
	}
	added := 0
	for _, cls := range bad {
		if !c.kr.suppressed[cls] {
			c.kr.suppressed[cls] = true
			c.d.extra++
			added++
		}
	}
	return added, nil
}

// divTable is the members of every generalised class by sensitive value.
type divTable struct {
	keys   []string // class id → class key (generalised values, each followed by \x00)
	ids    map[string]uint32
	sens   *interner
	counts map[uint64]int64 // class id << 32 | sensitive id → members
}

func newDivTable(sens *interner) *divTable {
	return &divTable{ids: map[string]uint32{}, sens: sens, counts: map[uint64]int64{}}
}

func (t *divTable) class(key string) uint32 {
	if id, ok := t.ids[key]; ok {
		return id
	}
	id := uint32(len(t.keys))
	t.ids[key] = id
	t.keys = append(t.keys, key)
	return id
}

func (t *divTable) add(class, sens uint32, n int64) {
	t.counts[uint64(class)<<32|uint64(sens)] += n
}

// members lists the table's counts by class key and sensitive value.
func (t *divTable) members() []KAnonMember {
	out := make([]KAnonMember, 0, len(t.counts))
	for k, n := range t.counts {
		out = append(out, KAnonMember{Class: t.keys[k>>32], Sensitive: t.sens.vals[uint32(k)], N: n})
	}
	return out
}

// distribution is the members per sensitive value over all classes.
func (t *divTable) distribution() map[string]int64 {
	out := map[string]int64{}
	for k, n := range t.counts {
		out[t.sens.vals[uint32(k)]] += n
	}
	return out
}

// verify runs kanon.Verify over the table (one row per member; the class id
// is the only quasi-identifier) with the policy's k and models, t-closeness
// against d.ref, and returns the keys of the violating classes and the
// first reason (counts and distances only, never values).
func (t *divTable) verify(d *divAcc, mem memory.Allocator) ([]string, string, error) {
	if len(t.counts) == 0 {
		return nil, "", nil
	}
	entries := make([]uint64, 0, len(t.counts))
	for k := range t.counts {
		entries = append(entries, k)
	}
	slices.Sort(entries)
	rd := &memberReader{t: t, entries: entries, mem: mem, refs: 1,
		schema: arrow.NewSchema([]arrow.Field{{Name: "class", Type: arrow.BinaryTypes.String}, {Name: d.col, Type: arrow.BinaryTypes.String}}, nil)}
	defer rd.Release()
	rep, err := kanon.Verify(context.Background(), rd, kanon.VerifyOptions{QuasiIdentifiers: []string{"class"}, K: d.k,
		LDiversity: d.l, TCloseness: d.t, Reference: d.ref, MaxReported: len(t.keys) + 1})
	if err != nil {
		return nil, "", fmt.Errorf("verifying l-diversity/t-closeness: %w", err)
	}
	if rep.Violations != len(rep.Examples) {
		return nil, "", fmt.Errorf("kanon: internal error: %d violations, %d listed", rep.Violations, len(rep.Examples))
	}
	var bad []string
	for _, v := range rep.Examples {
		id, err := strconv.Atoi(v.Class["class"])
		if err != nil || id < 0 || id >= len(t.keys) {
			return nil, "", fmt.Errorf("kanon: internal error: class %q", v.Class["class"])
		}
		bad = append(bad, t.keys[id])
	}
	sort.Strings(bad)
	why := ""
	if len(rep.Examples) > 0 {
		why = rep.Examples[0].Reason
	}
	return bad, why, nil
}

// memberReader streams a divTable as record batches of (class id,
// sensitive value), one row per member, without holding them all.
type memberReader struct {
	t       *divTable
	entries []uint64
	pos     int
	left    int64 // members of entries[pos] not yet emitted
	started bool
	mem     memory.Allocator
	schema  *arrow.Schema
	cur     arrow.RecordBatch
	refs    int64
}

func (r *memberReader) Retain()               { r.refs++ }
func (r *memberReader) Schema() *arrow.Schema { return r.schema }
func (r *memberReader) Err() error            { return nil }
func (r *memberReader) RecordBatch() arrow.RecordBatch {
	return r.cur
}

// Record is RecordBatch (the interface's deprecated name).
func (r *memberReader) Record() arrow.RecordBatch { return r.cur }

func (r *memberReader) Release() {
	r.refs--
	if r.refs == 0 && r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

func (r *memberReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if !r.started {
		r.started = true
		if len(r.entries) > 0 {
			r.left = r.t.counts[r.entries[0]]
		}
	}
	if r.pos >= len(r.entries) {
		return false
	}
	bld := array.NewRecordBuilder(r.mem, r.schema)
	defer bld.Release()
	cb, sb := bld.Field(0).(*array.StringBuilder), bld.Field(1).(*array.StringBuilder)
	for cb.Len() < 1<<16 && r.pos < len(r.entries) {
		e := r.entries[r.pos]
		cls, v := strconv.FormatUint(e>>32, 10), r.t.sens.vals[uint32(e)]
		for ; r.left > 0 && cb.Len() < 1<<16; r.left-- {
			cb.Append(cls)
			sb.Append(v)
		}
		if r.left == 0 {
			r.pos++
			if r.pos < len(r.entries) {
				r.left = r.t.counts[r.entries[r.pos]]
			}
		}
	}
	r.cur = bld.NewRecordBatch()
	return true
}

// validateSensitive checks the sensitive column of kanon.l and kanon.t
// beyond their own keys (validateKAnon): one column for both, not the
// subject, and published in a form its models can judge.
func (p *Policy) validateSensitive() error {
	k := p.KAnon
	var col, path string
	if k.L != nil {
		col, path = k.L.Sensitive, "kanon.l.sensitive"
	}
	if t := k.T; t != nil {
		if col != "" && col != t.Sensitive {
			return p.errf("kanon.t.sensitive", "sensitive column %q differs from kanon.l's %q: l-diversity and t-closeness protect one sensitive column", t.Sensitive, col)
		}
		col, path = t.Sensitive, "kanon.t.sensitive"
	}
	if col == "" {
		return nil
	}
	if col == p.Subject {
		return p.errf(path, "sensitive column %q is the subject: every subject has its own value, so diversity of it says nothing", col)
	}
	r, _ := p.Columns.Lookup(col)
	switch r.Action {
	case ActionDrop:
		// Nothing of the column is published: an l/t block over it would
		// claim a protection that protects nothing.
		return p.errf(path, "sensitive column %q is dropped: l-diversity and t-closeness protect a published column (keep it, or remove the block)", col)
	case ActionPseudonymize:
		// A keyed pseudonym keeps values apart (so distinct, entropy,
		// recursive and equal-distance t-closeness mean what they mean on
		// the raw values) but not their order.
		if k.T != nil && k.T.Distance == "ordered" {
			return p.errf("kanon.t.distance", "sensitive column %q is pseudonymised: its published values have no order, use distance equal", col)
		}
	}
	return nil
}
