package mobility

import (
	"bytes"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// interner maps strings to dense ids; ids are assigned in order of first
// appearance, so they are deterministic for a given input order.
type interner struct {
	ids  map[string]uint32
	next uint32
	// The last string dictionary interned (a copy of its content) and its
	// ids: Parquet gives every batch of a row group the row group's whole
	// dictionary (20,000 VINs for 20,000 vehicles), so a batch whose
	// dictionary has the same content reuses the ids instead of looking
	// every entry up again.
	lastOffsets []int32
	lastData    []byte
	lastIDs     []uint64
}

// dictIDs returns the ids of a string dictionary's entries, interning them.
// The slice is the interner's; valid until the next call.
func (in *interner) dictIDs(dv *array.String) []uint64 {
	if in.lastIDs != nil && slices.Equal(in.lastOffsets, dv.ValueOffsets()) && bytes.Equal(in.lastData, dv.ValueBytes()) {
		return in.lastIDs
	}
	ids := make([]uint64, dv.Len())
	for d := range ids {
		ids[d] = uint64(in.id(dv.Value(d)))
	}
	in.lastOffsets = append(in.lastOffsets[:0], dv.ValueOffsets()...)
	in.lastData = append(in.lastData[:0], dv.ValueBytes()...)
	in.lastIDs = ids
	return ids
}

func newInterner() *interner { return &interner{ids: map[string]uint32{}} }

func (in *interner) id(s string) uint32 {
	if v, ok := in.ids[s]; ok {
		return v
	}
	v := in.next
	in.ids[string([]byte(s))] = v // copy: s may alias Arrow memory
	in.next++
	return v
}

// checkKeyType accepts the column types keyValues can encode.
func checkKeyType(fn, field, name string, t arrow.DataType) error {
	switch t.ID() {
	case arrow.FLOAT64, arrow.INT64, arrow.INT32, arrow.UINT64, arrow.UINT32, arrow.TIMESTAMP, arrow.DATE32,
		arrow.STRING, arrow.LARGE_STRING, arrow.BINARY:
		return nil
	}
	if isStringDict(t) {
		return nil
	}
	return fmt.Errorf("%s: %s: column %q has unsupported type %s", fn, field, name, t)
}

// keyValues writes one uint64 per row that is equal for equal values and
// different for different values of the column (strings go through in).
// Nulls are errors naming the column and row.
func keyValues(fn, name string, a arrow.Array, in *interner, rowBase int64, dst []uint64) error {
	if err := checkNoNulls(fn, name, a, rowBase); err != nil {
		return err
	}
	switch a := a.(type) {
	case *array.Float64:
		for i, v := range a.Float64Values() {
			if v == 0 {
				v = 0 // -0 and +0 are one value
			}
			if math.IsNaN(v) {
				return fmt.Errorf("%s: %w", fn, rowerr.Atf(rowerr.Row(rowBase, i), name, "NaN"))
			}
			dst[i] = math.Float64bits(v)
		}
	case *array.Int64:
		for i, v := range a.Int64Values() {
			dst[i] = uint64(v)
		}
	case *array.Int32:
		for i, v := range a.Int32Values() {
			dst[i] = uint64(int64(v))
		}
	case *array.Uint64:
		copy(dst, a.Uint64Values())
	case *array.Uint32:
		for i, v := range a.Uint32Values() {
			dst[i] = uint64(v)
		}
	case *array.Timestamp:
		for i, v := range a.TimestampValues() {
			dst[i] = uint64(v)
		}
	case *array.Date32:
		for i, v := range a.Date32Values() {
			dst[i] = uint64(int64(v))
		}
	case *array.Dictionary:
		dv := a.Dictionary()
		var ids []uint64
		if sd, ok := dv.(*array.String); ok && sd.NullN() == 0 {
			ids = in.dictIDs(sd)
		} else {
			ids = make([]uint64, dv.Len())
			for d := range ids {
				ids[d] = uint64(in.id(dictViewString(dv, d)))
			}
		}
		for i := range dst[:a.Len()] {
			dst[i] = ids[a.GetValueIndex(i)]
		}
	case *array.String:
		for i := range dst[:a.Len()] {
			dst[i] = uint64(in.id(a.Value(i)))
		}
	case *array.LargeString:
		for i := range dst[:a.Len()] {
			dst[i] = uint64(in.id(a.Value(i)))
		}
	case *array.Binary:
		for i := range dst[:a.Len()] {
			dst[i] = uint64(in.id(a.ValueString(i)))
		}
	default:
		return fmt.Errorf("%s: column %q: unsupported type %s", fn, name, a.DataType())
	}
	return nil
}

func dictViewString(dv arrow.Array, i int) string {
	switch d := dv.(type) {
	case *array.String:
		return d.Value(i)
	case *array.LargeString:
		return d.Value(i)
	}
	return dv.ValueStr(i)
}

// mix64 is the SplitMix64 finaliser: a fixed, well-distributed 64-bit mix,
// so point hashes are reproducible across runs.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// denser maps the keys keyValues produces for a subject column to dense
// uint32 ids. String-like columns are interned already (their keys are dense
// ids); numeric keys (an int64 trip id) go through a map.
type denser struct {
	strs *interner
	ids  map[uint64]uint32
	next uint32
}

func newDenser() *denser { return &denser{strs: newInterner(), ids: map[uint64]uint32{}} }

// isInterned reports whether keyValues interns values of type t.
func isInterned(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.DICTIONARY:
		return true
	}
	return false
}

// noSubject marks a row with a null subject in the output of keysNullable.
const noSubject = math.MaxUint64

// keys fills dst with dense subject ids for column a; nulls are errors.
func (d *denser) keys(fn, name string, a arrow.Array, rowBase int64, dst []uint64) error {
	if err := keyValues(fn, name, a, d.strs, rowBase, dst); err != nil {
		return err
	}
	d.densify(a, dst)
	return nil
}

// keysNullable is keys where a null subject is allowed and marked noSubject
// (a row that belongs to no trace, such as a detached trip endpoint). It
// returns the number of null rows.
func (d *denser) keysNullable(fn, name string, a arrow.Array, rowBase int64, dst []uint64) (int, error) {
	nulls := a.NullN()
	if nulls == 0 {
		return 0, d.keys(fn, name, a, rowBase, dst)
	}
	// Key the valid rows on a copy with nulls replaced: keyValues rejects
	// nulls, so work per valid run.
	n := a.Len()
	for i := 0; i < n; {
		if a.IsNull(i) {
			dst[i] = noSubject
			i++
			continue
		}
		j := i
		for j < n && a.IsValid(j) {
			j++
		}
		part := array.NewSlice(a, int64(i), int64(j))
		err := keyValues(fn, name, part, d.strs, rowBase+int64(i), dst[i:j])
		if err == nil {
			d.densify(part, dst[i:j])
		}
		part.Release()
		if err != nil {
			return 0, err
		}
		i = j
	}
	return nulls, nil
}

// densify maps numeric keys to dense ids in place.
func (d *denser) densify(a arrow.Array, dst []uint64) {
	if isInterned(a.DataType()) {
		return
	}
	for i, v := range dst {
		id, ok := d.ids[v]
		if !ok {
			id = d.next
			d.ids[v] = id
			d.next++
		}
		dst[i] = uint64(id)
	}
}

// count is the number of distinct subjects seen.
func (d *denser) count() int { return int(d.strs.next) + int(d.next) }
