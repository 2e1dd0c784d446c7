package kanonbench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/kanon"
)

var fleetQI = []string{"postcode", "model", "model_year", "owner_birth_year", "owner_sex"}

const fleetRows = 10_000_000

func fleetConfig() brakedisc.Config {
	cfg := brakedisc.DefaultConfig()
	cfg.Rows = fleetRows
	return cfg
}

// fleetHierarchies builds the fleet's hierarchies: post codes masked from
// the right, years in 5/10/20-year intervals, sex suppressed at level 1, and
// a table model → make → * read off the generator's first batches.
var fleetHier = sync.OnceValues(func() (map[string]kanon.Hierarchy, error) {
	cfg := brakedisc.DefaultConfig()
	cfg.Rows = 1 << 20
	rdr, err := brakedisc.NewReader(cfg, memory.NewGoAllocator())
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	makeOf := map[string]string{}
	var order []string
	for rdr.Next() {
		rec := rdr.RecordBatch()
		var mdl, mk *array.Dictionary
		for i, f := range rec.Schema().Fields() {
			switch f.Name {
			case "model":
				mdl = rec.Column(i).(*array.Dictionary)
			case "make":
				mk = rec.Column(i).(*array.Dictionary)
			}
		}
		for r := range int(rec.NumRows()) {
			m := mdl.Dictionary().ValueStr(mdl.GetValueIndex(r))
			if _, ok := makeOf[m]; !ok {
				makeOf[m] = mk.Dictionary().ValueStr(mk.GetValueIndex(r))
				order = append(order, m)
			}
		}
	}
	rows := make([][]string, 0, len(order))
	for _, m := range order {
		rows = append(rows, []string{m, makeOf[m], "*"})
	}
	model, err := kanon.NewTableHierarchy(rows)
	if err != nil {
		return nil, err
	}
	my, err := kanon.NewIntervalHierarchy(kanon.IntervalHierarchy{Origin: 1900, Width: 5, FanOut: 2, Height: 2, Min: 1900, Max: 2100})
	if err != nil {
		return nil, err
	}
	by, err := kanon.NewIntervalHierarchy(kanon.IntervalHierarchy{Origin: 1900, Width: 5, FanOut: 2, Height: 3, Min: 1900, Max: 2100})
	if err != nil {
		return nil, err
	}
	sex, err := kanon.NewTableHierarchy([][]string{{"F", "*"}, {"M", "*"}})
	if err != nil {
		return nil, err
	}
	return map[string]kanon.Hierarchy{
		"postcode": kanon.MaskHierarchy{MaxMasked: 4}, "model": model,
		"model_year": my, "owner_birth_year": by, "owner_sex": sex,
	}, nil
})

// peakHeap samples the Go heap while f runs and returns the peak.
func peakHeap(f func()) uint64 {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak
}

// BenchmarkKAnonFleet streams 10M synthetic brake-disc rows from the
// generator through the histogram (one pass, dictionary codes) and searches
// for k=20,000 with 1% suppression (rows, not vehicles, are counted: each
// vehicle has ~5,000 rows, so a small k would already hold at level 0). "ours" is kanon's histogram; the
// baseline "string-map" groups the same stream by the text of the values in
// a Go map (kanon.MeasureRisk, Verify's simple grouping). Both include the
// generator's cost; go_mem_mb is the Go runtime's peak mapped memory.
func BenchmarkKAnonFleet(b *testing.B) {
	hier, err := fleetHier()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		var res *kanon.Result
		var entries int
		for b.Loop() {
			peak := peakHeap(func() {
				rdr, err := brakedisc.NewReader(fleetConfig(), memory.NewGoAllocator())
				if err != nil {
					b.Fatal(err)
				}
				h, err := kanon.BuildHistogram(ctx, rdr, kanon.HistogramOptions{QuasiIdentifiers: fleetQI, Hierarchies: hier})
				rdr.Release()
				if err != nil {
					b.Fatal(err)
				}
				entries = h.Entries()
				res, err = kanon.Search(ctx, h, kanon.Options{K: 20_000, SuppressionLimit: 0.01, Metric: kanon.MetricLoss})
				if err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(peak)/(1<<20), "go_mem_mb")
		}
		b.ReportMetric(float64(fleetRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(entries), "combinations")
		b.ReportMetric(res.InformationLoss["loss"], "loss")
		b.Logf("transformation %v, suppressed %d, checked %d", res.Levels, res.SuppressedRows, res.NodesChecked)
	})
	b.Run("string-map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rdr, err := brakedisc.NewReader(fleetConfig(), memory.NewGoAllocator())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := kanon.MeasureRisk(ctx, rdr, fleetQI); err != nil {
				b.Fatal(err)
			}
			rdr.Release()
		}
		b.ReportMetric(float64(fleetRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("generator-only", func(b *testing.B) {
		for b.Loop() {
			rdr, err := brakedisc.NewReader(fleetConfig(), memory.NewGoAllocator())
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rdr.Next() {
				n += int(rdr.RecordBatch().NumRows())
			}
			rdr.Release()
			if n != fleetRows {
				b.Fatal(fmt.Sprint("rows ", n))
			}
		}
		b.ReportMetric(float64(fleetRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	runtime.GC()
}

// fleetSample is 1M generated rows kept in memory, for timing the histogram
// without the generator.
var fleetSample = sync.OnceValues(func() ([]arrow.RecordBatch, error) {
	cfg := brakedisc.DefaultConfig()
	cfg.Rows = 1_000_000
	rdr, err := brakedisc.NewReader(cfg, memory.NewGoAllocator())
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	var out []arrow.RecordBatch
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	return out, rdr.Err()
})

// BenchmarkKAnonFleetHistogram times the histogram pass alone over 1M
// in-memory fleet rows: kanon's histogram on dictionary codes against the
// string-keyed Go map baseline.
func BenchmarkKAnonFleetHistogram(b *testing.B) {
	hier, err := fleetHier()
	if err != nil {
		b.Fatal(err)
	}
	batches, err := fleetSample()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var rows int64
	for _, r := range batches {
		rows += r.NumRows()
	}
	reader := func() array.RecordReader {
		rdr, err := array.NewRecordReader(batches[0].Schema(), batches)
		if err != nil {
			b.Fatal(err)
		}
		return rdr
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rdr := reader()
			if _, err := kanon.BuildHistogram(ctx, rdr, kanon.HistogramOptions{QuasiIdentifiers: fleetQI, Hierarchies: hier}); err != nil {
				b.Fatal(err)
			}
			rdr.Release()
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(rows)/float64(b.N), "ns/row")
	})
	b.Run("string-map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rdr := reader()
			if _, err := kanon.MeasureRisk(ctx, rdr, fleetQI); err != nil {
				b.Fatal(err)
			}
			rdr.Release()
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(rows)/float64(b.N), "ns/row")
	})
}
