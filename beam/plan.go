package beam

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/pseudonym"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// worker is what every worker derives from the job's Config in Setup: the
// policy, the keys (read from the keyring reference, never from the graph)
// and the single-machine Runner's steps (anonymize.Steps) planned for the
// input schema. Every transformation of rows is the Runner's own code; this
// package only schedules it.
type worker struct {
	p  *anonymize.Policy
	kr *pseudonym.Keyring
	r  *anonymize.Runner
	st *anonymize.Steps // nil until plan
}

// newWorker parses the policy and, when it needs keys, loads the keyring from
// cfg.Keys. The caller closes the worker.
func newWorker(cfg Config) (*worker, error) { return newWorkerMem(cfg, memory.DefaultAllocator) }

// newWorkerMem is newWorker with an allocator for every batch (tests).
func newWorkerMem(cfg Config, mem memory.Allocator) (w *worker, err error) {
	p, err := anonymize.ParsePolicy(cfg.PolicyFile, cfg.Policy)
	if err != nil {
		return nil, err
	}
	if err := supported(p); err != nil {
		return nil, err
	}
	w = &worker{p: p}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	needKeys := p.OptOut != nil
	for _, c := range p.Columns {
		if c.Action == anonymize.ActionPseudonymize || c.Action == anonymize.ActionDateShift {
			needKeys = true
		}
	}
	if needKeys {
		if cfg.Keys == "" {
			return nil, fmt.Errorf("the policy %s needs keys (pseudonyms, date shift or opt-out) but no keyring was given", p.File())
		}
		if w.kr, err = pseudonym.LoadKeyring(cfg.Keys); err != nil {
			return nil, err
		}
	}
	// The release is written by the commit step, never by the Runner.
	noSink := func(*arrow.Schema) (anonymize.Sink, error) {
		return nil, errors.New("tarnkappe/beam: internal: the Runner's release sink is not used")
	}
	// Every worker keys the measures' samples and the re-linking lint's
	// partial states alike (they merge): Config.MeasureKey, which
	// Anonymize draws at random when unset. Without one (a step built by
	// hand) a key derived from the policy: the states hold 64-bit hashes
	// of published values and subjects, and the shuffles carry the raw
	// rows anyway; only the sample would be predictable.
	key := cfg.MeasureKey
	if key == nil {
		k := sha256.Sum256(append([]byte("tarnkappe/beam relink lint\x00"), cfg.Policy...))
		key = k[:]
	}
	measure := anonymize.MeasureOptions{Key: key}
	if w.r, err = anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: w.kr, Mem: mem, Workers: 1, Release: noSink, Measure: measure}); err != nil {
		return nil, err
	}
	return w, nil
}

// supported rejects the policy fields the Beam pipeline does not run yet,
// rather than silently skipping a protection or a measure.
func supported(p *anonymize.Policy) error {
	// Fields this package implements; a policy field added to package
	// anonymize later is rejected when set, until Beam implements it too.
	if f := unknownSet(*p, "Version", "Subject", "Keyring", "OptOut", "Columns", "KAnon", "Mobility", "Release"); f != "" {
		return fmt.Errorf("tarnkappe/beam: policy field %s is not supported on Beam yet", f)
	}
	if p.OptOut != nil {
		// Normalize runs in the Runner's own opt-out code (Steps.OptOut).
		if f := unknownSet(*p.OptOut, "File", "Form", "Domain", "Normalize"); f != "" {
			return fmt.Errorf("tarnkappe/beam: opt_out field %s is not supported on Beam yet", f)
		}
	}
	if p.KAnon != nil {
		if f := unknownSet(*p.KAnon, "QuasiIdentifiers", "K", "L", "T", "Suppression", "Metric", "Hierarchies", "PerSubject"); f != "" {
			return fmt.Errorf("tarnkappe/beam: kanon field %s is not supported on Beam yet", f)
		}
	}
	if m := p.Mobility; m != nil {
		// UnicityPoints, Utility and MaxLinkage configure measurements of
		// the report (risk.*, mobility.utility), made by Measures, Risk
		// and the commit step, which checks the limit (the report
		// builder) before anything is committed.
		// SubjectColumns only narrows the re-linking lint (relinkFn).
		if f := unknownSet(*m, "Time", "Lat", "Lon", "TripGap", "TrimMetres", "TrimTime", "CellResolution", "CellColumn", "K",
			"Scope", "TripIDColumn", "Endpoints", "TraceK", "UnicityPoints", "Utility", "SubjectColumns", "MaxLinkage"); f != "" {
			return fmt.Errorf("tarnkappe/beam: mobility field %s is not supported on Beam yet", f)
		}
	}
	if r := p.Release; r != nil {
		if f := unknownSet(*r, "By", "Epsilon", "Delta", "MaxPartitions", "MaxPerPartition", "Count", "Aggregates",
			"PublicPartitions", "HourOfDay", "CellResolution", "Public"); f != "" {
			return fmt.Errorf("tarnkappe/beam: release field %s is not supported on Beam yet", f)
		}
		for _, a := range r.Aggregates {
			if f := unknownSet(a, "Column", "Kind", "Lower", "Upper", "Quantiles"); f != "" {
				return fmt.Errorf("tarnkappe/beam: release aggregate field %s is not supported on Beam yet", f)
			}
		}
		if r.Public != nil {
			if f := unknownSet(*r.Public, "File", "BBox"); f != "" {
				return fmt.Errorf("tarnkappe/beam: release.public field %s is not supported on Beam yet", f)
			}
		}
	}
	return nil
}

// unknownSet returns the name of the first exported field of struct v that
// is not in known and not zero.
func unknownSet(v any, known ...string) string {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() || slices.Contains(known, f.Name) {
			continue
		}
		if !rv.Field(i).IsZero() {
			return f.Name
		}
	}
	return ""
}

func (w *worker) close() {
	if w == nil {
		return
	}
	if w.st != nil {
		w.st.Close()
		w.st = nil
	}
	if w.r != nil {
		w.r.Close()
		w.r = nil
	}
	if w.kr != nil {
		w.kr.Destroy()
		w.kr = nil
	}
}

// plan plans the steps for an input schema, with the single-machine
// Runner's checks (deny by default, types).
func (w *worker) plan(in *arrow.Schema) error {
	if w.st != nil {
		if !w.st.Input().Equal(in) {
			return errors.New("an input batch has a different schema from the first")
		}
		return nil
	}
	st, err := w.r.Steps(in)
	if err != nil {
		return err
	}
	w.st = st
	return nil
}

// planInput plans for the schema of the first input file (its footer or
// header only): steps after the column actions see transformed batches,
// whose schema does not determine the plan.
func (w *worker) planInput(ctx context.Context, path string) error {
	if w.st != nil {
		return nil
	}
	src, err := arrowio.Open(ctx, path, arrowio.OpenOptions{BatchSize: 1})
	if err != nil {
		return err
	}
	defer src.Close()
	return w.plan(src.Schema())
}

// decodeTrans decodes a batch of transformed rows and checks it has the
// plan's Trans schema; the caller releases it.
func (w *worker) decodeTrans(b Batch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if w.st == nil {
		return nil, errors.New("internal: the worker has no plan (planInput not called)")
	}
	rec, err := b.decode(mem)
	if err != nil {
		return nil, err
	}
	if !w.st.Trans().Equal(rec.Schema()) {
		rec.Release()
		return nil, errors.New("a transformed batch has a different schema from the plan's")
	}
	return rec, nil
}

// transform filters opted-out subjects and applies the column actions to an
// input batch (a policy without mobility). It returns the transformed batch
// and the positions of the rows the opt-out removed.
func (w *worker) transform(ctx context.Context, rec arrow.RecordBatch, base int64) (arrow.RecordBatch, []int32, error) {
	if err := w.plan(rec.Schema()); err != nil {
		return nil, nil, err
	}
	kept, removed, err := w.st.OptOut(ctx, rec, base)
	if err != nil {
		return nil, nil, err
	}
	defer kept.Release()
	out, err := w.st.Transform(ctx, kept, base)
	if err != nil {
		rows := anonymize.RowSpan{Base: base, Removed: removed}
		return nil, nil, rows.Locate(err, base, kept.NumRows())
	}
	return out, removed, nil
}

// rowTexts returns the text of col's values (anonymize.ValueText), failing
// on nulls (located at base+1+i for row i).
func rowTexts(name string, col arrow.Array, base int64) ([]string, error) {
	out := make([]string, col.Len())
	var dictText []string
	d, isDict := col.(*array.Dictionary)
	if isDict {
		dict := d.Dictionary()
		dictText = make([]string, dict.Len())
		for j := range dictText {
			if dict.IsNull(j) {
				continue
			}
			s, err := anonymize.ValueText(dict, j)
			if err != nil {
				return nil, rowerr.At(0, name, err)
			}
			dictText[j] = s
		}
	}
	for i := range out {
		if col.IsNull(i) || (isDict && d.Dictionary().IsNull(d.GetValueIndex(i))) {
			return nil, rowerr.Atf(rowerr.Row(base, i), name, "null value in a quasi-identifier or subject")
		}
		if isDict {
			out[i] = dictText[d.GetValueIndex(i)]
			continue
		}
		s, err := anonymize.ValueText(col, i)
		if err != nil {
			return nil, rowerr.At(rowerr.Row(base, i), name, err)
		}
		out[i] = s
	}
	return out, nil
}

// workerDoFn is embedded by the DoFns that run the policy's steps: Setup
// derives the worker from Cfg (the keys read from the keyring reference,
// never from the graph) and plans it for the first input file's schema;
// Teardown zeroes the derived keys.
type workerDoFn struct {
	Cfg Config
	w   *worker
}

func wf(cfg Config) workerDoFn { return workerDoFn{Cfg: cfg} }

func (f *workerDoFn) Setup(ctx context.Context) error {
	w, err := newWorker(f.Cfg)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: %w", err)
	}
	f.w = w
	if err := w.planInput(ctx, f.Cfg.Inputs[0]); err != nil {
		return fmt.Errorf("tarnkappe/beam: input %s: %w", f.Cfg.Inputs[0], err)
	}
	return nil
}

func (f *workerDoFn) Teardown() {
	if f.w != nil {
		f.w.close()
		f.w = nil
	}
}
