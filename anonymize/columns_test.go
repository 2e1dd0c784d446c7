package anonymize

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
)

func TestMapValuesInt64(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{1961, 1964, 1970, 1961}, nil)
	b.AppendNull()
	col := b.NewArray()
	b.Release()
	defer col.Release()
	h, err := kanon.NewIntervalHierarchy(kanon.IntervalHierarchy{Origin: 1900, Width: 5, FanOut: 2, Height: 2, Min: 1900, Max: 2000})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mapValues(mem, "year", col, 0, generalizeFn(h, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	want := []string{"1960-1964", "1960-1964", "1970-1974", "1960-1964"}
	for i, w := range want {
		if got, _ := valueText(out, i); got != w {
			t.Errorf("row %d: %q, want %q", i, got, w)
		}
	}
	if !out.IsNull(4) {
		t.Error("null not kept")
	}
	if d := out.(*array.Dictionary).Dictionary(); d.Len() != 2 {
		t.Errorf("dictionary has %d values, want 2 distinct", d.Len())
	}
	// A value outside the hierarchy names the column and row (the second
	// of a batch after 100 rows: data row 102).
	b2 := array.NewInt64Builder(mem)
	b2.AppendValues([]int64{1961, 2500}, nil)
	bad := b2.NewArray()
	b2.Release()
	defer bad.Release()
	_, err = mapValues(mem, "year", bad, 100, generalizeFn(h, 1))
	if err == nil || !strings.Contains(err.Error(), `row 102, column "year"`) || !errors.Is(err, kanon.ErrValueNotInHierarchy) {
		t.Errorf("error %v", err)
	}
}
