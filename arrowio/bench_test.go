package arrowio_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

const benchRows = 1_000_000

// writeFleet writes the default fleet's first 1M rows in the given formats
// into a directory removed when the benchmark ends. Called at the top of a
// benchmark that only runs sub-benchmarks, it runs once per benchmark.
func writeFleet(b *testing.B, exts ...string) map[string]string {
	b.Helper()
	dir := b.TempDir()
	cfg := brakedisc.DefaultConfig()
	cfg.Rows = benchRows
	paths := map[string]string{}
	for _, e := range exts {
		p := filepath.Join(dir, "fleet"+e)
		if err := brakedisc.WriteFile(context.Background(), p, cfg, nil); err != nil {
			b.Fatal(err)
		}
		paths[e] = p
	}
	return paths
}

// BenchmarkReadParquet reads the fleet's Parquet file through arrowio
// (string columns as dictionaries, batches of 64k) beside pqarrow's plain
// record reader (strings decoded), the read a user writes by hand.
func BenchmarkReadParquet(b *testing.B) {
	path := writeFleet(b, ".parquet")[".parquet"]
	st, _ := os.Stat(path)
	b.Run("arrowio", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(st.Size())
		cpu0 := processCPU()
		for b.Loop() {
			src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n := int64(0)
			for src.Next() {
				n += src.RecordBatch().NumRows()
			}
			if src.Err() != nil || n != benchRows {
				b.Fatal(src.Err(), n)
			}
			src.Close()
		}
		reportRows(b, cpu0)
	})
	b.Run("pqarrow-plain", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(st.Size())
		cpu0 := processCPU()
		for b.Loop() {
			pf, err := file.OpenParquetFile(path, false)
			if err != nil {
				b.Fatal(err)
			}
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: arrowio.DefaultBatchSize}, memory.DefaultAllocator)
			if err != nil {
				b.Fatal(err)
			}
			rr, err := fr.GetRecordReader(context.Background(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			n := int64(0)
			for rr.Next() {
				n += rr.RecordBatch().NumRows()
			}
			if rr.Err() != nil || n != benchRows {
				b.Fatal(rr.Err(), n)
			}
			rr.Release()
			pf.Close()
		}
		reportRows(b, cpu0)
	})
}

// BenchmarkReadFormats reads the same 1M rows from each format.
func BenchmarkReadFormats(b *testing.B) {
	paths := writeFleet(b, ".parquet", ".arrow", ".csv")
	for _, ext := range []string{".parquet", ".arrow", ".csv"} {
		path := paths[ext]
		st, _ := os.Stat(path)
		b.Run(ext[1:], func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(st.Size())
			cpu0 := processCPU()
			for b.Loop() {
				src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{})
				if err != nil {
					b.Fatal(err)
				}
				for src.Next() {
				}
				if src.Err() != nil || src.Rows() != benchRows {
					b.Fatal(src.Err())
				}
				src.Close()
			}
			reportRows(b, cpu0)
		})
	}
}

// BenchmarkWriteFleet generates 1M rows and writes them (generation alone
// is brakedisc's BenchmarkNewReader).
func BenchmarkWriteFleet(b *testing.B) {
	dir := b.TempDir()
	cfg := brakedisc.DefaultConfig()
	cfg.Rows = benchRows
	for _, ext := range []string{".parquet", ".arrow", ".csv"} {
		b.Run(ext[1:], func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if err := brakedisc.WriteFile(context.Background(), filepath.Join(dir, "w"+ext), cfg, nil); err != nil {
					b.Fatal(err)
				}
			}
			reportRows(b, cpu0)
		})
	}
}

// reportRows adds wall and CPU nanoseconds per row (CPU: the process's,
// which on a shared machine is the fairer figure).
func reportRows(b *testing.B, cpu0 time.Duration) {
	rows := float64(int64(b.N) * benchRows)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/rows, "cpu-ns/row")
}
