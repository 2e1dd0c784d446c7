package anonymize

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// outputs are the files one run writes: the data and, with a release
// block, the DP release. Each is created once its schema is known, and all
// are committed together by finish, the data first; on any error close
// aborts every one not committed, so no output remains.
//
// This is the one place a run's outputs are made and committed: checking
// every output before pass 1 and committing the reports with the data
// (issue #13) belong here.
type outputs struct {
	create    CreateFunc // the data's sink (Run's argument)
	createRel CreateFunc // the release's sink (Options.Release)
	data      Sink
	release   Sink
	// committed
	dataDone, releaseDone bool
}

// openData creates the data's sink for the written schema.
func (o *outputs) openData(schema *arrow.Schema) error {
	if o.data != nil {
		return errors.New("internal error: the data output is open already")
	}
	s, err := o.create(schema)
	if err != nil {
		return err
	}
	o.data = s
	return nil
}

// writeRelease creates the release's sink and writes the release to it.
func (o *outputs) writeRelease(rec arrow.RecordBatch) error {
	if o.release != nil {
		return errors.New("internal error: the release is written already")
	}
	s, err := o.createRel(rec.Schema())
	if err != nil {
		return err
	}
	o.release = s
	return s.Write(rec)
}

// commit commits the data, then the release. An output whose commit
// fails is aborted by close, as are the ones after it.
func (o *outputs) commit() error {
	if o.data == nil {
		return errors.New("internal error: no data output to commit")
	}
	if err := o.data.Commit(); err != nil {
		return err
	}
	o.dataDone = true
	if o.release != nil {
		if err := o.release.Commit(); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		o.releaseDone = true
	}
	return nil
}

// close aborts every output not committed.
func (o *outputs) close() {
	if o.data != nil && !o.dataDone {
		o.data.Abort()
	}
	if o.release != nil && !o.releaseDone {
		o.release.Abort()
	}
}
