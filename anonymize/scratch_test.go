package anonymize

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestTempFilesEncrypted runs the demo policy (mobility + k-anonymity, with
// the trace gate) on a small fleet and looks into the temporary directory
// as pass 2 begins: pass 1 has written the spill and the row keys, and they
// are all still there. No file may contain a raw VIN or a raw postcode of
// the input in clear. The run is then cancelled, as a killed run would
// stop; the files must be gone after Run returns.
func TestTempFilesEncrypted(t *testing.T) {
	cases := []struct {
		name   string
		policy []byte
	}{
		{"demo policy", brakedisc.DemoPolicy()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := brakedisc.DefaultConfig()
			cfg.Vehicles, cfg.Rows, cfg.BatchSize = 300, 30_000, 8192
			markers := rawValues(t, cfg, mem, "vin", "postcode")
			src, err := brakedisc.NewReader(cfg, mem)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Release()
			tmp := t.TempDir()
			errCrash := errors.New("simulated crash")
			ctx, crash := context.WithCancelCause(context.Background())
			defer crash(nil)
			var seen int64
			// Between the passes the spill and the row keys are all there.
			look := func(_ context.Context, step string) {
				if step != "pass 2" {
					return
				}
				filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					b, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					seen += int64(len(b))
					for _, m := range markers {
						if bytes.Contains(b, m) {
							t.Errorf("temporary file %s holds the raw value %q in clear", d.Name(), m)
							break
						}
					}
					return nil
				})
				crash(errCrash)
			}
			r, err := NewRunner(Options{Policy: writePolicy(t, string(c.policy)), Keyring: newKeyring(t), Mem: mem, Workers: 2, Release: sinkFor(&memSink{}), TempDir: tmp, OnStep: look})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Run(ctx, src, sinkFor(&memSink{})); !errors.Is(err, errCrash) {
				t.Fatalf("Run: %v, want the simulated crash", err)
			}
			// Not vacuous: the spill of 30,000 rows was there to look at.
			if seen < 100_000 {
				t.Fatalf("only %d bytes of temporary files seen", seen)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("%d temporary files left after the failed run", len(ents))
			}
		})
	}
}

// rawValues reads the distinct values of string columns of the fleet.
func rawValues(t *testing.T, cfg brakedisc.Config, mem memory.Allocator, cols ...string) [][]byte {
	t.Helper()
	src, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	set := map[string]bool{}
	for src.Next() {
		rec := src.RecordBatch()
		for _, name := range cols {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) == 0 {
				t.Fatalf("no column %q", name)
			}
			col := rec.Column(idx[0])
			if d, ok := col.(*array.Dictionary); ok {
				col = d.Dictionary()
			}
			s, ok := col.(interface {
				Len() int
				ValueStr(int) string
			})
			if !ok {
				t.Fatalf("column %q: %T", name, col)
			}
			for i := range s.Len() {
				set[s.ValueStr(i)] = true
			}
		}
	}
	var out [][]byte
	for v := range set {
		if len(v) >= 5 {
			out = append(out, []byte(v))
		}
	}
	if len(out) < 300 {
		t.Fatalf("only %d raw values", len(out))
	}
	return out
}
