package anonymize

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestRunProgress: with a progress writer a run shows a bar per phase, with
// the input's total in pass 1 when given and the spill's in pass 2; a
// shuffled input shows its sort too.
func TestRunProgress(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tab := fleetTable(t, mem, 300, 30_000)
	defer tab.Release()
	p := writePolicy(t, string(brakedisc.DemoPolicy()))
	for _, oc := range fleetOrders(t, tab)[:3:3] {
		t.Run(oc.name, func(t *testing.T) {
			src := takeBatches(t, mem, tab, oc.perm, 3000)
			defer src.Release()
			var bar bytes.Buffer
			out, rel := &memSink{}, &memSink{}
			defer out.release()
			defer rel.release()
			r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem, Workers: 2, Release: sinkFor(rel), TempDir: t.TempDir(),
				Progress: &bar, ProgressTotal: 30_000})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Run(context.Background(), src, sinkFor(out)); err != nil {
				t.Fatal(err)
			}
			want := []string{"pass 1 of 2: reading", "/30000", "pass 2 of 2: writing"}
			if oc.want == "sorted" {
				want = append(want, "sorting by subject and time", "pass 1 of 2: reading (sorted)")
			}
			for _, w := range want {
				if !strings.Contains(bar.String(), w) {
					t.Errorf("progress output lacks %q:\n%q", w, bar.String())
				}
			}
		})
	}
}
