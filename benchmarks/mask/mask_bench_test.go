package maskbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

const (
	batchRows = 65_536
	distinct  = 20_000
)

// names is a column of e-mail-like values, a quarter of them short enough
// to be masked whole under 3+3, some with non-ASCII characters.
func names(mem memory.Allocator) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{{Name: "email", Type: arrow.BinaryTypes.String}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}, {Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := range batchRows {
		k := (i * 7919) % distinct
		v := fmt.Sprintf("jürgen.%d@example.org", k)
		if k%4 == 0 {
			v = fmt.Sprintf("%d", k%1000)
		}
		b.Field(0).(*array.StringBuilder).Append(v)
		b.Field(1).(*array.Int64Builder).Append(int64(i))
		b.Field(2).(*array.Int64Builder).Append(int64(k))
	}
	return b.NewRecordBatch()
}

// oldMask is the mask before this change: runes replaced in place, values
// no longer than prefix + suffix unchanged.
func oldMask(s string, prefix, suffix int) string {
	r := []rune(s)
	for i := prefix; i < len(r)-suffix; i++ {
		r[i] = '*'
	}
	return string(r)
}

func BenchmarkMask(b *testing.B) {
	mem := memory.DefaultAllocator
	rec := names(mem)
	defer rec.Release()
	ctx := context.Background()
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		col := rec.Column(0).(*array.String)
		dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
		cpu0 := cpuSeconds()
		for range b.N {
			bld := array.NewDictionaryBuilder(mem, dt).(*array.BinaryDictionaryBuilder)
			cache := map[string]string{}
			for i := range col.Len() {
				s := col.Value(i)
				out, ok := cache[s]
				if !ok {
					out = oldMask(s, 3, 3)
					cache[s] = out
				}
				_ = bld.AppendString(out)
			}
			bld.NewArray().Release()
			bld.Release()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batchRows, "ns/row")
		b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N)/batchRows, "cpu-ns/row")
	})
	for _, width := range []int{0, 12} {
		b.Run(fmt.Sprintf("steps-width-%d", width), func(b *testing.B) {
			b.ReportAllocs()
			dir := b.TempDir()
			pol := fmt.Sprintf("version: 1\nsubject: id\ncolumns:\n  email: {mask: {keep_prefix: 3, keep_suffix: 3, width: %d}}\n  n: keep\n  id: drop\n", width)
			if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(pol), 0o600); err != nil {
				b.Fatal(err)
			}
			p, err := anonymize.LoadPolicy(filepath.Join(dir, "p.yaml"))
			if err != nil {
				b.Fatal(err)
			}
			r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Mem: mem})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			st, err := r.Steps(rec.Schema())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for range b.N {
				out, err := st.Transform(ctx, rec, 0)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
			b.StopTimer()
			if got := st.DrainMaskedWhole()["email"]; got != int64(b.N)*batchRows/4 {
				b.Fatalf("masked whole %d, want %d", got, int64(b.N)*batchRows/4)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batchRows, "ns/row")
			b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N)/batchRows, "cpu-ns/row")
		})
	}
}

// cpuSeconds is the process's user + system CPU time: under a loaded
// machine it moves less than wall time (other processes' time is not in it).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
