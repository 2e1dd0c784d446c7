package beam

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
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
// Runner makes them (anonymize/accum.go):
//
//   - mobility.utility compares the mean of a value per (cell, time bucket)
//     in the raw rows with the written rows, over the (cell, bucket) groups
//     with at least min_subjects distinct subjects. Distributed exactly: the
//     raw side is a CombinePerKey of sums, row counts and distinct subjects
//     capped at min_subjects; the written side is summed by the commit step,
//     which reads every written row anyway.
//   - risk.before.unicity indexes the first UnicityMaxRows opted-in input
//     rows (whole input batches, in input order, as the Runner does): a
//     projection (subject, lat, lon, time) of the input batches gathered by
//     a Combine that keeps only the batches of that prefix.
//   - risk.after.unicity indexes the first UnicityMaxRows written rows in
//     the order the commit step merges them.

// countUtilCut counts raw rows outside the utility window.
const countUtilCut = "utility_cut"

func (c Config) unicityMaxRows() int64 {
	if c.UnicityMaxRows == 0 {
		return 1_000_000
	}
	return c.UnicityMaxRows
}

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
// window start proposed by each batch, the projection the unicity before
// the policy indexes, and (unless the raw means come from the trip step's
// batches, endpoints detach) the raw means per (H3 cell of the raw
// position, bucket).
type rawMeasureFn struct {
	workerDoFn
}

func (f *rawMeasureFn) ProcessElement(ctx context.Context, b Batch, start func(WindowStart), sample func(Batch), means func(string, MeanPart)) error {
	if b.Rows == 0 {
		return nil
	}
	mem := memory.DefaultAllocator
	rec, err := b.decode(mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	if err := f.measure(rec, b, mem, start, sample, means); err != nil {
		return b.fail(f.Cfg, err)
	}
	return nil
}

func (f *rawMeasureFn) measure(rec arrow.RecordBatch, b Batch, mem memory.Allocator, start func(WindowStart), sample func(Batch), means func(string, MeanPart)) error {
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
	// The unicity projection: subject, coordinates, time.
	sch := rec.Schema()
	var fields []arrow.Field
	var cols []arrow.Array
	for _, n := range []string{p.Subject, m.Lat, m.Lon, m.Time} {
		c := sch.FieldIndices(n)
		if len(c) == 0 {
			return fmt.Errorf("unicity: column %q is missing", n)
		}
		fields = append(fields, sch.Field(c[0]))
		cols = append(cols, rec.Column(c[0]))
	}
	proj := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
	pb, err := b.encodeLike(proj, mem)
	proj.Release()
	if err != nil {
		return err
	}
	sample(pb)
	if m.Utility == nil || m.Endpoints == "detach" {
		return nil
	}
	k, _ := m.Utility.Thresholds()
	ticks, err := bucketTicks(p.UtilityBucket(), ts.DataType().(*arrow.TimestampType).Unit)
	if err != nil {
		return err
	}
	subj, err := rowTexts(p.Subject, rec.Column(sch.FieldIndices(p.Subject)[0]), b.Base)
	if err != nil {
		return err
	}
	vals, err := valueColumn(rec, m.Utility.Column, b.Base)
	if err != nil {
		return err
	}
	lat, lon := cols[1].(*array.Float64), cols[2].(*array.Float64)
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

// ---- the unicity sample ----

// Sample is the prefix of the opted-in input (batches in file and row
// order) that the unicity before the policy indexes: whole batches while
// their rows add up to at most the cap, as on one machine. Capped says that
// batches were left out: every batch from Cut on (by file and row).
type Sample struct {
	B      []Batch
	Capped bool
	Cut    Batch // Shard, File and Base only
}

// sampleFn gathers the Sample. A batch a partial sample leaves out (the
// rows before it exceed the cap) is left out of the whole one too, and so is
// every later batch, since more batches only add rows before them: the
// accumulator keeps the earliest such cut, pruning is exact in any merge
// order, and the accumulator stays within the cap.
type sampleFn struct {
	Cap int64
}

func (sampleFn) CreateAccumulator() Sample { return Sample{} }
func (f sampleFn) AddInput(a Sample, b Batch) Sample {
	a.B = append(a.B, b)
	return f.prune(a)
}
func (f sampleFn) MergeAccumulators(a, b Sample) Sample {
	// A new slice: a and b are left as they were.
	a.B = append(append(make([]Batch, 0, len(a.B)+len(b.B)), a.B...), b.B...)
	if b.Capped && (!a.Capped || batchOrder(b.Cut, a.Cut) < 0) {
		a.Capped, a.Cut = true, b.Cut
	}
	return f.prune(a)
}
func (f sampleFn) ExtractOutput(a Sample) Sample {
	sortBatches(a.B)
	return a
}

// batchOrder orders batches as the commit step merges them: by trip
// shard (0 for input batches), file and row.
func batchOrder(x, y Batch) int {
	if x.Shard != y.Shard {
		return x.Shard - y.Shard
	}
	if x.File != y.File {
		return x.File - y.File
	}
	switch {
	case x.Base < y.Base:
		return -1
	case x.Base > y.Base:
		return 1
	}
	return 0
}

func sortBatches(b []Batch) { slices.SortFunc(b, batchOrder) }

func (f sampleFn) prune(a Sample) Sample {
	if a.Capped {
		a.B = slices.DeleteFunc(a.B, func(b Batch) bool { return batchOrder(b, a.Cut) >= 0 })
	}
	var total int64
	for _, b := range a.B {
		total += b.Rows
	}
	if total <= f.Cap {
		return a
	}
	sortBatches(a.B)
	var n int64
	for i, b := range a.B {
		if n+b.Rows > f.Cap {
			a.Capped, a.Cut = true, Batch{Shard: b.Shard, File: b.File, Base: b.Base}
			a.B = slices.Clip(a.B[:i])
			break
		}
		n += b.Rows
	}
	return a
}

func encSample(s Sample) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(s)
	return buf.Bytes(), err
}

func decSample(b []byte) (Sample, error) {
	var s Sample
	err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s)
	return s, err
}

// ---- the commit step's measurements ----

// measures are the measurements the commit step finishes: it indexes the
// written rows (in merge order) for the unicity after the policy, sums them
// per (cell, bucket) for the utility, and reads the raw sides.
type measures struct {
	w      *worker
	cap    int64
	uni    *mobility.UnicityIndex // nil: from the written rows' projection
	rows   int64
	capped bool

	util bool
	win  window
	cut  bool
	out  map[meanGroup]*MeanPart
}

func newMeasures(w *worker, cfg Config, starts func(*WindowStart) bool) (*measures, error) {
	p := w.p
	m := p.Mobility
	ms := &measures{w: w, cap: cfg.unicityMaxRows()}
	out := w.st.Output()
	// When the unit is not written (scope subject, subject dropped), the
	// second pass projects (unit, cell, time) of the written rows instead
	// (classFn.uniCols): the Runner indexes the rows before the projection.
	if unit := unicityUnit(p); len(out.FieldIndices(unit)) > 0 {
		u, err := mobility.NewUnicityIndex(out, afterColumns(p))
		if err != nil {
			return nil, fmt.Errorf("unicity: %w", err)
		}
		ms.uni = u
	}
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
func (ms *measures) addOut(ctx context.Context, rec arrow.RecordBatch) error {
	m := ms.w.p.Mobility
	if ms.util && rec.NumRows() > 0 {
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
	}
	if ms.uni == nil || ms.capped {
		return nil
	}
	if ms.rows+rec.NumRows() > ms.cap {
		ms.capped = true
		return nil
	}
	if err := ms.uni.Add(ctx, rec); err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	ms.rows += rec.NumRows()
	return nil
}

// figures adds the unicity and utility figures to fig.
func (ms *measures) figures(ctx context.Context, fig *anonymize.Figures, sample, after func(*Sample) bool, groups func(*UtilGroup) bool, rawCut bool) error {
	p := ms.w.p
	m := p.Mobility
	opts := mobility.UnicityOptions{P: m.UnicityP(), Samples: 1000, Seed: 1}
	var res mobility.UnicityResult
	var err error
	if ms.uni != nil {
		if res, err = ms.uni.Estimate(opts); err != nil {
			return fmt.Errorf("unicity: %w", err)
		}
	} else {
		var a Sample
		for after(&a) {
		}
		ms.capped = a.Capped
		if res, err = indexSample(ctx, a, afterColumns(p), opts); err != nil {
			return err
		}
	}
	var s Sample
	for sample(&s) {
	}
	raw, err := indexSample(ctx, s, mobility.UnicityColumns{Subject: p.Subject, Space: []string{m.Lat, m.Lon}, Time: m.Time}, opts)
	if err != nil {
		return err
	}
	fig.Unicity = &anonymize.UnicityFigures{Before: raw, After: res}
	if ms.capped || s.Capped {
		fig.Unicity.CappedAt = ms.cap
	}
	if ms.util {
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
	}
	return nil
}

// unicityUnit is the output's linkable unit: the subject's column, or the
// trip id under scope trip.
func unicityUnit(p *anonymize.Policy) string {
	if p.Mobility.Scope == "trip" {
		return p.Mobility.TripIDColumn
	}
	return p.Subject
}

// afterColumns are the columns of the unicity after the policy.
func afterColumns(p *anonymize.Policy) mobility.UnicityColumns {
	m := p.Mobility
	return mobility.UnicityColumns{Subject: unicityUnit(p), Space: []string{m.CellColumn}, Time: m.Time, SkipNullSubjects: m.Scope == "trip"}
}

// indexSample indexes the sample's batches in order and estimates.
func indexSample(ctx context.Context, s Sample, cols mobility.UnicityColumns, opts mobility.UnicityOptions) (mobility.UnicityResult, error) {
	mem := memory.DefaultAllocator
	sortBatches(s.B)
	var u *mobility.UnicityIndex
	for _, b := range s.B {
		rec, err := b.decode(mem)
		if err != nil {
			return mobility.UnicityResult{}, fmt.Errorf("unicity: %w", err)
		}
		if u == nil {
			if u, err = mobility.NewUnicityIndex(rec.Schema(), cols); err != nil {
				rec.Release()
				return mobility.UnicityResult{}, fmt.Errorf("unicity: %w", err)
			}
		}
		err = u.Add(ctx, rec)
		rec.Release()
		if err != nil {
			return mobility.UnicityResult{}, fmt.Errorf("unicity: %w", err)
		}
	}
	if u == nil {
		return mobility.UnicityResult{}, errors.New("unicity: no input rows to index (or the first batch alone exceeds the row cap)")
	}
	res, err := u.Estimate(opts)
	if err != nil {
		return res, fmt.Errorf("unicity: %w", err)
	}
	return res, nil
}

// Measures adds the raw sides of the report's measurements of a mobility
// policy to the pipeline: kept are the opted-in input batches, trans the
// trip step's batches. It returns the raw unicity sample (one Sample), the
// utility window start (WindowStart), the raw (cell, bucket) groups the
// utility comparison covers (UtilGroup) and row counts (an invalid
// PCollection when there are none).
func Measures(s beam.Scope, cfg Config, p *anonymize.Policy, kept, trans beam.PCollection) (sample, start, groups, counts beam.PCollection) {
	s = s.Scope("tarnkappe.Measures")
	m := p.Mobility
	starts, batches, means := beam.ParDo3(s, &rawMeasureFn{workerDoFn: wf(cfg)}, kept)
	sample = beam.Combine(s, sampleFn{Cap: cfg.unicityMaxRows()}, batches)
	start = beam.Combine(s, windowStartFn{}, starts)
	if m.Utility == nil {
		return sample, start, beam.CreateList(s, []UtilGroup{}), counts
	}
	k, _ := m.Utility.Thresholds()
	if m.Endpoints == "detach" {
		means, counts = beam.ParDo2(s, &transMeansFn{workerDoFn: wf(cfg)}, trans, beam.SideInput{Input: start})
	}
	groups = beam.ParDo(s, &utilGroupFn{K: k}, beam.CombinePerKey(s, meanCombineFn{K: k}, means))
	return sample, start, groups, counts
}

func init() {
	for _, t := range []any{(*rawMeasureFn)(nil), (*transMeansFn)(nil), (*utilGroupFn)(nil), (*sampleFn)(nil), (*windowStartFn)(nil),
		(*meanCombineFn)(nil), (*WindowStart)(nil), (*MeanPart)(nil), (*UtilGroup)(nil), (*Sample)(nil)} {
		beam.RegisterType(reflect.TypeOf(t).Elem())
	}
	beam.RegisterCoder(reflect.TypeOf(Sample{}), encSample, decSample)
}
