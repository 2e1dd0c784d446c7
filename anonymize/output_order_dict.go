package anonymize

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A dictionary array carries more than its rows: the values in its
// dictionary and their order. A dictionary built in first-seen order over
// the rows as a run met them (the coarsener's cells, a generalised column,
// a Parquet row group's strings) records the order in which values first
// appeared, and a dictionary filtered or sliced along with its rows still
// holds the values of rows that were suppressed. Writers pass both on: the
// Parquet writer stores a batch's dictionary as the column chunk's
// dictionary page, the IPC writers store it as the dictionary batch.
//
// dictCanon gives every written batch dictionaries that are a function of
// the written rows alone:
//
//   - a column of strings or bytes whose written values are few (at most
//     maxGlobalDictValues values and maxGlobalDictBytes bytes, and within
//     the index type's range) gets one dictionary for the whole output: the
//     sorted set of the values it takes in the written rows. Every batch
//     shares it, so Parquet keeps dictionary encoding over whole row groups
//     and the IPC file writer writes it once;
//   - any other dictionary column gets, per batch, the values the batch's
//     rows use, in the order they first appear in the batch (which the
//     output order fixes).
type dictCanon struct {
	mem  memory.Allocator
	cols []*dictCol
}

const (
	maxGlobalDictValues = 1 << 16
	// Parquet's default dictionary page limit: a larger dictionary falls
	// back to plain encoding anyway.
	maxGlobalDictBytes = 1 << 20
)

// dictCol is one dictionary column's state.
type dictCol struct {
	col  int
	name string
	typ  *arrow.DictionaryType
	// collecting the written values for a global dictionary; false once
	// they are too many (or the value type has no byte order)
	global bool
	values map[string]struct{}
	bytes  int
	// the global dictionary, sorted (seal)
	dict arrow.Array
	pos  map[string]int32
	// scratch, per dictionary entry of the batch at hand
	stamp []uint32 // generation when the entry was last seen
	to    []int32  // its new index in that generation
	gen   uint32
	idx   []int32 // the batch's indices, -1 for null
}

func newDictCanon(schema *arrow.Schema, mem memory.Allocator) *dictCanon {
	c := &dictCanon{mem: mem}
	for i, f := range schema.Fields() {
		dt, ok := f.Type.(*arrow.DictionaryType)
		if !ok {
			continue
		}
		dc := &dictCol{col: i, name: f.Name, typ: dt}
		switch dt.ValueType.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
			dc.global, dc.values = true, map[string]struct{}{}
		}
		c.cols = append(c.cols, dc)
	}
	return c
}

// observe adds the values rec's rows use to the global dictionaries.
func (c *dictCanon) observe(rec arrow.RecordBatch) error {
	for _, dc := range c.cols {
		if !dc.global {
			continue
		}
		d, err := dc.array(rec)
		if err != nil {
			return err
		}
		dict := d.Dictionary()
		dc.visit(d, func(j int) {
			if !dc.global || dict.IsNull(j) {
				return
			}
			v := binaryValue(dict, j)
			if _, ok := dc.values[v]; ok {
				return
			}
			dc.values[strings.Clone(v)] = struct{}{}
			dc.bytes += len(v)
			if len(dc.values) > min(maxGlobalDictValues, maxIndex(dc.typ.IndexType)) || dc.bytes > maxGlobalDictBytes {
				dc.global, dc.values = false, nil
			}
		})
	}
	return nil
}

// seal builds the global dictionaries from the values observed.
func (c *dictCanon) seal() error {
	for _, dc := range c.cols {
		if !dc.global || dc.dict != nil {
			continue
		}
		vals := make([]string, 0, len(dc.values))
		for v := range dc.values {
			vals = append(vals, v)
		}
		slices.Sort(vals)
		b := array.NewBuilder(c.mem, dc.typ.ValueType)
		switch vb := b.(type) {
		case *array.StringBuilder:
			vb.AppendValues(vals, nil)
		case *array.LargeStringBuilder:
			vb.AppendValues(vals, nil)
		case *array.BinaryBuilder:
			vb.AppendStringValues(vals, nil)
		default:
			b.Release()
			return fmt.Errorf("output order: column %q: no global dictionary for %s", dc.name, dc.typ.ValueType)
		}
		dc.dict = b.NewArray()
		b.Release()
		dc.pos = make(map[string]int32, len(vals))
		for i, v := range vals {
			dc.pos[v] = int32(i)
		}
		dc.values = nil
	}
	return nil
}

// canonical returns rec with every dictionary column canonical (global or
// first-seen per batch); the caller releases both.
func (c *dictCanon) canonical(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	return c.rewrite(ctx, rec, func(dc *dictCol, d *array.Dictionary) (arrow.Array, error) {
		if dc.dict != nil {
			return c.toGlobal(dc, d)
		}
		return c.firstSeen(ctx, dc, d)
	})
}

// compact returns rec with the dictionaries that are longer than rec
// reduced to the values its rows use (first seen first). Routing uses it
// for the pieces of a batch it writes to different partitions, so that a
// piece does not carry (and the partition file repeat) a dictionary far
// larger than itself.
func (c *dictCanon) compact(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	return c.rewrite(ctx, rec, func(dc *dictCol, d *array.Dictionary) (arrow.Array, error) {
		if d.Dictionary().Len() <= d.Len() {
			return nil, nil
		}
		return c.firstSeen(ctx, dc, d)
	})
}

// rewrite replaces each dictionary column of rec by fn's array (nil: keep
// it). The result is rec retained when nothing changed.
func (c *dictCanon) rewrite(_ context.Context, rec arrow.RecordBatch, fn func(*dictCol, *array.Dictionary) (arrow.Array, error)) (arrow.RecordBatch, error) {
	var cols []arrow.Array
	var owned []arrow.Array
	defer func() {
		for _, a := range owned {
			a.Release()
		}
	}()
	for _, dc := range c.cols {
		d, err := dc.array(rec)
		if err != nil {
			return nil, err
		}
		a, err := fn(dc, d)
		if err != nil {
			return nil, err
		}
		if a == nil {
			continue
		}
		owned = append(owned, a)
		if cols == nil {
			cols = slices.Clone(rec.Columns())
		}
		cols[dc.col] = a
	}
	if cols == nil {
		rec.Retain()
		return rec, nil
	}
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows()), nil
}

// toGlobal maps d onto the column's global dictionary.
func (c *dictCanon) toGlobal(dc *dictCol, d *array.Dictionary) (arrow.Array, error) {
	dict := d.Dictionary()
	var missing error
	dc.visit(d, func(j int) {
		switch {
		case dict.IsNull(j):
			dc.to[j] = -1
		default:
			p, ok := dc.pos[binaryValue(dict, j)]
			if !ok && missing == nil {
				missing = fmt.Errorf("output order: column %q: a written value is missing from the output's dictionary", dc.name)
			}
			dc.to[j] = p
		}
	})
	if missing != nil {
		return nil, missing
	}
	idx, err := dc.remapped(c.mem)
	if err != nil {
		return nil, err
	}
	defer idx.Release()
	return array.NewDictionaryArray(dc.typ, idx, dc.dict), nil
}

// firstSeen reduces d's dictionary to the values its rows use, numbered in
// the order the rows first use them.
func (c *dictCanon) firstSeen(ctx context.Context, dc *dictCol, d *array.Dictionary) (arrow.Array, error) {
	var used []int32
	dc.visit(d, func(j int) {
		dc.to[j] = int32(len(used))
		used = append(used, int32(j))
	})
	idx, err := dc.remapped(c.mem)
	if err != nil {
		return nil, err
	}
	defer idx.Release()
	take := array.NewInt32Builder(c.mem)
	take.AppendValues(used, nil)
	ta := take.NewArray()
	take.Release()
	defer ta.Release()
	dict, err := compute.TakeArray(compute.WithAllocator(ctx, c.mem), d.Dictionary(), ta)
	if err != nil {
		return nil, fmt.Errorf("output order: column %q: %w", dc.name, err)
	}
	defer dict.Release()
	return array.NewDictionaryArray(dc.typ, idx, dict), nil
}

// array is rec's column dc as a dictionary array.
func (dc *dictCol) array(rec arrow.RecordBatch) (*array.Dictionary, error) {
	d, ok := rec.Column(dc.col).(*array.Dictionary)
	if !ok {
		return nil, fmt.Errorf("output order: column %q is %s, want a dictionary", dc.name, rec.Column(dc.col).DataType())
	}
	return d, nil
}

// visit reads d's indices into dc.idx (-1 for null rows) and calls fn once
// for every dictionary entry the rows use, in the order of first use. fn
// sets dc.to[j], the entry's new index, which remapped reads.
func (dc *dictCol) visit(d *array.Dictionary, fn func(j int)) {
	n, dn := d.Len(), d.Dictionary().Len()
	if cap(dc.stamp) < dn {
		dc.stamp, dc.to = make([]uint32, dn), make([]int32, dn)
		dc.gen = 0
	}
	dc.stamp, dc.to = dc.stamp[:dn], dc.to[:dn]
	dc.gen++
	if dc.gen == 0 { // wrapped: stale stamps could match
		clear(dc.stamp[:cap(dc.stamp)])
		dc.gen = 1
	}
	dc.idx = slices.Grow(dc.idx[:0], n)[:n]
	if ia, ok := d.Indices().(*array.Int32); ok && d.NullN() == 0 {
		copy(dc.idx, ia.Int32Values())
	} else {
		for i := range n {
			if d.IsNull(i) {
				dc.idx[i] = -1
				continue
			}
			dc.idx[i] = int32(d.GetValueIndex(i))
		}
	}
	for _, j := range dc.idx {
		if j < 0 || dc.stamp[j] == dc.gen {
			continue
		}
		dc.stamp[j] = dc.gen
		fn(int(j))
	}
}

// remapped is the index array of the rows visit read, each mapped through
// dc.to (a negative target is a null row), in the column's index type.
func (dc *dictCol) remapped(mem memory.Allocator) (arrow.Array, error) {
	out := make([]int32, len(dc.idx))
	valid := make([]bool, len(dc.idx))
	nulls := false
	for i, j := range dc.idx {
		if j >= 0 && dc.to[j] >= 0 {
			out[i], valid[i] = dc.to[j], true
		} else {
			nulls = true
		}
	}
	if !nulls {
		valid = nil
	}
	return intArray(mem, dc.typ.IndexType, out, valid)
}

// intArray builds an integer array of type t from values that fit it.
func intArray(mem memory.Allocator, t arrow.DataType, vals []int32, valid []bool) (arrow.Array, error) {
	b := array.NewBuilder(mem, t)
	defer b.Release()
	b.Reserve(len(vals))
	isValid := func(i int) bool { return valid == nil || valid[i] }
	for i, v := range vals {
		if !isValid(i) {
			b.AppendNull()
			continue
		}
		switch ib := b.(type) {
		case *array.Int8Builder:
			ib.UnsafeAppend(int8(v))
		case *array.Int16Builder:
			ib.UnsafeAppend(int16(v))
		case *array.Int32Builder:
			ib.UnsafeAppend(v)
		case *array.Int64Builder:
			ib.UnsafeAppend(int64(v))
		case *array.Uint8Builder:
			ib.UnsafeAppend(uint8(v))
		case *array.Uint16Builder:
			ib.UnsafeAppend(uint16(v))
		case *array.Uint32Builder:
			ib.UnsafeAppend(uint32(v))
		case *array.Uint64Builder:
			ib.UnsafeAppend(uint64(v))
		default:
			return nil, fmt.Errorf("output order: dictionary index type %s", t)
		}
	}
	return b.NewArray(), nil
}

// maxIndex is the number of dictionary entries index type t can address
// (capped at MaxInt32: indices are remapped as int32).
func maxIndex(t arrow.DataType) int {
	switch t.ID() {
	case arrow.INT8:
		return math.MaxInt8 + 1
	case arrow.UINT8:
		return math.MaxUint8 + 1
	case arrow.INT16:
		return math.MaxInt16 + 1
	case arrow.UINT16:
		return math.MaxUint16 + 1
	}
	return math.MaxInt32
}

// binaryValue is entry j of a string or binary array, as a string that
// aliases the array's memory (clone it to keep it).
func binaryValue(a arrow.Array, j int) string {
	switch v := a.(type) {
	case *array.String:
		return v.Value(j)
	case *array.LargeString:
		return v.Value(j)
	case *array.Binary:
		b := v.Value(j)
		return unsafe.String(unsafe.SliceData(b), len(b))
	case *array.LargeBinary:
		b := v.Value(j)
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return ""
}

// release drops the global dictionaries.
func (c *dictCanon) release() {
	for _, dc := range c.cols {
		if dc.dict != nil {
			dc.dict.Release()
			dc.dict = nil
		}
	}
}
