package anonymize

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

	"github.com/tarnkappe/tarnkappe/mobility"
)

// pass1Counts are pass 1's row counts.
type pass1Counts struct {
	in, optedOut int64
	trips        int64 // trips segmented (with a mobility block)
	trimmed      int64 // trip ends dropped
}

// pass1 reads src once: opt-out, trips and cells (serial, stateful), the
// column actions (batches in parallel), then, serially and in input order,
// the measures and the spill.
//
// The input step (input_order.go) hands it the input and the order the segmenter
// streams it in; when the segmenter finds the rows in another order, pass 1
// fails with mobility.ErrOrder and Run starts again in the next order.
func (ru *run) pass1(ctx context.Context, order *inputOrder) (pass1Counts, error) {
	src := order.cur
	var c pass1Counts
	ord, octx := newOrdered(ctx, ru.r.workers)
	consume := func(rec arrow.RecordBatch, rows batchRows) error {
		defer rec.Release()
		if err := ru.ms.pass1(octx, rec); err != nil {
			return rows.Locate(err, rows.first, rec.NumRows())
		}
		return ru.spill.write(rec)
	}
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- ru.produce(octx, src, ord, &c)
	}()
	drainErr := ord.drain(consume)
	perr := <-prodErr
	if drainErr != nil {
		return c, drainErr
	}
	if perr != nil {
		return c, perr
	}
	if err := ctx.Err(); err != nil {
		return c, err
	}
	if c.in == 0 {
		return c, errors.New("the input has no rows")
	}
	if seg := ru.pl.seg; seg != nil {
		st := seg.Stats()
		c.trips, c.trimmed = st.Trips, st.RowsTrimmed
	}
	if err := ru.spill.finish(); err != nil {
		return c, err
	}
	return c, nil
}

// produce reads src, applies the serial stages and submits batches to ord.
// It sets c.in and c.optedOut. Every stage after the opt-out counts the rows it has seen;
// each batch goes with its batchRows, so that an error located in it names
// the data row (rows.go).
func (ru *run) produce(ctx context.Context, src array.RecordReader, ord *ordered, c *pass1Counts) error {
	defer ord.close()
	var at reading
	defer func() {
		c.in, c.optedOut = at.rows, at.rows-at.kept
	}()
	// Decoding the source runs one goroutine ahead of the serial stages.
	pctx, stop := context.WithCancel(ctx)
	batches, srcErr := prefetch(pctx, src, 2)
	defer func() {
		stop()
		for rec := range batches {
			rec.Release()
		}
	}()
	for rec := range batches {
		if err := ctx.Err(); err != nil {
			rec.Release()
			return err
		}
		n := rec.NumRows()
		out, rows, err := ru.serial(ctx, rec, &at)
		if err != nil {
			return err
		}
		if !ru.submit(ctx, ord, out, rows, &at) {
			return nil
		}
		at.rows += n
		ru.bar.add(n)
	}
	if err := srcErr(); err != nil {
		return fmt.Errorf("reading the input after row %d: %w", at.rows, err)
	}
	if seg := ru.pl.seg; seg != nil {
		out, err := seg.Flush(ctx)
		if err != nil {
			return fmt.Errorf("trips: %w", err)
		}
		ru.submit(ctx, ord, out, batchRows{RowSpan: ru.tripRows(at.rows)}, &at)
	}
	return nil
}

// reading is produce's position in the input.
type reading struct {
	rows      int64 // data rows read (before the current batch)
	kept      int64 // rows the opt-out kept
	submitted int64 // rows handed to the workers (trips regroup rows; the column actions keep their number)
}

// serial runs the serial stages over one input batch (rec, which it
// releases): the schema check, the opt-out, the trip segmenter and the
// input measures. It returns the batch for the column actions (the input
// rows kept, or the trips the batch closed) and its rows.
func (ru *run) serial(ctx context.Context, rec arrow.RecordBatch, at *reading) (arrow.RecordBatch, batchRows, error) {
	r, pl := ru.r, ru.pl
	n := rec.NumRows()
	rows := batchRows{RowSpan: RowSpan{Base: at.rows}, first: at.kept}
	if ru.order.sorted {
		// The sort checked every batch's schema.
		var err error
		if rec, rows.Input, err = ru.order.split(rec); err != nil {
			return nil, batchRows{}, err
		}
	}
	if !slices.EqualFunc(rec.Schema().Fields(), pl.in.Fields(), func(a, b arrow.Field) bool { return a.Name == b.Name && arrow.TypeEqual(a.Type, b.Type) }) {
		rec.Release()
		return nil, batchRows{}, fmt.Errorf("the batch from row %d on has a different schema from the first", at.rows+1)
	}
	if r.optout != nil {
		// The input batch goes as soon as the opt-out has filtered it.
		f, removed, err := r.optOut(ctx, pl, rec, at.rows)
		rec.Release()
		if err != nil {
			return nil, batchRows{}, rows.Locate(err, at.rows, n)
		}
		rec, rows.Removed = f, removed
	}
	defer rec.Release()
	at.kept += rec.NumRows()
	// The segmenter first: it checks what every later stage needs
	// (subject, time and coordinates), so its errors name the input's
	// fault rather than a measure's.
	var trips arrow.RecordBatch
	if pl.seg != nil {
		out, err := pl.seg.Push(ctx, rec)
		if err != nil {
			return nil, batchRows{}, fmt.Errorf("trips: %w", rows.Locate(err, rows.first, rec.NumRows()))
		}
		trips = out
	}
	if err := ru.ms.input(ctx, rec); err != nil {
		if trips != nil {
			trips.Release()
		}
		return nil, batchRows{}, rows.Locate(err, rows.first, rec.NumRows())
	}
	if trips != nil {
		return trips, batchRows{RowSpan: ru.tripRows(at.rows + n)}, nil // the trips this batch closed
	}
	rec.Retain()
	return rec, rows, nil
}

// submit hands a batch of the column actions' input (input rows, or trips)
// to the workers, taking ownership of rec; the consumer's measures count
// its rows from at.submitted. It returns false when the run was cancelled.
func (ru *run) submit(ctx context.Context, ord *ordered, rec arrow.RecordBatch, rows batchRows, at *reading) bool {
	r, pl := ru.r, ru.pl
	if rec.NumRows() == 0 {
		rec.Release()
		return true
	}
	rows.first = at.submitted
	at.submitted += rec.NumRows()
	if pl.seg == nil {
		return ord.submit(rec, rows, func(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
			defer rec.Release()
			out, err := r.transform(ctx, pl, rec, rows.Base)
			return out, rows.Locate(err, rows.Base, rec.NumRows())
		})
	}
	co, err := mobility.NewCoarsener(pl.seg.Schema(), pl.coarsen)
	if err != nil {
		rec.Release()
		ord.cancel(err)
		return false
	}
	return ord.submit(rec, rows, func(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
		defer rec.Release()
		mid, err := co.Apply(ctx, rec)
		if err != nil {
			return nil, fmt.Errorf("cells: %w", rows.Locate(err, 0, rec.NumRows()))
		}
		defer mid.Release()
		out, err := r.transform(ctx, pl, mid, rows.Base)
		return out, rows.Locate(err, rows.Base, rec.NumRows())
	})
}

// optOut removes the rows of listed subjects from an input batch whose
// first row is data row rowBase+1. It returns the rows kept (rec retained
// when it keeps all) and the positions of those it removed. Shared by Run
// and Steps.OptOut.
func (r *Runner) optOut(ctx context.Context, pl *plan, rec arrow.RecordBatch, rowBase int64) (arrow.RecordBatch, []int32, error) {
	mask, dropped, err := r.optout.filterMask(r.mem, r.p.Subject, rec.Column(pl.subject), rowBase)
	if err != nil {
		return nil, nil, err
	}
	defer mask.Release()
	if dropped == 0 {
		rec.Retain()
		return rec, nil, nil
	}
	f, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, nil, fmt.Errorf("opt-out filter, batch from row %d on: %w", rowBase+1, err)
	}
	return f, removedRows(mask.(*array.Boolean)), nil
}

// tripRows is the RowSpan of trips emitted after base rows of pass 1's
// input: after data row base, or, when the input was sorted, no row of it.
func (ru *run) tripRows(base int64) RowSpan {
	if ru.order.sorted {
		return RowSpan{Base: base, NoRow: "in a trip (the input was sorted by subject and time)"}
	}
	return tripRows(base)
}

// batchRows are the data rows a batch of pass 1 holds, and where the
// stages that see it start counting its rows: the opt-out's successors
// (segmenter, input measures) count the rows it kept, the consumer's
// measures the rows handed to the workers (produce sets first for each).
type batchRows struct {
	RowSpan
	first int64
}

// prefetch reads src on its own goroutine, up to depth batches ahead. The
// channel yields retained batches (the receiver releases them) and is closed
// at the end of the input, on error or when ctx is cancelled; wait then
// reports the reader's error.
func prefetch(ctx context.Context, src array.RecordReader, depth int) (<-chan arrow.RecordBatch, func() error) {
	ch := make(chan arrow.RecordBatch, depth)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		for src.Next() {
			rec := src.RecordBatch()
			rec.Retain()
			select {
			case ch <- rec:
			case <-ctx.Done():
				rec.Release()
				errc <- ctx.Err()
				return
			}
		}
		errc <- src.Err()
	}()
	var err error
	done := false
	return ch, func() error {
		if !done {
			err, done = <-errc, true
		}
		return err
	}
}
