package anonymize

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// coarsenStepOp publishes a number as the centre of the interval of width
// step that holds it (float64): per-reading values to a precision that
// other readings share. Intervals are aligned to 0, so the same value
// always lands in the same interval, whoever projects it (the linkage
// measure and its adversary too).
type coarsenStepOp struct {
	name string
	step float64
}

func (coarsenStepOp) outType(arrow.DataType) arrow.DataType { return arrow.PrimitiveTypes.Float64 }

func (o coarsenStepOp) apply(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, rowBase int64) (arrow.Array, error) {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.Reserve(col.Len())
	for i := range col.Len() {
		if col.IsNull(i) {
			b.AppendNull()
			continue
		}
		v, ok := numberAt(col, i)
		if !ok {
			return nil, fmt.Errorf("column %q: type %s is not a number", o.name, col.DataType())
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, rowerr.Atf(rowerr.Row(rowBase, i), o.name, "%v cannot be coarsened", v)
		}
		b.UnsafeAppend(coarsenStep(v, o.step))
	}
	return b.NewArray(), nil
}

// coarsenStep is the centre of the step-wide interval [k·step, (k+1)·step)
// holding v.
func coarsenStep(v, step float64) float64 {
	return math.Floor(v/step)*step + step/2
}

// numberAt is the value of a numeric column at row i as float64.
func numberAt(col arrow.Array, i int) (float64, bool) {
	switch c := col.(type) {
	case *array.Float64:
		return c.Value(i), true
	case *array.Float32:
		return float64(c.Value(i)), true
	case *array.Int64:
		return float64(c.Value(i)), true
	case *array.Int32:
		return float64(c.Value(i)), true
	case *array.Int16:
		return float64(c.Value(i)), true
	case *array.Int8:
		return float64(c.Value(i)), true
	case *array.Uint64:
		return float64(c.Value(i)), true
	case *array.Uint32:
		return float64(c.Value(i)), true
	case *array.Uint16:
		return float64(c.Value(i)), true
	case *array.Uint8:
		return float64(c.Value(i)), true
	case *array.Boolean:
		if c.Value(i) {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
