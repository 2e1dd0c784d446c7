package mobility_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tarnkappe/tarnkappe/mobility"
	"github.com/uber/h3-go/v4"
)

// readings builds a small interleaved stream: two vehicles, each driving one
// trip west to east through Munich, a reading every 30 seconds.
func readings(mem memory.Allocator) array.RecordReader {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "vin", Type: arrow.BinaryTypes.String},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "lat", Type: arrow.PrimitiveTypes.Float64},
		{Name: "lon", Type: arrow.PrimitiveTypes.Float64},
		{Name: "disc_temp_c", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	t0 := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	for i := 0; i < 40; i++ {
		for v, vin := range []string{"WVWZZZ1JZXW000001", "WBA3A5C5XDF000002"} {
			b.Field(0).(*array.StringBuilder).Append(vin)
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(i) * 30 * time.Second).UnixMilli()))
			b.Field(2).(*array.Float64Builder).Append(48.137 + 0.001*float64(v))
			b.Field(3).(*array.Float64Builder).Append(11.50 + 0.004*float64(i)) // ~300 m per reading
			b.Field(4).(*array.Float64Builder).Append(60 + float64(i))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var batches []arrow.RecordBatch // as ingestion delivers them: 8 batches of 10 rows
	for off := int64(0); off < rec.NumRows(); off += 10 {
		batches = append(batches, rec.NewSlice(off, off+10))
	}
	rd, _ := array.NewRecordReader(schema, batches)
	for _, b := range batches {
		b.Release()
	}
	return rd
}

func ExampleSegmenter() {
	ctx := context.Background()
	src := readings(memory.DefaultAllocator)
	defer src.Release()
	seg, err := mobility.NewSegmenter(src.Schema(), mobility.TripOptions{
		Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon",
		Gap:          10 * time.Minute,
		TrimMetres:   1000, // homes and workplaces: drop 1 km around both trip ends
		TripIDColumn: "trip", TripIDs: mobility.TripIDSequence,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer seg.Release()
	var early int64
	for src.Next() {
		out, err := seg.Push(ctx, src.RecordBatch())
		if err != nil {
			fmt.Println(err)
			return
		}
		early += out.NumRows()
		out.Release()
	}
	fmt.Println("emitted while trips are open:", early)
	out, err := seg.Flush(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Release()
	st := seg.Stats()
	fmt.Println("emitted at flush:", out.NumRows())
	fmt.Printf("in %d = out %d + trimmed %d, trips %d\n", st.RowsIn, st.RowsOut, st.RowsTrimmed, st.Trips)
	// Output:
	// emitted while trips are open: 0
	// emitted at flush: 64
	// in 80 = out 64 + trimmed 16, trips 2
}

func ExampleSortBySubjectTime() {
	ctx := context.Background()
	src := readings(memory.DefaultAllocator)
	defer src.Release()
	sorted, err := mobility.SortBySubjectTime(ctx, src, mobility.SortOptions{
		Subject: "vin", Time: "ts",
		MaxRowsInMemory: 20, // tiny, to show spilling: 4 runs on disk, merged
		TempDir:         os.TempDir(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sorted.Close()
	for sorted.Next() {
		rec := sorted.RecordBatch()
		vin := rec.Column(0).(*array.String)
		ts := rec.Column(1)
		fmt.Println(rec.NumRows(), "rows:", vin.Value(0), ts.ValueStr(0), "…", vin.Value(int(rec.NumRows())-1), ts.ValueStr(int(rec.NumRows())-1))
	}
	fmt.Println("runs spilled:", sorted.Runs(), "err:", sorted.Err())
	// Output:
	// 80 rows: WBA3A5C5XDF000002 2026-03-02T07:00:00Z … WVWZZZ1JZXW000001 2026-03-02T07:19:30Z
	// runs spilled: 4 err: <nil>
}

func ExampleCoarsener() {
	ctx := context.Background()
	src := readings(memory.DefaultAllocator)
	defer src.Release()
	c, err := mobility.NewCoarsener(src.Schema(), mobility.CoarsenOptions{
		Lat: "lat", Lon: "lon", Resolution: 7, Cell: "cell",
		Time: "ts", Bucket: 15 * time.Minute,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Schema().Field(2))
	cells, buckets := map[string]bool{}, map[string]bool{}
	for src.Next() {
		out, err := c.Apply(ctx, src.RecordBatch())
		if err != nil {
			fmt.Println(err)
			return
		}
		cell := out.Column(2).(*array.Dictionary)
		for i := 0; i < int(out.NumRows()); i++ {
			cells[cell.Dictionary().ValueStr(cell.GetValueIndex(i))] = true
			buckets[out.Column(1).ValueStr(i)] = true
		}
		out.Release()
	}
	fmt.Println("80 readings in", len(cells), "cells and", len(buckets), "quarter hours")
	// Output:
	// cell: type=dictionary<values=utf8, indices=int32, ordered=false>
	// 80 readings in 8 cells and 2 quarter hours
}

func ExampleUnicity() {
	ctx := context.Background()
	src := readings(memory.DefaultAllocator)
	defer src.Release()
	res, err := mobility.Unicity(ctx, src,
		mobility.UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "ts"},
		mobility.UnicityOptions{P: 4, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("unicity at p=%d: %.0f%% of %d subjects (95%% CI %.2f–%.2f)\n", res.P, 100*res.Unicity, res.Sampled, res.Lower, res.Upper)
	// Output:
	// unicity at p=4: 100% of 2 subjects (95% CI 0.34–1.00)
}

func ExampleProtect() {
	ctx := context.Background()
	src := readings(memory.DefaultAllocator)
	defer src.Release()
	st, err := mobility.Protect(ctx, src, mobility.ProtectOptions{
		Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon",
		Gap: 10 * time.Minute, TrimMetres: 1000, TrimDuration: 2 * time.Minute,
		Resolution: 7, Cell: "cell", Bucket: time.Hour, K: 2,
		Scope: mobility.ScopeTrip, TripID: "trip",
	}, func(rec arrow.RecordBatch) error {
		fmt.Println(rec.Schema().Field(0).Name, rec.Schema().Field(1).Name, rec.Schema().Field(2).Name)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("in %d = out %d + trimmed %d + suppressed %d\n", st.RowsIn, st.RowsOut, st.RowsTrimmed, st.RowsSuppressed)
	// Output:
	// trip ts cell
	// in 80 = out 63 + trimmed 16 + suppressed 1
}

// ExampleTraceGate composes the per-batch steps as a pipeline with its own
// passes does. The two vehicles drive through the same cells in the same
// hour: with K = 2 both trips keep their id, with K = 3 their rows are
// released detached (null trip id).
func ExampleTraceGate() {
	ctx := context.Background()
	src := readings(memory.DefaultAllocator)
	defer src.Release()
	seg, _ := mobility.NewSegmenter(src.Schema(), mobility.TripOptions{
		Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon", Gap: 10 * time.Minute,
		TrimMetres: 1000, Endpoints: mobility.EndpointsDetach, TripIDColumn: "trip",
	})
	defer seg.Release()
	co, _ := mobility.NewCoarsener(seg.Schema(), mobility.CoarsenOptions{
		Lat: "lat", Lon: "lon", Resolution: 6, Cell: "cell", Time: "ts", Bucket: time.Hour,
	})
	// Pass 1: segment and coarsen (a pipeline observes here; the batches are
	// kept so that both gates below can see them).
	var coarse []arrow.RecordBatch
	keep := func(rec arrow.RecordBatch, err error) {
		if err != nil {
			fmt.Println(err)
			return
		}
		c, _ := co.Apply(ctx, rec)
		rec.Release()
		coarse = append(coarse, c)
	}
	for src.Next() {
		keep(seg.Push(ctx, src.RecordBatch()))
	}
	keep(seg.Flush(ctx))
	for _, k := range []int{2, 3} {
		gate, err := mobility.NewTraceGate(co.Schema(), mobility.TraceGateOptions{
			Subject: "vin", Trip: "trip", Cell: "cell", Time: "ts", K: k,
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, c := range coarse {
			_ = gate.Observe(ctx, c)
		}
		gate.Seal(nil) // no CellSuppressor in this example
		var linked int64
		for _, c := range coarse { // pass 2
			out, _ := gate.Apply(ctx, c)
			trip := out.Column(out.Schema().FieldIndices("trip")[0])
			linked += int64(trip.Len() - trip.NullN())
			out.Release()
		}
		st := gate.Stats()
		fmt.Printf("K=%d: %d of %d trips keep their id, %d rows linked\n", k, st.Published, st.Trips, linked)
	}
	for _, c := range coarse {
		c.Release()
	}
	// Output:
	// K=2: 2 of 2 trips keep their id, 64 rows linked
	// K=3: 0 of 2 trips keep their id, 0 rows linked
}

// One CellCache shared by the Coarseners of one stream (one per worker, as
// the parallel pipeline has them) gives every reading the cell the H3
// library gives it; the cache only saves the library call for points well
// inside a cell it has seen. A cache for another resolution is refused.
func ExampleCellCache() {
	ctx := context.Background()
	src := readings(memory.DefaultAllocator)
	defer src.Release()
	cache, err := mobility.NewCellCache(7)
	if err != nil {
		fmt.Println(err)
		return
	}
	var workers [2]*mobility.Coarsener
	for w := range workers {
		if workers[w], err = mobility.NewCoarsener(src.Schema(), mobility.CoarsenOptions{
			Lat: "lat", Lon: "lon", Resolution: 7, Cell: "cell", Cache: cache,
		}); err != nil {
			fmt.Println(err)
			return
		}
	}
	same, rows := 0, 0
	for b := 0; src.Next(); b++ {
		in := src.RecordBatch()
		out, err := workers[b%2].Apply(ctx, in) // batches alternate between the workers
		if err != nil {
			fmt.Println(err)
			return
		}
		lat, lon := in.Column(2).(*array.Float64), in.Column(3).(*array.Float64)
		cell := out.Column(2).(*array.Dictionary)
		for i := range int(out.NumRows()) {
			want := h3.LatLngToCell(h3.LatLng{Lat: lat.Value(i), Lng: lon.Value(i)}, 7).String()
			if cell.Dictionary().ValueStr(cell.GetValueIndex(i)) == want {
				same++
			}
			rows++
		}
		out.Release()
	}
	fmt.Printf("%d of %d readings in the cell h3.LatLngToCell gives\n", same, rows)
	_, err = mobility.NewCoarsener(src.Schema(), mobility.CoarsenOptions{
		Lat: "lat", Lon: "lon", Resolution: 8, Cell: "cell", Cache: cache,
	})
	fmt.Println(err)
	// Output:
	// 80 of 80 readings in the cell h3.LatLngToCell gives
	// mobility.NewCoarsener: Cache is for resolution 7, not 8
}

// Cell suppression counts vehicles, not rows: a (cell, hour) group is
// released only if at least K distinct subjects were there. Pass 1 observes
// every batch, pass 2 filters.
func ExampleCellSuppressor() {
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "vin", Type: arrow.BinaryTypes.String},
		{Name: "cell", Type: arrow.BinaryTypes.String},
		{Name: "hour", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	h7 := arrow.Timestamp(time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC).Unix())
	for _, r := range []struct {
		vin, cell string
		hour      arrow.Timestamp
	}{
		{"V1", "871f8d7a4ffffff", h7}, {"V1", "871f8d7a4ffffff", h7}, {"V2", "871f8d7a4ffffff", h7}, // 2 vehicles: kept
		{"V1", "871f8d7a5ffffff", h7}, {"V2", "871f8d7a5ffffff", h7}, // 2 vehicles: kept
		{"V1", "871f8d7a5ffffff", h7 + 3600},                         // same cell, next hour, alone: suppressed
		{"V3", "871f8d7a6ffffff", h7}, {"V3", "871f8d7a6ffffff", h7}, // 2 rows of one vehicle: suppressed
	} {
		b.Field(0).(*array.StringBuilder).Append(r.vin)
		b.Field(1).(*array.StringBuilder).Append(r.cell)
		b.Field(2).(*array.TimestampBuilder).Append(r.hour)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	s, err := mobility.NewCellSuppressor(schema, mobility.SuppressOptions{Subject: "vin", Cell: "cell", Time: "hour", K: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Observe(ctx, rec); err != nil { // pass 1, over every batch
		fmt.Println(err)
		return
	}
	out, dropped, err := s.Apply(ctx, rec) // pass 2
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Release()
	fmt.Println("rows removed:", dropped)
	for i := range int(out.NumRows()) {
		fmt.Println(out.Column(0).ValueStr(i), out.Column(1).ValueStr(i), out.Column(2).ValueStr(i))
	}
	fmt.Printf("%+v\n", s.Stats())
	// Output:
	// rows removed: 3
	// V1 871f8d7a4ffffff 2026-03-02T07:00:00Z
	// V1 871f8d7a4ffffff 2026-03-02T07:00:00Z
	// V2 871f8d7a4ffffff 2026-03-02T07:00:00Z
	// V1 871f8d7a5ffffff 2026-03-02T07:00:00Z
	// V2 871f8d7a5ffffff 2026-03-02T07:00:00Z
	// {Groups:4 GroupsSuppressed:2 RowsObserved:8 RowsSuppressed:3 RowsKept:5}
}

// A MeanComparer measures how far released per-(cell, bucket) means are
// from the raw ones, group by group, for an engine that gathers the groups
// itself (CompareMeans does the same over two CellMeans).
func ExampleNewMeanComparer() {
	c := mobility.NewMeanComparer(2, 0.1) // groups of >= 2 vehicles (the caller's filter), 10% tolerance
	c.Observe(300, 3, 210, 2)             // raw mean 100, released 105: 5% off
	c.Observe(100, 2, 60, 1)              // raw mean 50, released 60: 20% off
	c.Observe(90, 3, 0, 0)                // raw group not released (suppressed)
	r := c.Result()
	fmt.Printf("groups %d, released %d, within %.0f%%: %d\n", r.Groups, r.Released, 100*r.Tolerance, r.Within)
	fmt.Printf("relative error: max %.3f, mean %.3f\n", r.MaxRelErr, r.MeanRelErr)
	// Output:
	// groups 3, released 2, within 10%: 1
	// relative error: max 0.200, mean 0.125
}
