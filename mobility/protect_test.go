package mobility

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func protectOpts(mem memory.Allocator, t *testing.T) ProtectOptions {
	return ProtectOptions{
		Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon",
		Gap: 10 * time.Minute, TrimMetres: 1000, TrimDuration: 2 * time.Minute,
		Resolution: 7, Cell: "cell", Bucket: time.Hour, K: 3,
		Scope: ScopeTrip, TripID: "trip", TempDir: t.TempDir(), Mem: mem,
	}
}

func TestProtect(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	rs := synthFleet(8, 60, 3)

	// ScopeSubject: the vin stays, so the k-suppression can be verified
	// independently on the output.
	opts := protectOpts(mem, t)
	opts.Scope = ScopeSubject
	rd := makeReader(t, mem, rs, 2000)
	subs := map[[2]string]map[string]bool{}
	var rows int64
	st, err := Protect(ctx, rd, opts, func(rec arrow.RecordBatch) error {
		if rec.Schema().Field(2).Name != "cell" || rec.NumCols() != 4 {
			t.Fatalf("output schema %s", rec.Schema())
		}
		vin := newStringKeyer(rec.Column(0))
		cell := newStringKeyer(rec.Column(2))
		ts := rec.Column(1).(*array.Timestamp)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := [2]string{cell.key(i), ts.ValueStr(i)}
			if subs[k] == nil {
				subs[k] = map[string]bool{}
			}
			subs[k][vin.key(i)] = true
		}
		rows += rec.NumRows()
		return nil
	})
	rd.Release()
	if err != nil {
		t.Fatal(err)
	}
	if st.RowsIn != int64(len(rs)) || rows != st.RowsOut || st.RowsIn != st.RowsOut+st.RowsTrimmed+st.RowsSuppressed {
		t.Fatalf("accounting: %+v, emitted %d", st, rows)
	}
	if st.RowsTrimmed == 0 || st.RowsSuppressed == 0 || st.RowsOut == 0 {
		t.Fatalf("test should exercise trimming, suppression and output: %+v", st)
	}
	for k, s := range subs {
		if len(s) < opts.K {
			t.Fatalf("released group %v has %d subjects < K=%d", k, len(s), opts.K)
		}
	}

	// ScopeTrip: the vin column is replaced by int64 trip ids.
	opts = protectOpts(mem, t)
	rd = makeReader(t, mem, rs, 2000)
	defer rd.Release()
	st2, err := Protect(ctx, rd, opts, func(rec arrow.RecordBatch) error {
		if rec.Schema().Field(0).Name != "trip" || rec.Schema().Field(0).Type.ID() != arrow.INT64 || len(rec.Schema().FieldIndices("vin")) != 0 {
			t.Fatalf("ScopeTrip schema %s", rec.Schema())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st2.RowsOut != st.RowsOut {
		t.Fatalf("scope changed the rows released: %d vs %d", st2.RowsOut, st.RowsOut)
	}
}

func TestProtectOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*ProtectOptions)
		want string
	}{
		{"no trimming", func(o *ProtectOptions) { o.TrimMetres, o.TrimDuration = 0, 0 }, "TrimMetres or TrimDuration must be set"},
		{"no k", func(o *ProtectOptions) { o.K = 0 }, "K must be >= 2"},
		{"no bucket", func(o *ProtectOptions) { o.Bucket = 0 }, "Bucket must be > 0"},
		{"no trip column", func(o *ProtectOptions) { o.TripID = "" }, "TripID"},
		{"trace k of 1", func(o *ProtectOptions) { o.TraceK = 1 }, "TraceK must be 0 (off) or >= 2"},
		{"trace k without trip scope", func(o *ProtectOptions) { o.Scope, o.TraceK = ScopeSubject, 5 }, "TraceK needs ScopeTrip"},
		{"detach keeping the subject", func(o *ProtectOptions) { o.Scope, o.Endpoints = ScopeSubject, EndpointsDetach }, "needs ScopeTrip"},
	} {
		o := protectOpts(nil, t)
		tc.mod(&o)
		rd := makeReader(t, memory.DefaultAllocator, nil, 1)
		_, err := Protect(context.Background(), rd, o, func(arrow.RecordBatch) error { return nil })
		rd.Release()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCompareMeans(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	rs := synthFleet(9, 40, 2)
	rec := makeBatch(t, mem, rs)
	defer rec.Release()
	raw, err := NewCellMeans(rec.Schema(), CellMeanOptions{Subject: "vin", Value: "temp", Time: "ts", Bucket: time.Hour, Lat: "lat", Lon: "lon", Resolution: 6})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Add(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// Identical data: every group within tolerance, zero error.
	c := CompareMeans(raw, raw, 3, 0.1)
	if c.Groups == 0 || c.Within != c.Groups || c.MaxRelErr != 0 {
		t.Fatalf("self comparison %+v", c)
	}
	// Coarsened copy compared through its cell column: same groups, same means.
	co, _ := NewCoarsener(rec.Schema(), CoarsenOptions{Lat: "lat", Lon: "lon", Resolution: 6, Cell: "cell", Time: "ts", Bucket: time.Hour, Mem: mem})
	out, err := co.Apply(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	rel, err := NewCellMeans(out.Schema(), CellMeanOptions{Subject: "vin", Value: "temp", Time: "ts", Bucket: time.Hour, Cell: "cell"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rel.Add(ctx, out); err != nil {
		t.Fatal(err)
	}
	c = CompareMeans(raw, rel, 3, 0.1)
	if c.Groups == 0 || c.Within != c.Groups || c.MaxRelErr > 1e-12 {
		t.Fatalf("coarsened comparison %+v", c)
	}
	// An empty release fails every group.
	empty, _ := NewCellMeans(out.Schema(), CellMeanOptions{Subject: "vin", Value: "temp", Time: "ts", Bucket: time.Hour, Cell: "cell"})
	if c := CompareMeans(raw, empty, 3, 0.1); c.Released != 0 || c.Within != 0 {
		t.Fatalf("empty release %+v", c)
	}
}

// TestProtectTraceK: every published trip's trace is shared by at least
// TraceK trips, rarer trips are released detached (null id), no row is lost,
// and unicity of the published trips, measured independently, is zero.
func TestProtectTraceK(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	rs := synthFleet(12, 80, 3)
	opts := protectOpts(mem, t)
	opts.Resolution, opts.K, opts.TraceK, opts.Endpoints = 5, 3, 3, EndpointsDetach
	rd := makeReader(t, mem, rs, 1500)
	defer rd.Release()
	traces := map[int64]map[string]bool{}
	var nulls int64
	var u *UnicityIndex
	st, err := Protect(ctx, rd, opts, func(rec arrow.RecordBatch) error {
		if u == nil {
			var err error
			if u, err = NewUnicityIndex(rec.Schema(), UnicityColumns{Subject: "trip", Space: []string{"cell"}, Time: "ts", SkipNullSubjects: true}); err != nil {
				return err
			}
		}
		trip := rec.Column(0).(*array.Int64)
		cell := newStringKeyer(rec.Column(2))
		ts := rec.Column(1)
		for i := 0; i < trip.Len(); i++ {
			if trip.IsNull(i) {
				nulls++
				continue
			}
			if traces[trip.Value(i)] == nil {
				traces[trip.Value(i)] = map[string]bool{}
			}
			traces[trip.Value(i)][cell.key(i)+"@"+ts.ValueStr(i)] = true
		}
		return u.Add(ctx, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.RowsIn != int64(len(rs)) || st.RowsTrimmed != 0 || st.RowsIn != st.RowsOut+st.RowsSuppressed {
		t.Fatalf("accounting %+v", st)
	}
	count := map[string]int{}
	for _, tr := range traces {
		var keys []string
		for k := range tr {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		count[strings.Join(keys, ",")]++
	}
	for sig, n := range count {
		if n < opts.TraceK {
			t.Fatalf("published trace %s shared by %d trips < TraceK %d", sig, n, opts.TraceK)
		}
	}
	if st.Traces.Published != len(traces) || st.Traces.Published == 0 || st.Traces.Published == st.Traces.Trips || nulls == 0 {
		t.Fatalf("trace stats %+v, published ids seen %d, null rows %d", st.Traces, len(traces), nulls)
	}
	res, err := u.Estimate(UnicityOptions{P: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unique != 0 || res.Unlinked != nulls {
		t.Fatalf("unicity of published trips %+v (null rows %d)", res, nulls)
	}
}

// TestTraceGateMatchesProtect: the per-batch building blocks (Segmenter,
// Coarsener, CellSuppressor, TraceGate), composed as a pipeline would,
// publish the same trips as Protect.
func TestTraceGateMatchesProtect(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	rs := synthFleet(13, 60, 3)
	opts := protectOpts(mem, t)
	opts.Resolution, opts.K, opts.TraceK, opts.Endpoints = 5, 3, 3, EndpointsDetach
	rd := makeReader(t, mem, rs, 1000)
	defer rd.Release()
	want, err := Protect(ctx, rd, opts, func(arrow.RecordBatch) error { return nil })
	if err != nil {
		t.Fatal(err)
	}

	seg, err := NewSegmenter(testSchema(), TripOptions{Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon", Gap: opts.Gap,
		TrimMetres: opts.TrimMetres, TrimDuration: opts.TrimDuration, Endpoints: EndpointsDetach, TripIDColumn: "trip", Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Release()
	co, err := NewCoarsener(seg.Schema(), CoarsenOptions{Lat: "lat", Lon: "lon", Resolution: 5, Cell: "cell", Time: "ts", Bucket: opts.Bucket, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	sup, err := NewCellSuppressor(co.Schema(), SuppressOptions{Subject: "vin", Cell: "cell", Time: "ts", K: 3, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	gate, err := NewTraceGate(co.Schema(), TraceGateOptions{Subject: "vin", Trip: "trip", Cell: "cell", Time: "ts", K: 3, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	// Pass 1: segment, coarsen, observe; keep the coarsened batches (a
	// pipeline would spool them or read the source twice).
	var spool []arrow.RecordBatch
	defer func() {
		for _, r := range spool {
			r.Release()
		}
	}()
	add := func(rec arrow.RecordBatch, err error) {
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		c, err := co.Apply(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := sup.Observe(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := gate.Observe(ctx, c); err != nil {
			t.Fatal(err)
		}
		spool = append(spool, c)
	}
	src := makeReader(t, mem, rs, 1000)
	defer src.Release()
	for src.Next() {
		add(seg.Push(ctx, src.RecordBatch()))
	}
	add(seg.Flush(ctx))
	gate.Seal(sup)
	var rows, nulls, byColumn int64
	for _, c := range spool {
		kept, _, err := sup.Apply(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		out, err := gate.Apply(ctx, kept)
		if err != nil {
			t.Fatal(err)
		}
		// ApplyTrips decides on the trip column alone, as Apply does.
		ti := kept.Schema().FieldIndices("trip")[0]
		before := gate.Stats().RowsDetached
		tc, err := gate.ApplyTrips(ctx, kept.Column(ti))
		kept.Release()
		if err != nil {
			t.Fatal(err)
		}
		if !array.Equal(tc, out.Column(ti)) {
			t.Fatalf("ApplyTrips: %v, Apply: %v", tc, out.Column(ti))
		}
		tc.Release()
		byColumn += gate.Stats().RowsDetached - before
		if !out.Schema().Field(out.Schema().FieldIndices("trip")[0]).Nullable {
			t.Fatal("gated trip column must be nullable")
		}
		rows += out.NumRows()
		nulls += int64(out.Column(out.Schema().FieldIndices("trip")[0]).NullN())
		out.Release()
	}
	got := gate.Stats()
	if byColumn != got.RowsDetached/2 {
		t.Errorf("ApplyTrips detached %d rows, Apply %d", byColumn, got.RowsDetached-byColumn)
	}
	got.RowsDetached -= byColumn
	if got != want.Traces || rows != want.RowsOut {
		t.Fatalf("pipeline: %+v, %d rows; Protect: %+v, %d rows", got, rows, want.Traces, want.RowsOut)
	}
	if nulls == 0 || got.Published == 0 {
		t.Fatalf("test should detach and publish some trips: %+v", got)
	}
}

// TestTraceGateSpillSame: with the in-memory limit forced low, the trace
// gate spills its trips to partition files (pieces of one trip in several)
// and publishes exactly the trips it publishes in memory.
func TestTraceGateSpillSame(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	rs := synthFleet(12, 80, 3)
	run := func() (ProtectStats, map[int64]bool) {
		opts := protectOpts(mem, t)
		opts.Resolution, opts.K, opts.TraceK, opts.Endpoints = 5, 3, 3, EndpointsDetach
		rd := makeReader(t, mem, rs, 700)
		defer rd.Release()
		ids := map[int64]bool{}
		st, err := Protect(ctx, rd, opts, func(rec arrow.RecordBatch) error {
			trip := rec.Column(0).(*array.Int64)
			for i := range trip.Len() {
				if trip.IsValid(i) {
					ids[trip.Value(i)] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := os.ReadDir(opts.TempDir); len(n) != 0 {
			t.Fatalf("%d temporary files left in %s", len(n), opts.TempDir)
		}
		return st, ids
	}
	want, _ := run()
	defer func(n int) { traceSpillAt = n }(traceSpillAt)
	traceSpillAt = 5
	got, ids := run()
	if got.Traces != want.Traces || len(ids) != want.Traces.Published || want.Traces.Published == 0 {
		t.Fatalf("spilled: %+v (%d ids written), in memory: %+v", got.Traces, len(ids), want.Traces)
	}
}
