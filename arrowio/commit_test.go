package arrowio

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestCommitAll: outputs commit all or none. On every failure the folder
// is as it was before (earlier files restored, no temporary file left), and
// a stream on standard output never gets its end-of-stream marker.
func TestCommitAll(t *testing.T) {
	eos := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	for _, c := range []struct {
		name string
		// spoil makes the commit fail after the outputs are written; nil
		// means success.
		spoil func(t *testing.T, dir string, outs []Output) context.Context
		want  string // error text, "" for success
	}{
		{name: "success"},
		{name: "a write failed", want: "differs from sink schema", spoil: func(t *testing.T, dir string, outs []Output) context.Context {
			mem := memory.NewGoAllocator()
			rec := testBatch(t, mem, 0, 3)
			defer rec.Release()
			// A batch of another schema fails the release sink.
			bad := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{rec.Column(3)}, rec.NumRows())
			defer bad.Release()
			outs[1].(*Sink).Write(bad)
			return context.Background()
		}},
		{name: "a rename failed", want: "file exists", spoil: func(t *testing.T, dir string, outs []Output) context.Context {
			// The report's destination became a non-empty folder after it
			// was checked: its rename fails after the data's succeeded.
			p := filepath.Join(dir, "report.json")
			os.Remove(p)
			if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
				t.Fatal(err)
			}
			return context.Background()
		}},
		{name: "cancelled", want: "commit: stop", spoil: func(t *testing.T, dir string, outs []Output) context.Context {
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(errors.New("stop"))
			return ctx
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			data, rel, rep := filepath.Join(dir, "out.parquet"), filepath.Join(dir, "out.release.csv"), filepath.Join(dir, "report.json")
			mustWrite(t, data, "old data")
			mustWrite(t, rep, "old report")
			var stdout bytes.Buffer
			outs := make([]Output, 4)
			var err error
			rec := testBatch(t, mem, 0, 5)
			defer rec.Release()
			for i, p := range []string{data, rel, "-"} {
				s, err := Create(p, rec.Schema(), CreateOptions{Mem: mem, Stdout: &stdout})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Write(rec); err != nil {
					t.Fatal(err)
				}
				outs[i] = s
			}
			f, err := CreateFile(rep)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("new report"))
			outs[3] = f
			// The stream goes first in the list: CommitAll still ends with it.
			outs[0], outs[2] = outs[2], outs[0]
			ctx := context.Background()
			if c.spoil != nil {
				ctx = c.spoil(t, dir, []Output{outs[2], outs[1], outs[0], outs[3]})
			}
			err = CommitAll(ctx, outs...)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				assertOnly(t, dir, "out.parquet", "out.release.csv", "report.json")
				if got := mustRead(t, rep); got != "new report" {
					t.Fatalf("report holds %q", got)
				}
				if !bytes.HasSuffix(stdout.Bytes(), eos) {
					t.Fatal("the stream has no end-of-stream marker")
				}
				return
			}
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("CommitAll: %v, want an error saying %q", err, c.want)
			}
			if got := mustRead(t, data); got != "old data" {
				t.Fatalf("data not restored: %q", got)
			}
			if _, err := os.Stat(rel); !os.IsNotExist(err) {
				t.Fatalf("release remains: %v", err)
			}
			if bytes.HasSuffix(stdout.Bytes(), eos) {
				t.Fatal("the stream was ended although the commit failed")
			}
			if c.name == "a rename failed" {
				assertOnly(t, dir, "out.parquet", "report.json")
				return
			}
			if got := mustRead(t, rep); got != "old report" {
				t.Fatalf("report not restored: %q", got)
			}
			assertOnly(t, dir, "out.parquet", "report.json")
		})
	}
}

// TestStreamAbortNoEnd: an aborted stream on standard output never gets its
// end-of-stream marker (the discarded writer writes one; it goes nowhere):
// a reader must see it cut short.
func TestStreamAbortNoEnd(t *testing.T) {
	eos := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	for _, rows := range []int{10, 3000, 20000} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		var stdout bytes.Buffer
		s, err := Create("-", testSchema(), CreateOptions{Mem: mem, Stdout: &stdout})
		if err != nil {
			t.Fatal(err)
		}
		rec := testBatch(t, mem, 0, rows)
		if err := s.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		s.Abort()
		if bytes.HasSuffix(stdout.Bytes(), eos) {
			t.Fatalf("%d rows: the aborted stream ends with the end-of-stream marker", rows)
		}
		mem.AssertSize(t, 0)
	}
}
