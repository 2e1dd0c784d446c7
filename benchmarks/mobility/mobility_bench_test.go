package mobilitybench

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/mobility"
)

const benchRows = 10_000_000

// bigFleet is generated once, on first use by a benchmark (never by tests):
// 10 M rows, 20,000 vehicles (the demo's density per vehicle), projected to
// the columns mobility reads, plus a coarsened copy (H3 res 7, 1 h).
type bigFleet struct {
	schema, coarseSchema *arrow.Schema
	raw, coarse          []arrow.RecordBatch
	bytes                int64
}

var (
	bigOnce sync.Once
	big     bigFleet
)

func loadBig(b *testing.B) *bigFleet {
	b.Helper()
	bigOnce.Do(func() {
		cfg := brakedisc.DefaultConfig()
		cfg.Rows = benchRows
		cfg.Vehicles = 20_000
		big.schema, big.raw = loadFleet(b, cfg, memory.DefaultAllocator)
		co, err := mobility.NewCoarsener(big.schema, mobility.CoarsenOptions{Lat: "lat", Lon: "lon", Resolution: 7, Cell: "cell", Time: "ts", Bucket: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		big.coarseSchema = co.Schema()
		for _, r := range big.raw {
			c, err := co.Apply(context.Background(), r)
			if err != nil {
				b.Fatal(err)
			}
			big.coarse = append(big.coarse, c)
			for _, col := range r.Columns() {
				for _, buf := range col.Data().Buffers() {
					if buf != nil {
						big.bytes += int64(buf.Len())
					}
				}
			}
		}
	})
	if len(big.raw) == 0 {
		b.Fatal("fleet generation failed earlier")
	}
	return &big
}

func rowsOf(recs []arrow.RecordBatch) int64 {
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	return n
}

func reportRows(b *testing.B, rows int64) {
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(rows)/sec, "rows/s")
	b.ReportMetric(sec*1e9/float64(rows), "ns/row")
}

var benchTrip = mobility.TripOptions{
	Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon",
	Gap: 10 * time.Minute, TrimMetres: 1000, TrimDuration: 2 * time.Minute,
	TripIDColumn: "trip",
}

// BenchmarkTrimTrips: trip segmentation and endpoint trimming of 10 M rows.
//
//	streaming:          Segmenter over the interleaved, time-ordered stream
//	external-sort:      SortBySubjectTime (1 M-row runs spilled to disk) + Segmenter(OrderSubject)
//	baseline-in-memory: every row in a Go slice, sort.Slice by (vin, ts), split, trim
func BenchmarkTrimTrips(b *testing.B) {
	f := loadBig(b)
	rows := rowsOf(f.raw)
	ctx := context.Background()
	b.Run("streaming", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(f.bytes)
		var out int64
		for b.Loop() {
			rd, _ := array.NewRecordReader(f.schema, f.raw)
			st, err := mobility.SegmentAll(ctx, rd, benchTrip, func(arrow.RecordBatch) error { return nil })
			rd.Release()
			if err != nil {
				b.Fatal(err)
			}
			out = st.RowsOut
			b.ReportMetric(float64(st.MaxOpenRows), "max-open-rows")
		}
		reportRows(b, rows)
		b.ReportMetric(float64(rows-out)/float64(rows), "trimmed-share")
	})
	b.Run("external-sort", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(f.bytes)
		for b.Loop() {
			rd, _ := array.NewRecordReader(f.schema, f.raw)
			sorted, err := mobility.SortBySubjectTime(ctx, rd, mobility.SortOptions{Subject: "vin", Time: "ts", MaxRowsInMemory: 1 << 20, TempDir: b.TempDir()})
			rd.Release()
			if err != nil {
				b.Fatal(err)
			}
			opts := benchTrip
			opts.Order = mobility.OrderSubject
			_, err = mobility.SegmentAll(ctx, sorted, opts, func(arrow.RecordBatch) error { return nil })
			sorted.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		reportRows(b, rows)
	})
	b.Run("baseline-in-memory", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(f.bytes)
		for b.Loop() {
			naiveTrim(f.raw, benchTrip)
		}
		reportRows(b, rows)
	})
}

type naiveRow struct {
	vin      string
	ts       int64
	lat, lon float64
}

// naiveTrim is the obvious implementation: materialise, sort, split, trim.
func naiveTrim(recs []arrow.RecordBatch, o mobility.TripOptions) (kept int) {
	var rows []naiveRow
	for _, r := range recs {
		vin := r.Column(0).(*array.Dictionary)
		dict := vin.Dictionary().(*array.String)
		ts := r.Column(1).(*array.Timestamp)
		lat, lon := r.Column(2).(*array.Float64), r.Column(3).(*array.Float64)
		for i := 0; i < int(r.NumRows()); i++ {
			rows = append(rows, naiveRow{dict.Value(vin.GetValueIndex(i)), int64(ts.Value(i)), lat.Value(i), lon.Value(i)})
		}
	}
	slices.SortFunc(rows, func(a, b naiveRow) int {
		if c := cmp.Compare(a.vin, b.vin); c != 0 {
			return c
		}
		return cmp.Compare(a.ts, b.ts)
	})
	gap, trim := o.Gap.Milliseconds(), o.TrimDuration.Milliseconds()
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].vin == rows[i].vin && rows[j].ts-rows[j-1].ts <= gap {
			j++
		}
		first, last := rows[i], rows[j-1]
		for _, r := range rows[i:j] {
			if r.ts-first.ts >= trim && last.ts-r.ts >= trim &&
				mobility.DistanceMetres(r.lat, r.lon, first.lat, first.lon) > o.TrimMetres &&
				mobility.DistanceMetres(r.lat, r.lon, last.lat, last.lon) > o.TrimMetres {
				kept++
			}
		}
		i = j
	}
	return kept
}

// BenchmarkUnicity: unicity at 4 points over 10 M rows, 2,000 subjects
// drawn, index build included.
//
//	raw/index:       raw lat/lon/ts points, inverted index
//	coarse/index:    H3 res 7 cell + hour points, inverted index
//	coarse/baseline: same points, per-subject hash sets, every drawn
//	                 subject's points checked against every other subject
func BenchmarkUnicity(b *testing.B) {
	f := loadBig(b)
	rows := rowsOf(f.raw)
	ctx := context.Background()
	est := mobility.UnicityOptions{P: 4, Samples: 2000, Seed: 1}
	run := func(name string, schema *arrow.Schema, recs []arrow.RecordBatch, cols mobility.UnicityColumns) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var res mobility.UnicityResult
			for b.Loop() {
				u, err := mobility.NewUnicityIndex(schema, cols)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range recs {
					if err := u.Add(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
				if res, err = u.Estimate(est); err != nil {
					b.Fatal(err)
				}
			}
			reportRows(b, rows)
			b.ReportMetric(res.Unicity, "unicity")
		})
	}
	run("raw/index", f.schema, f.raw, mobility.UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "ts"})
	run("coarse/index", f.coarseSchema, f.coarse, mobility.UnicityColumns{Subject: "vin", Space: []string{"cell"}, Time: "ts"})
	b.Run("coarse/baseline", func(b *testing.B) {
		b.ReportAllocs()
		var u float64
		for b.Loop() {
			u = naiveUnicity(f.coarse, est)
		}
		reportRows(b, rows)
		b.ReportMetric(u, "unicity")
	})
}

// naiveUnicity: a hash set of points per subject; for each drawn subject,
// test every other subject's set for the drawn points.
func naiveUnicity(recs []arrow.RecordBatch, o mobility.UnicityOptions) float64 {
	type point struct {
		cell string
		ts   int64
	}
	sets := map[string]map[point]struct{}{}
	for _, r := range recs {
		vin := r.Column(0).(*array.Dictionary)
		vd := vin.Dictionary().(*array.String)
		ts := r.Column(1).(*array.Timestamp)
		cell := r.Column(2).(*array.Dictionary)
		cd := cell.Dictionary().(*array.String)
		for i := 0; i < int(r.NumRows()); i++ {
			v := vd.Value(vin.GetValueIndex(i))
			s := sets[v]
			if s == nil {
				s = map[point]struct{}{}
				sets[string([]byte(v))] = s
			}
			s[point{cd.Value(cell.GetValueIndex(i)), int64(ts.Value(i))}] = struct{}{}
		}
	}
	subjects := make([]string, 0, len(sets))
	for v := range sets {
		subjects = append(subjects, v)
	}
	slices.Sort(subjects)
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	unique := 0
	for n := 0; n < o.Samples; n++ {
		v := subjects[rng.IntN(len(subjects))]
		var pts []point
		for p := range sets[v] {
			pts = append(pts, p)
		}
		rng.Shuffle(len(pts), func(i, j int) { pts[i], pts[j] = pts[j], pts[i] })
		pts = pts[:min(o.P, len(pts))]
		alone := true
		for _, w := range subjects {
			if w == v {
				continue
			}
			all := true
			for _, p := range pts {
				if _, ok := sets[w][p]; !ok {
					all = false
					break
				}
			}
			if all {
				alone = false
				break
			}
		}
		if alone {
			unique++
		}
	}
	return float64(unique) / float64(o.Samples)
}
