package anonymize

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// colOp transforms one column of a batch. apply returns a new array the
// caller releases; it must not release col.
type colOp interface {
	outType(in arrow.DataType) arrow.DataType
	apply(ctx context.Context, mem memory.Allocator, col arrow.Array, rec arrow.RecordBatch, rowBase int64) (arrow.Array, error)
}

// stringDict is the output type of generalised and masked columns.
var stringDict = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

func isStringLike(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.StringType, *arrow.LargeStringType:
		return true
	case *arrow.DictionaryType:
		return isStringLike(t.ValueType)
	}
	return false
}

// isNumberLike is isNumeric or a boolean (a 0/1 flag).
func isNumberLike(t arrow.DataType) bool { return isNumeric(t) || t.ID() == arrow.BOOL }

func isNumeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.FLOAT32, arrow.FLOAT64:
		return true
	}
	return false
}

// keepOp copies the column.
type keepOp struct{}

func (keepOp) outType(in arrow.DataType) arrow.DataType { return in }
func (keepOp) apply(_ context.Context, _ memory.Allocator, col arrow.Array, _ arrow.RecordBatch, _ int64) (arrow.Array, error) {
	col.Retain()
	return col, nil
}

// coarsenTimeOp floors timestamps to a bucket aligned to the Unix epoch.
type coarsenTimeOp struct {
	name   string
	bucket time.Duration
}

func (coarsenTimeOp) outType(in arrow.DataType) arrow.DataType { return in }
func (o coarsenTimeOp) apply(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, rowBase int64) (arrow.Array, error) {
	ts := col.(*array.Timestamp)
	unit := ts.DataType().(*arrow.TimestampType).Unit
	ticks := int64(o.bucket / unit.Multiplier())
	if ticks <= 0 {
		return nil, rowerr.Atf(0, o.name, "time bucket %v is finer than the column's unit", o.bucket)
	}
	// The floor of a value in the first bucket below the smallest int64
	// would wrap around to the far future: refuse it (no real clock is
	// 292 million years back).
	minQ := math.MinInt64 / ticks
	b := array.NewTimestampBuilder(mem, ts.DataType().(*arrow.TimestampType))
	defer b.Release()
	b.Reserve(ts.Len())
	vals := ts.TimestampValues()
	for i, v := range vals {
		if ts.IsNull(i) {
			b.AppendNull()
			continue
		}
		q := int64(v) / ticks
		if int64(v)%ticks < 0 {
			q--
		}
		if q < minQ {
			return nil, rowerr.Atf(rowerr.Row(rowBase, i), o.name, "timestamp %d (%s) cannot be floored to a %v bucket: the bucket starts before the earliest representable time", int64(v), unit, o.bucket)
		}
		b.UnsafeAppend(arrow.Timestamp(q * ticks))
	}
	return b.NewArray(), nil
}

// coarsenGridOp snaps float64 values to the centre of grid cells. The
// values are angles in degrees (the policy's coarsen: degrees), latitudes
// or longitudes: a value outside [-180, 180] is not a coordinate, and a
// huge one would snap to ±Inf. The op cannot tell a latitude from a
// longitude; mobility's coarsener, which can, holds latitudes to ±90.
type coarsenGridOp struct {
	name    string
	degrees float64
}

func (coarsenGridOp) outType(in arrow.DataType) arrow.DataType { return in }
func (o coarsenGridOp) apply(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, rowBase int64) (arrow.Array, error) {
	f := col.(*array.Float64)
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.Reserve(f.Len())
	for i, v := range f.Float64Values() {
		if f.IsNull(i) {
			b.AppendNull()
			continue
		}
		if !(v >= -180 && v <= 180) { // NaN fails both
			return nil, rowerr.Atf(rowerr.Row(rowBase, i), o.name, "%v is not a coordinate in degrees (want -180 to 180)", v)
		}
		b.UnsafeAppend(math.Floor(v/o.degrees)*o.degrees + o.degrees/2)
	}
	return b.NewArray(), nil
}

// mapStringsOp applies a string → string function to a string-like column.
// Dictionary columns are transformed through their dictionary only.
type mapStringsOp struct {
	name string
	fn   func(string) (string, error)
}

func (mapStringsOp) outType(arrow.DataType) arrow.DataType { return stringDict }
func (o mapStringsOp) apply(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, rowBase int64) (arrow.Array, error) {
	return mapValues(mem, o.name, col, rowBase, o.fn)
}

// mapValues maps every distinct value of col (as text) through fn and
// returns a dictionary<int32, utf8> array. A dictionary column's dictionary
// is mapped once, whatever the number of rows.
func mapValues(mem memory.Allocator, name string, col arrow.Array, rowBase int64, fn func(string) (string, error)) (arrow.Array, error) {
	if d, ok := col.(*array.Dictionary); ok && d.Indices().DataType().ID() == arrow.INT32 {
		dict := d.Dictionary()
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for i := range dict.Len() {
			if dict.IsNull(i) {
				b.AppendNull()
				continue
			}
			s, err := valueText(dict, i)
			if err != nil {
				return nil, dictError(name, d, i, rowBase, err)
			}
			out, err := fn(s)
			if err != nil {
				return nil, dictError(name, d, i, rowBase, err)
			}
			b.Append(out)
		}
		nd := b.NewArray()
		defer nd.Release()
		return array.NewDictionaryArray(stringDict, d.Indices(), nd), nil
	}
	if c, ok := col.(*array.Int64); ok {
		return mapInt64s(mem, name, c, rowBase, fn)
	}
	bld := array.NewDictionaryBuilder(mem, stringDict).(*array.BinaryDictionaryBuilder)
	defer bld.Release()
	cache := map[string]string{}
	for i := range col.Len() {
		if col.IsNull(i) {
			bld.AppendNull()
			continue
		}
		s, err := valueText(col, i)
		if err != nil {
			return nil, rowerr.At(rowerr.Row(rowBase, i), name, err)
		}
		out, ok := cache[s]
		if !ok {
			if out, err = fn(s); err != nil {
				return nil, rowerr.At(rowerr.Row(rowBase, i), name, err)
			}
			cache[s] = out
		}
		if err := bld.AppendString(out); err != nil {
			return nil, err
		}
	}
	return bld.NewArray(), nil
}

// dictError locates err, about entry i of d's dictionary, at the first row
// that uses the entry (rowBase+1 is the batch's first row).
func dictError(name string, d *array.Dictionary, i int, rowBase int64, err error) error {
	for r := range d.Len() {
		if d.IsValid(r) && d.GetValueIndex(r) == i {
			return rowerr.At(rowerr.Row(rowBase, r), name, err)
		}
	}
	return rowerr.At(0, name, fmt.Errorf("dictionary entry %d (used by no row): %w", i, err))
}

// mapInt64s is mapValues for int64 columns (years, codes): each distinct
// number is mapped once and rows get dictionary indices directly.
func mapInt64s(mem memory.Allocator, name string, col *array.Int64, rowBase int64, fn func(string) (string, error)) (arrow.Array, error) {
	byNum := map[int64]int32{}
	byText := map[string]int32{}
	var vals []string
	ib := array.NewInt32Builder(mem)
	defer ib.Release()
	ib.Reserve(col.Len())
	for i, v := range col.Int64Values() {
		if col.IsNull(i) {
			ib.AppendNull()
			continue
		}
		j, ok := byNum[v]
		if !ok {
			out, err := fn(strconv.FormatInt(v, 10))
			if err != nil {
				return nil, rowerr.At(rowerr.Row(rowBase, i), name, err)
			}
			if j, ok = byText[out]; !ok {
				j = int32(len(vals))
				byText[out] = j
				vals = append(vals, out)
			}
			byNum[v] = j
		}
		ib.UnsafeAppend(j)
	}
	idx := ib.NewArray()
	defer idx.Release()
	sb := array.NewStringBuilder(mem)
	defer sb.Release()
	sb.AppendValues(vals, nil)
	dict := sb.NewArray()
	defer dict.Release()
	return array.NewDictionaryArray(stringDict, idx, dict), nil
}

// valueText is the text form of a value that hierarchies and masks see.
func valueText(a arrow.Array, i int) (string, error) {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.Dictionary:
		return valueText(a.Dictionary(), a.GetValueIndex(i))
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10), nil
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64), nil
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32), nil
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i)), nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano), nil
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02"), nil
	}
	return "", fmt.Errorf("type %s is not supported here", a.DataType())
}

// generalizeFn generalises values to a fixed hierarchy level.
func generalizeFn(h kanon.Hierarchy, level int) func(string) (string, error) {
	return func(s string) (string, error) { return h.Generalize(s, level) }
}
