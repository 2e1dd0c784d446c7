package anonymize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/arrowio"
)

// outputs are the files one run writes: the data, with a release block the
// DP release, and the reports the caller asked for (Options.Reports). The
// data's sink is made by start, before pass 1 reads a row, so a path that
// cannot be written fails at once; the release's when it is drawn (its
// schema comes from the data). Nothing is committed until finish has the
// report: then every output is rendered and prepared, and all are committed
// together (commit); on any error close aborts every one not committed, so
// no output remains.
type outputs struct {
	create    CreateFunc // the data's sink (Run's argument)
	createRel CreateFunc // the release's sink (Options.Release)
	data      Sink
	release   Sink
	reports   []ReportOutput
	committed bool
}

// ReportOutput is one file rendered from the run's report, committed
// together with the data and the release (Options.Reports).
type ReportOutput struct {
	// File receives the rendered report. Make it before Run
	// (arrowio.CreateFile: it checks the path and claims it), so that a
	// path that cannot be written fails before any row is read. Required.
	File ReportFile
	// Render writes the report to w, e.g. (*Report).WriteJSON or
	// (*Report).WriteHTML. Required.
	Render func(r *Report, w io.Writer) error
}

// ReportFile is where a report is rendered: an io.Writer committed or
// aborted with the run's other outputs. *arrowio.File satisfies it.
type ReportFile interface {
	io.Writer
	Commit() error
	Abort() error
}

// isNil reports whether s is nil or an interface holding a nil pointer (a
// CreateFunc that returns a *T typed nil with its error): such a value is
// never used as a Sink.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice:
		return rv.IsNil()
	}
	return false
}

// openSink calls create; a nil Sink, typed or not, is an error.
func openSink(create CreateFunc, schema *arrow.Schema) (Sink, error) {
	s, err := create(schema)
	if err != nil {
		return nil, err
	}
	if isNil(s) {
		return nil, errors.New("the CreateFunc returned no Sink and no error")
	}
	return s, nil
}

// openData creates the data's sink for the written schema.
func (o *outputs) openData(schema *arrow.Schema) error {
	if o.data != nil {
		return errors.New("internal error: the data output is open already")
	}
	s, err := openSink(o.create, schema)
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
	s, err := openSink(o.createRel, rec.Schema())
	if err != nil {
		return err
	}
	o.release = s
	return s.Write(rec)
}

// render writes every report output.
func (o *outputs) render(rep *Report) error {
	for _, ro := range o.reports {
		if err := ro.Render(rep, ro.File); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}

// preparer is a Sink (or report file) that can finish its output without
// publishing it: arrowio's Sink and File.
type preparer interface{ Prepare() error }

// all lists the outputs: data, release, reports.
func (o *outputs) all() []any {
	outs := []any{o.data}
	if o.release != nil {
		outs = append(outs, o.release)
	}
	for _, r := range o.reports {
		outs = append(outs, r.File)
	}
	return outs
}

// prepare completes every output that can be completed unseen (arrowio's:
// trailers written, data synced), so that a full disk fails the run before
// anything is published.
func (o *outputs) prepare() error {
	if o.data == nil {
		return errors.New("internal error: no data output to commit")
	}
	for i, x := range o.all() {
		if p, ok := x.(preparer); ok {
			if err := p.Prepare(); err != nil {
				if i == 1 && o.release != nil {
					return fmt.Errorf("release: %w", err)
				}
				return err
			}
		}
	}
	return nil
}

// commit commits every output together. The outputs made by arrowio
// (Sinks and Files) are committed all or none by arrowio.CommitAll; other
// Sinks (a caller's own) are committed before them, in turn, and cannot be
// taken back if a later commit fails.
func (o *outputs) commit(ctx context.Context) error {
	var group []arrowio.Output
	for _, x := range o.all() {
		if a, ok := x.(arrowio.Output); ok {
			group = append(group, a)
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("commit: %w", context.Cause(ctx))
		}
		var err error
		switch s := x.(type) {
		case Sink:
			err = s.Commit()
		case ReportFile:
			err = s.Commit()
		}
		if err != nil {
			return err
		}
	}
	if err := arrowio.CommitAll(ctx, group...); err != nil {
		return err
	}
	o.committed = true
	return nil
}

// close aborts every output unless all were committed. Each abort runs
// even when another panics.
func (o *outputs) close() {
	if o.committed {
		return
	}
	for _, x := range o.all() {
		defer func() {
			switch s := x.(type) {
			case Sink:
				if !isNil(s) {
					s.Abort()
				}
			case ReportFile:
				if !isNil(s) {
					s.Abort()
				}
			}
		}()
	}
}
