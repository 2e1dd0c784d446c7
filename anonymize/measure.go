package anonymize

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// A measure learns one thing from the rows of a run (a histogram, an
// aggregate, an index) and adds what it learnt to the run's Figures. Each
// measure is a small type that holds its own parameters, as dpagg's
// BoundedMean does, so a new measure is a new type, not new fields on a
// shared struct. Run calls the hooks at fixed points of its steps; a measure
// embeds noHooks for the hooks it does not need.
//
// The measures of a run (see newMeasures):
//
//	kanonAcc         k-anonymity: quasi-identifier combinations (kanon.go; fed by cellSuppression with mobility)
//	cellSuppression  cell-hour k: subjects per (cell, bucket) and the row keys (cells.go)
//	traceGate        trace-level k: trips whose cell-hour trace trace_k vehicles share (cells.go)
//	dpRelease        the DP aggregator and its release (measure_dp.go)
//	microAgg         per (cell, bucket) sums of the microaggregated columns (micro.go)
//	linkageMeasure   linkage of published traces; unicity before and after (measure_linkage.go)
//	relinkLint       published columns that map one to one to subjects (lint.go)
//	utility          per (cell, bucket) means, raw against written (measure_utility.go)
//	cellCheck        cell-hour k of the written rows, recounted (cells.go)
type measure interface {
	// input sees every input batch after the opt-out filter, in input
	// order, on the goroutine that reads the source (before trips regroup
	// the rows).
	input(ctx context.Context, rec arrow.RecordBatch) error
	// pass1 sees every transformed batch of pass 1 (plan.trans) in order;
	// base is the number of pass-1 rows before it.
	pass1(ctx context.Context, rec arrow.RecordBatch, base int64) error
	// spilled sees every batch pass 2 reads back from the spill
	// (plan.trans; with microaggregation, microAgg.schema: the group
	// means in place), before anything is suppressed: every row of pass
	// 1. A measure may keep the batch (Retain) and work on it on a
	// goroutine of its own (the linkage measure's raw lane); it must
	// then be done with it by its figures.
	spilled(ctx context.Context, rec arrow.RecordBatch) error
	// written sees every batch pass 2 writes (plan.gen: after every
	// suppression, before the projection to the written columns).
	written(ctx context.Context, rec arrow.RecordBatch) error
	// figures adds what the measure learnt to f, once both passes are done
	// and the run's row counts are in f.
	figures(ctx context.Context, f *Figures) error
	// close releases what the measure holds (memory, scratch files).
	close()
}

// noHooks implements every hook of measure as doing nothing.
type noHooks struct{}

func (noHooks) input(context.Context, arrow.RecordBatch) error        { return nil }
func (noHooks) pass1(context.Context, arrow.RecordBatch, int64) error { return nil }
func (noHooks) spilled(context.Context, arrow.RecordBatch) error      { return nil }
func (noHooks) written(context.Context, arrow.RecordBatch) error      { return nil }
func (noHooks) figures(context.Context, *Figures) error               { return nil }
func (noHooks) close()                                                {}

// measures are the measures of one run. Pass 1's serial stage feeds them in
// two lanes, each on its own goroutine, one batch at a time and in order:
// the key lane (k-anonymity's combinations, or cell suppression and the row
// keys) and the value lane (utility, DP, trace gate). The lanes share no
// state, so on two cores splitting them shortens the run. Pass 2 feeds the
// written rows the same way, each measure in the lane it had in pass 1
// (a measure without pass-1 work in the value lane).
type measures struct {
	all    []measure
	lanes  [2][]measure
	wlanes [2][]measure
	rows   int64 // pass-1 rows so far
}

// add registers m; lane is 0 (keys) or 1 (values) for a measure that
// needs pass 1, -1 for one that does not.
func (ms *measures) add(m measure, lane int) {
	ms.all = append(ms.all, m)
	if lane >= 0 {
		ms.lanes[lane] = append(ms.lanes[lane], m)
	}
	wl := lane
	if wl < 0 {
		wl = 1
	}
	ms.wlanes[wl] = append(ms.wlanes[wl], m)
}

func (ms *measures) input(ctx context.Context, rec arrow.RecordBatch) error {
	for _, m := range ms.all {
		if err := m.input(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// pass1 feeds one transformed batch to both lanes.
func (ms *measures) pass1(ctx context.Context, rec arrow.RecordBatch) error {
	base := ms.rows
	ms.rows += rec.NumRows()
	return runLanes(rec, ms.lanes, func(m measure) error { return m.pass1(ctx, rec, base) })
}

// runLanes calls hook for every measure of both lanes, the key lane on
// the caller's goroutine and the value lane on another, and returns the
// first error (the key lane's first).
func runLanes(rec arrow.RecordBatch, lanes [2][]measure, hook func(measure) error) error {
	// Arrow builds a dictionary array's value array lazily on first use,
	// unsynchronised: build it here, before two goroutines (and then the
	// spill's or the output order's) read the batch.
	for _, c := range rec.Columns() {
		if d, ok := c.(*array.Dictionary); ok {
			d.Dictionary()
		}
	}
	lane := func(ms []measure) error {
		for _, m := range ms {
			if err := hook(m); err != nil {
				return err
			}
		}
		return nil
	}
	if len(lanes[1]) == 0 {
		return lane(lanes[0])
	}
	var errValues error
	done := make(chan struct{})
	go func() {
		defer close(done)
		errValues = lane(lanes[1])
	}()
	errKeys := lane(lanes[0])
	<-done
	if errKeys != nil {
		return errKeys
	}
	return errValues
}

func (ms *measures) spilled(ctx context.Context, rec arrow.RecordBatch) error {
	for _, m := range ms.all {
		if err := m.spilled(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// written feeds one batch of written rows to both lanes.
func (ms *measures) written(ctx context.Context, rec arrow.RecordBatch) error {
	return runLanes(rec, ms.wlanes, func(m measure) error { return m.written(ctx, rec) })
}

func (ms *measures) figures(ctx context.Context, f *Figures) error {
	for _, m := range ms.all {
		if err := m.figures(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (ms *measures) close() {
	for _, m := range ms.all {
		m.close()
	}
}
