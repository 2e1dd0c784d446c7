package anonymize

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestDictCanon: which dictionary every written batch gets. A string or
// binary column whose written values fit the index type gets one sorted
// dictionary of the values written (never of values only suppressed rows
// had); one whose values do not (an int8 index and 200 values) gets per
// batch the values the batch uses, in first-use order.
func TestDictCanon(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	small := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	bin := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.Binary}
	schema := arrow.NewSchema([]arrow.Field{{Name: "many", Type: small}, {Name: "bytes", Type: bin, Nullable: true}}, nil)
	batch := func(lo, hi int) arrow.RecordBatch {
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		for i := lo; i < hi; i++ {
			b.Field(0).(*array.BinaryDictionaryBuilder).AppendString(fmt.Sprintf("v%03d", i))
			if i%5 == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.BinaryDictionaryBuilder).Append([]byte{byte('z' - i%3)})
			}
		}
		// A row whose values stay in the dictionaries once it is cut off.
		b.Field(0).(*array.BinaryDictionaryBuilder).AppendString("gone")
		b.Field(1).(*array.BinaryDictionaryBuilder).Append([]byte("gone"))
		rec := b.NewRecordBatch()
		defer rec.Release()
		return rec.NewSlice(0, int64(hi-lo))
	}
	c := newDictCanon(schema, mem)
	defer c.release()
	recs := []arrow.RecordBatch{batch(0, 100), batch(100, 200)}
	for _, r := range recs {
		if err := c.observe(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.seal(); err != nil {
		t.Fatal(err)
	}
	var first arrow.Array
	for k, r := range recs {
		out, err := c.canonical(ctx, r)
		r.Release()
		if err != nil {
			t.Fatal(err)
		}
		many := out.Column(0).(*array.Dictionary)
		var vals []string
		for j := range many.Dictionary().Len() {
			vals = append(vals, many.Dictionary().(*array.String).Value(j))
		}
		if want := fmt.Sprintf("v%03d", 100*k); len(vals) != 100 || vals[0] != want || slices.Contains(vals, "gone") {
			t.Errorf("batch %d: per-batch dictionary of %d values from %q, want 100 from %q without the cut row's", k, len(vals), vals[0], want)
		}
		for i := range many.Len() {
			if many.GetValueIndex(i) != i {
				t.Fatalf("batch %d row %d: index %d, want first-use order", k, i, many.GetValueIndex(i))
			}
		}
		bytes := out.Column(1).(*array.Dictionary)
		d := bytes.Dictionary().(*array.Binary)
		if got := []string{string(d.Value(0)), string(d.Value(1)), string(d.Value(2))}; d.Len() != 3 || !slices.IsSorted(got) {
			t.Errorf("batch %d: global dictionary %v, want the 3 written values sorted", k, got)
		}
		if first == nil {
			first = d
			first.Retain()
		} else if d.Data() != first.Data() {
			t.Errorf("batch %d: a global dictionary of its own", k)
		}
		if bytes.NullN() != 20 {
			t.Errorf("batch %d: %d nulls, want 20", k, bytes.NullN())
		}
		out.Release()
	}
	first.Release()
}
