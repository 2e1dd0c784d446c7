package mobility

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/h3"
)

func tripOpts(mem memory.Allocator) TripOptions {
	return TripOptions{
		Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon",
		Gap: 10 * time.Minute, TrimMetres: 500, TrimDuration: 2 * time.Minute,
		TripIDColumn: "trip", TripIDs: TripIDSequence, Mem: mem,
	}
}

// segment runs rs through a Segmenter and returns output rows, trip ids and stats.
func segment(t *testing.T, mem memory.Allocator, rd array.RecordReader, opts TripOptions) ([]reading, []int64, TripStats) {
	t.Helper()
	var rows []reading
	var ids []int64
	st, err := SegmentAll(context.Background(), rd, opts, func(rec arrow.RecordBatch) error {
		r, id := rowsOf(t, rec)
		rows, ids = append(rows, r...), append(ids, id...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows, ids, st
}

func TestHaversineMatchesH3(t *testing.T) {
	pts := [][4]float64{{48.1, 11.5, 48.2, 11.6}, {0, 0, 0, 1}, {-33.9, 151.2, 51.5, -0.1}, {48.13, 11.57, 48.13, 11.57}}
	for _, p := range pts {
		got := haversineM(p[0], p[1], p[2], p[3])
		want := h3.GreatCircleDistanceM(h3.NewLatLng(p[0], p[1]), h3.NewLatLng(p[2], p[3]))
		if math.Abs(got-want) > 1e-6*math.Max(1, want) {
			t.Errorf("haversine%v = %v, h3 says %v", p, got, want)
		}
	}
}

// TestTrimmedTripsKeepAwayFromEndpoints checks the output against an
// independent reference segmentation: every kept row is more than D metres
// from its trip's original endpoints and at least T from its ends, and every
// row that satisfies both is kept.
func TestTrimmedTripsKeepAwayFromEndpoints(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(1, 40, 3)
	rd := makeReader(t, mem, rs, 1000)
	defer rd.Release()
	opts := tripOpts(mem)
	out, ids, st := segment(t, mem, rd, opts)

	ref := refTrips(rs, opts.Gap)
	if st.Trips != int64(len(ref)) {
		t.Fatalf("trips = %d, reference says %d", st.Trips, len(ref))
	}
	if st.RowsIn != int64(len(rs)) || st.RowsIn != st.RowsOut+st.RowsTrimmed || st.OpenRows != 0 {
		t.Fatalf("row accounting broken: %+v (input %d)", st, len(rs))
	}
	want := map[string]bool{}
	for _, tr := range ref {
		first, last := tr[0], tr[len(tr)-1]
		for _, r := range tr {
			if haversineM(r.lat, r.lon, first.lat, first.lon) > opts.TrimMetres &&
				haversineM(r.lat, r.lon, last.lat, last.lon) > opts.TrimMetres &&
				r.ts.Sub(first.ts) >= opts.TrimDuration && last.ts.Sub(r.ts) >= opts.TrimDuration {
				want[fmt.Sprint(r.subj, r.ts.UnixMilli())] = true
			}
		}
	}
	if len(out) != len(want) {
		t.Fatalf("kept %d rows, reference keeps %d", len(out), len(want))
	}
	// Group the output by trip id and check the radius on the original endpoints.
	endpoints := map[string][2]reading{}
	for _, tr := range ref {
		for _, r := range tr {
			endpoints[fmt.Sprint(r.subj, r.ts.UnixMilli())] = [2]reading{tr[0], tr[len(tr)-1]}
		}
	}
	tripSubj := map[int64]string{}
	for i, r := range out {
		k := fmt.Sprint(r.subj, r.ts.UnixMilli())
		if !want[k] {
			t.Fatalf("row %s kept but should be trimmed", k)
		}
		e := endpoints[k]
		for _, p := range e {
			if d := haversineM(r.lat, r.lon, p.lat, p.lon); d <= opts.TrimMetres {
				t.Fatalf("kept row %s is %.1f m from an endpoint (D = %v)", k, d, opts.TrimMetres)
			}
		}
		if s, ok := tripSubj[ids[i]]; ok && s != r.subj {
			t.Fatalf("trip %d holds two subjects", ids[i])
		}
		tripSubj[ids[i]] = r.subj
	}
	if st.RowsTrimmed == 0 || st.RowsOut == 0 {
		t.Fatalf("test fleet should exercise both trimming and keeping: %+v", st)
	}
}

// canonTrips renders output rows grouped by trip, independent of trip ids
// and of row order.
func canonTrips(rows []reading, ids []int64) string {
	by := map[int64][]string{}
	for i, r := range rows {
		by[ids[i]] = append(by[ids[i]], fmt.Sprintf("%s@%d/%.7f/%.7f/%.3f", r.subj, r.ts.UnixMilli(), r.lat, r.lon, r.temp))
	}
	var trips []string
	for _, x := range by {
		slices.Sort(x)
		trips = append(trips, strings.Join(x, ","))
	}
	slices.Sort(trips)
	return strings.Join(trips, "\n")
}

// TestUnsortedEqualsSorted: shuffled input, sorted with spills to disk, gives
// the same trips as time-ordered input streamed directly.
func TestUnsortedEqualsSorted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	rs := synthFleet(2, 25, 2)
	opts := tripOpts(mem)

	rd := makeReader(t, mem, rs, 777)
	wantRows, wantIDs, wantSt := segment(t, mem, rd, opts)
	rd.Release()

	shuf := slices.Clone(rs)
	rng := rand.New(rand.NewPCG(9, 9))
	rng.Shuffle(len(shuf), func(i, j int) { shuf[i], shuf[j] = shuf[j], shuf[i] })
	for _, maxRows := range []int{0, 1000, 3333} {
		t.Run(fmt.Sprint("maxRows=", maxRows), func(t *testing.T) {
			src := makeReader(t, mem, shuf, 500)
			defer src.Release()
			sorted, err := SortBySubjectTime(ctx, src, SortOptions{Subject: "vin", Time: "ts", MaxRowsInMemory: maxRows, BatchSize: 900, TempDir: t.TempDir(), Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer sorted.Release()
			if maxRows > 0 && sorted.Runs() < 2 {
				t.Fatalf("expected spilled runs, got %d", sorted.Runs())
			}
			sopts := opts
			sopts.Order = OrderSubject
			gotRows, gotIDs, gotSt := segment(t, mem, sorted, sopts)
			if gotSt.Trips != wantSt.Trips || gotSt.RowsOut != wantSt.RowsOut || gotSt.RowsTrimmed != wantSt.RowsTrimmed {
				t.Fatalf("stats differ: sorted input %+v, time-ordered %+v", gotSt, wantSt)
			}
			if canonTrips(gotRows, gotIDs) != canonTrips(wantRows, wantIDs) {
				t.Fatal("trips differ between sorted-from-unsorted and time-ordered input")
			}
		})
	}
}

func TestSortOrder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(3, 10, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	src := makeReader(t, mem, rs, 100)
	defer src.Release()
	sorted, err := SortBySubjectTime(context.Background(), src, SortOptions{Subject: "vin", Time: "ts", MaxRowsInMemory: 250, BatchSize: 64, TempDir: t.TempDir(), Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer sorted.Release()
	var got []reading
	for sorted.Next() {
		r, _ := rowsOf(t, sorted.RecordBatch())
		got = append(got, r...)
	}
	if err := sorted.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rs) {
		t.Fatalf("sorted %d rows, want %d", len(got), len(rs))
	}
	ok := slices.IsSortedFunc(got, func(a, b reading) int {
		if c := strings.Compare(a.subj, b.subj); c != 0 {
			return c
		}
		return a.ts.Compare(b.ts)
	})
	if !ok {
		t.Fatal("output not ordered by (subject, time)")
	}
}

func TestSegmenterEdgeCases(t *testing.T) {
	at := func(min int) time.Time { return testT0.Add(time.Duration(min) * time.Minute) }
	single := []reading{{subj: "A", ts: at(0), lat: 48.1, lon: 11.5}, {subj: "A", ts: at(60), lat: 48.2, lon: 11.6}}
	cases := []struct {
		name     string
		rs       []reading
		trimM    float64
		trimT    time.Duration
		out      int64
		trimmed  int64
		trips    int64
		empty    int64
		errMatch string
		order    InputOrder
	}{
		{name: "single-point trips kept without trimming", rs: single, out: 2, trips: 2},
		{name: "single-point trips trimmed away", rs: single, trimM: 1, trimmed: 2, trips: 2, empty: 2},
		{name: "single-point trips trimmed by time", rs: single, trimT: time.Second, trimmed: 2, trips: 2, empty: 2},
		{name: "null latitude", rs: []reading{{subj: "A", ts: at(0), lat: math.NaN(), lon: 11}}, errMatch: `row 1, column "lat": null`},
		{name: "latitude out of range", rs: []reading{{subj: "A", ts: at(0), lat: 48, lon: 11}, {subj: "A", ts: at(1), lat: 91, lon: 11}}, errMatch: `row 2, column "lat": latitude 91 out of range`},
		{name: "longitude out of range", rs: []reading{{subj: "A", ts: at(0), lat: 48, lon: -180.5}}, errMatch: `row 1, column "lon": longitude -180.5 out of range`},
		{name: "subject goes back in time", rs: []reading{{subj: "A", ts: at(5), lat: 48, lon: 11}, {subj: "A", ts: at(1), lat: 48, lon: 11}}, errMatch: `row 2, column "ts": timestamp earlier`},
		{name: "subject not grouped", order: OrderSubject, rs: []reading{{subj: "A", ts: at(0), lat: 48, lon: 11}, {subj: "B", ts: at(1), lat: 48, lon: 11}, {subj: "A", ts: at(2), lat: 48, lon: 11}}, errMatch: `row 3, column "vin": subject seen before`},
		{name: "late row beyond lateness", rs: []reading{{subj: "A", ts: at(0), lat: 48, lon: 11}, {subj: "B", ts: at(30), lat: 48, lon: 11}, {subj: "A", ts: at(5), lat: 48, lon: 11}}, errMatch: `row 3, column "ts": row arrives more than Lateness`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			opts := tripOpts(mem)
			opts.TrimMetres, opts.TrimDuration = tc.trimM, tc.trimT
			opts.Order = tc.order
			// One row per batch: exercises watermark closing between batches.
			rd := makeReader(t, mem, tc.rs, 1)
			defer rd.Release()
			st, err := SegmentAll(context.Background(), rd, opts, func(arrow.RecordBatch) error { return nil })
			if tc.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.errMatch)
				}
				if strings.Contains(err.Error(), "\"A\"") {
					t.Fatalf("error leaks the subject: %v", err)
				}
				if want := tc.order == OrderSubject || strings.Contains(tc.name, "time") || strings.Contains(tc.name, "late"); errors.Is(err, ErrOrder) != want {
					t.Fatalf("errors.Is(%v, ErrOrder) = %v, want %v", err, !want, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.RowsOut != tc.out || st.RowsTrimmed != tc.trimmed || st.Trips != tc.trips || st.TripsEmpty != tc.empty {
				t.Fatalf("stats %+v, want out %d trimmed %d trips %d empty %d", st, tc.out, tc.trimmed, tc.trips, tc.empty)
			}
		})
	}
}

// TestSegmenterGrouped: Grouped tells a vehicle-by-vehicle input (which
// OrderSubject streams) from an interleaved one, in either order.
func TestSegmenterGrouped(t *testing.T) {
	at := func(min int) time.Time { return testT0.Add(time.Duration(min) * time.Minute) }
	r := func(subj string, min int) reading { return reading{subj: subj, ts: at(min), lat: 48, lon: 11} }
	for _, tc := range []struct {
		name    string
		rs      []reading
		grouped bool
	}{
		{"one subject", []reading{r("A", 0), r("A", 1), r("A", 2)}, true},
		{"by subject", []reading{r("A", 0), r("A", 300), r("B", 0), r("B", 2), r("C", 1)}, true},
		{"interleaved", []reading{r("A", 0), r("B", 0), r("A", 1), r("B", 1)}, false},
		{"subject back in time", []reading{r("A", 5), r("A", 1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			for _, order := range []InputOrder{OrderTime, OrderSubject} {
				opts := tripOpts(mem)
				opts.Order = order
				seg, err := NewSegmenter(testSchema(), opts)
				if err != nil {
					t.Fatal(err)
				}
				rd := makeReader(t, mem, tc.rs, 1)
				for rd.Next() {
					out, err := seg.Push(context.Background(), rd.RecordBatch())
					if err != nil {
						break
					}
					out.Release()
				}
				rd.Release()
				if got := seg.Grouped(); got != tc.grouped {
					t.Errorf("order %d: Grouped() = %v, want %v", order, got, tc.grouped)
				}
				seg.Release()
			}
		})
	}
}

func TestNewSegmenterOptions(t *testing.T) {
	base := tripOpts(nil)
	cases := []struct {
		name string
		mod  func(*TripOptions)
		want string
	}{
		{"missing subject", func(o *TripOptions) { o.Subject = "" }, "Subject is required"},
		{"unknown column", func(o *TripOptions) { o.Lat = "latitude" }, `Lat: column "latitude" not in schema`},
		{"wrong type", func(o *TripOptions) { o.Lat = "ts" }, "want float64"},
		{"time not timestamp", func(o *TripOptions) { o.Time = "temp" }, "want timestamp"},
		{"zero gap", func(o *TripOptions) { o.Gap = 0 }, "Gap must be > 0"},
		{"negative metres", func(o *TripOptions) { o.TrimMetres = -1 }, "TrimMetres must be finite"},
		{"NaN metres", func(o *TripOptions) { o.TrimMetres = math.NaN() }, "TrimMetres must be finite"},
		{"negative duration", func(o *TripOptions) { o.TrimDuration = -time.Second }, "TrimDuration must be >= 0"},
		{"trip column clash", func(o *TripOptions) { o.TripIDColumn = "temp" }, "already exists"},
		{"sub-ms gap", func(o *TripOptions) { o.Gap = time.Microsecond }, "below the resolution"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			_, err := NewSegmenter(testSchema(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "mobility.NewSegmenter") {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSegmenterBoundedMemory: on interleaved input the open rows stay far
// below the input size (trips close by watermark, not only at Flush).
func TestSegmenterBoundedMemory(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(4, 30, 4)
	rd := makeReader(t, mem, rs, 200)
	defer rd.Release()
	_, _, st := segment(t, mem, rd, tripOpts(mem))
	if st.MaxOpenRows*10 > st.RowsIn {
		t.Fatalf("held up to %d of %d rows: trips are not closed while streaming", st.MaxOpenRows, st.RowsIn)
	}
}

func TestTripIDsRandomAreDistinct(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(5, 20, 2)
	rd := makeReader(t, mem, rs, 300)
	defer rd.Release()
	opts := tripOpts(mem)
	opts.TripIDs = TripIDRandom
	opts.TrimMetres, opts.TrimDuration = 0, 0
	rows, ids, st := segment(t, mem, rd, opts)
	trips := map[int64]string{}
	for i, id := range ids {
		if s, ok := trips[id]; ok && s != rows[i].subj {
			t.Fatalf("random trip id %d shared by two subjects", id)
		}
		trips[id] = rows[i].subj
		if id < 0 {
			t.Fatalf("negative trip id %d", id)
		}
	}
	if int64(len(trips)) != st.Trips {
		t.Fatalf("%d distinct ids for %d trips", len(trips), st.Trips)
	}
}

// TestEndpointsDetach: the readings trimming takes off are emitted with a
// null trip id — exactly those the reference trims — and the trips keep
// their distance from their original endpoints.
func TestEndpointsDetach(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(11, 30, 2)
	rd := makeReader(t, mem, rs, 500)
	defer rd.Release()
	opts := tripOpts(mem)
	opts.Endpoints = EndpointsDetach
	trimmed := map[string]bool{}
	for _, tr := range refTrips(rs, opts.Gap) {
		first, last := tr[0], tr[len(tr)-1]
		for _, r := range tr {
			if haversineM(r.lat, r.lon, first.lat, first.lon) <= opts.TrimMetres || haversineM(r.lat, r.lon, last.lat, last.lon) <= opts.TrimMetres ||
				r.ts.Sub(first.ts) < opts.TrimDuration || last.ts.Sub(r.ts) < opts.TrimDuration {
				trimmed[fmt.Sprint(r.subj, r.ts.UnixMilli())] = true
			}
		}
	}
	var detached int
	st, err := SegmentAll(context.Background(), rd, opts, func(rec arrow.RecordBatch) error {
		if !rec.Schema().Field(5).Nullable {
			t.Fatal("trip column must be nullable with EndpointsDetach")
		}
		rows, _ := rowsOf(t, rec)
		trip := rec.Column(5)
		for i, r := range rows {
			k := fmt.Sprint(r.subj, r.ts.UnixMilli())
			if trip.IsNull(i) != trimmed[k] {
				t.Fatalf("row %s: detached=%v, reference trims=%v", k, trip.IsNull(i), trimmed[k])
			}
			if trip.IsNull(i) {
				detached++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.RowsTrimmed != 0 || st.RowsOut != st.RowsIn || st.RowsDetached != int64(len(trimmed)) || detached != len(trimmed) || detached == 0 {
		t.Fatalf("stats %+v, detached %d, reference %d", st, detached, len(trimmed))
	}
	opts.TripIDColumn = ""
	if _, err := NewSegmenter(testSchema(), opts); err == nil || !strings.Contains(err.Error(), "requires TripIDColumn") {
		t.Fatalf("detach without trip column: %v", err)
	}
}

// TestEndpointRadiusMatchesHaversine: the fast radius test agrees with the
// haversine distance away from the boundary (1 mm).
func TestEndpointRadiusMatchesHaversine(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for range 20000 {
		a := point{lat: 47 + rng.Float64()*2, lon: 10 + rng.Float64()*3}
		b := point{lat: a.lat + rng.NormFloat64()*0.01, lon: a.lon + rng.NormFloat64()*0.01}
		p := point{lat: a.lat + rng.NormFloat64()*0.02, lon: a.lon + rng.NormFloat64()*0.02}
		d := rng.Float64() * 3000
		e := newEndpointRadius(a, b, d)
		da, db := haversineM(p.lat, p.lon, a.lat, a.lon), haversineM(p.lat, p.lon, b.lat, b.lon)
		if math.Abs(da-d) < 1e-3 || math.Abs(db-d) < 1e-3 {
			continue
		}
		if want := da <= d || db <= d; e.within(p.lat, p.lon) != want {
			t.Fatalf("within(%v) = %v, haversine says %v (%.3f, %.3f vs %.3f)", p, !want, want, da, db, d)
		}
	}
	if e := newEndpointRadius(point{}, point{}, 3e7); !e.within(-45, 170) {
		t.Fatal("a radius beyond half the globe must cover every point")
	}
}

func TestCancelledContext(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := makeBatch(t, mem, synthFleet(1, 2, 1))
	defer rec.Release()
	seg, err := NewSegmenter(rec.Schema(), tripOpts(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Release()
	if _, err := seg.Push(ctx, rec); err != context.Canceled {
		t.Fatalf("Push with a cancelled context: %v", err)
	}
	rd := makeReader(t, mem, synthFleet(1, 2, 1), 10)
	defer rd.Release()
	if _, err := SortBySubjectTime(ctx, rd, SortOptions{Subject: "vin", Time: "ts", Mem: mem}); err != context.Canceled {
		t.Fatalf("SortBySubjectTime with a cancelled context: %v", err)
	}
}

// TestSortPlainStringSubjects covers the non-dictionary key path with spills.
func TestSortPlainStringSubjects(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 3))
	var pts []cellTrace
	for i := 0; i < 500; i++ {
		pts = append(pts, cellTrace{fmt.Sprint("s", rng.IntN(37)), "c", rng.IntN(1000)})
	}
	var recs []arrow.RecordBatch
	for i := 0; i < len(pts); i += 60 {
		recs = append(recs, cellBatch(t, mem, pts[i:min(i+60, len(pts))]))
	}
	src, err := array.NewRecordReader(recs[0].Schema(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	defer src.Release()
	sorted, err := SortBySubjectTime(context.Background(), src, SortOptions{Subject: "trip", Time: "ts", MaxRowsInMemory: 120, BatchSize: 77, TempDir: t.TempDir(), Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer sorted.Release()
	var got [][2]string
	for sorted.Next() {
		rec := sorted.RecordBatch()
		s, ts := rec.Column(0).(*array.String), rec.Column(2).(*array.Timestamp)
		for i := 0; i < s.Len(); i++ {
			got = append(got, [2]string{s.Value(i), fmt.Sprintf("%020d", ts.Value(i))})
		}
	}
	if err := sorted.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pts) || sorted.Runs() < 3 {
		t.Fatalf("%d rows in %d runs, want %d rows in several runs", len(got), sorted.Runs(), len(pts))
	}
	if !slices.IsSortedFunc(got, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	}) {
		t.Fatal("not sorted by (subject, time)")
	}
}
