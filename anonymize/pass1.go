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
	written      int64 // rows written, when one pass does
}

// pass1 reads src once: opt-out, trips and cells (serial, stateful), the
// column actions (batches in parallel), then, serially and in input order,
// the measures and the spill (or, with one pass, the output).
//
// Rows must arrive in time order for the trip segmenter (Lateness); an
// input-order step that detects the order and sorts when needed (issue
// #14) belongs before this step, handing it a reader in an order it can
// stream (and the segmenter's mobility.InputOrder).
func (ru *run) pass1(ctx context.Context, src array.RecordReader) (pass1Counts, error) {
	var c pass1Counts
	ord, octx := newOrdered(ctx, ru.r.workers)
	consume := func(rec arrow.RecordBatch) error {
		defer rec.Release()
		if err := ru.ms.pass1(octx, rec); err != nil {
			return err
		}
		if ru.spill != nil {
			return ru.spill.write(rec)
		}
		out := project(ru.pl.out, rec, ru.pl.keep)
		defer out.Release()
		c.written += out.NumRows()
		return ru.out.data.Write(out)
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
	if ru.spill != nil {
		if err := ru.spill.finish(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// produce reads src, applies the serial stages and submits batches to ord.
// It sets c.in and c.optedOut (it runs beside the consumer, which counts
// c.written).
func (ru *run) produce(ctx context.Context, src array.RecordReader, ord *ordered, c *pass1Counts) (err error) {
	r, pl := ru.r, ru.pl
	defer ord.close()
	var rowBase int64
	var optRows int64
	defer func() {
		c.in, c.optedOut = rowBase, optRows
	}()
	submit := func(rec arrow.RecordBatch, base int64) bool {
		if rec.NumRows() == 0 {
			rec.Release()
			return true
		}
		if pl.seg != nil {
			co, err := mobility.NewCoarsener(pl.seg.Schema(), pl.coarsen)
			if err != nil {
				rec.Release()
				ord.cancel(err)
				return false
			}
			return ord.submit(rec, func(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
				defer rec.Release()
				mid, err := co.Apply(ctx, rec)
				if err != nil {
					// Trips come out regrouped, so the row is counted within
					// this batch of trips, emitted after input row base.
					return nil, fmt.Errorf("mobility (trips emitted after input row %d): %w", base, err)
				}
				defer mid.Release()
				return r.transform(ctx, pl, mid, base)
			})
		}
		return ord.submit(rec, func(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
			defer rec.Release()
			return r.transform(ctx, pl, rec, base)
		})
	}
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
		if !slices.EqualFunc(rec.Schema().Fields(), pl.in.Fields(), func(a, b arrow.Field) bool { return a.Name == b.Name && arrow.TypeEqual(a.Type, b.Type) }) {
			rec.Release()
			return fmt.Errorf("batch starting at row %d has a different schema from the first", rowBase)
		}
		if r.optout != nil {
			mask, dropped, err := r.optout.filterMask(r.mem, r.p.Subject, rec.Column(pl.subject), rowBase)
			if err != nil {
				rec.Release()
				return err
			}
			if dropped > 0 {
				f, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
				mask.Release()
				rec.Release()
				if err != nil {
					return fmt.Errorf("opt-out filter, batch starting at row %d: %w", rowBase, err)
				}
				rec = f
			} else {
				mask.Release()
			}
			optRows += dropped
		}
		if err := ru.ms.input(ctx, rec); err != nil {
			rec.Release()
			return err
		}
		if pl.seg != nil {
			out, err := pl.seg.Push(ctx, rec)
			rec.Release()
			if err != nil {
				return fmt.Errorf("mobility, batch starting at row %d: %w", rowBase, err)
			}
			rec = out
		}
		if !submit(rec, rowBase) {
			return nil
		}
		rowBase += n
		if ru.bar != nil {
			ru.bar.Add64(n)
		}
	}
	if err := srcErr(); err != nil {
		return fmt.Errorf("reading the input after row %d: %w", rowBase, err)
	}
	if pl.seg != nil {
		out, err := pl.seg.Flush(ctx)
		if err != nil {
			return fmt.Errorf("mobility: %w", err)
		}
		submit(out, rowBase)
	}
	return nil
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
