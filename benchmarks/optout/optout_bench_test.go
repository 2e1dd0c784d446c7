package optoutbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

const (
	batchRows = 65_536
	vehicles  = 20_000
)

// vinOf is a clean VIN; every 7th row of the data is written in lower case
// with a trailing space (the unnormalised rows the report counts).
func vinOf(v int) string { return fmt.Sprintf("WVWZZZ1KZ%08d", v) }

func batch(mem memory.Allocator, dict bool) arrow.RecordBatch {
	typ := arrow.DataType(arrow.BinaryTypes.String)
	if dict {
		typ = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: typ}, {Name: "speed", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := range batchRows {
		v := vinOf((i * 7919) % vehicles)
		if i%7 == 0 {
			v = strings.ToLower(v) + " "
		}
		if dict {
			_ = b.Field(0).(*array.BinaryDictionaryBuilder).AppendString(v)
		} else {
			b.Field(0).(*array.StringBuilder).Append(v)
		}
		b.Field(1).(*array.Int64Builder).Append(int64(i % 130))
	}
	return b.NewRecordBatch()
}

func steps(b *testing.B, kr *pseudonym.Keyring, mode string, schema *arrow.Schema) (*anonymize.Runner, *anonymize.Steps) {
	dir := b.TempDir()
	var list strings.Builder
	for v := 0; v < vehicles; v += 100 {
		list.WriteString(vinOf(v) + "\n")
	}
	pol := "version: 1\nsubject: vin\nopt_out: {file: optout.txt, form: clear, domain: optout, normalize: " + mode + "}\ncolumns:\n  vin: drop\n  speed: keep\n"
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), []byte(list.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol), 0o600); err != nil {
		b.Fatal(err)
	}
	p, err := anonymize.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Mem: memory.DefaultAllocator})
	if err != nil {
		b.Fatal(err)
	}
	st, err := r.Steps(schema)
	if err != nil {
		b.Fatal(err)
	}
	return r, st
}

// baseline is the matching before normalisation: one HMAC of the value as
// written per row (per dictionary entry for dictionary columns), a map
// lookup, and the filter of the batch, as Steps.OptOut did.
func baseline(b *testing.B, kr *pseudonym.Keyring, rec arrow.RecordBatch) {
	mac, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "optout", Bits: 256})
	if err != nil {
		b.Fatal(err)
	}
	defer mac.Destroy()
	keys := map[string]struct{}{}
	h := mac.NewHasher()
	defer h.Destroy()
	for v := 0; v < vehicles; v += 100 {
		keys[string(h.Append(nil, []byte(vinOf(v))))] = struct{}{}
	}
	col := rec.Column(0)
	var buf []byte
	b.ResetTimer()
	cpu0 := cpuSeconds()
	defer func() { b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N)/batchRows, "cpu-ns/row") }()
	for range b.N {
		mb := array.NewBooleanBuilder(memory.DefaultAllocator)
		mb.Reserve(col.Len())
		if d, ok := col.(*array.Dictionary); ok {
			s := d.Dictionary().(*array.String)
			hits := make([]bool, s.Len())
			for i := range hits {
				buf = h.Append(buf[:0], []byte(s.Value(i)))
				_, hits[i] = keys[string(buf)]
			}
			for i := range d.Len() {
				mb.UnsafeAppend(!hits[d.GetValueIndex(i)])
			}
		} else {
			s := col.(*array.String)
			for i := range s.Len() {
				buf = h.Append(buf[:0], []byte(s.Value(i)))
				_, hit := keys[string(buf)]
				mb.UnsafeAppend(!hit)
			}
		}
		mask := mb.NewArray()
		mb.Release()
		f, err := compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
		if err != nil {
			b.Fatal(err)
		}
		f.Release()
		mask.Release()
	}
}

// BenchmarkOptOut: the filter over one 65,536-row batch of 20,000 vehicles
// (1% listed, one row in 7 unnormalised), baseline and each mode side by
// side. The dictionary cases run with a fresh dictionary cache per
// iteration, as at the first batch of a row group.
func BenchmarkOptOut(b *testing.B) {
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Destroy()
	ctx := context.Background()
	for _, dict := range []bool{false, true} {
		rec := batch(memory.DefaultAllocator, dict)
		name := map[bool]string{false: "plain", true: "dict"}[dict]
		b.Run(name+"/baseline-exact-match", func(b *testing.B) {
			b.ReportAllocs()
			baseline(b, kr, rec)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batchRows, "ns/row")
		})
		for _, mode := range []string{"exact", "text", "vin"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				r, st := steps(b, kr, mode, rec.Schema())
				defer r.Close()
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for range b.N {
					if dict {
						st.Close() // drop the dictionary cache: each iteration is a new row group
					}
					kept, _, err := st.OptOut(ctx, rec, 0)
					if err != nil {
						b.Fatal(err)
					}
					kept.Release()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batchRows, "ns/row")
				b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N)/batchRows, "cpu-ns/row")
			})
		}
		rec.Release()
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
