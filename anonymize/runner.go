package anonymize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/linkage"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// Sink receives the output batches of a run. arrowio's Sink
// satisfies it: writes go to a temporary file renamed into place on Commit.
// Run commits every output of a run together once the report is built
// (arrowio's Sinks and Files all or none: see Options.Reports) and aborts
// every one on any error. Abort after Commit must be a no-op.
type Sink interface {
	Write(arrow.RecordBatch) error
	Commit() error
	Abort() error
}

// CreateFunc creates a Sink for the given schema. Run calls the data's
// CreateFunc in its first step, before it reads a row (the written schema is
// known from the input's), and the release's when the release is drawn; to
// check the release's path early as well, claim it first (arrowio.CreateFile,
// then arrowio.NewSink in the CreateFunc), as the CLI does; a File claimed
// so is the caller's to abort when Run fails before it used it (defer
// f.Abort(): a no-op once committed). A CreateFunc
// returns a Sink or an error, never a nil Sink: Run refuses one, typed or
// not.
type CreateFunc func(schema *arrow.Schema) (Sink, error)

// Options configures a Runner. Validated by NewRunner.
type Options struct {
	// Policy to apply. Required.
	Policy *Policy
	// Keyring holds the keys for pseudonyms, date shifts and the opt-out
	// list. Required when the policy uses any of them. The Runner does not
	// destroy it; its derived keys are zeroed by Close.
	Keyring *pseudonym.Keyring
	// Mem allocates every batch; nil means memory.DefaultAllocator.
	Mem memory.Allocator
	// Workers is the number of batches transformed in parallel; 0 means
	// GOMAXPROCS.
	Workers int
	// TempDir holds the temporary files of a run (the spill, the row keys,
	// the trace gate's partitions, the output order's partitions), all
	// encrypted with keys held only in memory (internal/scratch) and removed
	// at the end; "" means os.TempDir(). They go into a folder of the run's
	// own ("tarnkappe-run-PID-…"), locked while the process lives; each Run
	// first removes the folders in TempDir whose lock is free, left by runs
	// that were killed or crashed (on systems without flock nothing is
	// removed).
	TempDir string
	// Progress, when not nil, shows a progress bar for each phase of a run
	// (a sort when the input needs one, pass 1, pass 2; the CLI passes
	// stderr only when it is a terminal). ProgressTotal is the input's row
	// count when known (arrowio.Source.TotalRows), or <= 0: pass 1 then
	// shows a spinner with the rows read; pass 2 always knows its total.
	Progress      io.Writer
	ProgressTotal int64
	// Release creates the sink of the DP release. Required when the policy
	// has a release block.
	Release CreateFunc
	// Reports are files rendered from the run's report (the CLI's JSON and
	// HTML): Run renders them once every check passed and commits them
	// together with the data and the release. Outputs made by arrowio
	// (Sinks and Files) commit all or none: if one cannot be committed, or
	// ctx is cancelled meanwhile, the others are taken back
	// (arrowio.CommitAll). Optional.
	Reports []ReportOutput
	// OnStep, when not nil, is called on Run's goroutine as each step
	// begins: "pass 1", "decide", "pass 2", "write", "finish", and "commit"
	// (every output complete and synced, none in place yet), for progress
	// and logs. "pass 1" comes again each time the input step starts pass 1
	// over in another order (input_details.order in the report says which
	// order the run read). Run checks ctx after it returns: a hook that
	// waits delays the run, and a cancellation meanwhile ends it with
	// nothing written.
	OnStep func(ctx context.Context, step string)
	// Input, Output and ReleaseOutput name the data in the report only.
	Input, Output, ReleaseOutput string
	// InputFile, when set, is the file the source reads (the path given to
	// arrowio.Open): Run reads it once more, beside the passes, for the
	// report's input_details — its size and, with a Keyring, a keyed
	// fingerprint of its bytes (FingerprintFiles).
	InputFile string
	// Reopen, when set, opens the input Run reads again from its first row
	// (a file: arrowio.Open of the same path). Rows may come in any order;
	// when a policy with a mobility block finds them in an order its trip
	// segmenter cannot stream, Run reads the input again, grouped by
	// subject or sorted (see Run). Without Reopen it keeps an encrypted
	// copy of what it reads in a temporary file for that (the input may be
	// stdin), which costs temporary disk space of about the input's Arrow
	// size while it runs. Run releases the readers Reopen returns.
	Reopen func() (array.RecordReader, error)
	// Measure sizes and keys the samples of the unicity and linkage
	// measures of a mobility policy (see MeasureOptions).
	Measure MeasureOptions
	// MemoryLimit is the Go runtime's soft memory limit (bytes) while Run
	// runs, when the environment does not set GOMEMLIMIT and the limit in
	// force is higher: 0 means DefaultMemoryLimit, -1 leaves the runtime
	// alone. Run restores the previous limit when it returns; Runs that
	// overlap in one process share it (the lowest active limit is in force,
	// the last to return restores the one before the first). It is a
	// complement, not the bound itself: the state a run keeps is bounded by
	// the fleet, the groups and the caps above, not by the rows; the limit
	// only stops Go's collector from letting garbage grow to twice that
	// state between collections (GOGC=100) before it collects.
	MemoryLimit int64
}

// MeasureOptions sizes and keys the samples of the unicity and linkage
// measures (measure_linkage.go). Their memory is bounded by the samples and
// MaxPairs, not by the rows.
type MeasureOptions struct {
	// Key (linkage.KeySize bytes) keys the samples: which subjects,
	// traces and points are drawn. Nil means a fresh random key per run,
	// so that nobody can shape the data around the sample; tests set it
	// for reproducible figures.
	Key []byte
	// Traces is the number of published traces sampled for the linkage
	// and the unicity after the policy; 0 means 2,000.
	Traces int
	// Subjects is the number of raw subjects sampled for the unicity
	// before the policy; 0 means 1,000.
	Subjects int
	// MaxPairs bounds the measures' indexes (about 16 bytes a pair); 0
	// means 1<<22. Past it the samples shrink (the report says by how
	// much).
	MaxPairs int
}

func (o MeasureOptions) check(fn string) error {
	if o.Key != nil && len(o.Key) != linkage.KeySize {
		return fmt.Errorf("%s: Measure.Key must be %d bytes, got %d", fn, linkage.KeySize, len(o.Key))
	}
	if o.Traces < 0 || o.Subjects < 0 || o.MaxPairs < 0 {
		return fmt.Errorf("%s: Measure.Traces, Subjects and MaxPairs must be >= 0", fn)
	}
	return nil
}

func (o MeasureOptions) samples() linkageSamples {
	s := defaultLinkageSamples()
	if o.Traces > 0 {
		s.traces = o.Traces
	}
	if o.Subjects > 0 {
		s.subjects = o.Subjects
	}
	if o.MaxPairs > 0 {
		s.maxPairs = o.MaxPairs
	}
	return s
}

// DefaultMemoryLimit is the soft memory limit Run sets by default (see
// Options.MemoryLimit). The pipeline's live heap on the benchmark fleet
// (20,000 vehicles, 10M rows) is about 250 MB after a collection, so the
// limit leaves the collector three times that; peak RSS was 809-812 MiB at
// 10M rows and 822-867 MiB at 100M (benchmarks/pipeline/RESULTS.md).
const DefaultMemoryLimit = 768 << 20

// Runner applies a policy to record batch streams. Create one with
// NewRunner; Close it to zero the derived keys. A Runner runs one source at a
// time (Run is not safe for concurrent use); it may run several in turn.
type Runner struct {
	opts    Options
	p       *Policy
	mem     memory.Allocator
	workers int

	pseudo  map[string]*pseudonymOp
	shifts  map[string]*pseudonym.DateShift
	optout  *optOutSet
	hier    map[string]kanon.Hierarchy // quasi-identifiers and fixed generalize columns
	keys    map[string]string          // domain → key id
	closers []func()
	// orderRows, when > 0, replaces the output order's partition budget
	// (rows): tests set it to exercise partitions and split buckets on
	// small inputs.
	orderRows int64
}

// NewRunner validates opts, derives the keys the policy needs and loads the
// opt-out list and hierarchy files the policy names.
func NewRunner(opts Options) (*Runner, error) {
	const fn = "anonymize.NewRunner"
	if opts.Policy == nil {
		return nil, errors.New(fn + ": Policy is required")
	}
	p := opts.Policy
	r := &Runner{opts: opts, p: p, mem: opts.Mem, workers: opts.Workers,
		pseudo: map[string]*pseudonymOp{}, shifts: map[string]*pseudonym.DateShift{},
		hier: map[string]kanon.Hierarchy{}, keys: map[string]string{}}
	if r.mem == nil {
		r.mem = memory.DefaultAllocator
	}
	if r.workers < 0 {
		return nil, fmt.Errorf("%s: Workers must be >= 0, got %d", fn, r.workers)
	}
	if r.workers == 0 {
		r.workers = runtime.GOMAXPROCS(0)
	}
	if err := r.opts.Measure.check(fn); err != nil {
		return nil, err
	}
	if r.opts.MemoryLimit < -1 {
		return nil, fmt.Errorf("%s: MemoryLimit must be >= -1", fn)
	}
	if r.opts.MemoryLimit == 0 {
		r.opts.MemoryLimit = DefaultMemoryLimit
	}
	for i, ro := range opts.Reports {
		if isNil(ro.File) || ro.Render == nil {
			return nil, fmt.Errorf("%s: Reports[%d] needs File and Render", fn, i)
		}
	}
	if p.Release != nil && opts.Release == nil {
		return nil, fmt.Errorf("%s: the policy has a release block but Options.Release is nil", fn)
	}
	needKeys := p.OptOut != nil
	for _, c := range p.Columns {
		if c.Action == ActionPseudonymize || c.Action == ActionDateShift {
			needKeys = true
		}
	}
	if needKeys && opts.Keyring == nil {
		return nil, fmt.Errorf("%s: the policy %s needs keys (pseudonyms, date shift or opt-out) but no keyring was given", fn, p.File())
	}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	for _, c := range p.Columns {
		switch c.Action {
		case ActionPseudonymize:
			op, err := newPseudonymOp(opts.Keyring, c.Name, c.Pseudonymize)
			if err != nil {
				return nil, fmt.Errorf("%s: column %q: %w", fn, c.Name, err)
			}
			r.closers = append(r.closers, op.destroy)
			r.pseudo[c.Name] = op
			r.keys[c.Pseudonymize.Domain] = op.keyID
		case ActionDateShift:
			ds, err := pseudonym.NewDateShift(opts.Keyring, pseudonym.DateShiftOptions{Domain: c.DateShift.Domain, MaxDays: c.DateShift.MaxDays})
			if err != nil {
				return nil, fmt.Errorf("%s: column %q: %w", fn, c.Name, err)
			}
			r.closers = append(r.closers, ds.Destroy)
			r.shifts[c.Name] = ds
			r.keys[c.DateShift.Domain] = ds.KeyID()
		case ActionGeneralize:
			if c.Generalize != nil {
				h, err := r.hierarchy("columns."+c.Name+".generalize.hierarchy", c.Generalize.Hierarchy)
				if err != nil {
					return nil, err
				}
				if c.Generalize.Level >= h.Levels() {
					return nil, p.errf("columns."+c.Name+".generalize.level", "level %d is above the hierarchy's top level %d", c.Generalize.Level, h.Levels()-1)
				}
				r.hier[c.Name] = h
			}
		}
	}
	if k := p.KAnon; k != nil {
		for _, q := range k.QuasiIdentifiers {
			h, err := r.hierarchy("kanon.hierarchies."+q, k.Hierarchies[q])
			if err != nil {
				return nil, err
			}
			r.hier[q] = h
		}
	}
	if o := p.OptOut; o != nil {
		mac, err := pseudonym.NewHMAC(opts.Keyring, pseudonym.HMACOptions{Domain: o.Domain, Bits: 256})
		if err != nil {
			return nil, fmt.Errorf("%s: opt_out: %w", fn, err)
		}
		r.closers = append(r.closers, mac.Destroy)
		r.keys[o.Domain] = mac.KeyID()
		var toForm func(string) (string, error) // nil: the list holds clear subjects
		if o.Form == "pseudonym" {
			toForm = r.pseudo[p.Subject].one
		}
		path := p.Resolve(o.File)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%s: opt-out list: %w", fn, err)
		}
		mode, _ := parseNormMode(o.Normalize) // checked by Policy.validate
		r.optout, err = loadOptOut(path, f, mac, mode, toForm)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
	}
	ok = true
	return r, nil
}

// Close zeroes the keys the Runner derived. The keyring itself belongs to
// the caller.
func (r *Runner) Close() {
	for _, c := range r.closers {
		c()
	}
	r.closers = nil
}

func (r *Runner) hierarchy(path string, h HierarchySpec) (kanon.Hierarchy, error) {
	p := r.p
	switch h.Type {
	case "interval":
		ih, err := kanon.NewIntervalHierarchy(kanon.IntervalHierarchy{Origin: h.Origin, Width: h.Width, FanOut: h.FanOut, Height: h.Height, Min: h.Min, Max: h.Max})
		if err != nil {
			return nil, p.errf(path, "%w", err)
		}
		return ih, nil
	case "mask":
		return kanon.MaskHierarchy{MaxMasked: h.MaxMasked}, nil
	case "date":
		return kanon.DateHierarchy{}, nil
	case "table":
		sep := ';'
		if h.Separator != "" {
			sep = []rune(h.Separator)[0]
		}
		f, err := os.Open(p.Resolve(h.File))
		if err != nil {
			return nil, p.errf(path+".file", "%w", err)
		}
		defer f.Close()
		th, err := kanon.ParseHierarchy(f, sep)
		if err != nil {
			return nil, p.errf(path+".file", "%s: %w", h.File, err)
		}
		return th, nil
	}
	return nil, p.errf(path+".type", "unknown hierarchy type %q", h.Type)
}
