package arrowio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

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
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		opts := OpenOptions{CSV: CSVOptions{InferRows: 2}}
		if mode&1 == 1 {
			opts.CSV.NullValues = []string{"", "NA"}
		}
		if mode&2 == 2 {
			opts.CSV.Comma = ';'
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
