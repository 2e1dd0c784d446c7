package arrowio

import (
	"context"
	"fmt"
)

// Output is an output CommitAll commits with others: a *Sink or a *File of
// this package (the method set is closed: CommitAll must be able to take a
// rename back).
type Output interface {
	// Prepare completes the output where nobody sees it yet.
	Prepare() error
	// Abort removes what Prepare left; a no-op after a commit.
	Abort() error
	commitStep(keepOld bool) error
	revertStep()
	settleStep()
	isStream() bool
}

var (
	_ Output = (*Sink)(nil)
	_ Output = (*File)(nil)
)

// CommitAll commits outs all or none. First every output is prepared (its
// temporary file finished and synced), which is where a full disk or a
// failed write shows; then each is renamed into place, files before a
// stream on standard output (whose end-of-stream marker is its commit and
// cannot be taken back). If a step fails or ctx is cancelled before the last
// rename, every output already in place is taken back (the file that was
// at its destination before is restored, or the destination removed) and
// every other one aborted, so the destinations are as they were. On
// success every output is committed.
//
// Renames are atomic one by one, not together: a reader that looks while
// CommitAll runs may see some outputs new and others old, and a power cut
// in the middle of the renames can leave that state (with ".NAME.old-*"
// beside the outputs it replaced).
func CommitAll(ctx context.Context, outs ...Output) (err error) {
	done := make([]bool, len(outs))
	defer func() {
		if err == nil {
			for _, o := range outs {
				o.settleStep()
			}
			return
		}
		for i := len(outs) - 1; i >= 0; i-- {
			if done[i] {
				outs[i].revertStep()
			} else {
				outs[i].Abort()
			}
		}
	}()
	for _, o := range outs {
		if err := o.Prepare(); err != nil {
			return err
		}
	}
	order := make([]int, 0, len(outs))
	for i, o := range outs {
		if !o.isStream() {
			order = append(order, i)
		}
	}
	for i, o := range outs {
		if o.isStream() {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if ctx.Err() != nil {
			return fmt.Errorf("commit: %w", context.Cause(ctx))
		}
		if err := outs[i].commitStep(true); err != nil {
			return err
		}
		done[i] = true
	}
	return nil
}

func (o *File) commitStep(keepOld bool) error {
	if o.state == fileCommitted {
		return nil
	}
	if err := o.Prepare(); err != nil {
		return err
	}
	return o.publish(keepOld)
}

func (o *File) revertStep()    { o.revert() }
func (o *File) settleStep()    { o.settle() }
func (o *File) isStream() bool { return false }

func (s *Sink) commitStep(keepOld bool) error { return s.publish(keepOld) }

func (s *Sink) revertStep() {
	if s.file != nil {
		s.file.revert()
		s.state = sinkAborted
	}
}

func (s *Sink) settleStep() {
	if s.file != nil {
		s.file.settle()
	}
}

func (s *Sink) isStream() bool { return s.file == nil }
