package mobility

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// traceGate implements Protect's TraceK: a trip keeps its id only when at
// least TraceK distinct subjects made a trip with exactly the same coarsened
// trace (the set of its released (cell, bucket) points). Rows of other trips
// are detached (null trip id): they stay in per-cell aggregates but no
// published trace is rarer than TraceK vehicles, so no set of points drawn
// from a published trace singles out fewer than TraceK vehicles.
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
	return nil
}

// decide fixes which trips are published, after suppression is known.
func (g *traceGate) decide(sup *CellSuppressor) {
	type sig = uint64
	sigOf := make(map[int64]sig, len(g.trips))
	subs := map[sig][]uint32{}
	for id, t := range g.trips {
		pts := t.pts[:0]
		for _, p := range t.pts {
			if sup.keptGroup(g.cells[p.cell], uint64(p.ts)) {
				pts = append(pts, p)
			}
		}
		if len(pts) == 0 {
			continue
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
		h := uint64(0x9e3779b97f4a7c15)
		for _, p := range pts {
			for _, b := range []byte(g.cells[p.cell]) {
				h = mix64(h ^ uint64(b))
			}
			h = mix64(h ^ uint64(p.ts))
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
}

// apply nulls the trip id of rows whose trip is not published (pass 2) and
// returns the new trip column; the caller releases it.
func (g *traceGate) apply(mem memory.Allocator, rec arrow.RecordBatch) (arrow.Array, error) {
	trip, ok := rec.Column(g.trip).(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("mobility.Protect: trip column is %s", rec.Column(g.trip).DataType())
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
