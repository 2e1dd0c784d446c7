package mobility

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/h3"
)

func TestCoarsener(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(7, 5, 1)
	rec := makeBatch(t, mem, rs)
	defer rec.Release()
	for _, res := range []int{5, 7, 9} {
		c, err := NewCoarsener(rec.Schema(), CoarsenOptions{Lat: "lat", Lon: "lon", Resolution: res, Cell: "cell", Time: "ts", Bucket: 15 * time.Minute, Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Apply(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%s %s %d", out.Schema().Field(2).Name, out.Schema().Field(2).Type, out.NumCols()); got != "cell dictionary<values=utf8, indices=int32, ordered=false> 4" {
			t.Fatalf("schema: %s", got)
		}
		cells := out.Column(2).(*array.Dictionary)
		dict := cells.Dictionary().(*array.String)
		ts := out.Column(1).(*array.Timestamp)
		for i, r := range rs {
			want := h3.LatLngToCell(h3.NewLatLng(r.lat, r.lon), res).String()
			if got := dict.Value(cells.GetValueIndex(i)); got != want {
				t.Fatalf("row %d: cell %s, want %s", i, got, want)
			}
			b := time.UnixMilli(int64(ts.Value(i))).UTC()
			if !b.Equal(r.ts.Truncate(15 * time.Minute)) {
				t.Fatalf("row %d: bucket %v for %v", i, b, r.ts)
			}
		}
		if dict.Len() >= len(rs) {
			t.Fatalf("dictionary has %d entries for %d rows: cells are not shared", dict.Len(), len(rs))
		}
		out.Release()
	}
}

func TestCoarsenerErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := testSchema()
	ok := CoarsenOptions{Lat: "lat", Lon: "lon", Resolution: 7, Cell: "cell", Time: "ts", Bucket: time.Hour, Mem: mem}
	for _, tc := range []struct {
		name string
		mod  func(*CoarsenOptions)
		want string
	}{
		{"resolution", func(o *CoarsenOptions) { o.Resolution = 16 }, "Resolution must be in 0..15"},
		{"no cell", func(o *CoarsenOptions) { o.Cell = "" }, "Cell (the output column name) is required"},
		{"cell clash", func(o *CoarsenOptions) { o.Cell = "temp" }, "already exists"},
		{"no bucket", func(o *CoarsenOptions) { o.Bucket = 0 }, "Bucket must be > 0"},
		{"bucket without time", func(o *CoarsenOptions) { o.Time = "" }, "Bucket is set but Time is empty"},
	} {
		o := ok
		tc.mod(&o)
		if _, err := NewCoarsener(s, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	c, err := NewCoarsener(s, ok)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rs   []reading
		want string
	}{
		{[]reading{{subj: "A", ts: testT0, lat: -90.01, lon: 0}}, `row 1, column "lat": latitude -90.01 out of range`},
		{[]reading{{subj: "A", ts: testT0, lat: 0, lon: 0}, {subj: "A", ts: testT0, lat: 0, lon: 181}}, `row 2, column "lon": longitude 181`},
		{[]reading{{subj: "A", ts: testT0, lat: 999, lon: 0}}, `row 1, column "lat": latitude 999 out of range`},
		{[]reading{{subj: "A", ts: testT0, lat: 1e308, lon: 0}}, `row 1, column "lat": latitude 1e+308 out of range`},
		{[]reading{{subj: "A", ts: testT0, lat: 0, lon: -1e308}}, `row 1, column "lon": longitude -1e+308 out of range`},
	} {
		rec := makeBatch(t, mem, tc.rs)
		out, err := c.Apply(context.Background(), rec)
		rec.Release()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			if out != nil {
				out.Release()
			}
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

func TestFloorDiv(t *testing.T) {
	for _, tc := range [][3]int64{{7, 5, 1}, {-7, 5, -2}, {-5, 5, -1}, {0, 5, 0}, {5, 5, 1}} {
		if got := floorDiv(tc[0], tc[1]); got != tc[2] {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", tc[0], tc[1], got, tc[2])
		}
	}
}

// A timestamp whose bucket starts before the smallest int64 is an error
// naming column and row, not a floor that wraps to the far future; the
// smallest bucket that fits is floored as usual (issue #13).
func TestFloorTimesRange(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const hour = int64(3_600_000)
	first := int64(math.MinInt64) - int64(math.MinInt64)%hour // smallest multiple of an hour
	for _, tc := range []struct {
		in   []arrow.Timestamp
		want []arrow.Timestamp
		err  string
	}{
		{[]arrow.Timestamp{arrow.Timestamp(first), -1, math.MaxInt64}, []arrow.Timestamp{arrow.Timestamp(first), arrow.Timestamp(-hour), arrow.Timestamp(math.MaxInt64 - math.MaxInt64%hour)}, ""},
		{[]arrow.Timestamp{0, arrow.Timestamp(first - 1)}, nil, `row 8, column "ts": timestamp -9223372036854000001 cannot be floored`},
	} {
		b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"})
		b.AppendValues(tc.in, nil)
		ts := b.NewTimestampArray()
		b.Release()
		out, err := floorTimes(mem, ts, hour, "ts", 6)
		ts.Release()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err %v, want %q", err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out.(*array.Timestamp).TimestampValues() {
			if v != tc.want[i] {
				t.Errorf("row %d: %d, want %d", i, v, tc.want[i])
			}
		}
		out.Release()
	}
}

// TestCellSuppressor checks against a brute-force count of distinct subjects.
func TestCellSuppressor(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	var pts []cellTrace
	for s := 0; s < 40; s++ {
		for j := 0; j < 5; j++ {
			pts = append(pts, cellTrace{fmt.Sprint("S", s%13), fmt.Sprint("c", (s*j+s/7)%9), (j + s) % 4})
		}
	}
	rec := cellBatch(t, mem, pts)
	defer rec.Release()
	const k = 4
	sup, err := NewCellSuppressor(rec.Schema(), SuppressOptions{Subject: "trip", Cell: "cell", Time: "ts", K: k, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	h := rec.NumRows() / 3
	parts := []arrow.RecordBatch{rec.NewSlice(0, h), rec.NewSlice(h, rec.NumRows())}
	defer parts[0].Release()
	defer parts[1].Release()
	for _, p := range parts {
		if err := sup.Observe(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	subs := map[[2]any]map[string]bool{}
	for _, p := range pts {
		k := [2]any{p.cell, p.hour}
		if subs[k] == nil {
			subs[k] = map[string]bool{}
		}
		subs[k][p.subj] = true
	}
	var wantDrop int64
	for _, p := range pts {
		if len(subs[[2]any{p.cell, p.hour}]) < k {
			wantDrop++
		}
	}
	var dropped, kept int64
	for _, p := range parts {
		out, d, err := sup.Apply(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
		kept += out.NumRows()
		out.Release()
	}
	if wantDrop == 0 || wantDrop == int64(len(pts)) {
		t.Fatalf("test data should suppress some but not all rows (%d of %d)", wantDrop, len(pts))
	}
	if dropped != wantDrop || kept+dropped != int64(len(pts)) {
		t.Fatalf("dropped %d kept %d, want dropped %d of %d", dropped, kept, wantDrop, len(pts))
	}
	st := sup.Stats()
	if st.Groups != len(subs) || st.RowsSuppressed != wantDrop {
		t.Fatalf("stats %+v (groups want %d)", st, len(subs))
	}
	if err := sup.Observe(ctx, parts[0]); err == nil {
		t.Fatal("Observe after Apply must fail")
	}
	if _, err := NewCellSuppressor(rec.Schema(), SuppressOptions{Subject: "trip", Cell: "cell", Time: "ts"}); err == nil || !strings.Contains(err.Error(), "K must be >= 2") {
		t.Fatalf("missing K: %v", err)
	}
}
