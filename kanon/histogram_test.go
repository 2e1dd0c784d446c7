package kanon

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestHistogramWideFromStart builds a histogram whose key is wider than 64
// bits from the first batch on (five columns with declared domains of 2^13
// values each): the string-keyed index must be ready before the first row.
// It used to panic (assignment to a nil map).
func TestHistogramWideFromStart(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const dom = 1 << 13
	names := []string{"a", "b", "c", "d", "e"}
	var rows [][]string
	for i := range dom {
		rows = append(rows, []string{fmt.Sprintf("%05d", i), fmt.Sprintf("%04d*", i/10), "*"})
	}
	th, err := NewTableHierarchy(rows)
	if err != nil {
		t.Fatal(err)
	}
	hier := map[string]Hierarchy{}
	cols := map[string][]string{}
	for c, name := range names {
		hier[name] = th
		for i := range 300 {
			cols[name] = append(cols[name], fmt.Sprintf("%05d", (i/3*(c+1))%dom))
		}
	}
	b := batchOf(t, mem, cols, names, nil)
	defer b.Release()
	hb, err := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: names, Hierarchies: hier})
	if err != nil {
		t.Fatal(err)
	}
	if !hb.wide {
		t.Fatal("key fits 64 bits: the test does not reach the wide path")
	}
	for _, sl := range [][2]int64{{0, 100}, {100, 300}} {
		part := b.NewSlice(sl[0], sl[1])
		err := hb.Add(part)
		part.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	h, err := hb.Histogram()
	if err != nil {
		t.Fatal(err)
	}
	if h.Entries() != 100 || h.Rows() != 300 {
		t.Fatalf("%d entries, %d rows; want 100, 300", h.Entries(), h.Rows())
	}
	r, err := Search(context.Background(), h, Options{K: 3, Metric: MetricEntropy})
	if err != nil {
		t.Fatal(err)
	}
	if r.SuppressedRows != 0 || r.Classes != 100 {
		t.Errorf("k=3 over classes of 3: %+v", r)
	}
}

// TestHistogramBuilderDone checks the builder after Histogram: the same
// histogram again, and an error (not a corrupted histogram) from Add — the
// builder's buffers have gone back to the pool.
func TestHistogramBuilderDone(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := batchOf(t, mem, map[string][]string{"q": {"a", "b", "a"}}, []string{"q"}, nil)
	defer b.Release()
	th, err := NewTableHierarchy([][]string{{"a", "*"}, {"b", "*"}})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: []string{"q"}, Hierarchies: map[string]Hierarchy{"q": th}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Add(b); err != nil {
		t.Fatal(err)
	}
	h1, err := hb.Histogram()
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Add(b); !errors.Is(err, errBuilderDone) {
		t.Errorf("Add after Histogram: %v, want errBuilderDone", err)
	}
	h2, err := hb.Histogram()
	if err != nil || h2 != h1 {
		t.Errorf("second Histogram: %p, %v; want %p", h2, err, h1)
	}
	if h1.Rows() != 3 || h1.Entries() != 2 {
		t.Errorf("rows %d entries %d, want 3, 2", h1.Rows(), h1.Entries())
	}
	// A second builder reusing the pooled buffers must not disturb h1.
	rdr, _ := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b, b})
	defer rdr.Release()
	if _, err := BuildHistogram(context.Background(), rdr, HistogramOptions{QuasiIdentifiers: []string{"q"}, Hierarchies: map[string]Hierarchy{"q": th}}); err != nil {
		t.Fatal(err)
	}
	if h1.Rows() != 3 || h1.Entries() != 2 || h1.counts[0]+h1.counts[1] != 3 {
		t.Errorf("h1 changed: rows %d entries %d counts %v", h1.Rows(), h1.Entries(), h1.counts)
	}
}
