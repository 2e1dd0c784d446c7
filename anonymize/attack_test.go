package anonymize

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// TestRunnerAttack: Runner.Attack (risk --linkage) on a run's own output
// finds what the run's measure reported — the policy before issue #12
// links most trips, the example policy few — and gives the same figures
// whatever order the raw readings come in: time order streams, a shuffled
// or vehicle-by-vehicle file is sorted (with Reopen) or refused (without).
func TestRunnerAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two policies and six attacks; skipped with -short")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tab := fleetTable(t, mem, 200, 24_000)
	defer tab.Release()
	orders := fleetOrders(t, tab)
	key := make([]byte, 32)
	for _, tc := range []struct {
		name   string
		policy []byte
		linked func(float64) bool
	}{
		{"policy before issue 12", brakedisc.AttributesPolicy(), func(l float64) bool { return l > 0.5 }},
		{"example policy", brakedisc.DemoPolicy(), func(l float64) bool { return l <= 0.05 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writePolicy(t, strings.Replace(string(tc.policy), "  max_linkage: 0.05\n", "", 1))
			kr := newKeyring(t)
			out, rel := &memSink{}, &memSink{}
			defer out.release()
			defer rel.release()
			r, err := NewRunner(Options{Policy: p, Keyring: kr, Mem: mem, Release: sinkFor(rel), TempDir: t.TempDir(), Measure: MeasureOptions{Key: key}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			src := takeBatches(t, mem, tab, orders[0].perm, 3000)
			rep, err := r.Run(context.Background(), src, sinkFor(out))
			src.Release()
			if err != nil {
				t.Fatal(err)
			}
			published := func() (array.RecordReader, error) { return array.NewRecordReader(out.schema, out.recs) }
			levels := map[string]int{}
			if rep.KAnon != nil {
				levels = rep.KAnon.Transformation
			}
			// The adversary's runner: the policy without its opt-out, the
			// run's keyring (keyed columns are projected with it).
			ar, err := NewRunner(Options{Policy: p.ForAttack(), Keyring: kr, Mem: mem, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer ar.Close()
			var first *AttackReport
			for _, oc := range orders {
				for _, reopen := range []bool{false, true} {
					raw := takeBatches(t, mem, tab, oc.perm, 3000)
					opts := AttackOptions{Levels: levels, Measure: MeasureOptions{Key: key}, TempDir: t.TempDir()}
					if reopen {
						opts.Reopen = func() (array.RecordReader, error) { return takeBatches(t, mem, tab, oc.perm, 3000), nil }
					}
					got, err := ar.Attack(context.Background(), raw, published, opts)
					raw.Release()
					if oc.name != orders[0].name && !reopen {
						if !errors.Is(err, mobility.ErrOrder) {
							t.Errorf("%s without Reopen: err = %v, want the order error", oc.name, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s, reopen=%v: %v", oc.name, reopen, err)
					}
					if first == nil {
						first = got
						l := got.Traces.Linkage.Share
						t.Logf("%s: attack linkage %.3f (%d traces), run's %.3f %v", oc.name, l, got.Traces.Traces, *rep.Risk.After.Linkage, rep.Risk.After.LinkageCI)
						if !tc.linked(l) {
							t.Errorf("attack linkage %.3f", l)
						}
						if ci := rep.Risk.After.LinkageCI; l < ci[0]-0.05 || l > ci[1]+0.05 {
							t.Errorf("attack linkage %.3f outside the run's interval %v", l, ci)
						}
						continue
					}
					if got.Traces.Traces != first.Traces.Traces || got.Traces.Linkage != first.Traces.Linkage || got.Traces.Unicity != first.Traces.Unicity {
						t.Errorf("%s, reopen=%v: traces %+v, time order gave %+v", oc.name, reopen, got.Traces, first.Traces)
					}
					for _, c := range []struct {
						name      string
						got, want float64
					}{
						{"unicity before", got.Before.Unicity.Share, first.Before.Unicity.Share},
						{"raw GPS unicity", got.RawGPS.Unicity.Share, first.RawGPS.Unicity.Share},
					} {
						if math.Abs(c.got-c.want) > 0.02 {
							t.Errorf("%s, reopen=%v: %s %.3f, time order %.3f", oc.name, reopen, c.name, c.got, c.want)
						}
					}
				}
			}
		})
	}
}
