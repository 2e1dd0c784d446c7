package arrowio

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fuzzOpen writes data to a file with the given extension and reads it to
// the end: any outcome but a panic or leaked memory is acceptable.
func fuzzOpen(t *testing.T, ext string, data []byte, opts OpenOptions) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := filepath.Join(t.TempDir(), "f"+ext)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	opts.BatchSize = 7 // small batches exercise batch boundaries
	if err := drain(mem, p, opts); err != nil && !bytes.Contains([]byte(err.Error()), []byte(p)) && err.Error() != "" {
		t.Errorf("error %q does not name the file", err)
	}
}

func FuzzOpenCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,x\n2,y\n",
		"a,b,c\n1,2.5,true\n3,4,false\n",
		"ts\n2026-03-02 10:00:00Z\n2026-03-02T10:00:00.123456Z\n",
		"a,b\n1,\"x\ny\"\n2,\"\"\"\"\n",
		"a\n1\nx\n",
		"a,b\n1\n",
		"a,a\n",
		"\n\n",
		"a;b\n1;2\n",
		"postcode,n\n10115,1\n01067,2\n",
		"id,x\n1,0.5\n12345678901234567890,+3\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		opts := OpenOptions{CSV: CSVOptions{InferRows: 2}}
		if mode&1 == 1 {
			opts.CSV.NullValues = []string{"", "NA"}
		}
		if mode&2 == 2 {
			opts.CSV.Comma = ';'
		}
		if mode&4 == 4 {
			opts.CSV.Types = map[string]arrow.DataType{"a": arrow.BinaryTypes.String, "b": arrow.PrimitiveTypes.Float64}
		}
		fuzzOpen(t, ".csv", data, opts)
	})
}

// FuzzOpenIPC feeds arbitrary bytes to the IPC file and stream readers.
func FuzzOpenIPC(f *testing.F) {
	mem := memory.NewGoAllocator()
	dir := f.TempDir()
	for i, ext := range []string{".arrow", ".arrow"} {
		p := filepath.Join(dir, "seed"+ext)
		if i == 1 {
			// an IPC stream in an .arrow file
			var buf bytes.Buffer
			sk, err := Create("-", testSchema(), CreateOptions{Mem: mem, Stdout: &buf})
			if err != nil {
				f.Fatal(err)
			}
			rec := testBatch(f, mem, 1, 20)
			sk.Write(rec)
			rec.Release()
			if err := sk.Commit(); err != nil {
				f.Fatal(err)
			}
			f.Add(buf.Bytes())
			continue
		}
		sk, err := Create(p, testSchema(), CreateOptions{Mem: mem})
		if err != nil {
			f.Fatal(err)
		}
		for b := 0; b < 2; b++ {
			rec := testBatch(f, mem, b, 20)
			sk.Write(rec)
			rec.Release()
		}
		if err := sk.Commit(); err != nil {
			f.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	// Compressed streams: arrow sizes each buffer by a length in the body.
	for _, opt := range []ipc.Option{ipc.WithZstd(), ipc.WithLZ4()} {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema()), ipc.WithAllocator(mem), opt)
		rec := testBatch(f, mem, 0, 30)
		if err := w.Write(rec); err != nil {
			f.Fatal(err)
		}
		rec.Release()
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte("ARROW1"))
	f.Add([]byte("ARROW1\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOpen(t, ".arrow", data, OpenOptions{})
	})
}

// FuzzOpenParquet feeds arbitrary bytes to the Parquet reader.
func FuzzOpenParquet(f *testing.F) {
	mem := memory.NewGoAllocator()
	p := filepath.Join(f.TempDir(), "seed.parquet")
	sk, err := Create(p, testSchema(), CreateOptions{Mem: mem})
	if err != nil {
		f.Fatal(err)
	}
	rec := testBatch(f, mem, 0, 30)
	sk.Write(rec)
	rec.Release()
	if err := sk.Commit(); err != nil {
		f.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	f.Add(data)
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOpen(t, ".parquet", data, OpenOptions{})
	})
}

// FuzzParseCSVTypes checks the --csv-types parser: no panic, and what it
// accepts it accepts again when written back in its own form.
func FuzzParseCSVTypes(f *testing.F) {
	for _, s := range []string{
		"postcode=string,ts=timestamp", "a=int64", "a=string,a=int64", "a=,b=c", "=", ",", "a==b",
		"x=timestamp_ns,y=date,z=bool", " a=string", "a=string,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		m, err := ParseCSVTypes(spec)
		if err != nil {
			return
		}
		if len(m) == 0 {
			t.Fatalf("%q: accepted with no columns", spec)
		}
		names := make([]string, 0, len(m))
		for name, dt := range m {
			if name == "" || strings.ContainsAny(name, ",=") || dt == nil {
				t.Fatalf("%q: bad entry %q=%v", spec, name, dt)
			}
			names = append(names, name)
		}
		if len(m) != strings.Count(spec, ",")+1 {
			t.Fatalf("%q: %d columns from %d entries", spec, len(m), strings.Count(spec, ",")+1)
		}
		again, err := ParseCSVTypes(spec)
		if err != nil || len(again) != len(m) {
			t.Fatalf("%q: not deterministic", spec)
		}
	})
}

// FuzzNumberForm checks inference's number rule against strconv: what it
// takes for an integer reads back as the same text (so "01067" or "+3"
// never become 1067 or 3), and what it takes for a float parses, to a
// finite value unless it spells infinity or NaN.
func FuzzNumberForm(f *testing.F) {
	for _, s := range []string{"0", "-12", "01067", "+3", "-0", "1e400", "0.5", ".5", "NaN", "0x1p4", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		isInt, isFloat := numberForm(v)
		if isInt {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || strconv.FormatInt(n, 10) != v {
				t.Fatalf("%q taken for an integer but reads as %d (%v)", v, n, err)
			}
			if !isFloat {
				t.Fatalf("%q: an integer must be a float too", v)
			}
		}
		if isFloat {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || ((math.IsInf(x, 0) || math.IsNaN(x)) && !special(v)) {
				t.Fatalf("%q taken for a float but reads as %v (%v)", v, x, err)
			}
		}
	})
}
