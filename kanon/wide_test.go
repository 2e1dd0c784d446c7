package kanon

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestWideKeys forces combinations wider than 64 bits (five columns of
// 20,000 distinct values) through the string-keyed paths of the histogram,
// the roll-up and Apply, and checks the output with Verify.
func TestWideKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n = 20000
	names := []string{"a", "b", "c", "d", "e"}
	cols := map[string][]string{}
	for c, name := range names {
		for i := range n {
			// Distinct 5-digit codes per column, in a different order each.
			cols[name] = append(cols[name], fmt.Sprintf("%05d", (i*(2*c+1)+c*7919)%n+10000))
		}
	}
	b := batchOf(t, mem, cols, names, nil)
	defer b.Release()
	hier := map[string]Hierarchy{}
	for _, name := range names {
		hier[name] = MaskHierarchy{MaxMasked: 4}
	}
	ctx := context.Background()
	rdr, _ := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
	h, err := BuildHistogram(ctx, rdr, HistogramOptions{QuasiIdentifiers: names, Hierarchies: hier})
	rdr.Release()
	if err != nil {
		t.Fatal(err)
	}
	if h.Entries() != n {
		t.Fatalf("%d entries, want %d", h.Entries(), n)
	}
	res, err := Search(ctx, h, Options{K: 3, SuppressionLimit: 0.01, Metric: MetricLoss})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := NewApplier(h, res, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer ap.Release()
	out, err := ap.Apply(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	vr, _ := array.NewRecordReader(out.Schema(), []arrow.RecordBatch{out})
	defer vr.Release()
	rep, err := Verify(ctx, vr, VerifyOptions{QuasiIdentifiers: names, K: 3})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v (transformation %v)", rep, err, res.Levels)
	}
	if _, _, supp := ap.Counts(); supp != res.SuppressedRows || rep.Rows != int64(n)-supp {
		t.Errorf("suppressed %d (search %d), verified rows %d", supp, res.SuppressedRows, rep.Rows)
	}
}

// TestParallelRollup checks that chunked parallel roll-ups give the same
// classes and sensitive frequencies as the sequential path, on Adult with a
// sensitive column.
func TestParallelRollup(t *testing.T) {
	qi := []string{"sex", "age", "race", "marital-status", "education", "native-country", "workclass", "salary-class"}
	h := adultHistogram(t, qi, "occupation")
	seq, err := newEngine(h)
	if err != nil {
		t.Fatal(err)
	}
	par, _ := newEngine(h)
	par.parRows = 1000
	var s1, s2 scratch
	for _, node := range []int{0, 1, 17, seq.lattice.size / 3, seq.lattice.size / 2, seq.lattice.size - 1} {
		a := seq.rollup(seq.base, node, &s1).clone()
		b := par.rollup(par.base, node, &s2).clone()
		a.ensureIDs()
		b.ensureIDs()
		if a.rows() != b.rows() {
			t.Fatalf("node %d: %d/%d classes", node, a.rows(), b.rows())
		}
		count := func(x *table) map[string]string {
			m := map[string]string{}
			for r := range x.rows() {
				k := ""
				for c := range x.ids {
					k += "," + fmt.Sprint(x.ids[c][r])
				}
				sens, freq := x.frequencies(r)
				m[k] = fmt.Sprint(x.counts[r], sens, freq)
			}
			return m
		}
		ma, mb := count(a), count(b)
		for k, v := range ma {
			if mb[k] != v {
				t.Fatalf("node %d: class %s: %s vs %s", node, k, v, mb[k])
			}
		}
	}
}
