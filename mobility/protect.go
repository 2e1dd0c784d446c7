package mobility

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// Scope is the linkable unit of published movement data: what one key in the
// output stands for.
type Scope int

const (
	// ScopeTrip replaces the subject column by a random per-trip id, so that
	// the trips of one subject cannot be joined into a movement profile. The
	// zero value, and the one unicity is low for.
	ScopeTrip Scope = iota
	// ScopeSubject keeps the subject column (to be pseudonymised by the
	// caller): all trips of a subject stay linkable, and over days a
	// coarsened trace is still unique (see doc.go).
	ScopeSubject
)

// ProtectOptions is the whole movement-data policy: trips, trimming,
// coarsening, suppression and the linkable unit.
type ProtectOptions struct {
	// Subject, Time, Lat, Lon name the input columns (see TripOptions).
	// Required.
	Subject, Time, Lat, Lon string
	// Gap, TrimMetres, TrimDuration, Lateness and Order: see TripOptions.
	// Gap is required; at least one of TrimMetres, TrimDuration must be set
	// (untrimmed trip ends are homes and workplaces).
	Gap          time.Duration
	TrimMetres   float64
	TrimDuration time.Duration
	Lateness     time.Duration
	Order        InputOrder
	// Endpoints: drop the trimmed readings (default) or detach them from
	// their trip (null trip id; only with ScopeTrip, which removes the
	// subject column). See EndpointMode.
	Endpoints EndpointMode
	// Resolution is the H3 resolution of the cell column (0..15) and Cell
	// its name (it replaces Lat; Lon is removed). Cell is required.
	Resolution int
	Cell       string
	// Bucket is the width Time is floored to. Required, > 0.
	Bucket time.Duration
	// K suppresses (cell, bucket) groups with fewer than K distinct
	// subjects (vehicles, counted on the Subject column before it is
	// replaced). Required, >= 2.
	K int
	// Scope is the linkable unit of the output (default ScopeTrip).
	Scope Scope
	// TraceK, if >= 2, publishes a trip's id only when at least TraceK
	// distinct subjects made a trip with exactly the same released trace
	// (set of (cell, bucket) points); the rows of rarer trips are released
	// detached (null trip id), so they still count in per-cell aggregates.
	// This is k-anonymity of whole trajectories: no published trace, and no
	// set of points from one, singles out fewer than TraceK vehicles. Needs
	// ScopeTrip. 0 disables it.
	TraceK int
	// TripID names the column that replaces Subject under ScopeTrip (at
	// Subject's position, int64 random ids). Required with ScopeTrip.
	TripID string
	// TempDir holds the spool between the two passes, encrypted with a key
	// held only in memory ("" = os.TempDir()).
	TempDir string
	// Mem allocates everything; nil means memory.DefaultAllocator.
	Mem memory.Allocator
}

// ProtectStats accounts for every input row:
// RowsIn == RowsOut + RowsTrimmed + RowsSuppressed. RowsDetached counts the
// trip endpoints emitted with a null trip id (before suppression; part of
// RowsOut or RowsSuppressed).
type ProtectStats struct {
	RowsIn, RowsOut, RowsTrimmed, RowsSuppressed int64
	RowsDetached                                 int64
	Traces                                       TraceStats // TraceK only
	Trips                                        TripStats
	Cells                                        SuppressStats
}

func (o ProtectOptions) validate() error {
	const fn = "mobility.Protect"
	if o.TrimMetres == 0 && o.TrimDuration == 0 {
		return fmt.Errorf("%s: TrimMetres or TrimDuration must be set: untrimmed trip ends reveal homes and workplaces", fn)
	}
	if o.Bucket <= 0 {
		return fmt.Errorf("%s: Bucket must be > 0, got %v", fn, o.Bucket)
	}
	if o.K < 2 {
		return fmt.Errorf("%s: K must be >= 2, got %d", fn, o.K)
	}
	if o.TraceK < 0 || o.TraceK == 1 {
		return fmt.Errorf("%s: TraceK must be 0 (off) or >= 2, got %d", fn, o.TraceK)
	}
	switch o.Scope {
	case ScopeTrip:
		if o.TripID == "" {
			return fmt.Errorf("%s: TripID (the column replacing the subject) is required with ScopeTrip", fn)
		}
	case ScopeSubject:
		if o.TraceK > 0 {
			return fmt.Errorf("%s: TraceK needs ScopeTrip (it decides which trip ids are published)", fn)
		}
		if o.Endpoints == EndpointsDetach {
			return fmt.Errorf("%s: Endpoints EndpointsDetach needs ScopeTrip: detached endpoints that keep the subject column point at homes again", fn)
		}
	default:
		return fmt.Errorf("%s: Scope: unknown scope %d", fn, o.Scope)
	}
	return nil
}

// Protect runs the movement policy over src in two passes, spooling the
// coarsened rows to a temporary Arrow IPC file in between: trips are split
// and trimmed (streaming), positions become H3 cells and times buckets,
// (cell, bucket) groups with fewer than K subjects are suppressed, and under
// ScopeTrip the subject column is replaced by per-trip ids. Every output batch
// goes to emit, which must not keep it without retaining it. The anonymize
// pipeline composes the same steps itself (Segmenter, Coarsener,
// CellSuppressor, TraceGate); Protect is the one-call form and what the figures in
// benchmarks/mobility/RESULTS.md are measured with.
func Protect(ctx context.Context, src array.RecordReader, opts ProtectOptions, emit func(arrow.RecordBatch) error) (ProtectStats, error) {
	const fn = "mobility.Protect"
	var st ProtectStats
	if err := opts.validate(); err != nil {
		return st, err
	}
	mem := opts.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	tripCol := opts.TripID
	if opts.Scope == ScopeSubject {
		tripCol = ""
	}
	seg, err := NewSegmenter(src.Schema(), TripOptions{
		Subject: opts.Subject, Time: opts.Time, Lat: opts.Lat, Lon: opts.Lon,
		Gap: opts.Gap, TrimMetres: opts.TrimMetres, TrimDuration: opts.TrimDuration,
		Lateness: opts.Lateness, Order: opts.Order, Endpoints: opts.Endpoints, TripIDColumn: tripCol, Mem: mem,
	})
	if err != nil {
		return st, err
	}
	defer seg.Release()
	co, err := NewCoarsener(seg.Schema(), CoarsenOptions{Lat: opts.Lat, Lon: opts.Lon, Resolution: opts.Resolution, Cell: opts.Cell, Time: opts.Time, Bucket: opts.Bucket, Mem: mem})
	if err != nil {
		return st, err
	}
	sup, err := NewCellSuppressor(co.Schema(), SuppressOptions{Subject: opts.Subject, Cell: opts.Cell, Time: opts.Time, K: opts.K, Mem: mem})
	if err != nil {
		return st, err
	}
	// The spool holds raw GPS traces: an encrypted scratch file, so that a
	// killed run leaves no movement profiles on disk in clear.
	f, err := scratch.Create(opts.TempDir, "tarnkappe-mobility-*.arrows.enc")
	if err != nil {
		return st, fmt.Errorf("%s: create spool: %w", fn, err)
	}
	defer f.Close()
	w := ipc.NewWriter(f, ipc.WithSchema(co.Schema()), ipc.WithAllocator(mem))
	var gate *traceGate
	if opts.TraceK > 0 {
		gate = newTraceGate(co.Schema(), opts.TraceK, opts.TripID, opts.Subject, opts.Cell, opts.Time)
		gate.tempDir = opts.TempDir
		defer gate.cleanup()
	}
	var observed int64
	pass1 := func(rec arrow.RecordBatch, err error) error {
		if err != nil {
			return err
		}
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		c, err := co.Apply(ctx, rec)
		if err != nil {
			return err
		}
		defer c.Release()
		if err := sup.Observe(ctx, c); err != nil {
			return err
		}
		if gate != nil {
			if err := gate.observe(c, observed); err != nil {
				return err
			}
		}
		observed += c.NumRows()
		if err := w.Write(c); err != nil {
			return fmt.Errorf("%s: write spool: %w", fn, err)
		}
		return nil
	}
	for src.Next() {
		if err := pass1(seg.Push(ctx, src.RecordBatch())); err != nil {
			w.Close()
			return st, err
		}
	}
	if err := src.Err(); err != nil {
		w.Close()
		return st, fmt.Errorf("%s: read input: %w", fn, err)
	}
	if err := pass1(seg.Flush(ctx)); err != nil {
		w.Close()
		return st, err
	}
	if err := w.Close(); err != nil {
		return st, fmt.Errorf("%s: close spool: %w", fn, err)
	}
	st.Trips = seg.Stats()
	if gate != nil {
		sup.seal()
		if err := gate.decide(sup); err != nil {
			return st, err
		}
	}
	if err := f.Rewind(); err != nil {
		return st, fmt.Errorf("%s: rewind spool: %w", fn, err)
	}
	rd, err := ipc.NewReader(f, ipc.WithAllocator(mem), ipc.WithSchema(co.Schema()))
	if err != nil {
		return st, fmt.Errorf("%s: read spool: %w", fn, err)
	}
	defer rd.Release()
	gatedSchema := co.Schema()
	if gate != nil {
		gatedSchema = withNullable(gatedSchema, opts.TripID)
	}
	outSchema, project := scopeSchema(gatedSchema, opts)
	for rd.Next() {
		kept, _, err := sup.Apply(ctx, rd.RecordBatch())
		if err != nil {
			return st, err
		}
		if gate != nil {
			tc, err := gate.apply(mem, kept)
			if err != nil {
				kept.Release()
				return st, err
			}
			cols := slices.Clone(kept.Columns())
			cols[gate.trip] = tc
			gated := array.NewRecordBatch(gatedSchema, cols, kept.NumRows())
			tc.Release()
			kept.Release()
			kept = gated
		}
		out := array.NewRecordBatch(outSchema, project(kept), kept.NumRows())
		kept.Release()
		err = emit(out)
		out.Release()
		if err != nil {
			return st, err
		}
	}
	if err := rd.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return st, fmt.Errorf("%s: read spool: %w", fn, err)
	}
	st.Cells = sup.Stats()
	if gate != nil {
		st.Traces = gate.stats
	}
	st.RowsIn = st.Trips.RowsIn
	st.RowsTrimmed = st.Trips.RowsTrimmed
	st.RowsDetached = st.Trips.RowsDetached
	st.RowsSuppressed = st.Cells.RowsSuppressed
	st.RowsOut = st.Cells.RowsKept
	if st.RowsIn != st.RowsOut+st.RowsTrimmed+st.RowsSuppressed {
		return st, fmt.Errorf("%s: row accounting mismatch: in %d != out %d + trimmed %d + suppressed %d", fn, st.RowsIn, st.RowsOut, st.RowsTrimmed, st.RowsSuppressed)
	}
	return st, nil
}

// scopeSchema returns the output schema and a column projection: under
// ScopeTrip the trip id column takes the subject column's place.
func scopeSchema(in *arrow.Schema, opts ProtectOptions) (*arrow.Schema, func(arrow.RecordBatch) []arrow.Array) {
	if opts.Scope == ScopeSubject {
		return in, func(r arrow.RecordBatch) []arrow.Array { return r.Columns() }
	}
	subj := in.FieldIndices(opts.Subject)[0]
	trip := in.FieldIndices(opts.TripID)[0]
	var order []int
	for i := range in.Fields() {
		switch i {
		case subj:
			order = append(order, trip)
		case trip:
		default:
			order = append(order, i)
		}
	}
	fields := make([]arrow.Field, len(order))
	for i, j := range order {
		fields[i] = in.Field(j)
	}
	md := in.Metadata()
	out := arrow.NewSchema(fields, &md)
	return out, func(r arrow.RecordBatch) []arrow.Array {
		cols := make([]arrow.Array, len(order))
		for i, j := range order {
			cols[i] = r.Column(j)
		}
		return cols
	}
}
