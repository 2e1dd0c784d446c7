package anonymize

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/mobility"
)

// utility measures what the movement output is kept for (mobility.utility):
// the mean of a column per (cell, time bucket), written against raw, over a
// time window (UtilityWindow) from the first input batch's day.
type utility struct {
	noHooks
	raw, out *mobility.CellMeans
	// fromTrans: the raw means are fed with pass-1 batches (no row removed
	// before them), else with the input batches.
	fromTrans bool
	rawRows   int64 // rows measured as raw (fromTrans)
	timeIn    string
	timeIdx   int // time column in plan.trans and plan.gen
	minS      int
	tol       float64
	mem       memory.Allocator
	// the window [from, to) in the time column's unit, set by the first
	// input batch; cut says rows fell outside it
	from, to int64
	set, cut bool
}

func newUtility(pl *plan, p *Policy, mem memory.Allocator) (*utility, error) {
	m, u := p.Mobility, p.Mobility.Utility
	bucket := p.UtilityBucket()
	// The raw means need the raw rows in cells. With detached endpoints
	// pass 1 sees every row the opt-out keeps, with the cell of its raw
	// position, its value unchanged (the column is kept) and its time
	// floored to the bucket: the transformed batches carry exactly the raw
	// groups, and the H3 cells are computed once, in parallel. When
	// trimming drops rows, or the column is coarsened, the raw batches are
	// indexed instead (serially, an H3 lookup per row).
	ropts := mobility.CellMeanOptions{Subject: p.Subject, Value: u.Column, Time: m.Time, Bucket: bucket, Lat: m.Lat, Lon: m.Lon, Resolution: m.CellResolution}
	rschema := pl.in
	fromTrans := false
	// A coarsened utility column is not raw in pass 1: measure the input.
	if rule, _ := p.Columns.Lookup(u.Column); m.Endpoints == "detach" && rule.Action != ActionCoarsen {
		ropts.Lat, ropts.Lon, ropts.Resolution, ropts.Cell = "", "", 0, m.CellColumn
		rschema = pl.trans
		fromTrans = true
	}
	raw, err := mobility.NewCellMeans(rschema, ropts)
	if err != nil {
		return nil, fmt.Errorf("utility: %w", err)
	}
	// The released side's subject counts are not used (CompareMeans
	// selects groups by the raw side's), so its "subject" is the cell
	// itself: one entry per group instead of a set of vehicles.
	out, err := mobility.NewCellMeans(pl.gen, mobility.CellMeanOptions{Subject: m.CellColumn, Value: u.Column, Time: m.Time, Bucket: bucket, Cell: m.CellColumn})
	if err != nil {
		return nil, fmt.Errorf("utility: %w", err)
	}
	minS, tol := u.Thresholds()
	return &utility{raw: raw, out: out, fromTrans: fromTrans, timeIn: m.Time, timeIdx: pl.trans.FieldIndices(m.Time)[0],
		minS: minS, tol: tol, mem: mem}, nil
}

// input sets the window from the first input batch, and feeds the raw side
// unless pass 1 does.
func (u *utility) input(ctx context.Context, rec arrow.RecordBatch) error {
	if !u.set {
		// Set here, on the reading goroutine, before the batch is handed
		// on: pass 1 reads the window after that hand-over.
		u.setWindow(rec)
	}
	if !u.fromTrans {
		if err := u.raw.Add(ctx, rec); err != nil {
			return fmt.Errorf("utility: %w", err)
		}
	}
	return nil
}

func (u *utility) pass1(ctx context.Context, rec arrow.RecordBatch, _ int64) error {
	if !u.fromTrans {
		return nil
	}
	w, err := u.window(ctx, rec)
	if err != nil {
		return err
	}
	err = u.raw.Add(ctx, w)
	u.rawRows += w.NumRows()
	w.Release()
	if err != nil {
		return fmt.Errorf("utility: %w", err)
	}
	return nil
}

func (u *utility) written(ctx context.Context, rec arrow.RecordBatch) error {
	w, err := u.window(ctx, rec)
	if err != nil {
		return err
	}
	err = u.out.Add(ctx, w)
	w.Release()
	if err != nil {
		return fmt.Errorf("utility: %w", err)
	}
	return nil
}

func (u *utility) figures(_ context.Context, f *Figures) error {
	if u.fromTrans {
		// Every row the opt-out kept must have reached pass 1, or the
		// raw side of the comparison is not raw.
		if want := f.Rows.In - f.Rows.OptedOut; u.rawRows != want && !u.cut {
			return fmt.Errorf("utility: internal check failed: %d rows measured as raw, %d kept by the opt-out", u.rawRows, want)
		}
	}
	f.Utility = &UtilityFigures{MeanComparison: mobility.CompareMeans(u.raw, u.out, u.minS, u.tol), Windowed: u.cut}
	return nil
}

// UtilityWindow bounds the utility measure in time: the raw side keeps a set
// of subjects per (cell, bucket), so its memory grows with the history; over
// a fixed window it grows with the fleet only. The window starts at the
// first input batch's earliest day (UTC); both sides use the same window.
const UtilityWindow = 31 * 24 * time.Hour

// window returns the rows of rec (plan.trans or plan.gen: same time
// column) inside the utility window, retained; the caller releases it.
func (u *utility) window(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	ts, ok := rec.Column(u.timeIdx).(*array.Timestamp)
	if !ok {
		return nil, fmt.Errorf("utility: time column is %s", rec.Column(u.timeIdx).DataType())
	}
	mb := array.NewBooleanBuilder(u.mem)
	defer mb.Release()
	mb.Reserve(ts.Len())
	cut := false
	for i := range ts.Len() {
		in := ts.IsValid(i) && int64(ts.Value(i)) >= u.from && int64(ts.Value(i)) < u.to
		cut = cut || !in
		mb.UnsafeAppend(in)
	}
	if !cut {
		rec.Retain()
		return rec, nil
	}
	u.cut = true
	mask := mb.NewArray()
	defer mask.Release()
	f, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, fmt.Errorf("utility: %w", err)
	}
	return f, nil
}

// setWindow sets the window from rec's (the input's) time column.
func (u *utility) setWindow(rec arrow.RecordBatch) {
	ts, ok := rec.Column(rec.Schema().FieldIndices(u.timeIn)[0]).(*array.Timestamp)
	if !ok || ts.Len() == 0 {
		return
	}
	unit := ts.DataType().(*arrow.TimestampType).Unit
	lo := int64(math.MaxInt64)
	for i := range ts.Len() {
		if ts.IsValid(i) {
			lo = min(lo, int64(ts.Value(i)))
		}
	}
	if lo == math.MaxInt64 {
		return
	}
	start := arrow.Timestamp(lo).ToTime(unit).Truncate(24 * time.Hour)
	u.from, u.to = UtilityWindowBounds(start, unit)
	u.set = true
}

// UtilityWindowBounds returns the utility window [lo, hi) that starts at
// from (the first input batch's earliest UTC day) in a time column's unit.
// The Beam path computes its window with it too.
func UtilityWindowBounds(from time.Time, unit arrow.TimeUnit) (lo, hi int64) {
	l, err := arrow.TimestampFromTime(from, unit)
	if err != nil { // before the unit's range: the window starts before every value
		l = math.MinInt64
	}
	h, err := arrow.TimestampFromTime(from.Add(UtilityWindow), unit)
	if err != nil { // past the unit's range: the window runs to the end
		h = math.MaxInt64
	}
	return int64(l), int64(h)
}

// UtilityBucket is the time bucket of the utility measure: the coarsening
// of the mobility block's time column, else an hour. Both engines use it.
func (p *Policy) UtilityBucket() time.Duration {
	if rule, ok := p.Columns.Lookup(p.Mobility.Time); ok && rule.Action == ActionCoarsen && rule.Coarsen.Time > 0 {
		return rule.Coarsen.Time.D()
	}
	return time.Hour
}

// Thresholds are MinSubjects and Tolerance with their defaults (20, 0.1)
// filled in.
func (u *UtilityPolicy) Thresholds() (minSubjects int, tolerance float64) {
	minSubjects, tolerance = u.MinSubjects, u.Tolerance
	if minSubjects == 0 {
		minSubjects = 20
	}
	if tolerance == 0 {
		tolerance = 0.1
	}
	return minSubjects, tolerance
}
