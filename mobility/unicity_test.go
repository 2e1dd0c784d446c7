package mobility

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// cellTrace is a test point: subject, cell, hour.
type cellTrace struct {
	subj string
	cell string
	hour int
}

func cellBatch(t testing.TB, mem memory.Allocator, pts []cellTrace) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "trip", Type: arrow.BinaryTypes.String},
		{Name: "cell", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, p := range pts {
		b.Field(0).(*array.StringBuilder).Append(p.subj)
		if err := b.Field(1).(*array.BinaryDictionaryBuilder).AppendString(p.cell); err != nil {
			t.Fatal(err)
		}
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(testT0.Add(time.Duration(p.hour) * time.Hour).UnixMilli()))
	}
	return b.NewRecordBatch()
}

func cellIndex(t *testing.T, mem memory.Allocator, pts []cellTrace) *UnicityIndex {
	t.Helper()
	rec := cellBatch(t, mem, pts)
	defer rec.Release()
	u, err := NewUnicityIndex(rec.Schema(), UnicityColumns{Subject: "trip", Space: []string{"cell"}, Time: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	// Two halves: traces spread over batches (and dictionaries) still join.
	h := rec.NumRows() / 2
	for _, s := range []arrow.RecordBatch{rec.NewSlice(0, h), rec.NewSlice(h, rec.NumRows())} {
		err := u.Add(context.Background(), s)
		s.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// small: A ⊂ B; B has a private point; C alone in its cell; D and E identical.
var small = []cellTrace{
	{"A", "c1", 1}, {"A", "c2", 2},
	{"B", "c1", 1}, {"B", "c2", 2}, {"B", "c3", 3},
	{"C", "c4", 1},
	{"D", "c5", 5}, {"D", "c6", 6}, {"E", "c6", 6}, {"E", "c5", 5},
	{"A", "c1", 1}, // duplicate reading: a trace is a set
}

func TestUnicityWholeTraces(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	u := cellIndex(t, mem, small)
	// P larger than any trace: every subject's whole trace is known. Unique:
	// B (c3), C. Not unique: A (inside B), D and E (identical).
	res, err := u.Estimate(UnicityOptions{P: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Subjects != 5 || res.Sampled != 5 || res.Unique != 2 || !res.Census || res.Short != 5 || res.Points != 6 {
		t.Fatalf("got %+v", res)
	}
	if res.Lower > 0.4 || res.Upper < 0.4 || res.Lower < 0 || res.Upper > 1 {
		t.Fatalf("interval [%v, %v] should hold 0.4", res.Lower, res.Upper)
	}
	res, err = u.Estimate(UnicityOptions{P: 3, Short: ShortExclude})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sampled != 1 || res.Unique != 1 || res.Short != 4 {
		t.Fatalf("ShortExclude: got %+v, want only B evaluated and unique", res)
	}
}

// TestUnicityMatchesEnumeration: with P=2 the probability that a subject is
// unique is the share of its point pairs no other trace contains; the
// estimate averaged over seeds must match the exact expectation.
// False-rejection probability: a 4.5-sigma band, below 1e-5.
func TestUnicityMatchesEnumeration(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var pts []cellTrace
	cells := []string{"a", "b", "c", "d"}
	for s := 0; s < 30; s++ {
		id := string(rune('A'+s%26)) + string(rune('a'+s/26))
		for j := 0; j < 2+s%3; j++ {
			pts = append(pts, cellTrace{id, cells[(s*7+j*3)%4], (s*j + j) % 5})
		}
	}
	// Exact expectation by enumeration.
	trace := map[string]map[[2]any]bool{}
	for _, p := range pts {
		if trace[p.subj] == nil {
			trace[p.subj] = map[[2]any]bool{}
		}
		trace[p.subj][[2]any{p.cell, p.hour}] = true
	}
	var expect float64
	var pVar float64
	for s, tr := range trace {
		var list [][2]any
		for k := range tr {
			list = append(list, k)
		}
		pairs, uniq := 0, 0
		for i := range list {
			for j := i + 1; j < len(list); j++ {
				pairs++
				shared := false
				for o, otr := range trace {
					if o != s && otr[list[i]] && otr[list[j]] {
						shared = true
					}
				}
				if !shared {
					uniq++
				}
			}
		}
		if len(list) < 2 {
			t.Fatalf("test data: subject %s has %d points", s, len(list))
		}
		q := float64(uniq) / float64(pairs)
		expect += q
		pVar += q * (1 - q)
	}
	n := float64(len(trace))
	expect /= n
	u := cellIndex(t, mem, pts)
	const runs = 400
	var mean float64
	for seed := uint64(0); seed < runs; seed++ {
		res, err := u.Estimate(UnicityOptions{P: 2, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		mean += res.Unicity
	}
	mean /= runs
	sd := math.Sqrt(pVar/(n*n)) / math.Sqrt(runs)
	if math.Abs(mean-expect) > 4.5*sd+1e-12 {
		t.Fatalf("mean unicity over %d seeds = %.4f, exact expectation %.4f (sd %.4f)", runs, mean, expect, sd)
	}
	// Same seed, same figure.
	a, _ := u.Estimate(UnicityOptions{P: 2, Seed: 7, Samples: 10})
	b, _ := u.Estimate(UnicityOptions{P: 2, Seed: 7, Samples: 10})
	if a != b || a.Sampled != 10 || a.Census {
		t.Fatalf("seeded estimates differ or wrong sample: %+v %+v", a, b)
	}
}

func TestUnicityRaw(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(6, 50, 2)
	rd := makeReader(t, mem, rs, 1000)
	defer rd.Release()
	res, err := Unicity(context.Background(), rd, UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "ts"}, UnicityOptions{P: 4, Samples: 30, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Raw GPS with millisecond timestamps: every point is private.
	if res.Unicity != 1 || res.Sampled != 30 || res.Subjects != 50 {
		t.Fatalf("raw unicity %+v, want 1 over 30 of 50 subjects", res)
	}
}

func TestUnicityErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := testSchema()
	for _, tc := range []struct {
		name string
		cols UnicityColumns
		want string
	}{
		{"no subject", UnicityColumns{Space: []string{"lat", "lon"}, Time: "ts"}, "Subject is required"},
		{"three space columns", UnicityColumns{Subject: "vin", Space: []string{"lat", "lon", "temp"}, Time: "ts"}, "Space must name"},
		{"unknown time", UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "when"}, `column "when" not in schema`},
		{"two space columns not coordinates", UnicityColumns{Subject: "vin", Space: []string{"lat", "ts"}, Time: "ts"}, "latitude and longitude"},
	} {
		if _, err := NewUnicityIndex(schema, tc.cols); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	u, err := NewUnicityIndex(schema, UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	rec := makeBatch(t, mem, []reading{{subj: "A", ts: testT0, lat: 48, lon: 11}, {subj: "A", ts: testT0, lat: 48, lon: 200}})
	defer rec.Release()
	if err := u.Add(context.Background(), rec); err == nil || !strings.Contains(err.Error(), `row 2, column "lon"`) {
		t.Fatalf("out-of-range longitude: error %v", err)
	}
	if _, err := u.Estimate(UnicityOptions{P: 0}); err == nil || !strings.Contains(err.Error(), "P must be >= 1") {
		t.Fatalf("P=0: error %v", err)
	}
	empty, _ := NewUnicityIndex(schema, UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "ts"})
	if _, err := empty.Estimate(UnicityOptions{P: 4}); err == nil || !strings.Contains(err.Error(), "empty input") {
		t.Fatalf("empty: error %v", err)
	}
}

// TestUnicityInt64Subjects: numeric subject keys (random 63-bit trip ids) are
// mapped to dense ids, not truncated.
func TestUnicityInt64Subjects(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "trip", Type: arrow.PrimitiveTypes.Int64},
		{Name: "cell", Type: arrow.BinaryTypes.String},
		{Name: "ts", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	// Two subjects whose ids agree in the low 32 bits, sharing one point.
	for _, r := range []struct {
		id   int64
		cell string
		ts   int64
	}{{1<<40 | 7, "x", 1}, {2<<40 | 7, "x", 1}, {2<<40 | 7, "y", 2}} {
		b.Field(0).(*array.Int64Builder).Append(r.id)
		b.Field(1).(*array.StringBuilder).Append(r.cell)
		b.Field(2).(*array.Int64Builder).Append(r.ts)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	u, err := NewUnicityIndex(schema, UnicityColumns{Subject: "trip", Space: []string{"cell"}, Time: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	res, err := u.Estimate(UnicityOptions{P: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Subjects != 2 || res.Unique != 1 {
		t.Fatalf("got %+v, want 2 subjects, 1 unique", res)
	}
}

// TestUnicityUnusedDictionaryEntries: subjects that only appear in a
// dictionary, without rows, are not subjects.
func TestUnicityUnusedDictionaryEntries(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := makeBatch(t, mem, []reading{{subj: "A", ts: testT0, lat: 48, lon: 11}, {subj: "B", ts: testT0, lat: 48.1, lon: 11}})
	defer rec.Release()
	one := rec.NewSlice(0, 1) // dictionary still holds A and B
	defer one.Release()
	u, err := NewUnicityIndex(rec.Schema(), UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	res, err := u.Estimate(UnicityOptions{P: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Subjects != 1 || res.Sampled != 1 || res.Unique != 1 {
		t.Fatalf("got %+v, want the one subject with rows, unique", res)
	}
}
