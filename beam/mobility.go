package beam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/mobility"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// The mobility block on Beam. The single-machine Runner reads rows in time
// order and keeps every open trip in memory; its cell-hour k, trace gate and
// k-anonymity are settled on a spill it reads several times. Here:
//
//	Trips      rows sharded by subject (GroupByKey); per shard the rows are
//	           put in (subject, time) order (mobility.SortBySubjectTime, stable
//	           over input order) and cut into trips by the Runner's own
//	           Segmenter, then coarsened and transformed (anonymize.Steps)
//	cells      (cell, bucket) → distinct subjects, capped at k (CombinePerKey):
//	           the groups below mobility.k
//	traces     trip → its (cell, bucket) points (CombinePerKey); the points
//	           outside thin groups form the trace; trace → subjects
//	           (GroupByKey): trips whose trace ≥ trace_k subjects share keep
//	           their id
//	kanon      combinations of the rows cell suppression keeps → search
//	settle     the Runner's fixed point, unrolled: each round counts cell
//	           groups and classes over the rows every suppression so far
//	           keeps (CombinePerKey) and decides the next suppressions; a
//	           round after the fixed point passes the state on untouched.
//	           Not settled after maxSettleRounds: the job fails, as on one
//	           machine
//	final      suppress thin groups, detach unpublished trips, generalise,
//	           suppress classes; written groups recounted for the check
//
// Trip ids are random (crypto/rand) as on one machine, so a rerun of the
// trip step would draw others: its output is checkpointed by a Reshuffle
// before the several steps that read it.

// maxSettleRounds is the single-machine Runner's bound on the fixed point
// of cell-hour k and k-anonymity.
const maxSettleRounds = 10

// Counter names of the mobility steps.
const (
	countTrips          = "trips"
	countTrimmed        = "trip_trim"
	countCellSuppressed = "cell_suppressed"
	countDetached       = "rows_detached"
	countDetachedEnds   = "rows_detached_ends"
	countGroups         = "output_groups"
	countGroupsBelowK   = "output_groups_below_k"
)

// Trips segments the (opted-out) input batches into trips as the
// single-machine Runner does, coarsens positions to cells and applies the
// column actions. It returns transformed batches (Shard > 0) and counts.
func Trips(s beam.Scope, cfg Config, raw beam.PCollection) (trans, counts beam.PCollection) {
	s = s.Scope("tarnkappe.Trips")
	keyed := beam.ParDo(s, &shardFn{workerDoFn: wf(cfg)}, raw)
	grouped := beam.GroupByKey(s, keyed)
	trans, counts = beam.ParDo2(s, &tripsFn{workerDoFn: wf(cfg)}, grouped)
	return beam.Reshuffle(s, trans), counts
}

// tripsFn cuts one subject shard's rows into trips.
type tripsFn struct {
	workerDoFn
}

func (f *tripsFn) ProcessElement(ctx context.Context, shard int, batches func(*Batch) bool, emit func(Batch), count func(string, int64)) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("tarnkappe/beam: trips of subject shard %d: %w", shard, err)
		}
	}()
	mem := memory.DefaultAllocator
	st, p := f.w.st, f.w.p
	var bs []Batch
	var b Batch
	for batches(&b) {
		bs = append(bs, b)
	}
	// Input order first, so that rows equal in (subject, time) keep it
	// through the stable sort, as on one machine.
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].File != bs[j].File {
			return bs[i].File < bs[j].File
		}
		return bs[i].Base < bs[j].Base
	})
	recs := make([]arrow.RecordBatch, 0, len(bs))
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, b := range bs {
		r, err := b.decode(mem)
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	src, err := array.NewRecordReader(st.Input(), recs)
	if err != nil {
		return err
	}
	defer src.Release()
	sorted, err := mobility.SortBySubjectTime(ctx, src, mobility.SortOptions{Subject: p.Subject, Time: p.Mobility.Time, Mem: mem})
	if err != nil {
		return err
	}
	defer sorted.Close()
	seg, err := st.NewSegmenter(mobility.OrderSubject)
	if err != nil {
		return err
	}
	defer seg.Release()
	var base int64
	out := func(rec arrow.RecordBatch) error {
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		mid, err := st.Coarsen(ctx, rec)
		if err != nil {
			return err
		}
		trans, err := st.Transform(ctx, mid, base)
		mid.Release()
		if err != nil {
			return err
		}
		ob, err := encodeBatch(0, base, trans, mem)
		trans.Release()
		if err != nil {
			return err
		}
		ob.Shard = shard + 1
		base += ob.Rows
		emit(ob)
		return nil
	}
	for sorted.Next() {
		rec, err := seg.Push(ctx, sorted.RecordBatch())
		if err != nil {
			return err
		}
		if err := out(rec); err != nil {
			return err
		}
	}
	if err := sorted.Err(); err != nil {
		return err
	}
	rec, err := seg.Flush(ctx)
	if err != nil {
		return err
	}
	if err := out(rec); err != nil {
		return err
	}
	stats := seg.Stats()
	count(countTrips, stats.Trips)
	count(countTrimmed, stats.RowsTrimmed)
	countFindings(f.w, count)
	return nil
}

// checkMobility fails on the input rows the Segmenter and Coarsener would
// refuse (null time, missing or out-of-range coordinates), naming the input
// row: after the shuffle by subject the row numbers are lost. OptOut calls
// it on the raw batches.
func checkMobility(p *anonymize.Policy, rec arrow.RecordBatch, base int64) error {
	m := p.Mobility
	idx := func(n string) (arrow.Array, error) {
		c := rec.Schema().FieldIndices(n)
		if len(c) == 0 {
			return nil, fmt.Errorf("mobility column %q is missing from the input", n)
		}
		return rec.Column(c[0]), nil
	}
	ts, err := idx(m.Time)
	if err != nil {
		return err
	}
	for i := range ts.Len() {
		if ts.IsNull(i) {
			return rowerr.Atf(rowerr.Row(base, i), m.Time, "null value")
		}
	}
	for _, c := range []struct {
		name, what string
		limit      float64
	}{{m.Lat, "latitude", 90}, {m.Lon, "longitude", 180}} {
		col, err := idx(c.name)
		if err != nil {
			return err
		}
		f, ok := col.(*array.Float64)
		if !ok {
			return fmt.Errorf("mobility column %q has type %s; want float64 degrees", c.name, col.DataType())
		}
		for i := range f.Len() {
			// As the Runner's trip segmenter words them.
			if f.IsNull(i) {
				return rowerr.Atf(rowerr.Row(base, i), c.name, "null value")
			}
			if v := f.Value(i); !(v >= -c.limit && v <= c.limit) {
				return rowerr.Atf(rowerr.Row(base, i), c.name, "%s %v out of range [%v, %v]", c.what, v, -c.limit, c.limit)
			}
		}
	}
	return nil
}

// ---- (cell, bucket) groups ----

// CapSet is a set of distinct values capped at a size (the CellSuppressor's
// "at most K subject ids per group"), with a row count.
type CapSet struct {
	S []string // sorted, distinct, at most the cap
	N int64    // rows
}

// unionCapped returns the sorted distinct union of a and b, cut to its k
// smallest values: a union that reaches k stays at k, so "fewer than k" is
// decided exactly whatever the merge order. a and b are not modified.
func unionCapped(a, b []string, k int) []string {
	s := append(slices.Clone(a), b...)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) > k {
		s = s[:k]
	}
	return s
}

// capSetFn unions CapSets up to K values: a union that reaches K stays at K,
// so "fewer than K" is decided exactly whatever the merge order.
type capSetFn struct {
	K int
}

func (capSetFn) CreateAccumulator() CapSet              { return CapSet{} }
func (f capSetFn) AddInput(a, e CapSet) CapSet          { return f.merge(a, e) }
func (f capSetFn) MergeAccumulators(a, b CapSet) CapSet { return f.merge(a, b) }
func (capSetFn) ExtractOutput(a CapSet) CapSet          { return a }

func (f capSetFn) merge(a, b CapSet) CapSet {
	return CapSet{S: unionCapped(a.S, b.S, f.K), N: a.N + b.N}
}

// Below is a group or class with fewer than k members, and its members.
type Below struct {
	Key string
	N   int64
}

// belowFn emits the keys whose set has fewer than K members (distinct
// values, or rows when Rows).
type belowFn struct {
	K    int
	Rows bool
}

func (f *belowFn) ProcessElement(key string, c CapSet, emit func(Below)) {
	n := int64(len(c.S))
	if f.Rows {
		n = c.N
	}
	if n < int64(f.K) {
		emit(Below{Key: key, N: n})
	}
}

// groupKeys returns every row's (cell, bucket) group: the cell's text and
// the time column's value, as the CellSuppressor keys them.
func groupKeys(p *anonymize.Policy, rec arrow.RecordBatch, base int64) ([]string, error) {
	m := p.Mobility
	cells, err := rowTexts(m.CellColumn, rec.Column(rec.Schema().FieldIndices(m.CellColumn)[0]), base)
	if err != nil {
		return nil, err
	}
	ts, ok := rec.Column(rec.Schema().FieldIndices(m.Time)[0]).(*array.Timestamp)
	if !ok {
		return nil, fmt.Errorf("mobility time column %q is not a timestamp", m.Time)
	}
	out := make([]string, len(cells))
	for i, c := range cells {
		if ts.IsNull(i) {
			return nil, rowerr.Atf(rowerr.Row(base, i), m.Time, "null value")
		}
		out[i] = c + "\x00" + strconv.FormatInt(int64(ts.Value(i)), 10)
	}
	return out, nil
}

// subjectTexts returns the subject column's values of a Trans batch.
func subjectTexts(p *anonymize.Policy, rec arrow.RecordBatch, base int64) ([]string, error) {
	return rowTexts(p.Subject, rec.Column(rec.Schema().FieldIndices(p.Subject)[0]), base)
}

// addTo adds a value (or, when v is "", only the row's presence) to the
// set of key in m, capped at k.
func addTo(m map[string]*CapSet, key, v string, k int, row bool) {
	c := m[key]
	if c == nil {
		c = &CapSet{}
		m[key] = c
	}
	if row {
		c.N++
	}
	if v != "" && len(c.S) < k && !slices.Contains(c.S, v) {
		c.S = append(c.S, v)
	}
}

func emitSets(m map[string]*CapSet, emit func(string, CapSet)) {
	for k, c := range m {
		slices.Sort(c.S)
		emit(k, *c)
	}
}

// cellsFn emits, per batch, the distinct subjects of every (cell, bucket)
// group of the transformed rows (pass 1 of the CellSuppressor).
type cellsFn struct {
	workerDoFn
}

func (f *cellsFn) ProcessElement(b Batch, emit func(string, CapSet)) error {
	rec, groups, subj, err := decodeGroups(f.w.p, f.Cfg, b)
	if err != nil {
		return err
	}
	defer rec.Release()
	m := map[string]*CapSet{}
	for i, g := range groups {
		addTo(m, g, subj[i], f.w.p.Mobility.K, true)
	}
	emitSets(m, emit)
	return nil
}

// decodeGroups decodes a Trans batch with every row's (cell, bucket) group
// and subject. The caller releases the batch.
func decodeGroups(p *anonymize.Policy, cfg Config, b Batch) (arrow.RecordBatch, []string, []string, error) {
	rec, err := b.decode(memory.DefaultAllocator)
	if err != nil {
		return nil, nil, nil, err
	}
	groups, err := groupKeys(p, rec, b.Base)
	var subj []string
	if err == nil {
		subj, err = subjectTexts(p, rec, b.Base)
	}
	if err != nil {
		rec.Release()
		return nil, nil, nil, b.fail(cfg, fmt.Errorf("mobility: %w", err))
	}
	return rec, groups, subj, nil
}

// belowSet reads a side input of Below into a set.
func belowSet(it func(*Below) bool) map[string]bool {
	m := map[string]bool{}
	var b Below
	for it(&b) {
		m[b.Key] = true
	}
	return m
}

// ---- trace gate ----

// TripPoints is one trip's subject and its distinct (cell, bucket) points.
type TripPoints struct {
	Subject string
	Points  []string
}

type tripPointsFn struct{}

func (tripPointsFn) CreateAccumulator() TripPoints                  { return TripPoints{} }
func (f tripPointsFn) AddInput(a, e TripPoints) (TripPoints, error) { return f.MergeAccumulators(a, e) }
func (tripPointsFn) MergeAccumulators(a, b TripPoints) (TripPoints, error) {
	if a.Subject != "" && b.Subject != "" && a.Subject != b.Subject {
		return TripPoints{}, errors.New("tarnkappe/beam: mobility: one trip id carries two subjects (trip id collision)")
	}
	if a.Subject == "" {
		a.Subject = b.Subject
	}
	p := append(slices.Clone(a.Points), b.Points...)
	slices.Sort(p)
	return TripPoints{Subject: a.Subject, Points: slices.Compact(p)}, nil
}
func (tripPointsFn) ExtractOutput(a TripPoints) TripPoints { return a }

// tracePointsFn emits, per batch, the points of every trip (rows with a
// trip id; detached trip ends are in no trace), as the TraceGate observes.
type tracePointsFn struct {
	workerDoFn
}

func (f *tracePointsFn) ProcessElement(b Batch, emit func(int64, TripPoints)) error {
	p := f.w.p
	rec, groups, subj, err := decodeGroups(p, f.Cfg, b)
	if err != nil {
		return err
	}
	defer rec.Release()
	trip, ok := rec.Column(rec.Schema().FieldIndices(p.Mobility.TripIDColumn)[0]).(*array.Int64)
	if !ok {
		return fmt.Errorf("tarnkappe/beam: %s: mobility: trip column %q is not int64", b.origin(f.Cfg), p.Mobility.TripIDColumn)
	}
	m := map[int64]*TripPoints{}
	for i, g := range groups {
		if trip.IsNull(i) {
			continue
		}
		t := m[trip.Value(i)]
		if t == nil {
			t = &TripPoints{Subject: subj[i]}
			m[trip.Value(i)] = t
		}
		t.Points = append(t.Points, g)
	}
	for id, t := range m {
		slices.Sort(t.Points)
		t.Points = slices.Compact(t.Points)
		emit(id, *t)
	}
	return nil
}

// TraceMember is one trip of a trace.
type TraceMember struct {
	Trip    int64
	Subject string
}

// traceKeyFn keys a trip by its trace: its points outside the groups cell
// suppression removes (the TraceGate seals with the first CellSuppressor).
type traceKeyFn struct {
	thin map[string]bool
}

func (f *traceKeyFn) ProcessElement(trip int64, tp TripPoints, thin func(*Below) bool, emit func(string, TraceMember)) {
	if f.thin == nil {
		f.thin = belowSet(thin)
	}
	var kept []string
	for _, pt := range tp.Points {
		if !f.thin[pt] {
			kept = append(kept, pt)
		}
	}
	if len(kept) == 0 {
		return
	}
	emit(strings.Join(kept, "\x01"), TraceMember{Trip: trip, Subject: tp.Subject})
}

// publishFn publishes the trips of a trace that at least TraceK distinct
// subjects share.
type publishFn struct {
	K int
}

func (f *publishFn) ProcessElement(_ string, members func(*TraceMember) bool, emit func(int64)) {
	var trips []int64
	var subjects []string
	var m TraceMember
	for members(&m) {
		trips = append(trips, m.Trip)
		if len(subjects) < f.K && !slices.Contains(subjects, m.Subject) {
			subjects = append(subjects, m.Subject)
		}
	}
	if len(subjects) < f.K {
		return
	}
	for _, t := range trips {
		emit(t)
	}
}

// ---- the fixed point of cell-hour k and k-anonymity ----

// SettleState is the state of the fixed point after a round: the cell
// groups each round with thin groups removes (the Runner's added
// CellSuppressors: a group observed with fewer than k subjects, or not
// observed at all, among the rows that reached it), the suppressed classes,
// and the report's counters.
type SettleState struct {
	Drop       [][]string `json:"drop"`
	Suppressed []string   `json:"suppressed"`
	Rounds     int        `json:"rounds"`
	Cells      int        `json:"cells"`
	Classes    int        `json:"classes"`
	// DivClasses are the classes added for l/t alone (counted in Classes too).
	DivClasses int  `json:"div_classes,omitempty"`
	Done       bool `json:"done"`
}

func decodeState(it func(*[]byte) bool) (*SettleState, error) {
	var raw []byte
	if !it(&raw) {
		return nil, nil
	}
	var s SettleState
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: settle state: %w", err)
	}
	return &s, nil
}

func decodeDecision(it func(*[]byte) bool) (*anonymize.KAnonDecision, error) {
	var raw []byte
	if !it(&raw) {
		return nil, nil
	}
	var d anonymize.KAnonDecision
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: kanon: %w", err)
	}
	return &d, nil
}

// settleStartFn turns the search's decision into the state before round 1.
func settleStartFn(raw []byte, emit func([]byte)) error {
	var d anonymize.KAnonDecision
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("tarnkappe/beam: kanon: %w", err)
	}
	b, err := json.Marshal(SettleState{Suppressed: d.Suppressed})
	if err != nil {
		return err
	}
	emit(b)
	return nil
}

// cellFilter removes the rows of the groups suppressed so far (the first
// suppression's thin groups and the settle rounds').
type cellFilter struct {
	thin map[string]bool
	drop []map[string]bool
}

func newCellFilter(thin map[string]bool, s *SettleState) *cellFilter {
	f := &cellFilter{thin: thin}
	if s != nil {
		for _, d := range s.Drop {
			m := make(map[string]bool, len(d))
			for _, g := range d {
				m[g] = true
			}
			f.drop = append(f.drop, m)
		}
	}
	return f
}

func (f *cellFilter) removes(g string) bool {
	if f.thin[g] {
		return true
	}
	for _, d := range f.drop {
		if d[g] {
			return true
		}
	}
	return false
}

// settleObsFn is one round's pass over the rows: after the cell
// suppressions so far, the members of every class not yet suppressed, and
// after the class suppressions too, the subjects of every cell group
// (groups whose rows all fell to class suppression are reported empty).
type settleObsFn struct {
	workerDoFn
	ok  bool
	d   *anonymize.KAnonDecision
	st  *SettleState
	sup map[string]bool
	cf  *cellFilter
}

func (f *settleObsFn) ProcessElement(ctx context.Context, b Batch, decision func(*[]byte) bool, thin func(*Below) bool, state func(*[]byte) bool,
	groups func(string, CapSet), classes func(string, CapSet), members func(string, int64)) error {
	if !f.ok {
		var err error
		if f.d, err = decodeDecision(decision); err != nil {
			return err
		}
		if f.st, err = decodeState(state); err != nil {
			return err
		}
		if f.d == nil {
			// No search result: an upstream stage failed (its error is
			// the job's; failing here too could report this one in its
			// place) or no combination was counted. Nothing to observe;
			// pass 2 (classFn) fails closed on a missing result.
			return nil
		}
		if f.st == nil {
			return errors.New("tarnkappe/beam: settle: no state")
		}
		f.sup = map[string]bool{}
		for _, c := range f.st.Suppressed {
			f.sup[c] = true
		}
		f.cf = newCellFilter(belowSet(thin), f.st)
		f.ok = true
	}
	if f.st.Done {
		return nil
	}
	mem := memory.DefaultAllocator
	rec, err := b.decode(mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	p := f.w.p
	k, mk := p.KAnon.K, p.Mobility.K
	g, err := groupKeys(p, rec, b.Base)
	if err != nil {
		return b.fail(f.Cfg, fmt.Errorf("mobility: %w", err))
	}
	subj, err := subjectTexts(p, rec, b.Base)
	if err != nil {
		return b.fail(f.Cfg, fmt.Errorf("mobility: %w", err))
	}
	keys, gen, err := classKeys(f.w.st, f.d, rec, b.Base)
	for _, c := range gen {
		c.Release()
	}
	if err != nil {
		return b.fail(f.Cfg, err)
	}
	// l/t: the surviving members by sensitive value (memberKey).
	var sens []string
	if f.w.st.KAnonSensitive() != "" {
		if sens, err = f.w.st.SensitiveTexts(rec, b.Base); err != nil {
			return b.fail(f.Cfg, err)
		}
	}
	gm, cm := map[string]*CapSet{}, map[string]*CapSet{}
	dm := map[string]int64{}
	for i := range g {
		if f.cf.removes(g[i]) {
			continue
		}
		if f.sup[keys[i]] {
			addTo(gm, g[i], "", mk, false)
			continue
		}
		addTo(gm, g[i], subj[i], mk, true)
		addTo(cm, keys[i], subj[i], k, true)
		if sens != nil {
			m := memberKey(keys[i], subj[i], true, sens[i], f.d.PerSubject)
			if f.d.PerSubject {
				dm[m] = 1
			} else {
				dm[m]++
			}
		}
	}
	emitSets(gm, groups)
	emitSets(cm, classes)
	for m, n := range dm {
		members(m, n)
	}
	return nil
}

// settleDecideFn ends a round: the thin groups and classes it found join
// the suppressions, or, when there are none, the state is final.
type settleDecideFn struct {
	Cfg Config
}

func (f *settleDecideFn) ProcessElement(ctx context.Context, _ []byte, decision func(*[]byte) bool, state func(*[]byte) bool, groups func(*Below) bool, classes func(*Below) bool,
	members func(*HistEntry) bool, emit func([]byte)) error {
	st, err := decodeState(state)
	if err != nil {
		return err
	}
	if st == nil {
		// No state because no search result (settleStartFn emits one per
		// result): as in settleObsFn, leave the failure to the stage that
		// caused it; pass 2 fails closed without a result.
		return nil
	}
	if !st.Done {
		sup := map[string]bool{}
		for _, c := range st.Suppressed {
			sup[c] = true
		}
		var drop []string
		thin := 0
		var b Below
		for groups(&b) {
			drop = append(drop, b.Key)
			if b.N > 0 {
				thin++
			}
		}
		added := 0
		for classes(&b) {
			if b.N > 0 && !sup[b.Key] {
				sup[b.Key] = true
				st.Suppressed = append(st.Suppressed, b.Key)
				added++
			}
		}
		// l/t on the round's survivors, after the classes below k: the
		// Runner's decision (anonymize.Steps.KAnonDiversityFails).
		bad, err := f.diversityFails(ctx, decision, members)
		if err != nil {
			return err
		}
		for _, c := range bad {
			if !sup[c] {
				sup[c] = true
				st.Suppressed = append(st.Suppressed, c)
				added++
				st.DivClasses++
			}
		}
		sort.Strings(st.Suppressed)
		st.Rounds++
		if thin > 0 {
			sort.Strings(drop)
			st.Drop = append(st.Drop, drop)
			st.Cells += thin
		}
		st.Classes += added
		st.Done = thin == 0 && added == 0
	}
	out, err := json.Marshal(st)
	if err != nil {
		return err
	}
	emit(out)
	return nil
}

// diversityFails gathers a round's surviving members per (class,
// sensitive value) and returns the classes that fail l/t (none without an
// l or t block).
func (f *settleDecideFn) diversityFails(ctx context.Context, decision func(*[]byte) bool, members func(*HistEntry) bool) ([]string, error) {
	var list []anonymize.KAnonMember
	var e HistEntry
	for members(&e) {
		fs, err := splitFields(e.Key)
		if err != nil || len(fs) != 2 {
			return nil, errors.New("tarnkappe/beam: settle: corrupt class member key")
		}
		list = append(list, anonymize.KAnonMember{Class: fs[0], Sensitive: fs[1], N: e.N})
	}
	if len(list) == 0 {
		return nil, nil
	}
	d, err := decodeDecision(decision)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errors.New("tarnkappe/beam: settle: no search result")
	}
	w, err := newWorker(f.Cfg)
	if err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: %w", err)
	}
	defer w.close()
	if err := w.planInput(ctx, f.Cfg.Inputs[0]); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: input %s: %w", f.Cfg.Inputs[0], err)
	}
	bad, err := w.st.KAnonDiversityFails(d, list)
	if err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: settle: %w", err)
	}
	return bad, nil
}

// settle unrolls the Runner's fixed point over maxSettleRounds rounds.
// With l/t every round also gathers the surviving members per (class,
// sensitive value): distinct (class, subject, value) per subject, rows
// otherwise, by the memberships classFn counts for the output check.
func settle(s beam.Scope, cfg Config, p *anonymize.Policy, trans, decision, thin beam.PCollection) beam.PCollection {
	s = s.Scope("tarnkappe.Settle")
	state := beam.ParDo(s, settleStartFn, decision)
	rows := !(p.KAnon.PerSubject == nil || *p.KAnon.PerSubject)
	div := p.KAnon.L != nil || p.KAnon.T != nil
	for range maxSettleRounds {
		groups, classes, members := beam.ParDo3(s, &settleObsFn{workerDoFn: wf(cfg)}, trans,
			beam.SideInput{Input: decision}, beam.SideInput{Input: thin}, beam.SideInput{Input: state})
		gBelow := beam.ParDo(s, &belowFn{K: p.Mobility.K}, beam.CombinePerKey(s, capSetFn{K: p.Mobility.K}, groups))
		cBelow := beam.ParDo(s, &belowFn{K: p.KAnon.K, Rows: rows}, beam.CombinePerKey(s, capSetFn{K: p.KAnon.K}, classes))
		perValue := beam.CreateList(s, []HistEntry{})
		if div {
			distinct := beam.CombinePerKey(s, sumInt64, members)
			perValue = beam.ParDo(s, toEntry, beam.CombinePerKey(s, sumInt64, beam.ParDo(s, memberClass, distinct)))
		}
		state = beam.ParDo(s, &settleDecideFn{Cfg: cfg}, beam.Impulse(s), beam.SideInput{Input: decision},
			beam.SideInput{Input: state}, beam.SideInput{Input: gBelow}, beam.SideInput{Input: cBelow}, beam.SideInput{Input: perValue})
	}
	return state
}

// checkSettled is the Runner's end of the fixed point: settled within
// maxSettleRounds, and the suppression limit holds over every suppressed
// class's members (counted as the search counts them).
func checkSettled(p *anonymize.Policy, d *anonymize.KAnonDecision, st *SettleState) error {
	if !st.Done {
		return fmt.Errorf("mobility: cell-hour k and k-anonymity did not settle in %d rounds", maxSettleRounds)
	}
	if st.Classes > 0 {
		var supp int64
		for _, c := range st.Suppressed {
			supp += d.Classes[c]
		}
		if limit := int64(math.Floor(p.KAnon.Suppression * float64(d.HistRows))); supp > limit {
			return fmt.Errorf("kanon: %d members would be suppressed once cell-hour k holds as well, above the limit %d", supp, limit)
		}
	}
	return nil
}

// groupStatFn counts the written (cell, bucket) groups and those below k
// (the independent check of the output).
type groupStatFn struct {
	K int
}

func (f *groupStatFn) ProcessElement(_ string, c CapSet, count func(string, int64)) {
	count(countGroups, 1)
	if len(c.S) < f.K {
		count(countGroupsBelowK, 1)
	}
}

// settlePrefix + the final SettleState (JSON) is the key under which the
// state reaches the commit step with the counts.
const settlePrefix = "settle_state:"

func stateCount(raw []byte, count func(string, int64)) {
	count(settlePrefix+string(raw), 1)
}

func init() {
	for _, t := range []any{(*tripsFn)(nil), (*cellsFn)(nil), (*capSetFn)(nil), (*belowFn)(nil), (*tracePointsFn)(nil),
		(*tripPointsFn)(nil), (*traceKeyFn)(nil), (*publishFn)(nil), (*settleObsFn)(nil), (*settleDecideFn)(nil),
		(*groupStatFn)(nil), (*CapSet)(nil), (*Below)(nil), (*TripPoints)(nil), (*TraceMember)(nil), (*SettleState)(nil)} {
		beam.RegisterType(reflect.TypeOf(t).Elem())
	}
	beam.RegisterFunction(settleStartFn)
	beam.RegisterFunction(stateCount)
}
