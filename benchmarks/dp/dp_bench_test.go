package dpbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/differential-privacy/go/v2/dpagg"
	"github.com/tarnkappe/tarnkappe/dp"
)

const (
	benchRows     = 10_000_000
	benchVehicles = 100_000
	benchSegments = 5_000
	benchBatch    = 65_536
	// Each vehicle drives on segments near its home segment: offsets in
	// [0, segmentSpread), so about 12 distinct segments per vehicle.
	segmentSpread = 12
	l0, linf      = 8, 4
	lo, hi        = 0.0, 600.0
)

// fleet is the benchmark input: vin and seg are dictionary<int32, utf8>
// columns sharing one dictionary each across batches (as the fleet
// generator and Parquet readers produce), temp is float64. Rows are
// interleaved across vehicles, not grouped.
type fleet struct {
	batches []arrow.RecordBatch
}

func (f *fleet) release() {
	for _, b := range f.batches {
		b.Release()
	}
}

func buildFleet(rows, vehicles, segments int) *fleet {
	mem := memory.NewGoAllocator()
	r := rand.New(rand.NewPCG(1, 2)) // benchmark data only: reproducible
	vinB := array.NewStringBuilder(mem)
	for v := range vehicles {
		vinB.Append(fmt.Sprintf("WVWZZZ1KZ%08d", v))
	}
	vins := vinB.NewArray()
	defer vins.Release()
	segB := array.NewStringBuilder(mem)
	for s := range segments {
		segB.Append(fmt.Sprintf("seg-%05d", s))
	}
	segs := segB.NewArray()
	defer segs.Release()
	home := make([]int32, vehicles)
	for v := range home {
		home[v] = int32(r.IntN(segments))
	}
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: dt}, {Name: "seg", Type: dt}, {Name: "disc_temp_c", Type: arrow.PrimitiveTypes.Float64}}, nil)
	f := &fleet{}
	for start := 0; start < rows; start += benchBatch {
		n := min(benchBatch, rows-start)
		vi := make([]int32, n)
		si := make([]int32, n)
		tv := make([]float64, n)
		for i := range n {
			v := r.IntN(vehicles)
			vi[i] = int32(v)
			si[i] = (home[v] + int32(r.IntN(segmentSpread))) % int32(segments)
			tv[i] = 20 + 400*r.Float64()
		}
		vIdx := array.NewInt32Builder(mem)
		vIdx.AppendValues(vi, nil)
		sIdx := array.NewInt32Builder(mem)
		sIdx.AppendValues(si, nil)
		tB := array.NewFloat64Builder(mem)
		tB.AppendValues(tv, nil)
		va, sa, ta := vIdx.NewArray(), sIdx.NewArray(), tB.NewArray()
		vd := array.NewDictionaryArray(dt, va, vins)
		sd := array.NewDictionaryArray(dt, sa, segs)
		f.batches = append(f.batches, array.NewRecordBatch(schema, []arrow.Array{vd, sd, ta}, int64(n)))
		for _, a := range []arrow.Array{va, sa, vd, sd, ta} {
			a.Release()
		}
		vIdx.Release()
		sIdx.Release()
		tB.Release()
	}
	return f
}

// cpuTime is the CPU time (user + system, all threads, GC included) the
// process has used: on a machine shared with other jobs, CPU per row is a
// steadier measure of work than wall time per row.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, rows int, cpu time.Duration) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(rows)
	b.ReportMetric(ns, "ns/row")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(rows), "cpu-ns/row")
	b.ReportMetric(1e9/ns, "rows/s")
	b.SetBytes(int64(rows) * 16) // vin and seg codes, temp
}

// BenchmarkDPAggregate: count + bounded mean of disc temperature per segment
// with L0 = 8, L∞ = 4, private partition selection, on 10M rows, 100k
// vehicles, 5,000 segments.
//
//	plain      non-private group-by over the dictionary codes: the floor
//	tarnkappe  dp.NewAggregator → Add per batch → Partial → Release
//	dpagg-rows the same bounding written by hand with Go maps, then the
//	           library's objects per partition (Count, BoundedMean,
//	           PreAggSelectPartition) fed row by row
func BenchmarkDPAggregate(b *testing.B) {
	f := buildFleet(benchRows, benchVehicles, benchSegments)
	defer f.release()
	ctx := context.Background()

	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			counts := make([]int64, benchSegments)
			sums := make([]float64, benchSegments)
			for _, rec := range f.batches {
				seg := rec.Column(1).(*array.Dictionary).Indices().(*array.Int32).Int32Values()
				temp := rec.Column(2).(*array.Float64).Float64Values()
				for i, s := range seg {
					counts[s]++
					sums[s] += temp[i]
				}
			}
			means := make([]float64, benchSegments)
			for s := range means {
				if counts[s] > 0 {
					means[s] = sums[s] / float64(counts[s])
				}
			}
		}
		report(b, benchRows, cpuTime()-cpu0)
	})

	b.Run("tarnkappe", func(b *testing.B) {
		b.ReportAllocs()
		var kept int64
		var tAdd, tPartial, tRelease time.Duration
		cpu0 := cpuTime()
		for b.Loop() {
			t0 := time.Now()
			ag, err := dp.NewAggregator(dp.Options{
				Subject: "vin", GroupBy: []string{"seg"},
				// The same budget as byHand: ε 0.25 count, 0.25 mean, 0.5 + δ selection.
				Aggregates: []dp.Aggregate{
					{Kind: dp.Count, Epsilon: 0.25},
					{Kind: dp.Mean, Column: "disc_temp_c", Lower: lo, Upper: hi, Epsilon: 0.25},
				},
				Selection:     dp.Budget{Epsilon: 0.5, Delta: 1e-6},
				MaxPartitions: l0, MaxPerPartition: linf,
			})
			if err != nil {
				b.Fatal(err)
			}
			for _, rec := range f.batches {
				if err := ag.Add(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			t1 := time.Now()
			p, err := ag.Partial(ctx)
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			acct, _ := dp.NewAccountant(1, 1e-6)
			res, err := p.Release(ctx, acct, dp.ReleaseOptions{})
			if err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			tAdd, tPartial, tRelease = tAdd+t1.Sub(t0), tPartial+t2.Sub(t1), tRelease+t3.Sub(t2)
			kept = res.PartitionsKept
			res.Release()
		}
		report(b, benchRows, cpuTime()-cpu0)
		// Wall time per row of each phase: where the time goes.
		perRow := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / benchRows }
		b.ReportMetric(perRow(tAdd), "add-ns/row")
		b.ReportMetric(perRow(tPartial), "partial-ns/row")
		b.ReportMetric(perRow(tRelease), "release-ns/row")
		b.ReportMetric(float64(kept), "partitions")
	})

	b.Run("dpagg-rows", func(b *testing.B) {
		b.ReportAllocs()
		var kept int
		cpu0 := cpuTime()
		for b.Loop() {
			kept = byHand(b, f)
		}
		report(b, benchRows, cpuTime()-cpu0)
		b.ReportMetric(float64(kept), "partitions")
	})
}

// byHand is what a competent user writes with the library alone: bound
// contributions with a map from (vehicle, segment) to a reservoir of L∞ rows
// (flat slice, no per-pair allocation), L0 segments per vehicle chosen with
// a shuffle, then per segment a Count, a BoundedMean and a
// PreAggSelectPartition fed row by row.
func byHand(b *testing.B, f *fleet) int {
	type reservoir struct {
		seen int
		vals [linf]float64
	}
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	index := map[uint64]int32{}
	var res []reservoir
	var keys []uint64
	for _, rec := range f.batches {
		vin := rec.Column(0).(*array.Dictionary).Indices().(*array.Int32).Int32Values()
		seg := rec.Column(1).(*array.Dictionary).Indices().(*array.Int32).Int32Values()
		temp := rec.Column(2).(*array.Float64).Float64Values()
		for i := range vin {
			k := uint64(vin[i])<<32 | uint64(seg[i])
			j, ok := index[k]
			if !ok {
				j = int32(len(res))
				index[k] = j
				res = append(res, reservoir{})
				keys = append(keys, k)
			}
			p := &res[j]
			p.seen++
			if p.seen <= linf {
				p.vals[p.seen-1] = temp[i]
			} else if x := r.IntN(p.seen); x < linf {
				p.vals[x] = temp[i]
			}
		}
	}
	byVin := make([][]int32, benchVehicles)
	for j, k := range keys {
		byVin[k>>32] = append(byVin[k>>32], int32(j))
	}
	type objs struct {
		count *dpagg.Count
		mean  *dpagg.BoundedMean
		sel   *dpagg.PreAggSelectPartition
	}
	parts := make([]*objs, benchSegments)
	for _, ps := range byVin {
		r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		if len(ps) > l0 {
			ps = ps[:l0]
		}
		for _, j := range ps {
			seg := uint32(keys[j])
			o := parts[seg]
			if o == nil {
				c, err := dpagg.NewCount(&dpagg.CountOptions{Epsilon: 0.5 / 2, MaxPartitionsContributed: l0})
				if err != nil {
					b.Fatal(err)
				}
				m, err := dpagg.NewBoundedMean(&dpagg.BoundedMeanOptions{Epsilon: 0.5 / 2, MaxPartitionsContributed: l0, MaxContributionsPerPartition: linf, Lower: lo, Upper: hi})
				if err != nil {
					b.Fatal(err)
				}
				s, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{Epsilon: 0.5, Delta: 1e-6, MaxPartitionsContributed: l0})
				if err != nil {
					b.Fatal(err)
				}
				o = &objs{c, m, s}
				parts[seg] = o
			}
			o.sel.Increment()
			p := &res[j]
			for _, v := range p.vals[:min(p.seen, linf)] {
				o.count.Increment()
				o.mean.Add(v)
			}
		}
	}
	kept := 0
	for _, o := range parts {
		if o == nil {
			continue
		}
		keep, err := o.sel.ShouldKeepPartition()
		if err != nil {
			b.Fatal(err)
		}
		if keep {
			o.count.Result()
			o.mean.Result()
			kept++
		}
	}
	return kept
}
