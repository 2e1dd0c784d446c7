package anonymize

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// accumulators collect what pass 1 learns: the quasi-identifier combinations
// for k-anonymity, the DP aggregator, the unicity index of the output.
type accumulators struct {
	r  *Runner
	pl *plan

	// k-anonymity
	kan            *kanonAcc
	dpAgg          *dp.Aggregator
	unicity        *mobility.UnicityIndex
	rawUni         *mobility.UnicityIndex
	cells          *mobility.CellSuppressor
	gate           *mobility.TraceGate
	cellSuppressed int64
	rawMeans       *mobility.CellMeans      // utility: raw data
	outCells       *mobility.CellSuppressor // independent check: cell-hour k of the written rows
	keys           *rowKeys                 // per spilled row: subject, group and combination ids (with cells)
	keyBuf         [4][]uint32
	cellDrop       []bool // per group id of cells: rows dropped in pass 2 (set after pass 1, grown by settle)
	settleRounds   int
	settleCells    int
	settleClasses  int
	rawFromTrans   bool // rawMeans fed with pass-1 batches (no row removed before them)
	rawMeanRows    int64
	utilTS         int   // time column in pl.trans / pl.gen
	utilFrom       int64 // utility window [utilFrom, utilTo) in the column's unit; set by the first batch
	utilTo         int64
	utilSet        bool
	utilCut        bool                // some rows fell outside the window
	outMeans       *mobility.CellMeans // utility: written rows
	bucket         time.Duration
	publicParts    int           // public partitions listed (0: private selection)
	relIn          *releaseInput // derived release keys, or nil
	rawRows        int64
	rawCapped      bool
	uniRows        int64
	uniCapped      bool
	result         *dp.Result
	relSink        Sink
	rowBase        int64
}

func (r *Runner) newAccumulators(pl *plan) (*accumulators, error) {
	a := &accumulators{r: r, pl: pl}
	p := r.p
	if p.KAnon != nil {
		a.kan = newKanonAcc(r, pl)
		div, err := newDivAcc(r, pl) // l-diversity, t-closeness (diversity.go)
		if err != nil {
			return nil, err
		}
		a.kan.div = div
	}
	if p.Release != nil {
		opts, ri, public, err := r.dpOptions(pl)
		if err != nil {
			return nil, err
		}
		a.relIn, a.publicParts = ri, public
		agg, err := dp.NewAggregator(opts)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		a.dpAgg = agg
	}
	if m := p.Mobility; m != nil {
		cs, err := mobility.NewCellSuppressor(pl.trans, mobility.SuppressOptions{Subject: p.Subject, Cell: m.CellColumn, Time: m.Time, K: m.K, Mem: r.mem})
		if err != nil {
			a.closeAgg()
			return nil, fmt.Errorf("mobility: %w", err)
		}
		a.cells = cs
		oc, err := mobility.NewCellSuppressor(pl.gen, mobility.SuppressOptions{Subject: p.Subject, Cell: m.CellColumn, Time: m.Time, K: m.K, Mem: r.mem})
		if err != nil {
			a.closeAgg()
			return nil, fmt.Errorf("mobility: %w", err)
		}
		a.outCells = oc
		if m.TraceK > 0 {
			g, err := mobility.NewTraceGate(pl.trans, mobility.TraceGateOptions{Subject: p.Subject, Trip: m.TripIDColumn, Cell: m.CellColumn, Time: m.Time, K: m.TraceK, Mem: r.mem, TempDir: r.opts.TempDir})
			if err != nil {
				a.closeAgg()
				return nil, fmt.Errorf("mobility: %w", err)
			}
			a.gate = g
		}
		// The unicity after the policy is measured on the output's linkable
		// unit: the subject's pseudonym, or the trip id under scope trip.
		unit := p.Subject
		if m.Scope == "trip" {
			unit = m.TripIDColumn
		}
		u, err := mobility.NewUnicityIndex(pl.gen, mobility.UnicityColumns{Subject: unit, Space: []string{m.CellColumn}, Time: m.Time, SkipNullSubjects: m.Scope == "trip"})
		if err != nil {
			a.closeAgg()
			return nil, fmt.Errorf("unicity: %w", err)
		}
		a.unicity = u
		ru, err := mobility.NewUnicityIndex(pl.in, mobility.UnicityColumns{Subject: p.Subject, Space: []string{m.Lat, m.Lon}, Time: m.Time})
		if err != nil {
			a.closeAgg()
			return nil, fmt.Errorf("unicity: %w", err)
		}
		a.rawUni = ru
		if u := m.Utility; u != nil {
			bucket := time.Hour
			if rule, ok := p.Columns.Lookup(m.Time); ok && rule.Action == ActionCoarsen && rule.Coarsen.Time > 0 {
				bucket = rule.Coarsen.Time.D()
			}
			// The raw means need the raw rows in cells. With detached
			// endpoints pass 1 sees every row the opt-out keeps, with the
			// cell of its raw position, its value unchanged (the column is
			// kept) and its time floored to the bucket: the transformed
			// batches carry exactly the raw groups, and the H3 cells are
			// computed once, in parallel. When trimming drops rows, the raw
			// batches are indexed instead (serially, an H3 lookup per row).
			ropts := mobility.CellMeanOptions{Subject: p.Subject, Value: u.Column, Time: m.Time, Bucket: bucket, Lat: m.Lat, Lon: m.Lon, Resolution: m.CellResolution}
			rschema := pl.in
			if m.Endpoints == "detach" {
				ropts.Lat, ropts.Lon, ropts.Resolution, ropts.Cell = "", "", 0, m.CellColumn
				rschema = pl.trans
				a.rawFromTrans = true
			}
			rm, err := mobility.NewCellMeans(rschema, ropts)
			if err != nil {
				a.closeAgg()
				return nil, fmt.Errorf("utility: %w", err)
			}
			// The released side's subject counts are not used (CompareMeans
			// selects groups by the raw side's), so its "subject" is the cell
			// itself: one entry per group instead of a set of vehicles.
			om, err := mobility.NewCellMeans(pl.gen, mobility.CellMeanOptions{Subject: m.CellColumn, Value: u.Column, Time: m.Time, Bucket: bucket, Cell: m.CellColumn})
			if err != nil {
				a.closeAgg()
				return nil, fmt.Errorf("utility: %w", err)
			}
			a.rawMeans, a.outMeans = rm, om
			a.utilTS = pl.trans.FieldIndices(m.Time)[0]
			a.bucket = bucket
		}
	}
	return a, nil
}

func (a *accumulators) closeAgg() {
	if a.dpAgg != nil {
		a.dpAgg.Close()
		a.dpAgg = nil
	}
}

// add takes one transformed batch (serially, in order).
func (a *accumulators) add(ctx context.Context, rec arrow.RecordBatch) error {
	base := a.rowBase
	a.rowBase += rec.NumRows()
	// Two groups of accumulators with no state in common, each on its own
	// goroutine (one batch at a time, in order): this is the serial stage
	// of pass 1, so splitting it shortens the run on two cores.
	// Arrow builds a dictionary array's value array lazily on first use,
	// unsynchronised: build it here, before two goroutines (and then the
	// spill's) read the batch.
	for _, c := range rec.Columns() {
		if d, ok := c.(*array.Dictionary); ok {
			d.Dictionary()
		}
	}
	var errValues error
	done := make(chan struct{})
	go func() {
		defer close(done)
		errValues = a.addValues(ctx, rec)
	}()
	errKeys := a.addKeys(ctx, rec, base)
	<-done
	if errKeys != nil {
		return errKeys
	}
	return errValues
}

// addKeys feeds k-anonymity's counts (without cells) or cell suppression and
// the row keys (with cells).
func (a *accumulators) addKeys(ctx context.Context, rec arrow.RecordBatch, base int64) error {
	// With cell suppression, k-anonymity counts only the rows that survive
	// it (Runner.countSurvivors, after pass 1); otherwise every row survives.
	if a.kan != nil && a.cells == nil {
		if err := a.kan.add(rec, base); err != nil {
			return err
		}
	}
	if a.cells != nil {
		n := int(rec.NumRows())
		for i := range a.keyBuf {
			a.keyBuf[i] = growU32(a.keyBuf[i], n)
		}
		subj, group, combo := a.keyBuf[0], a.keyBuf[1], a.keyBuf[2]
		if err := a.cells.ObserveIDs(ctx, rec, group, subj); err != nil {
			return fmt.Errorf("mobility: %w", err)
		}
		var sens []uint32 // l/t: the sensitive value's id (diversity.go)
		if a.kan != nil {
			if err := a.kan.comboIDsOf(rec, base, subj, combo); err != nil {
				return err
			}
			if a.kan.div != nil {
				sens = a.keyBuf[3]
				if err := a.kan.div.sensIDs(rec, base, sens); err != nil {
					return err
				}
			}
		} else {
			clear(combo)
		}
		if err := a.keys.write(subj, group, combo, sens); err != nil {
			return err
		}
	}
	return nil
}

// addValues feeds the raw utility means, the DP aggregator and the trace
// gate.
func (a *accumulators) addValues(ctx context.Context, rec arrow.RecordBatch) error {
	if a.rawMeans != nil && a.rawFromTrans {
		w, err := a.utilWindow(ctx, rec)
		if err != nil {
			return err
		}
		err = a.rawMeans.Add(ctx, w)
		a.rawMeanRows += w.NumRows()
		w.Release()
		if err != nil {
			return fmt.Errorf("utility: %w", err)
		}
	}
	if a.dpAgg != nil {
		in := rec
		if a.relIn != nil {
			h, err := a.relIn.apply(a.r.mem, rec)
			if err != nil {
				return err
			}
			defer h.Release()
			in = h
		}
		if err := a.dpAgg.Add(ctx, in); err != nil {
			return fmt.Errorf("release: %w", err)
		}
	}
	if a.gate != nil {
		if err := a.gate.Observe(ctx, rec); err != nil {
			return fmt.Errorf("mobility: %w", err)
		}
	}
	return nil
}

// addOut indexes written rows (before projection, after every suppression)
// for the unicity after the policy.
func (a *accumulators) addOut(ctx context.Context, rec arrow.RecordBatch) error {
	if a.outCells != nil {
		if err := a.outCells.Observe(ctx, rec); err != nil {
			return fmt.Errorf("mobility: output check: %w", err)
		}
	}
	if a.outMeans != nil {
		w, err := a.utilWindow(ctx, rec)
		if err != nil {
			return err
		}
		err = a.outMeans.Add(ctx, w)
		w.Release()
		if err != nil {
			return fmt.Errorf("utility: %w", err)
		}
	}
	if a.unicity == nil || a.uniCapped {
		return nil
	}
	if a.uniRows+rec.NumRows() > a.r.opts.UnicityMaxRows {
		a.uniCapped = true
		return nil
	}
	if err := a.unicity.Add(ctx, rec); err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	a.uniRows += rec.NumRows()
	return nil
}

// addRaw indexes input rows (after the opt-out filter) for the unicity
// before the policy. Called by the producer goroutine only.
func (a *accumulators) addRaw(ctx context.Context, rec arrow.RecordBatch) error {
	if a.rawMeans != nil && !a.utilSet {
		// The utility window starts at the first input batch's earliest
		// day (UTC) (input comes roughly in time order). Set here, on the
		// producer goroutine, before the batch is handed on: the
		// accumulators read it after that hand-over.
		a.setUtilWindow(rec)
	}
	if a.rawMeans != nil && !a.rawFromTrans {
		if err := a.rawMeans.Add(ctx, rec); err != nil {
			return fmt.Errorf("utility: %w", err)
		}
	}
	if a.rawUni == nil || a.rawCapped {
		return nil
	}
	if a.rawRows+rec.NumRows() > a.r.opts.UnicityMaxRows {
		a.rawCapped = true
		return nil
	}
	a.rawRows += rec.NumRows()
	if err := a.rawUni.Add(ctx, rec); err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	return nil
}

// finish computes the DP release and the unicity after the policy, and fills
// the report. The release is written to its sink but not committed yet.
func (a *accumulators) finish(ctx context.Context, rep *Report) error {
	p := a.r.p
	if a.unicity != nil {
		points := p.Mobility.UnicityPoints
		if points == 0 {
			points = 4
		}
		res, err := a.unicity.Estimate(mobility.UnicityOptions{P: points, Samples: 1000, Seed: 1})
		if err != nil {
			return fmt.Errorf("unicity: %w", err)
		}
		if rep.Risk == nil {
			rep.Risk = &RiskReport{}
		}
		rep.Risk.After.Unicity = ptr(res.Unicity)
		rep.Risk.After.UnicityCI = []float64{res.Lower, res.Upper}
		raw, err := a.rawUni.Estimate(mobility.UnicityOptions{P: points, Samples: 1000, Seed: 1})
		if err != nil {
			return fmt.Errorf("unicity: %w", err)
		}
		rep.Risk.Before.Unicity = ptr(raw.Unicity)
		rep.Risk.Before.UnicityCI = []float64{raw.Lower, raw.Upper}
		if a.uniCapped || a.rawCapped {
			rep.Risk.UnicityNote = fmt.Sprintf("unicity measured on the first %d rows only (memory bound)", a.r.opts.UnicityMaxRows)
		}
	}
	if a.outCells != nil {
		// Seal the check (Apply on no rows) and count the written cell-hours
		// below k: k-anonymity suppression runs after cell suppression and
		// may thin a cell-hour out again.
		b := array.NewRecordBuilder(a.r.mem, a.pl.gen)
		empty := b.NewRecordBatch()
		b.Release()
		kept, _, err := a.outCells.Apply(ctx, empty)
		empty.Release()
		if err != nil {
			return fmt.Errorf("mobility: output check: %w", err)
		}
		kept.Release()
		st := a.outCells.Stats()
		rep.Mobility.OutputGroups, rep.Mobility.OutputGroupsBelowK = st.Groups, st.GroupsSuppressed
		rep.Mobility.SettleRounds, rep.Mobility.SettleCellGroups, rep.Mobility.SettleClasses = a.settleRounds, a.settleCells, a.settleClasses
		if st.GroupsSuppressed > 0 {
			return fmt.Errorf("mobility: verification failed: %d written (cell, bucket) groups have fewer than k=%d subjects", st.GroupsSuppressed, a.r.p.Mobility.K)
		}
	}
	if a.rawMeans != nil && rep.Mobility != nil {
		u := p.Mobility.Utility
		minS, tol := u.MinSubjects, u.Tolerance
		if minS == 0 {
			minS = 20
		}
		if tol == 0 {
			tol = 0.1
		}
		if a.rawFromTrans {
			// Every row the opt-out kept must have reached pass 1, or the
			// raw side of the comparison is not raw.
			if want := rep.Rows.In - rep.Rows.FilteredBy["opt_out"]; a.rawMeanRows != want && !a.utilCut {
				return fmt.Errorf("utility: internal check failed: %d rows measured as raw, %d kept by the opt-out", a.rawMeanRows, want)
			}
		}
		cmp := mobility.CompareMeans(a.rawMeans, a.outMeans, minS, tol)
		ur := &UtilityReport{Column: u.Column, BucketSeconds: a.bucket.Seconds(), MeanComparison: cmp, WindowDays: UtilityWindow.Hours() / 24, Windowed: a.utilCut}
		if cmp.Groups > 0 {
			ur.WithinFraction = float64(cmp.Within) / float64(cmp.Groups)
		}
		rep.Mobility.Utility = ur
	}
	if a.dpAgg != nil {
		rel := p.Release
		part, err := a.dpAgg.Partial(ctx)
		a.dpAgg = nil
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		acct, err := dp.NewAccountant(rel.Epsilon, rel.Delta)
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		res, err := part.Release(ctx, acct, dp.ReleaseOptions{Mem: a.r.mem})
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		a.result = res
		rep.DP = dpReport(p, acct.Spent(), res.PartitionsKept, a.publicParts)
		sink, err := a.r.opts.Release(res.Record.Schema())
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		a.relSink = sink
		if err := sink.Write(res.Record); err != nil {
			return fmt.Errorf("release: %w", err)
		}
	}
	return nil
}

// commitRelease commits the DP release once the main output is committed.
func (a *accumulators) commitRelease() error {
	if a.relSink == nil {
		return nil
	}
	s := a.relSink
	a.relSink = nil
	if err := s.Commit(); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

func (a *accumulators) release() {
	a.closeAgg()
	if a.gate != nil {
		a.gate.Close()
	}
	if a.relSink != nil {
		a.relSink.Abort()
	}
	if a.result != nil {
		a.result.Release()
	}
	a.kan = nil
}

// UtilityWindow bounds the utility measure in time: the raw side keeps a set
// of subjects per (cell, bucket), so its memory grows with the history; over
// a fixed window it grows with the fleet only. The window starts at the
// first input batch's earliest day (UTC); both sides use the same window.
const UtilityWindow = 31 * 24 * time.Hour

// utilWindow returns the rows of rec (pl.trans or pl.gen: same time column)
// inside the utility window, retained; the caller releases it.
func (a *accumulators) utilWindow(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	ts, ok := rec.Column(a.utilTS).(*array.Timestamp)
	if !ok {
		return nil, fmt.Errorf("utility: time column is %s", rec.Column(a.utilTS).DataType())
	}
	mb := array.NewBooleanBuilder(a.r.mem)
	defer mb.Release()
	mb.Reserve(ts.Len())
	cut := false
	for i := range ts.Len() {
		in := ts.IsValid(i) && int64(ts.Value(i)) >= a.utilFrom && int64(ts.Value(i)) < a.utilTo
		cut = cut || !in
		mb.UnsafeAppend(in)
	}
	if !cut {
		rec.Retain()
		return rec, nil
	}
	a.utilCut = true
	mask := mb.NewArray()
	defer mask.Release()
	f, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, fmt.Errorf("utility: %w", err)
	}
	return f, nil
}

// setUtilWindow sets the utility window from rec's (the input's) time column.
func (a *accumulators) setUtilWindow(rec arrow.RecordBatch) {
	ts, ok := rec.Column(rec.Schema().FieldIndices(a.r.p.Mobility.Time)[0]).(*array.Timestamp)
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
	a.utilFrom, a.utilTo = UtilityWindowBounds(start, unit)
	a.utilSet = true
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
