package anonymize

import (
	"context"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
)

// ordered runs fn over batches on up to workers goroutines and hands the
// results, each with the batchRows it was submitted with, to sink in
// submission order. The number of batches in flight is
// bounded (2×workers), so memory stays bounded whatever the input size.
type ordered struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	sem    chan struct{}
	queue  chan chan result
	wg     sync.WaitGroup
}

type result struct {
	rec  arrow.RecordBatch
	rows batchRows
	err  error
}

func newOrdered(ctx context.Context, workers int) (*ordered, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &ordered{
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, workers),
		queue:  make(chan chan result, 2*workers),
	}, ctx
}

// submit schedules fn(rec). It takes ownership of rec (fn must release it or
// return it). It returns false when the pipeline was cancelled; rec is then
// released.
func (o *ordered) submit(rec arrow.RecordBatch, rows batchRows, fn func(arrow.RecordBatch) (arrow.RecordBatch, error)) bool {
	ch := make(chan result, 1)
	select {
	case o.queue <- ch:
	case <-o.ctx.Done():
		rec.Release()
		return false
	}
	select {
	case o.sem <- struct{}{}:
	case <-o.ctx.Done():
		rec.Release()
		ch <- result{err: context.Cause(o.ctx)}
		return false
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer func() { <-o.sem }()
		out, err := fn(rec)
		ch <- result{rec: out, rows: rows, err: err}
	}()
	return true
}

// close says no more batches follow.
func (o *ordered) close() { close(o.queue) }

// drain consumes results in order, calling sink for each; sink takes
// ownership of the record. After the first error every later result is
// released unseen and the error returned.
func (o *ordered) drain(sink func(arrow.RecordBatch, batchRows) error) error {
	var first error
	for ch := range o.queue {
		r := <-ch
		if r.err != nil && first == nil {
			first = r.err
			o.cancel(first)
		}
		if r.rec == nil {
			continue
		}
		if first != nil {
			r.rec.Release()
			continue
		}
		if err := sink(r.rec, r.rows); err != nil {
			first = err
			o.cancel(first)
		}
	}
	o.wg.Wait()
	return first
}
