package anonymize

import (
	"context"
	"errors"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// batchLane runs work on every batch it is sent, in order, on a goroutine
// of its own. The linkage measure has two: the raw-GPS unicity of the
// input rows (pass 1) and the raw side of pass 2 (rawLane). Their state is
// the measure's and theirs alone, so the batches they index are off the
// critical path of the step that feeds them.
type batchLane struct {
	in chan arrow.RecordBatch
	// failed is closed when work returned an error (err); the lane then
	// drops the batches it is still sent.
	failed chan struct{}
	err    error
	done   chan struct{} // closed when the goroutine has returned
	closed bool
}

func startBatchLane(work func(arrow.RecordBatch) error) *batchLane {
	l := &batchLane{in: make(chan arrow.RecordBatch, 1), failed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for rec := range l.in {
			if l.err == nil {
				if err := work(rec); err != nil {
					l.err = err
					close(l.failed)
				}
			}
			rec.Release()
		}
	}()
	return l
}

// send hands the lane one batch (retained for it).
func (l *batchLane) send(ctx context.Context, rec arrow.RecordBatch) error {
	// Arrow builds a dictionary array's value array lazily and
	// unsynchronised: build it before two goroutines read the batch.
	for _, c := range rec.Columns() {
		if d, ok := c.(*array.Dictionary); ok {
			d.Dictionary()
		}
	}
	rec.Retain()
	select {
	case l.in <- rec:
		return nil
	case <-l.failed:
		rec.Release()
		return l.err
	case <-ctx.Done():
		rec.Release()
		return context.Cause(ctx)
	}
}

// finish stops the lane once its last batch is done and returns its
// error. A nil lane was never started.
func (l *batchLane) finish() error {
	if l == nil {
		return nil
	}
	if !l.closed {
		l.closed = true
		close(l.in)
	}
	<-l.done
	return l.err
}

// rawLane indexes the spilled rows of pass 2 for the linkage measure.
// Keying every spilled row at published precision and drawing the raw
// subjects' points (Subjects.Add) is the largest single cost of pass 2 and
// does not depend on what pass 2 decides, so it runs beside the
// suppression, generalisation and writing of the same batches instead of
// before them.
//
// The traces index is shared with the written side (Traces.Raw and
// Traces.Published share its blocks and its memory bound, whose evictions
// depend on the order of the calls), so the lane keeps the order a single
// goroutine had: Raw of batch i, then Published of batch i, then Raw of
// batch i+1. Only that call is in lockstep; the keying before it and the
// raw subjects' sample after it overlap with the main goroutine.
type rawLane struct {
	*batchLane
	// rawDone holds a token when Raw of the latest batch is done;
	// pubDone when Published of the batch before it is (filled at the
	// start: there is no batch before the first).
	rawDone, pubDone chan struct{}
}

// errLaneStopped is what the lane reports when it was asked for a batch's
// turn after it stopped without an error of its own (never expected: a
// guard against a hang).
var errLaneStopped = errors.New("linkage: the raw lane stopped early")

func (lm *linkageMeasure) startRawLane() *rawLane {
	l := &rawLane{rawDone: make(chan struct{}, 1), pubDone: make(chan struct{}, 1)}
	l.pubDone <- struct{}{}
	l.batchLane = startBatchLane(func(rec arrow.RecordBatch) error {
		subj, cols, err := lm.rawKeys(rec)
		if err != nil {
			return err
		}
		<-l.pubDone
		err = lm.traces.Raw(subj, cols)
		l.rawDone <- struct{}{}
		if err != nil {
			return wrapLinkage(err)
		}
		return lm.addBefore(subj, cols)
	})
	return l
}

// rawTurn waits until Raw of the batch the written side is about to index
// is done.
func (l *rawLane) rawTurn(ctx context.Context) error {
	select {
	case <-l.rawDone:
		return nil
	case <-l.failed:
		return l.err
	case <-l.done:
		return errLaneStopped
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// pubTurnDone lets the lane's next Raw go.
func (l *rawLane) pubTurnDone() { l.pubDone <- struct{}{} }
