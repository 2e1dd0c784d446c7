package pipelinebench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// BenchmarkPipelineReopen is BenchmarkPipeline with Options.Reopen: the
// Runner keeps no copy of its input (the time-ordered fleet streams at the
// first attempt, so nothing reads it again). The difference to
// BenchmarkPipeline is the cost of the copy.
func BenchmarkPipelineReopen(b *testing.B) {
	in, rows, optout := benchInput(b)
	pipeline(b, in, rows, optout, true)
}

// BenchmarkPipelineShuffled runs the pipeline over the same fleet with its
// rows shuffled: the first attempt finds the order broken at once, the
// input is sorted by vehicle and time (encrypted sorted runs, merged) and
// streamed grouped by vehicle. Generated on first use (an external
// shuffle through 64 bucket files); run it once before measuring, so that
// the peak RSS is the pipeline's.
func BenchmarkPipelineShuffled(b *testing.B) {
	in, rows, optout := benchInput(b)
	pipeline(b, derivedInput(b, in, "shuffled", shuffleFile), rows, optout, false)
}

// BenchmarkPipelineByVehicle runs it over the fleet exported vehicle by
// vehicle (each vehicle's rows in time order): the first attempt breaks at
// the second vehicle, the second streams grouped by vehicle, unsorted.
func BenchmarkPipelineByVehicle(b *testing.B) {
	in, rows, optout := benchInput(b)
	pipeline(b, derivedInput(b, in, "byvehicle", sortFile), rows, optout, false)
}

// derivedInput returns the cached file made from in by make, making it on
// first use.
func derivedInput(b *testing.B, in, name string, make func(ctx context.Context, in, out string) error) string {
	b.Helper()
	out := strings.TrimSuffix(in, ".parquet") + "-" + name + ".parquet"
	if _, err := os.Stat(out); err == nil {
		return out
	}
	b.Logf("writing %s", out)
	if err := make(context.Background(), in, out); err != nil {
		b.Fatal(err)
	}
	return out
}

// sortFile writes in sorted by (vin, ts).
func sortFile(ctx context.Context, in, out string) error {
	src, err := arrowio.Open(ctx, in, arrowio.OpenOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	sorted, err := mobility.SortBySubjectTime(ctx, src, mobility.SortOptions{Subject: "vin", Time: "ts", TempDir: filepath.Dir(out)})
	if err != nil {
		return err
	}
	defer sorted.Close()
	return copyAll(sorted, out)
}

// shuffleFile writes in's rows in a random order, in bounded memory: each
// row goes to one of 64 bucket files at random, then each bucket is
// shuffled in memory and appended.
func shuffleFile(ctx context.Context, in, out string) error {
	const buckets = 64
	src, err := arrowio.Open(ctx, in, arrowio.OpenOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	rng := rand.New(rand.NewPCG(14, 14))
	cctx := compute.WithAllocator(ctx, memory.DefaultAllocator)
	files := make([]*os.File, buckets)
	writers := make([]*ipc.Writer, buckets)
	for i := range files {
		f, err := os.CreateTemp(filepath.Dir(out), "shuffle-*.arrows")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		files[i], writers[i] = f, ipc.NewWriter(f, ipc.WithSchema(src.Schema()))
	}
	for src.Next() {
		rec := src.RecordBatch()
		idx := make([][]int64, buckets)
		for i := range rec.NumRows() {
			k := rng.IntN(buckets)
			idx[k] = append(idx[k], i)
		}
		for k, rows := range idx {
			part, err := take(cctx, rec, rows)
			if err != nil {
				return err
			}
			err = writers[k].Write(part)
			part.Release()
			if err != nil {
				return err
			}
		}
	}
	if err := src.Err(); err != nil {
		return err
	}
	sink, err := arrowio.Create(out, src.Schema(), arrowio.CreateOptions{})
	if err != nil {
		return err
	}
	defer sink.Abort()
	for k, f := range files {
		if err := writers[k].Close(); err != nil {
			return err
		}
		if _, err := f.Seek(0, 0); err != nil {
			return err
		}
		rd, err := ipc.NewReader(f)
		if err != nil {
			return err
		}
		var parts []arrow.RecordBatch
		for rd.Next() {
			rec := rd.RecordBatch()
			rec.Retain()
			parts = append(parts, rec)
		}
		if err := rd.Err(); err != nil {
			return err
		}
		rd.Release()
		tab := array.NewTableFromRecords(src.Schema(), parts)
		for _, p := range parts {
			p.Release()
		}
		all, err := concatTable(tab)
		tab.Release()
		if err != nil {
			return err
		}
		perm := rng.Perm(int(all.NumRows()))
		rows := make([]int64, len(perm))
		for i, p := range perm {
			rows[i] = int64(p)
		}
		for off := 0; off < len(rows); off += 1 << 16 {
			part, err := take(cctx, all, rows[off:min(off+1<<16, len(rows))])
			if err != nil {
				return err
			}
			err = sink.Write(part)
			part.Release()
			if err != nil {
				return err
			}
		}
		all.Release()
	}
	return sink.Commit()
}

func take(ctx context.Context, rec arrow.RecordBatch, rows []int64) (arrow.RecordBatch, error) {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues(rows, nil)
	idx := b.NewArray()
	b.Release()
	defer idx.Release()
	out, err := compute.Take(ctx, *compute.DefaultTakeOptions(), compute.NewDatumWithoutOwning(rec), compute.NewDatumWithoutOwning(idx))
	if err != nil {
		return nil, fmt.Errorf("take: %w", err)
	}
	return out.(*compute.RecordDatum).Value, nil
}

// concatTable makes one batch of a table's chunks.
func concatTable(tab arrow.Table) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, tab.NumCols())
	for i := range cols {
		c, err := array.Concatenate(tab.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			return nil, err
		}
		defer c.Release()
		cols[i] = c
	}
	return array.NewRecordBatch(tab.Schema(), cols, tab.NumRows()), nil
}

func copyAll(src array.RecordReader, out string) error {
	sink, err := arrowio.Create(out, src.Schema(), arrowio.CreateOptions{})
	if err != nil {
		return err
	}
	defer sink.Abort()
	for src.Next() {
		if err := sink.Write(src.RecordBatch()); err != nil {
			return err
		}
	}
	if err := src.Err(); err != nil {
		return err
	}
	return sink.Commit()
}
