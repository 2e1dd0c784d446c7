package mobility

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TraceGateOptions configures a TraceGate. All column names refer to the
// coarsened rows (after Segmenter and Coarsener, before the subject column is
// dropped).
type TraceGateOptions struct {
	// Subject is the real subject (e.g. "vin"): K counts distinct subjects.
	// Required.
	Subject string
	// Trip is the int64 trip id column (Segmenter's TripIDColumn). Required.
	Trip string
	// Cell and Time are the coarsened point columns. Required.
	Cell, Time string
	// K is the number of distinct subjects a trace must be shared by for
	// its trip to keep its id. Required, >= 2.
	K int
	// Mem allocates the output; nil means memory.DefaultAllocator.
	Mem memory.Allocator
	// TempDir holds the trip traces once too many trips are open in memory
	// ("" = os.TempDir()); see TraceGate.
	TempDir string
}

// TraceGate is k-anonymity of whole trajectories, in two passes like
// CellSuppressor: a trip keeps its id only when at least K distinct subjects
// made a trip with exactly the same released trace (the set of its
// (cell, bucket) points that survive cell suppression). Rows of other trips
// are detached (null trip id): they stay in per-cell aggregates, but no
// published trace is rarer than K subjects, so no set of points drawn from a
// published trace singles out fewer than K subjects. Observe every coarsened
// batch, Seal with the CellSuppressor that observed the same rows, then
// Apply to every batch (after the suppressor's Apply).
//
// Memory: the traces of up to traceSpillAt trips are held in memory; beyond
// that they are written to temporary files partitioned by trip id, and Seal
// works through one partition at a time (then one partition of trace
// signatures at a time), so memory stays flat in the number of trips. Only
// the published trip ids are held for Apply.
type TraceGate struct {
	*traceGate
	mem    memory.Allocator
	schema *arrow.Schema
	out    *arrow.Schema // the trip column is nullable
	rows   int64
	sealed bool
}

// NewTraceGate validates opts against the coarsened schema.
func NewTraceGate(schema *arrow.Schema, opts TraceGateOptions) (*TraceGate, error) {
	const fn = "mobility.NewTraceGate"
	if schema == nil {
		return nil, fmt.Errorf("%s: nil schema", fn)
	}
	for _, c := range []struct{ field, name string }{{"Subject", opts.Subject}, {"Trip", opts.Trip}, {"Cell", opts.Cell}, {"Time", opts.Time}} {
		i, err := fieldIndex(fn, c.field, schema, c.name)
		if err != nil {
			return nil, err
		}
		t := schema.Field(i).Type
		switch c.field {
		case "Subject":
			err = checkKeyType(fn, c.field, c.name, t)
		case "Trip":
			if t.ID() != arrow.INT64 {
				err = fmt.Errorf("%s: Trip: column %q has type %s; want int64", fn, c.name, t)
			}
		case "Cell":
			if !isStringDict(t) && t.ID() != arrow.STRING {
				err = fmt.Errorf("%s: Cell: column %q has type %s; want H3 cell strings", fn, c.name, t)
			}
		case "Time":
			err = checkTimeType(fn, c.field, c.name, t)
		}
		if err != nil {
			return nil, err
		}
	}
	if opts.K < 2 {
		return nil, fmt.Errorf("%s: K must be >= 2, got %d", fn, opts.K)
	}
	mem := opts.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	tg := newTraceGate(schema, opts.K, opts.Trip, opts.Subject, opts.Cell, opts.Time)
	tg.tempDir = opts.TempDir
	return &TraceGate{traceGate: tg, mem: mem, schema: schema, out: withNullable(schema, opts.Trip)}, nil
}

// Schema is the output schema: the input's with the trip column nullable.
func (g *TraceGate) Schema() *arrow.Schema { return g.out }

// withNullable returns schema with the named field marked nullable.
func withNullable(schema *arrow.Schema, name string) *arrow.Schema {
	fields := slices.Clone(schema.Fields())
	for i := range fields {
		if fields[i].Name == name {
			fields[i].Nullable = true
		}
	}
	md := schema.Metadata()
	return arrow.NewSchema(fields, &md)
}

// Observe collects the traces of one batch (first pass).
func (g *TraceGate) Observe(ctx context.Context, rec arrow.RecordBatch) error {
	const fn = "mobility.TraceGate.Observe"
	if g.sealed {
		return fmt.Errorf("%s: called after Seal", fn)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSameSchema(fn, g.schema, rec); err != nil {
		return err
	}
	if err := g.observe(rec, g.rows); err != nil {
		return err
	}
	g.rows += rec.NumRows()
	return nil
}

// Seal decides which trips keep their id, counting only the points sup
// releases (sup must have observed the same rows). sup may be nil when no
// cell suppression is applied.
func (g *TraceGate) Seal(sup *CellSuppressor) {
	if g.sealed {
		return
	}
	g.sealed = true
	if sup != nil {
		sup.seal()
	}
	g.err = g.decide(sup)
}

// Apply returns rec with the trip ids of unpublished trips set to null
// (second pass, after Seal). The caller releases the result.
func (g *TraceGate) Apply(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	const fn = "mobility.TraceGate.Apply"
	if !g.sealed {
		return nil, fmt.Errorf("%s: call Seal after observing every batch", fn)
	}
	if g.err != nil {
		return nil, fmt.Errorf("%s: %w", fn, g.err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkSameSchema(fn, g.schema, rec); err != nil {
		return nil, err
	}
	tc, err := g.apply(g.mem, rec)
	if err != nil {
		return nil, err
	}
	defer tc.Release()
	cols := slices.Clone(rec.Columns())
	cols[g.trip] = tc
	return array.NewRecordBatch(g.out, cols, rec.NumRows()), nil
}

// ApplyTrips is Apply on the trip column alone: it returns trip with the
// ids of unpublished trips set to null (the caller releases it). It is for
// callers whose batches changed other columns since Observe (generalised,
// rows suppressed): the decision needs only the trip ids, and applied to
// the rows that are written, Stats().RowsDetached counts written rows.
func (g *TraceGate) ApplyTrips(ctx context.Context, trip arrow.Array) (arrow.Array, error) {
	const fn = "mobility.TraceGate.ApplyTrips"
	if !g.sealed {
		return nil, fmt.Errorf("%s: call Seal after observing every batch", fn)
	}
	if g.err != nil {
		return nil, fmt.Errorf("%s: %w", fn, g.err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return g.applyTrips(g.mem, trip)
}

// PublishedIDs yields the ids of the trips that keep their id (after Seal):
// the measures that sample published trips draw from them.
func (g *TraceGate) PublishedIDs() iter.Seq[int64] {
	return func(yield func(int64) bool) {
		for id, ok := range g.published {
			if ok && !yield(id) {
				return
			}
		}
	}
}

// Stats returns the counters (trip counts once sealed).
func (g *TraceGate) Stats() TraceStats { return g.stats }

// Err is the error Seal met, if any (writing or reading its temporary
// files); Apply returns it too.
func (g *TraceGate) Err() error { return g.err }

// Close removes the gate's temporary files, if any; call it when a run
// ends early (Seal removes them otherwise). Safe to call more than once.
func (g *TraceGate) Close() { g.cleanup() }

// traceGate is the state behind TraceGate and Protect's TraceK.
type traceGate struct {
	k         int
	trip      int // column positions in the coarsened schema
	subj      int
	cell      int
	ts        int
	cells     []string
	cellIDs   map[string]uint32
	subjects  *denser
	trips     map[int64]*tripTrace
	published map[int64]bool
	stats     TraceStats
	spillAt   int        // trips held in memory before they go to parts
	tempDir   string     // for parts
	parts     *partFiles // trip traces by trip id, once spilled
	err       error      // from decide
}

// TraceStats counts what trace-level k-anonymity did.
type TraceStats struct {
	Trips        int   // trips with at least one released point
	Published    int   // trips whose trace is shared by >= TraceK subjects
	RowsDetached int64 // rows of rare trips released with a null trip id
}

type tripTrace struct {
	subj uint32
	pts  []tracePoint
}

type tracePoint struct {
	cell uint32
	ts   int64
}

func newTraceGate(schema *arrow.Schema, k int, trip, subj, cell, ts string) *traceGate {
	idx := func(n string) int { return schema.FieldIndices(n)[0] }
	return &traceGate{
		k: k, trip: idx(trip), subj: idx(subj), cell: idx(cell), ts: idx(ts),
		cellIDs: map[string]uint32{}, subjects: newDenser(), trips: map[int64]*tripTrace{},
		spillAt: traceSpillAt,
	}
}

// observe collects the trace points of one coarsened batch (pass 1).
func (g *traceGate) observe(rec arrow.RecordBatch, rowBase int64) error {
	trip := rec.Column(g.trip).(*array.Int64)
	n := int(rec.NumRows())
	subj := make([]uint64, n)
	if err := g.subjects.keys("mobility.Protect", "Subject", rec.Column(g.subj), rowBase, subj); err != nil {
		return err
	}
	cells := newStringKeyer(rec.Column(g.cell))
	ts := rec.Column(g.ts).(*array.Timestamp).TimestampValues()
	for i := 0; i < n; i++ {
		if trip.IsNull(i) {
			continue
		}
		id := trip.Value(i)
		t := g.trips[id]
		if t == nil {
			t = &tripTrace{subj: uint32(subj[i])}
			g.trips[id] = t
		}
		c := cells.view(i)
		cid, ok := g.cellIDs[c]
		if !ok {
			cid = uint32(len(g.cells))
			c = string([]byte(c))
			g.cellIDs[c] = cid
			g.cells = append(g.cells, c)
		}
		if k := len(t.pts); k > 0 && t.pts[k-1] == (tracePoint{cid, int64(ts[i])}) {
			continue
		}
		t.pts = append(t.pts, tracePoint{cid, int64(ts[i])})
	}
	if len(g.trips) >= g.spillAt {
		return g.spillTrips()
	}
	return nil
}

// decide fixes which trips are published, after suppression is known.
func (g *traceGate) decide(sup *CellSuppressor) error {
	if g.parts != nil {
		return g.decideSpilled(sup)
	}
	sigOf := make(map[int64]uint64, len(g.trips))
	subs := map[uint64][]uint32{}
	for id, t := range g.trips {
		h, ok := g.signature(t, sup)
		if !ok {
			continue
		}
		sigOf[id] = h
		s := subs[h]
		if len(s) < g.k && !slices.Contains(s, t.subj) {
			subs[h] = append(s, t.subj)
		}
	}
	g.published = make(map[int64]bool, len(sigOf))
	for id, h := range sigOf {
		g.stats.Trips++
		if len(subs[h]) >= g.k {
			g.published[id] = true
			g.stats.Published++
		}
	}
	g.trips = nil
	return nil
}

// signature hashes the released trace of t (its points that sup keeps,
// sorted, without repeats); ok is false when no point is released.
func (g *traceGate) signature(t *tripTrace, sup *CellSuppressor) (h uint64, ok bool) {
	pts := t.pts[:0]
	for _, p := range t.pts {
		if sup == nil || sup.keptGroup(g.cells[p.cell], uint64(p.ts)) {
			pts = append(pts, p)
		}
	}
	if len(pts) == 0 {
		return 0, false
	}
	slices.SortFunc(pts, func(a, b tracePoint) int {
		if c := cmp.Compare(a.cell, b.cell); c != 0 {
			return c
		}
		return cmp.Compare(a.ts, b.ts)
	})
	pts = slices.Compact(pts)
	// The signature hashes cell strings, not ids, so it does not depend
	// on the order cells were first seen.
	h = uint64(0x9e3779b97f4a7c15)
	for _, p := range pts {
		for _, b := range []byte(g.cells[p.cell]) {
			h = mix64(h ^ uint64(b))
		}
		h = mix64(h ^ uint64(p.ts))
	}
	return h, true
}

// apply nulls the trip id of rows whose trip is not published (pass 2) and
// returns the new trip column; the caller releases it.
func (g *traceGate) apply(mem memory.Allocator, rec arrow.RecordBatch) (arrow.Array, error) {
	return g.applyTrips(mem, rec.Column(g.trip))
}

// applyTrips is apply on the trip column.
func (g *traceGate) applyTrips(mem memory.Allocator, col arrow.Array) (arrow.Array, error) {
	trip, ok := col.(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("mobility.Protect: trip column is %s", col.DataType())
	}
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(trip.Len())
	for i := 0; i < trip.Len(); i++ {
		if trip.IsValid(i) && g.published[trip.Value(i)] {
			b.UnsafeAppend(trip.Value(i))
			continue
		}
		if trip.IsValid(i) {
			g.stats.RowsDetached++
		}
		b.UnsafeAppendBoolToBitmap(false)
	}
	return b.NewArray(), nil
}
