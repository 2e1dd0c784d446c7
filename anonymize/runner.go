package anonymize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/schollz/progressbar/v3"

	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/mobility"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// Sink receives the output batches of a run. arrowio's Sink
// satisfies it: writes go to a temporary file renamed into place on Commit.
type Sink interface {
	Write(arrow.RecordBatch) error
	Commit() error
	Abort() error
}

// CreateFunc creates a Sink for the given schema.
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
	// TempDir holds the temporary files of a two-pass run (the spill, the
	// row keys, the trace gate's partitions), all encrypted with keys held
	// only in memory (internal/scratch) and removed at the end; "" means
	// os.TempDir().
	TempDir string
	// Progress, when not nil, shows a progress bar (the CLI passes stderr
	// only when it is a terminal). ProgressTotal is the expected row count,
	// or -1 when unknown.
	Progress      io.Writer
	ProgressTotal int64
	// Release creates the sink of the DP release. Required when the policy
	// has a release block.
	Release CreateFunc
	// Input and Output name the data in the report only.
	Input, Output string
	// UnicityMaxRows bounds the rows the unicity measure indexes (its memory
	// grows with them); rows beyond are not indexed and the report says so.
	// 0 means 1,000,000.
	UnicityMaxRows int64
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
	if r.opts.UnicityMaxRows < 0 {
		return nil, fmt.Errorf("%s: UnicityMaxRows must be >= 0", fn)
	}
	if r.opts.UnicityMaxRows == 0 {
		r.opts.UnicityMaxRows = 1_000_000
	}
	if r.opts.MemoryLimit < -1 {
		return nil, fmt.Errorf("%s: MemoryLimit must be >= -1", fn)
	}
	if r.opts.MemoryLimit == 0 {
		r.opts.MemoryLimit = DefaultMemoryLimit
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
			return nil, p.errf(path, "%v", err)
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
			return nil, p.errf(path+".file", "%v", err)
		}
		defer f.Close()
		th, err := kanon.ParseHierarchy(f, sep)
		if err != nil {
			return nil, p.errf(path+".file", "%s: %v", h.File, err)
		}
		return th, nil
	}
	return nil, p.errf(path+".type", "unknown hierarchy type %q", h.Type)
}

// plan is what a run derives from the input schema.
type plan struct {
	in        *arrow.Schema
	subject   int
	seg       *mobility.Segmenter
	coarsen   mobility.CoarsenOptions
	mid       *arrow.Schema      // after mobility
	ops       []colOp            // per mid column
	caches    []*dictResultCache // per mid column, for ops that map dictionaries
	actions   []Action           // per mid column
	trans     *arrow.Schema      // after column transforms
	gen       *arrow.Schema      // trans with quasi-identifiers generalised (pass 2)
	keep      []int              // trans columns written
	out       *arrow.Schema      // written schema
	qiIdx     []int              // quasi-identifiers in trans
	subjTrans int                // subject in trans
}

// checkSchema enforces deny-by-default and the column types each action needs.
func (r *Runner) checkSchema(in *arrow.Schema) error {
	p := r.p
	var unnamed []string
	for _, f := range in.Fields() {
		if _, ok := p.Columns.Lookup(f.Name); !ok {
			unnamed = append(unnamed, f.Name)
		}
	}
	if len(unnamed) > 0 {
		return fmt.Errorf("input column %q is not named by the policy %s (deny by default: give it an action, e.g. drop)", unnamed[0], p.File())
	}
	seen := map[string]bool{}
	for _, f := range in.Fields() {
		if seen[f.Name] {
			return fmt.Errorf("input column %q appears twice", f.Name)
		}
		seen[f.Name] = true
	}
	for _, c := range p.Columns {
		idx := in.FieldIndices(c.Name)
		if len(idx) == 0 {
			return fmt.Errorf("column %q named by the policy %s (line %d) is missing from the input", c.Name, p.File(), c.Pos.Line)
		}
		t := in.Field(idx[0]).Type
		bad := func(want string) error {
			return fmt.Errorf("column %q has type %s; action %s needs %s", c.Name, t, c.Action, want)
		}
		switch c.Action {
		case ActionCoarsen:
			if c.Coarsen.Time > 0 && t.ID() != arrow.TIMESTAMP {
				return bad("a timestamp")
			}
			if c.Coarsen.Degrees != 0 && t.ID() != arrow.FLOAT64 {
				return bad("float64")
			}
		case ActionMask:
			if !isStringLike(t) {
				return bad("a string")
			}
		case ActionDateShift:
			if t.ID() != arrow.TIMESTAMP {
				return bad("a timestamp")
			}
		case ActionGeneralize:
			if !isStringLike(t) && !isNumeric(t) && t.ID() != arrow.TIMESTAMP && t.ID() != arrow.DATE32 {
				return bad("a string, number, timestamp or date")
			}
		case ActionPseudonymize:
			if !isStringLike(t) && t.ID() != arrow.INT64 && t.ID() != arrow.BINARY {
				return bad("a string, binary or int64")
			}
		}
	}
	st := in.Field(in.FieldIndices(p.Subject)[0]).Type
	if !isStringLike(st) && st.ID() != arrow.INT64 {
		return fmt.Errorf("subject column %q has type %s; want a string or int64", p.Subject, st)
	}
	if r.optout != nil {
		if err := r.optout.bind(p.Subject, st); err != nil {
			return err
		}
	}
	if m := p.Mobility; m != nil {
		if t := in.Field(in.FieldIndices(m.Time)[0]).Type; t.ID() != arrow.TIMESTAMP {
			return fmt.Errorf("mobility time column %q has type %s; want a timestamp", m.Time, t)
		}
		for _, c := range []string{m.Lat, m.Lon} {
			if t := in.Field(in.FieldIndices(c)[0]).Type; t.ID() != arrow.FLOAT64 {
				return fmt.Errorf("mobility column %q has type %s; want float64 degrees", c, t)
			}
		}
	}
	if rel := p.Release; rel != nil {
		if rel.HourOfDay != "" {
			if t := in.Field(in.FieldIndices(rel.HourOfDay)[0]).Type; t.ID() != arrow.TIMESTAMP {
				return fmt.Errorf("release hour_of_day column %q has type %s; want a timestamp", rel.HourOfDay, t)
			}
		}
		for _, a := range rel.Aggregates {
			if t := in.Field(in.FieldIndices(a.Column)[0]).Type; !isNumeric(t) {
				return fmt.Errorf("release column %q has type %s; want a number", a.Column, t)
			}
		}
	}
	return nil
}

func (r *Runner) makePlan(in *arrow.Schema) (*plan, error) {
	if err := r.checkSchema(in); err != nil {
		return nil, err
	}
	p := r.p
	pl := &plan{in: in, subject: in.FieldIndices(p.Subject)[0], mid: in}
	if m := p.Mobility; m != nil {
		seg, err := mobility.NewSegmenter(in, r.tripOptions())
		if err != nil {
			return nil, err
		}
		pl.seg = seg
		cache, err := mobility.NewCellCache(m.CellResolution)
		if err != nil {
			seg.Release()
			return nil, err
		}
		// One cell cache for the Coarseners of every batch (see produce).
		pl.coarsen = mobility.CoarsenOptions{Lat: m.Lat, Lon: m.Lon, Resolution: m.CellResolution, Cell: m.CellColumn, Mem: r.mem, Cache: cache}
		c, err := mobility.NewCoarsener(seg.Schema(), pl.coarsen)
		if err != nil {
			seg.Release()
			return nil, err
		}
		pl.mid = c.Schema()
	}
	var tf []arrow.Field
	kanonQI := map[string]bool{}
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			kanonQI[q] = true
		}
	}
	for _, f := range pl.mid.Fields() {
		rule, ok := p.Columns.Lookup(f.Name)
		if !ok {
			// Added by mobility (the cell and trip id columns): released as is.
			rule = ColumnRule{Name: f.Name, Action: ActionKeep}
		}
		var op colOp
		switch rule.Action {
		case ActionKeep, ActionDrop:
			op = keepOp{}
		case ActionPseudonymize:
			op = r.pseudo[f.Name]
		case ActionDateShift:
			op = &dateShiftOp{name: f.Name, subject: pl.mid.FieldIndices(p.Subject)[0], ds: r.shifts[f.Name]}
		case ActionCoarsen:
			if rule.Coarsen.Time > 0 {
				op = coarsenTimeOp{name: f.Name, bucket: rule.Coarsen.Time.D()}
			} else {
				op = coarsenGridOp{name: f.Name, degrees: rule.Coarsen.Degrees}
			}
		case ActionMask:
			op = newMaskOp(f.Name, *rule.Mask)
		case ActionGeneralize:
			if kanonQI[f.Name] {
				op = keepOp{} // generalised in the second pass, at the level the search picks
			} else {
				op = mapStringsOp{name: f.Name, fn: generalizeFn(r.hier[f.Name], rule.Generalize.Level)}
			}
		}
		pl.ops = append(pl.ops, op)
		switch op.(type) {
		case *pseudonymOp, mapStringsOp:
			pl.caches = append(pl.caches, &dictResultCache{})
		default:
			pl.caches = append(pl.caches, nil)
		}
		pl.actions = append(pl.actions, rule.Action)
		tf = append(tf, arrow.Field{Name: f.Name, Type: op.outType(f.Type), Nullable: f.Nullable})
	}
	if m := p.Mobility; m != nil && m.Scope == "trip" {
		// Detached rows and rows of rare traces carry a null trip id.
		for i := range tf {
			if tf[i].Name == m.TripIDColumn {
				tf[i].Nullable = true
			}
		}
	}
	pl.trans = arrow.NewSchema(tf, nil)
	gf := make([]arrow.Field, len(tf))
	for i, f := range tf {
		if kanonQI[f.Name] {
			f.Type = stringDict
		}
		gf[i] = f
	}
	pl.gen = arrow.NewSchema(gf, nil)
	var of []arrow.Field
	for i, f := range tf {
		if pl.actions[i] == ActionDrop {
			continue
		}
		pl.keep = append(pl.keep, i)
		if kanonQI[f.Name] {
			f.Type = stringDict
		}
		of = append(of, f)
	}
	if len(of) == 0 {
		return nil, errors.New("the policy drops every column: nothing to write")
	}
	pl.out = arrow.NewSchema(of, nil)
	pl.subjTrans = pl.trans.FieldIndices(p.Subject)[0]
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			pl.qiIdx = append(pl.qiIdx, pl.trans.FieldIndices(q)[0])
		}
	}
	return pl, nil
}

// transform applies the column actions to one batch (after mobility).
func (r *Runner) transform(ctx context.Context, pl *plan, rec arrow.RecordBatch, rowBase int64) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, len(pl.ops))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, op := range pl.ops {
		if cache := pl.caches[i]; cache != nil {
			if c := cache.lookup(rec.Column(i)); c != nil {
				cols[i] = c
				continue
			}
		}
		c, err := op.apply(ctx, r.mem, rec.Column(i), rec, rowBase)
		if err != nil {
			return nil, err
		}
		if cache := pl.caches[i]; cache != nil {
			cache.store(rec.Column(i), c)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(pl.trans, cols, rec.NumRows()), nil
}

// project keeps the written columns.
func project(schema *arrow.Schema, rec arrow.RecordBatch, keep []int) arrow.RecordBatch {
	cols := make([]arrow.Array, len(keep))
	for i, k := range keep {
		cols[i] = rec.Column(k)
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows())
}

// Run streams src through the policy into the sink made by create and returns
// the report. On any error the sink is aborted (no output remains) and the
// error names the column and row where it can. Run does not release src.
func (r *Runner) Run(ctx context.Context, src array.RecordReader, create CreateFunc) (rep *Report, err error) {
	start := time.Now()
	p := r.p
	if lim := r.opts.MemoryLimit; lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// Shared with other Runs of the process (memlimit.go).
		defer memLimits.hold(lim)()
	}
	pl, err := r.makePlan(src.Schema())
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	if pl.seg != nil {
		defer pl.seg.Release()
	}
	defer func() {
		for _, c := range pl.caches {
			if c != nil {
				c.release()
			}
		}
		if r.optout != nil {
			r.optout.forget()
		}
	}()
	rep = &Report{
		Tool: "tarnkappe", Policy: p.File(), Input: r.opts.Input, Output: r.opts.Output,
		Started: start.UTC().Truncate(time.Second), Columns: map[string]string{}, Keys: r.keys,
		Rows: RowCounts{FilteredBy: map[string]int64{}},
	}
	for _, f := range pl.mid.Fields() {
		if _, ok := p.Columns.Lookup(f.Name); !ok {
			d := fmt.Sprintf("H3 cell (resolution %d) of the trimmed coordinates", p.Mobility.CellResolution)
			if f.Name == p.Mobility.TripIDColumn {
				d = "random per-trip id (mobility scope trip)"
			}
			rep.ColumnDetails = append(rep.ColumnDetails, ColumnDetail{Name: f.Name, Action: "added", Detail: d})
			rep.Columns[f.Name] = "added"
		}
	}
	for _, c := range p.Columns {
		rep.Columns[c.Name] = string(c.Action)
		rep.ColumnDetails = append(rep.ColumnDetails, ColumnDetail{Name: c.Name, Action: string(c.Action), Detail: describeRule(c, p)})
	}

	var sink Sink
	var spill *spillFile
	var keys *rowKeys
	defer func() {
		if err != nil {
			if sink != nil {
				sink.Abort()
			}
			err = fmt.Errorf("anonymize: %w", err)
		}
		if spill != nil {
			spill.remove()
		}
		if keys != nil {
			keys.remove()
		}
	}()

	acc, err := r.newAccumulators(pl)
	if err != nil {
		return nil, err
	}
	defer acc.release()

	// k-anonymity and cell suppression decide in pass 1 what pass 2 removes.
	twoPass := p.KAnon != nil || p.Mobility != nil
	if twoPass {
		if spill, err = newSpill(r.opts.TempDir, pl.trans, r.mem); err != nil {
			return nil, err
		}
		if acc.cells != nil {
			if keys, err = newRowKeys(r.opts.TempDir, acc.kan != nil && acc.kan.div != nil); err != nil {
				return nil, err
			}
			acc.keys = keys
		}
	} else {
		if sink, err = create(pl.out); err != nil {
			return nil, err
		}
	}

	var bar *progressbar.ProgressBar
	if r.opts.Progress != nil {
		bar = progressbar.NewOptions64(r.opts.ProgressTotal, progressbar.OptionSetWriter(r.opts.Progress),
			progressbar.OptionSetDescription("anonymising"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
		defer bar.Finish()
	}

	// Pass 1: read → opt-out → mobility (serial, stateful) → column actions
	// (parallel) → accumulators and spill or sink (serial, in order).
	ord, octx := newOrdered(ctx, r.workers)
	var rowsOut int64
	consume := func(rec arrow.RecordBatch) error {
		defer rec.Release()
		if err := acc.add(octx, rec); err != nil {
			return err
		}
		if twoPass {
			return spill.write(rec)
		}
		out := project(pl.out, rec, pl.keep)
		defer out.Release()
		rowsOut += out.NumRows()
		return sink.Write(out)
	}
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- r.produce(octx, pl, src, ord, rep, bar, acc)
	}()
	drainErr := ord.drain(consume)
	perr := <-prodErr
	if drainErr != nil {
		return nil, drainErr
	}
	if perr != nil {
		return nil, perr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rep.Rows.In == 0 {
		return nil, errors.New("the input has no rows")
	}
	if pl.seg != nil {
		st := pl.seg.Stats()
		rep.Rows.FilteredBy["trip_trim"] = st.RowsTrimmed
		rep.Mobility = &MobilityReport{Trips: st.Trips, TrimmedRows: st.RowsTrimmed, TrimMetres: p.Mobility.TrimMetres,
			TrimSeconds: p.Mobility.TrimTime.D().Seconds(), CellColumn: p.Mobility.CellColumn, CellResolution: p.Mobility.CellResolution,
			UnicityPoints: p.Mobility.UnicityPoints}
	}
	for _, n := range rep.Rows.FilteredBy {
		rep.Rows.Filtered += n
	}

	if twoPass {
		if err := spill.finish(); err != nil {
			return nil, err
		}
		if acc.cells != nil {
			if err := keys.finish(); err != nil {
				return nil, err
			}
			acc.cells.Seal()
			acc.cellDrop = make([]bool, acc.cells.Groups())
			for g := range acc.cellDrop {
				acc.cellDrop[g] = !acc.cells.GroupKept(uint32(g))
			}
		}
		if acc.gate != nil {
			acc.gate.Seal(acc.cells)
			if err := acc.gate.Err(); err != nil {
				return nil, err
			}
		}
		var ka *kanonResult
		if p.KAnon != nil && acc.cells != nil {
			if err := r.countSurvivors(ctx, keys, acc); err != nil {
				return nil, err
			}
		}
		if p.KAnon != nil {
			if ka, err = r.search(acc, pl); err != nil {
				return nil, err
			}
		}
		if ka != nil && acc.cells != nil {
			if err := r.settle(ctx, keys, ka, acc); err != nil {
				return nil, err
			}
		}
		if sink, err = create(pl.out); err != nil {
			return nil, err
		}
		written, suppressed, err := r.pass2(ctx, pl, spill, ka, acc, sink)
		if err != nil {
			return nil, err
		}
		rowsOut = written
		rep.Rows.Suppressed = suppressed
		if ka != nil {
			if err := ka.finish(rep); err != nil {
				return nil, err
			}
		}
		if acc.cells != nil {
			rep.Mobility.K = p.Mobility.K
			rep.Mobility.SuppressedRows = acc.cellSuppressed
			rep.Mobility.Scope = p.Mobility.Scope
		}
		if acc.gate != nil {
			st := acc.gate.Stats()
			rep.Mobility.TraceK = p.Mobility.TraceK
			rep.Mobility.TripsPublished = st.Published
			rep.Mobility.RowsDetached = st.RowsDetached
		}
	}
	rep.Rows.Out = rowsOut
	if err := acc.finish(ctx, rep); err != nil {
		return nil, err
	}
	if err := rep.Rows.Check(); err != nil {
		return nil, err
	}
	if r.optout != nil {
		rep.OptOut = r.optout.report(rep.Rows.FilteredBy["opt_out"])
	}
	rep.MaskedWhole = maskedWhole(pl.ops, pl.mid)
	if err := sink.Commit(); err != nil {
		return nil, err
	}
	if err := acc.commitRelease(); err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start).Seconds()
	return rep, nil
}

// produce reads src, applies the serial stages and submits batches to ord.
func (r *Runner) produce(ctx context.Context, pl *plan, src array.RecordReader, ord *ordered, rep *Report, bar *progressbar.ProgressBar, acc *accumulators) (err error) {
	defer ord.close()
	var rowBase int64
	var optRows int64
	defer func() {
		rep.Rows.In = rowBase
		if r.optout != nil {
			rep.Rows.FilteredBy["opt_out"] = optRows
		}
	}()
	submit := func(rec arrow.RecordBatch, base int64) bool {
		if rec.NumRows() == 0 {
			rec.Release()
			return true
		}
		if pl.seg != nil {
			c, err := mobility.NewCoarsener(pl.seg.Schema(), pl.coarsen)
			if err != nil {
				rec.Release()
				ord.cancel(err)
				return false
			}
			return ord.submit(rec, func(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
				defer rec.Release()
				mid, err := c.Apply(ctx, rec)
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
		if err := acc.addRaw(ctx, rec); err != nil {
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
		if bar != nil {
			bar.Add64(n)
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

func endpointMode(s string) mobility.EndpointMode {
	if s == "detach" {
		return mobility.EndpointsDetach
	}
	return mobility.EndpointsDrop
}

func describeRule(c ColumnRule, p *Policy) string {
	switch c.Action {
	case ActionPseudonymize:
		return fmt.Sprintf("%s, domain %q", c.Pseudonymize.Method, c.Pseudonymize.Domain)
	case ActionDateShift:
		return fmt.Sprintf("keyed per-subject shift within ±%d days, domain %q", c.DateShift.MaxDays, c.DateShift.Domain)
	case ActionCoarsen:
		if c.Coarsen.Time > 0 {
			return "floored to " + c.Coarsen.Time.String()
		}
		return fmt.Sprintf("snapped to a %g° grid", c.Coarsen.Degrees)
	case ActionMask:
		return describeMask(*c.Mask)
	case ActionGeneralize:
		if c.Generalize != nil {
			return fmt.Sprintf("%s hierarchy, level %d", c.Generalize.Hierarchy.Type, c.Generalize.Level)
		}
		return fmt.Sprintf("%s hierarchy, level chosen for k=%d", p.KAnon.Hierarchies[c.Name].Type, p.KAnon.K)
	case ActionDrop:
		if m := p.Mobility; m != nil && (c.Name == m.Lat || c.Name == m.Lon) {
			return "replaced by H3 cell column " + m.CellColumn
		}
	}
	return ""
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
