package anonymize

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// pass2Counts are the rows pass 2 wrote and suppressed.
type pass2Counts struct {
	written    int64
	suppressed int64 // by cell-hour k and k-anonymity
}

// pass2 reads the spill back and, batch by batch in spill order, drops the
// rows of the groups cell suppression removes, generalises the
// quasi-identifiers and suppresses the classes the search chose, and
// detaches the trips the trace gate does not publish; the measures see the
// rows (written hook) and the kept columns go to the output-order step
// (output_order.go), fed from its own goroutine, which puts them into its
// partitions. The next step (write.go) writes them from there to the
// data's sink (made by start).
//
// The trace gate comes last so that what it counts (rows detached) are
// rows that are written: the suppressions before it remove rows, it only
// nulls trip ids.
func (ru *run) pass2(ctx context.Context, in pass1Counts, dec *decision) (pass2Counts, error) {
	order, err := newOutputOrder(ru.r.mem, ru.pl.out, orderTime(ru.r.p, ru.pl.out), ru.counts.c, ru.tmp.Path(), ru.r.orderRows)
	if err != nil {
		return pass2Counts{}, err
	}
	ru.outOrder = order
	ru.bar.done()
	ru.bar = ru.r.progress("pass 2 of 2: writing", ru.spill.rows)
	rd, err := ipc.NewReader(ru.spill.f, ipc.WithAllocator(ru.r.mem), ipc.WithSchema(ru.spill.schema))
	if err != nil {
		return pass2Counts{}, fmt.Errorf("spill: %w", err)
	}
	defer rd.Release()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	outc := make(chan arrow.RecordBatch, 2)
	werr := make(chan error, 1)
	go func() {
		var first error
		for rec := range outc {
			if first == nil {
				if first = order.Add(ctx, rec); first != nil {
					cancel(first)
				}
			}
			rec.Release()
		}
		werr <- first
	}()
	c, err := ru.pass2Batches(ctx, rd, dec.kanon, outc)
	close(outc)
	if we := <-werr; we != nil {
		return pass2Counts{}, we
	}
	if err != nil {
		return pass2Counts{}, err
	}
	return c, nil
}

func (ru *run) pass2Batches(ctx context.Context, rd *ipc.Reader, kr *kanonResult, outc chan<- arrow.RecordBatch) (pass2Counts, error) {
	var c pass2Counts
	pl, mem := ru.pl, ru.r.mem
	var rowBase int64
	var keys *keyReader
	if ru.cells != nil {
		keys = ru.cells.keys.reader()
	}
	for rd.Next() {
		if err := ctx.Err(); err != nil {
			return c, context.Cause(ctx)
		}
		rec := rd.RecordBatch()
		n := rec.NumRows()
		ru.bar.add(n)
		rec.Retain()
		if ru.micro != nil {
			// Microaggregated columns become their group's mean (float64),
			// once for the measures and the rows written.
			m, err := ru.micro.apply(mem, rec)
			rec.Release()
			if err != nil {
				return c, err
			}
			rec = m
		}
		// Every spilled row, before suppression: the raw readings at
		// published precision (the linkage measure's adversary).
		if err := ru.ms.spilled(ctx, rec); err != nil {
			rec.Release()
			return c, err
		}
		if keys != nil {
			_, group, _, _, err := keys.next(int(n))
			if err != nil {
				rec.Release()
				return c, err
			}
			if mask, dropped := ru.cells.mask(mem, group); mask != nil {
				kept, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
				mask.Release()
				rec.Release()
				if err != nil {
					return c, fmt.Errorf("cell suppression: %w", err)
				}
				rec = kept
				c.suppressed += dropped
			}
		}
		if ru.micro != nil && kr == nil {
			// Without k-anonymity the rows are in their generalised
			// schema already, by name: the microaggregated columns were
			// the only ones it changes.
			g := array.NewRecordBatch(pl.gen, rec.Columns(), rec.NumRows())
			rec.Release()
			rec = g
		}
		if kr != nil {
			// The spill's rows are no data rows (the opt-out removed rows,
			// trips regrouped them): errors keep their column only. The
			// search checked every value pass 1 counted, so none is
			// expected here.
			spilled := RowSpan{NoRow: "in the second pass"}
			g, sup, err := kr.apply(ctx, pl, rec, mem, rowBase)
			rec.Release()
			if err != nil {
				return c, spilled.Locate(err, rowBase, n)
			}
			rec = g
			c.suppressed += sup
			if err := kr.a.div.observe(rec, rowBase); err != nil {
				rec.Release()
				return c, spilled.Locate(err, rowBase, n)
			}
		}
		if ru.gate != nil {
			gated, err := ru.gate.apply(ctx, rec)
			rec.Release()
			if err != nil {
				return c, err
			}
			rec = gated
		}
		if err := ru.ms.written(ctx, rec); err != nil {
			rec.Release()
			return c, err
		}
		out := project(pl.out, rec, pl.keep)
		rec.Release()
		rowBase += n
		c.written += out.NumRows()
		select {
		case outc <- out:
		case <-ctx.Done():
			out.Release()
			return c, context.Cause(ctx)
		}
	}
	if err := rd.Err(); err != nil {
		return c, fmt.Errorf("spill: %w", err)
	}
	if rowBase != ru.spill.rows {
		return c, fmt.Errorf("spill: read back %d rows, wrote %d", rowBase, ru.spill.rows)
	}
	if keys != nil && keys.read != ru.cells.keys.rows {
		return c, fmt.Errorf("row keys: read back %d rows, wrote %d", keys.read, ru.cells.keys.rows)
	}
	return c, nil
}
