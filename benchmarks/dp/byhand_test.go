package dpbench

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// BenchmarkByHandBounding isolates the bounding part of dpagg-rows (L∞
// reservoirs per (vehicle, segment); no L0, no library objects) to show
// what it costs and why:
//
//	map          what byHand does: Go map (vehicle, segment) → reservoir
//	dense        a slice of pairs per vehicle code, linear search (what a
//	             user could write for dictionary-coded vehicles)
//	map-grouped  the map on the same rows sorted by vehicle: pairs are
//	             then touched one vehicle at a time and stay in cache
//
// The benchmark data interleave vehicles uniformly, so every row of map and
// dense touches one of ~1.15 million pairs (~50 MB) at random.
func BenchmarkByHandBounding(b *testing.B) {
	f := buildFleet(benchRows, benchVehicles, benchSegments)
	defer f.release()
	type row struct {
		vin, seg int32
		temp     float64
	}
	var rows []row
	for _, rec := range f.batches {
		vin := rec.Column(0).(*array.Dictionary).Indices().(*array.Int32).Int32Values()
		seg := rec.Column(1).(*array.Dictionary).Indices().(*array.Int32).Int32Values()
		temp := rec.Column(2).(*array.Float64).Float64Values()
		for i := range vin {
			rows = append(rows, row{vin[i], seg[i], temp[i]})
		}
	}
	grouped := slices.Clone(rows)
	slices.SortStableFunc(grouped, func(x, y row) int { return int(x.vin) - int(y.vin) })
	type reservoir struct {
		seen int
		vals [linf]float64
	}
	byMap := func(rows []row) int {
		r := rand.New(rand.NewChaCha8([32]byte{1}))
		index := map[uint64]int32{}
		var res []reservoir
		for _, x := range rows {
			k := uint64(x.vin)<<32 | uint64(x.seg)
			j, ok := index[k]
			if !ok {
				j = int32(len(res))
				index[k] = j
				res = append(res, reservoir{})
			}
			p := &res[j]
			p.seen++
			if p.seen <= linf {
				p.vals[p.seen-1] = x.temp
			} else if i := r.IntN(p.seen); i < linf {
				p.vals[i] = x.temp
			}
		}
		return len(res)
	}
	run := func(name string, fn func() int) {
		b.Run(name, func(b *testing.B) {
			pairs := 0
			cpu0 := cpuTime()
			for b.Loop() {
				pairs = fn()
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRows, "ns/row")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/benchRows, "cpu-ns/row")
			b.ReportMetric(float64(pairs), "pairs")
		})
	}
	run("map", func() int { return byMap(rows) })
	run("dense", func() int {
		type pair struct {
			seg  int32
			seen int32
			vals [linf]float64
		}
		r := rand.New(rand.NewChaCha8([32]byte{1}))
		per := make([][]pair, benchVehicles)
		n := 0
		for _, x := range rows {
			ps := per[x.vin]
			j := 0
			for j < len(ps) && ps[j].seg != x.seg {
				j++
			}
			if j == len(ps) {
				ps = append(ps, pair{seg: x.seg})
				per[x.vin] = ps
				n++
			}
			p := &ps[j]
			p.seen++
			if p.seen <= linf {
				p.vals[p.seen-1] = x.temp
			} else if i := r.Int32N(p.seen); i < linf {
				p.vals[i] = x.temp
			}
		}
		return n
	})
	run("map-grouped", func() int { return byMap(grouped) })
}
