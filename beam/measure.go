package beam

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/mobility"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// The report's measurements of a mobility policy, as the single-machine
// Runner makes them (anonymize/measure_utility.go):
//
//   - mobility.utility compares the mean of a value per (cell, time bucket)
//     in the raw rows with the written rows, over the (cell, bucket) groups
//     with at least min_subjects distinct subjects. Distributed exactly: the
//     raw side is a CombinePerKey of sums, row counts and distinct subjects
//     capped at min_subjects; the written side is summed by the commit step,
//     which reads every written row anyway.
//   - risk (linkage of published traces, unicity at the published
//     precision before and after, and at raw GPS precision): the Runner's
//     measure (anonymize.Linkage), its partial states merged (linkage.go):
//     the commit step draws the figures and checks mobility.max_linkage
//     with the report builder's check before any output file is written.

// countUtilCut counts raw rows outside the utility window.
const countUtilCut = "utility_cut"

// ---- the utility window ----

// WindowStart is the start of the utility window one input batch proposes:
// the UTC day of its earliest time. The window is the first (by file and
// row) non-empty opted-in batch's.
type WindowStart struct {
	File int
	Base int64
	Day  int64 // Unix seconds of the day's start
	OK   bool
}

func earlier(a, b WindowStart) WindowStart {
	switch {
	case !a.OK:
		return b
	case !b.OK:
		return a
	case b.File < a.File || (b.File == a.File && b.Base < a.Base):
		return b
	}
	return a
}

// windowStartFn keeps the first batch's WindowStart.
type windowStartFn struct{}

func (windowStartFn) CreateAccumulator() WindowStart                 { return WindowStart{} }
func (windowStartFn) AddInput(a, e WindowStart) WindowStart          { return earlier(a, e) }
func (windowStartFn) MergeAccumulators(a, b WindowStart) WindowStart { return earlier(a, b) }
func (windowStartFn) ExtractOutput(a WindowStart) WindowStart        { return a }

// window is the utility window [from, from+anonymize.UtilityWindow); unset (no input
// row) it holds no row, as on one machine.
type window struct {
	from time.Time
	set  bool
}

func windowOf(starts func(*WindowStart) bool) window {
	var first, e WindowStart
	for starts(&e) {
		first = earlier(first, e)
	}
	if !first.OK {
		return window{}
	}
	return window{from: time.Unix(first.Day, 0).UTC(), set: true}
}

// bounds returns the window in a time column's unit.
func (w window) bounds(unit arrow.TimeUnit) (lo, hi int64) {
	if !w.set {
		return 0, 0
	}
	return anonymize.UtilityWindowBounds(w.from, unit)
}

func timeColumn(rec arrow.RecordBatch, name string) (*array.Timestamp, error) {
	c := rec.Schema().FieldIndices(name)
	if len(c) == 0 {
		return nil, fmt.Errorf("column %q is missing", name)
	}
	ts, ok := rec.Column(c[0]).(*array.Timestamp)
	if !ok {
		return nil, fmt.Errorf("time column %q is %s, not a timestamp", name, rec.Column(c[0]).DataType())
	}
	return ts, nil
}

// ---- per (cell, bucket) means ----

// MeanPart is a partial of one (cell, bucket) group: the sum and count of
// the value and its distinct subjects, capped at min_subjects (a union that
// reaches the cap stays there, so "at least min_subjects" is exact whatever
// the merge order).
type MeanPart struct {
	Sum float64
	N   int64
	S   []string // sorted, distinct, at most the cap
}

type meanCombineFn struct {
	K int
}

func (meanCombineFn) CreateAccumulator() MeanPart                { return MeanPart{} }
func (f meanCombineFn) AddInput(a, e MeanPart) MeanPart          { return f.merge(a, e) }
func (f meanCombineFn) MergeAccumulators(a, b MeanPart) MeanPart { return f.merge(a, b) }
func (meanCombineFn) ExtractOutput(a MeanPart) MeanPart          { return a }

func (f meanCombineFn) merge(a, b MeanPart) MeanPart {
	return MeanPart{Sum: a.Sum + b.Sum, N: a.N + b.N, S: unionCapped(a.S, b.S, f.K)}
}

// UtilGroup is a raw (cell, bucket) group with at least min_subjects
// subjects: the groups the comparison covers.
type UtilGroup struct {
	Cell   string
	Bucket int64
	Sum    float64
	N      int64
}

type utilGroupFn struct {
	K int
}

func (f *utilGroupFn) ProcessElement(key string, m MeanPart, emit func(UtilGroup)) error {
	if len(m.S) < f.K {
		return nil
	}
	i := strings.LastIndexByte(key, 0)
	b, err := strconv.ParseInt(key[i+1:], 10, 64)
	if i < 0 || err != nil {
		return fmt.Errorf("tarnkappe/beam: utility: corrupt group key")
	}
	emit(UtilGroup{Cell: key[:i], Bucket: b, Sum: m.Sum, N: m.N})
	return nil
}

// meanGroup is the group of a row: its cell and time bucket.
type meanGroup struct {
	cell   string
	bucket int64
}

// key is the group's key in the shuffle.
func (g meanGroup) key() string {
	return g.cell + "\x00" + strconv.FormatInt(g.bucket, 10)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// bucketTicks is the bucket in the time column's unit.
func bucketTicks(d time.Duration, unit arrow.TimeUnit) (int64, error) {
	t := int64(d) / int64(unit.Multiplier())
	if t <= 0 {
		return 0, fmt.Errorf("utility: bucket %s below the time column's resolution", d)
	}
	return t, nil
}

// addMeans adds the rows of rec that keep[i] selects to parts, with cells
// and subjects given per row.
func addMeans(parts map[meanGroup]*MeanPart, k int, cells, subj []string, vals *array.Float64, ts *array.Timestamp, ticks int64, keep func(int) bool) {
	for i := range vals.Len() {
		if keep != nil && !keep(i) {
			continue
		}
		g := meanGroup{cells[i], floorDiv(int64(ts.Value(i)), ticks)}
		p := parts[g]
		if p == nil {
			p = &MeanPart{}
			parts[g] = p
		}
		p.Sum += vals.Value(i)
		p.N++
		if subj != nil && len(p.S) < k && !slices.Contains(p.S, subj[i]) {
			p.S = append(p.S, subj[i])
		}
	}
}

func emitParts(parts map[meanGroup]*MeanPart, emit func(string, MeanPart)) {
	for g, p := range parts {
		slices.Sort(p.S)
		emit(g.key(), *p)
	}
}

func valueColumn(rec arrow.RecordBatch, name string, base int64) (*array.Float64, error) {
	c := rec.Schema().FieldIndices(name)
	if len(c) == 0 {
		return nil, fmt.Errorf("utility: column %q is missing", name)
	}
	v, ok := rec.Column(c[0]).(*array.Float64)
	if !ok {
		return nil, fmt.Errorf("utility: column %q has type %s; want float64", name, rec.Column(c[0]).DataType())
	}
	if v.NullN() > 0 {
		for i := range v.Len() {
			if v.IsNull(i) {
				return nil, fmt.Errorf("utility: %w", rowerr.Atf(rowerr.Row(base, i), name, "null value"))
			}
		}
	}
	return v, nil
}

// ---- the raw side ----

// rawMeasureFn reads the opted-in input batches for the measurements: the
// window start proposed by each batch and (unless the raw means come from
// the trip step's batches, endpoints detach) the raw means per (H3 cell of
// the raw position, bucket).
type rawMeasureFn struct {
	workerDoFn
}

func (f *rawMeasureFn) ProcessElement(ctx context.Context, b Batch, start func(WindowStart), means func(string, MeanPart)) error {
	if b.Rows == 0 {
		return nil
	}
	mem := memory.DefaultAllocator
	rec, err := b.decode(mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	if err := f.measure(rec, b, start, means); err != nil {
		return b.fail(f.Cfg, err)
	}
	return nil
}

func (f *rawMeasureFn) measure(rec arrow.RecordBatch, b Batch, start func(WindowStart), means func(string, MeanPart)) error {
	p := f.w.p
	m := p.Mobility
	ts, err := timeColumn(rec, m.Time)
	if err != nil {
		return err
	}
	if m.Utility != nil {
		unit := ts.DataType().(*arrow.TimestampType).Unit
		lo := int64(math.MaxInt64)
		for i := range ts.Len() {
			if ts.IsValid(i) {
				lo = min(lo, int64(ts.Value(i)))
			}
		}
		if lo != math.MaxInt64 {
			day := arrow.Timestamp(lo).ToTime(unit).Truncate(24 * time.Hour)
			start(WindowStart{File: b.File, Base: b.Base, Day: day.Unix(), OK: true})
		}
	}
	if m.Utility == nil || m.Endpoints == "detach" {
		return nil
	}
	k, _ := m.Utility.Thresholds()
	ticks, err := bucketTicks(p.UtilityBucket(), ts.DataType().(*arrow.TimestampType).Unit)
	if err != nil {
		return err
	}
	subj, err := rowTexts(p.Subject, rec.Column(rec.Schema().FieldIndices(p.Subject)[0]), b.Base)
	if err != nil {
		return err
	}
	vals, err := valueColumn(rec, m.Utility.Column, b.Base)
	if err != nil {
		return err
	}
	lat, err := floatColumn(rec, m.Lat)
	if err != nil {
		return err
	}
	lon, err := floatColumn(rec, m.Lon)
	if err != nil {
		return err
	}
	cells := make([]string, rec.NumRows())
	for i := range cells {
		if cells[i], err = mobility.CellOf(lat.Value(i), lon.Value(i), m.CellResolution); err != nil {
			return fmt.Errorf("utility: %w", rowerr.At(rowerr.Row(b.Base, i), m.Lat, err))
		}
	}
	parts := map[meanGroup]*MeanPart{}
	addMeans(parts, k, cells, subj, vals, ts, ticks, nil)
	emitParts(parts, means)
	return nil
}

// transMeansFn is the raw side of the utility measure with endpoints
// detach: as on one machine, the trip step's batches carry every opted-in
// row with the cell of its raw position and its value unchanged, and are
// measured inside the utility window. Partials are summed over the bundle
// and emitted at its end: a batch of trips holds few vehicles but many
// (cell, bucket) groups, and per-batch partials would multiply the
// elements the runner shuffles.
type transMeansFn struct {
	workerDoFn
	win   *window
	parts map[meanGroup]*MeanPart
	cut   int64
}

func (f *transMeansFn) FinishBundle(ctx context.Context, _ func(*WindowStart) bool, means func(string, MeanPart), count func(string, int64)) {
	emitParts(f.parts, means)
	if f.cut > 0 {
		count(countUtilCut, f.cut)
	}
	f.parts, f.cut = nil, 0
}

func (f *transMeansFn) ProcessElement(ctx context.Context, b Batch, starts func(*WindowStart) bool, means func(string, MeanPart), count func(string, int64)) error {
	if f.win == nil {
		w := windowOf(starts)
		f.win = &w
	}
	if b.Rows == 0 {
		return nil
	}
	mem := memory.DefaultAllocator
	rec, err := b.decode(mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	p := f.w.p
	m := p.Mobility
	err = func() error {
		ts, err := timeColumn(rec, m.Time)
		if err != nil {
			return err
		}
		unit := ts.DataType().(*arrow.TimestampType).Unit
		ticks, err := bucketTicks(p.UtilityBucket(), unit)
		if err != nil {
			return err
		}
		k, _ := m.Utility.Thresholds()
		cells, err := rowTexts(m.CellColumn, rec.Column(rec.Schema().FieldIndices(m.CellColumn)[0]), b.Base)
		if err != nil {
			return err
		}
		subj, err := subjectTexts(p, rec, b.Base)
		if err != nil {
			return err
		}
		vals, err := valueColumn(rec, m.Utility.Column, b.Base)
		if err != nil {
			return err
		}
		lo, hi := f.win.bounds(unit)
		keep := func(i int) bool {
			in := ts.IsValid(i) && int64(ts.Value(i)) >= lo && int64(ts.Value(i)) < hi
			if !in {
				f.cut++
			}
			return in
		}
		if f.parts == nil {
			f.parts = map[meanGroup]*MeanPart{}
		}
		addMeans(f.parts, k, cells, subj, vals, ts, ticks, keep)
		return nil
	}()
	if err != nil {
		return b.fail(f.Cfg, err)
	}
	return nil
}

// floatColumn returns a float64 column of rec by name.
func floatColumn(rec arrow.RecordBatch, name string) (*array.Float64, error) {
	c := rec.Schema().FieldIndices(name)
	if len(c) == 0 {
		return nil, fmt.Errorf("column %q is missing", name)
	}
	v, ok := rec.Column(c[0]).(*array.Float64)
	if !ok {
		return nil, fmt.Errorf("column %q is %s, not float64", name, rec.Column(c[0]).DataType())
	}
	return v, nil
}

// ---- the commit step's measurements ----

// measures are the measurements the commit step finishes: it sums the
// written rows (in merge order) per (cell, bucket) for the utility and
// reads the raw side.
type measures struct {
	w    *worker
	util bool
	win  window
	cut  bool
	out  map[meanGroup]*MeanPart
	// risk are the linkage measure's figures (every partial state merged).
	risk *anonymize.RiskFigures
}

func newMeasures(w *worker, starts func(*WindowStart) bool) (*measures, error) {
	p := w.p
	m := p.Mobility
	ms := &measures{w: w}
	out := w.st.Output()
	if m.Utility != nil {
		if len(out.FieldIndices(m.Utility.Column)) == 0 {
			return nil, fmt.Errorf("utility: column %q is not written; Beam measures the written side from the output", m.Utility.Column)
		}
		ms.util = true
		ms.win = windowOf(starts)
		ms.out = map[meanGroup]*MeanPart{}
	}
	return ms, nil
}

// addOut takes one written batch.
func (ms *measures) addOut(_ context.Context, rec arrow.RecordBatch) error {
	m := ms.w.p.Mobility
	if !ms.util || rec.NumRows() == 0 {
		return nil
	}
	ts, err := timeColumn(rec, m.Time)
	if err != nil {
		return fmt.Errorf("utility: %w", err)
	}
	unit := ts.DataType().(*arrow.TimestampType).Unit
	ticks, err := bucketTicks(ms.w.p.UtilityBucket(), unit)
	if err != nil {
		return err
	}
	cells, err := rowTexts(m.CellColumn, rec.Column(rec.Schema().FieldIndices(m.CellColumn)[0]), 0)
	if err != nil {
		return fmt.Errorf("utility: %w", err)
	}
	vals, err := valueColumn(rec, m.Utility.Column, 0)
	if err != nil {
		return err
	}
	lo, hi := ms.win.bounds(unit)
	keep := func(i int) bool {
		in := ts.IsValid(i) && int64(ts.Value(i)) >= lo && int64(ts.Value(i)) < hi
		ms.cut = ms.cut || !in
		return in
	}
	addMeans(ms.out, 0, cells, nil, vals, ts, ticks, keep)
	return nil
}

// figures adds the risk and utility figures to fig.
func (ms *measures) figures(ctx context.Context, fig *anonymize.Figures, groups func(*UtilGroup) bool, rawCut bool) error {
	m := ms.w.p.Mobility
	fig.Risk = ms.risk
	if !ms.util {
		return nil
	}
	minS, tol := m.Utility.Thresholds()
	comparer := mobility.NewMeanComparer(minS, tol)
	var g UtilGroup
	for groups(&g) {
		var relSum float64
		var relN int64
		if r := ms.out[meanGroup{g.Cell, g.Bucket}]; r != nil {
			relSum, relN = r.Sum, r.N
		}
		comparer.Observe(g.Sum, g.N, relSum, relN)
	}
	fig.Utility = &anonymize.UtilityFigures{MeanComparison: comparer.Result(), Windowed: ms.cut || rawCut}
	return nil
}

// ---- the re-linking lint ----

// relinkFn runs the data part of the re-linking lint (scope trip: a
// published column whose values map one to one to subjects) on the trip
// step's batches, one partial per bundle; relinkCombineFn merges them
// (anonymize.RelinkLint.Merge) and the commit step checks the result, so
// such a policy fails before anything is committed, as on one machine.
type relinkFn struct {
	workerDoFn
	l *anonymize.RelinkLint
	// none: the policy publishes no column the lint watches (or is not
	// under scope trip), so batches are not even decoded.
	none, known bool
}

func (f *relinkFn) ProcessElement(ctx context.Context, b Batch, emit func([]byte)) error {
	if !f.known {
		f.none, f.known = len(f.w.st.RelinkColumns()) == 0, true
	}
	if b.Rows == 0 || f.none {
		return nil
	}
	rec, err := f.w.decodeTrans(b, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	defer rec.Release()
	if f.l == nil {
		if f.l, err = f.w.st.NewRelinkLint(); err != nil || f.l == nil {
			return err
		}
	}
	return f.l.Add(ctx, rec)
}

func (f *relinkFn) FinishBundle(emit func([]byte)) {
	if f.l != nil {
		emit(f.l.State())
		f.l = nil
	}
}

// relinkCombineFn merges the lint's partial states into one.
type relinkCombineFn struct {
	workerDoFn
}

func (f *relinkCombineFn) CreateAccumulator() []byte { return nil }
func (f *relinkCombineFn) AddInput(a, e []byte) ([]byte, error) {
	return f.MergeAccumulators(a, e)
}
func (f *relinkCombineFn) MergeAccumulators(a, b []byte) ([]byte, error) {
	switch {
	case a == nil:
		return b, nil
	case b == nil:
		return a, nil
	}
	l, err := f.w.st.NewRelinkLint()
	if err != nil || l == nil {
		return nil, fmt.Errorf("tarnkappe/beam: lint: %v (no lint for partial states)", err)
	}
	if err := l.Merge(a); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: %w", err)
	}
	if err := l.Merge(b); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: %w", err)
	}
	return l.State(), nil
}

// checkRelink runs the lint's check on the merged state (none: nothing
// to watch).
func checkRelink(w *worker, states func(*[]byte) bool) error {
	var b []byte
	if !states(&b) || b == nil {
		return nil
	}
	l, err := w.st.NewRelinkLint()
	if err != nil || l == nil {
		return fmt.Errorf("lint: %v (a state but no lint)", err)
	}
	if err := l.Merge(b); err != nil {
		return err
	}
	return l.Check()
}

// Measures adds the raw sides of the report's measurements of a mobility
// policy to the pipeline: kept are the opted-in input batches, trans the
// trip step's batches. It returns the utility window start (WindowStart),
// the raw (cell, bucket) groups the utility comparison covers (UtilGroup)
// and row counts (an invalid PCollection when there are none), and the
// re-linking lint's merged state (none or one []byte).
func Measures(s beam.Scope, cfg Config, p *anonymize.Policy, kept, trans beam.PCollection) (start, groups, counts, relink beam.PCollection) {
	s = s.Scope("tarnkappe.Measures")
	m := p.Mobility
	relink = beam.Combine(s, &relinkCombineFn{workerDoFn: wf(cfg)}, beam.ParDo(s, &relinkFn{workerDoFn: wf(cfg)}, trans))
	starts, means := beam.ParDo2(s, &rawMeasureFn{workerDoFn: wf(cfg)}, kept)
	start = beam.Combine(s, windowStartFn{}, starts)
	if m.Utility == nil {
		return start, beam.CreateList(s, []UtilGroup{}), counts, relink
	}
	k, _ := m.Utility.Thresholds()
	if m.Endpoints == "detach" {
		means, counts = beam.ParDo2(s, &transMeansFn{workerDoFn: wf(cfg)}, trans, beam.SideInput{Input: start})
	}
	groups = beam.ParDo(s, &utilGroupFn{K: k}, beam.CombinePerKey(s, meanCombineFn{K: k}, means))
	return start, groups, counts, relink
}

func init() {
	for _, t := range []any{(*rawMeasureFn)(nil), (*transMeansFn)(nil), (*relinkFn)(nil), (*relinkCombineFn)(nil), (*utilGroupFn)(nil), (*windowStartFn)(nil),
		(*meanCombineFn)(nil), (*WindowStart)(nil), (*MeanPart)(nil), (*UtilGroup)(nil)} {
		beam.RegisterType(reflect.TypeOf(t).Elem())
	}
}
