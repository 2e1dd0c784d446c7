package anonymize

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestCoarsenStep(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	for _, tc := range []struct {
		name string
		step float64
		in   arrow.Array
		want []float64 // NaN: null
		err  string
	}{
		{"floats", 5, floats(mem, 47, 45, 49.99, -0.1, 0), []float64{47.5, 47.5, 47.5, -2.5, 2.5}, ""},
		{"ints", 10, ints(mem, 0, 9, 10, -1), []float64{5, 5, 15, -5}, ""},
		{"a fraction", 0.5, floats(mem, 1.2, 1.7), []float64{1.25, 1.75}, ""},
		{"nulls stay", 5, nullFloats(mem), []float64{math.NaN(), 2.5}, ""},
		{"NaN", 5, floats(mem, 1, math.NaN()), nil, `row 12, column "speed": NaN cannot be coarsened`},
		{"Inf", 5, floats(mem, math.Inf(1)), nil, `row 11, column "speed": +Inf cannot be coarsened`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.in.Release()
			out, err := coarsenStepOp{name: "speed", step: tc.step}.apply(context.Background(), mem, tc.in, nil, 10)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			f := out.(*array.Float64)
			for i, w := range tc.want {
				if math.IsNaN(w) != f.IsNull(i) || !f.IsNull(i) && f.Value(i) != w {
					t.Errorf("row %d: %v (null %v), want %v", i, f.Value(i), f.IsNull(i), w)
				}
			}
		})
	}
}

func floats(mem memory.Allocator, v ...float64) arrow.Array {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func ints(mem memory.Allocator, v ...int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func nullFloats(mem memory.Allocator) arrow.Array {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.AppendNull()
	b.Append(1)
	return b.NewArray()
}
