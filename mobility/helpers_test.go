package mobility

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// reading is one test row.
type reading struct {
	subj     string
	ts       time.Time
	lat, lon float64
	temp     float64
}

var testT0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func testSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "vin", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "lon", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "temp", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
}

// makeBatch builds a batch; a NaN latitude is written as null.
func makeBatch(t testing.TB, mem memory.Allocator, rs []reading) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, testSchema())
	defer b.Release()
	vin := b.Field(0).(*array.BinaryDictionaryBuilder)
	ts := b.Field(1).(*array.TimestampBuilder)
	for _, r := range rs {
		if err := vin.AppendString(r.subj); err != nil {
			t.Fatal(err)
		}
		ts.Append(arrow.Timestamp(r.ts.UnixMilli()))
		if math.IsNaN(r.lat) {
			b.Field(2).(*array.Float64Builder).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(r.lat)
		}
		b.Field(3).(*array.Float64Builder).Append(r.lon)
		b.Field(4).(*array.Float64Builder).Append(r.temp)
	}
	return b.NewRecordBatch()
}

// makeReader splits rs into batches of size n.
func makeReader(t testing.TB, mem memory.Allocator, rs []reading, n int) array.RecordReader {
	t.Helper()
	var recs []arrow.RecordBatch
	for i := 0; i < len(rs); i += n {
		recs = append(recs, makeBatch(t, mem, rs[i:min(i+n, len(rs))]))
	}
	rd, err := array.NewRecordReader(testSchema(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	return rd
}

// synthFleet makes subjects that commute between a home and a work anchor
// around Munich, one reading every 30 s while driving, trips separated by
// hours; readings are interleaved across subjects in time order.
func synthFleet(seed uint64, subjects, days int) []reading {
	rng := rand.New(rand.NewPCG(seed, 1))
	var rs []reading
	for s := 0; s < subjects; s++ {
		id := "VIN" + string(rune('A'+s%26)) + string(rune('A'+(s/26)%26)) + string(rune('0'+s/676))
		home := [2]float64{48.0 + rng.Float64()*0.3, 11.4 + rng.Float64()*0.4}
		work := [2]float64{48.1 + rng.Float64()*0.1, 11.5 + rng.Float64()*0.1}
		for d := 0; d < days; d++ {
			for leg := 0; leg < 2; leg++ {
				from, to := home, work
				start := testT0.Add(time.Duration(d)*24*time.Hour + 7*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
				if leg == 1 {
					from, to = work, home
					start = start.Add(10 * time.Hour)
				}
				dist := haversineM(from[0], from[1], to[0], to[1])
				steps := max(1, int(dist/300)) // ~10 m/s, a reading every 30 s
				for i := 0; i <= steps; i++ {
					f := float64(i) / float64(steps)
					rs = append(rs, reading{
						subj: id,
						ts:   start.Add(time.Duration(i) * 30 * time.Second),
						lat:  from[0] + f*(to[0]-from[0]) + rng.NormFloat64()*1e-4,
						lon:  from[1] + f*(to[1]-from[1]) + rng.NormFloat64()*1e-4,
						temp: 80 + 100*f + rng.NormFloat64()*5,
					})
				}
			}
		}
	}
	slices.SortStableFunc(rs, func(a, b reading) int { return a.ts.Compare(b.ts) })
	return rs
}

// refTrips is an independent reference segmentation: group by subject, sort
// by time, split where the gap exceeds gap.
func refTrips(rs []reading, gap time.Duration) [][]reading {
	by := map[string][]reading{}
	var order []string
	for _, r := range rs {
		if _, ok := by[r.subj]; !ok {
			order = append(order, r.subj)
		}
		by[r.subj] = append(by[r.subj], r)
	}
	var trips [][]reading
	for _, s := range order {
		x := by[s]
		slices.SortStableFunc(x, func(a, b reading) int { return a.ts.Compare(b.ts) })
		cur := []reading{x[0]}
		for _, r := range x[1:] {
			if r.ts.Sub(cur[len(cur)-1].ts) > gap {
				trips = append(trips, cur)
				cur = nil
			}
			cur = append(cur, r)
		}
		trips = append(trips, cur)
	}
	return trips
}

// rowsOf reads the test columns of a batch (plus the trip id if present).
func rowsOf(t testing.TB, rec arrow.RecordBatch) ([]reading, []int64) {
	t.Helper()
	vin := rec.Column(0).(*array.Dictionary)
	dict := vin.Dictionary().(*array.String)
	ts := rec.Column(1).(*array.Timestamp)
	lat, lon := rec.Column(2).(*array.Float64), rec.Column(3).(*array.Float64)
	temp := rec.Column(4).(*array.Float64)
	var trip *array.Int64
	if rec.NumCols() > 5 {
		trip = rec.Column(5).(*array.Int64)
	}
	var out []reading
	var ids []int64
	for i := 0; i < int(rec.NumRows()); i++ {
		out = append(out, reading{
			subj: dict.Value(vin.GetValueIndex(i)),
			ts:   time.UnixMilli(int64(ts.Value(i))).UTC(),
			lat:  lat.Value(i), lon: lon.Value(i), temp: temp.Value(i),
		})
		if trip != nil {
			ids = append(ids, trip.Value(i))
		}
	}
	return out, ids
}
