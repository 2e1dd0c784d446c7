package dp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// keyType records how a key column is typed, so that the result (and
// partitions that only a public list names) can be rebuilt with that type.
type keyType struct {
	Kind string         `json:"kind"` // "string", "int" or "timestamp"
	Unit arrow.TimeUnit `json:"unit,omitempty"`
	TZ   string         `json:"tz,omitempty"`
}

func (k keyType) arrowType() arrow.DataType {
	switch k.Kind {
	case "int":
		return arrow.PrimitiveTypes.Int64
	case "timestamp":
		return &arrow.TimestampType{Unit: k.Unit, TimeZone: k.TZ}
	}
	return arrow.BinaryTypes.String
}

func keyTypeOf(dt arrow.DataType) (keyType, bool) {
	switch t := dt.(type) {
	case *arrow.StringType, *arrow.LargeStringType:
		return keyType{Kind: "string"}, true
	case *arrow.DictionaryType:
		switch t.ValueType.(type) {
		case *arrow.StringType, *arrow.LargeStringType:
			return keyType{Kind: "string"}, true
		}
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type,
		*arrow.Uint8Type, *arrow.Uint16Type, *arrow.Uint32Type:
		return keyType{Kind: "int"}, true
	case *arrow.TimestampType:
		return keyType{Kind: "timestamp", Unit: t.Unit, TZ: t.TimeZone}, true
	}
	return keyType{}, false
}

// canonical renders one key value as text: strings as they are, integers in
// decimal, timestamps as RFC 3339 in UTC. Public partition lists are matched
// on this form, so a CSV list of strings matches integer or timestamp keys.
func canonical(arr arrow.Array, i int) (string, error) {
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.Dictionary:
		switch d := a.Dictionary().(type) {
		case *array.String:
			return d.Value(a.GetValueIndex(i)), nil
		case *array.LargeString:
			return d.Value(a.GetValueIndex(i)), nil
		}
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano), nil
	}
	if v, ok := intValue(arr, i); ok {
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("type %s is not a supported key type (string, dictionary of strings, integer, timestamp)", arr.DataType())
}

func intValue(arr arrow.Array, i int) (int64, bool) {
	switch a := arr.(type) {
	case *array.Int8:
		return int64(a.Value(i)), true
	case *array.Int16:
		return int64(a.Value(i)), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int64:
		return a.Value(i), true
	case *array.Uint8:
		return int64(a.Value(i)), true
	case *array.Uint16:
		return int64(a.Value(i)), true
	case *array.Uint32:
		return int64(a.Value(i)), true
	case *array.Timestamp:
		return int64(a.Value(i)), true
	}
	return 0, false
}

// tupleKey joins canonical column values into one unambiguous string.
func tupleKey(vals []string) string {
	var b strings.Builder
	for _, v := range vals {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

// splitTupleKey inverts tupleKey.
func splitTupleKey(k string) ([]string, error) {
	var out []string
	for len(k) > 0 {
		c := strings.IndexByte(k, ':')
		if c < 0 {
			return nil, fmt.Errorf("malformed partition key")
		}
		n, err := strconv.Atoi(k[:c])
		if err != nil || n < 0 || c+1+n > len(k) {
			return nil, fmt.Errorf("malformed partition key")
		}
		out = append(out, k[c+1:c+1+n])
		k = k[c+1+n:]
	}
	return out, nil
}

// u64Table maps uint64 keys to dense uint32 ids with open addressing: no Go
// map on the hot path, two flat slices.
type u64Table struct {
	keys  []uint64
	ids   []uint32 // id+1; 0 = empty slot
	mask  uint64
	shift uint
	n     int
}

func newU64Table(hint int) *u64Table {
	size := 16
	for size < 2*hint {
		size *= 2
	}
	t := &u64Table{}
	t.alloc(size)
	return t
}

func (t *u64Table) alloc(size int) {
	t.keys = make([]uint64, size)
	t.ids = make([]uint32, size)
	t.mask = uint64(size - 1)
	t.shift = uint(64 - bitsLen(size))
}

func bitsLen(size int) int {
	n := 0
	for size > 1 {
		size >>= 1
		n++
	}
	return n
}

const fib = 0x9E3779B97F4A7C15

// get returns the id of k, inserting it with the next dense id if absent.
func (t *u64Table) get(k uint64) uint32 {
	i := (k * fib) >> t.shift
	for {
		id := t.ids[i]
		if id == 0 {
			break
		}
		if t.keys[i] == k {
			return id - 1
		}
		i = (i + 1) & t.mask
	}
	if 2*(t.n+1) > len(t.keys) {
		t.grow()
		return t.get(k)
	}
	t.keys[i] = k
	t.n++
	t.ids[i] = uint32(t.n)
	return uint32(t.n - 1)
}

func (t *u64Table) grow() {
	keys, ids := t.keys, t.ids
	t.alloc(2 * len(keys))
	for j, id := range ids {
		if id == 0 {
			continue
		}
		i := (keys[j] * fib) >> t.shift
		for t.ids[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.keys[i], t.ids[i] = keys[j], id
	}
}

// nullCode marks a null dictionary value in a remap.
const nullCode = ^uint32(0)

// colEncoder turns one column's values into dense uint32 codes that are
// stable across batches. Dictionary columns are remapped once per distinct
// dictionary (so rows cost one slice lookup); strings go through a map;
// integers and timestamps through a u64Table.
type colEncoder struct {
	name    string
	kt      keyType
	reverse bool     // keep canonical values for every code
	values  []string // canonical value of each code (if reverse)

	strs map[string]uint32
	ints *u64Table

	// remap of the last dictionary seen.
	lastDict arrow.ArrayData
	remap    []uint32
}

func newColEncoder(name string, reverse bool) *colEncoder {
	return &colEncoder{name: name, reverse: reverse, strs: map[string]uint32{}}
}

func (e *colEncoder) strCode(s string) uint32 {
	if c, ok := e.strs[s]; ok {
		return c
	}
	c := uint32(len(e.strs))
	s = strings.Clone(s) // the batch's buffers are not ours to keep
	e.strs[s] = c
	if e.reverse {
		e.values = append(e.values, s)
	}
	return c
}

// encode writes the code of every row of arr into out (len(out) == arr.Len()).
// firstRow is the zero-based offset of arr's first row in the whole input,
// for errors (rows are reported counted from 1, see package rowerr).
func (e *colEncoder) encode(arr arrow.Array, out []uint32, firstRow int64) error {
	if arr.NullN() > 0 {
		for i := 0; i < arr.Len(); i++ {
			if arr.IsNull(i) {
				return rowerr.At(rowerr.Row(firstRow, i), e.name, errNullKey)
			}
		}
	}
	kt, ok := keyTypeOf(arr.DataType())
	if !ok {
		return rowerr.Atf(0, e.name, "type %s is not supported (want string, dictionary of strings, integer or timestamp)", arr.DataType())
	}
	if e.kt.Kind == "" {
		e.kt = kt
	} else if e.kt != kt {
		return rowerr.Atf(0, e.name, "type changed between batches (%s)", arr.DataType())
	}
	switch a := arr.(type) {
	case *array.Dictionary:
		e.buildRemap(a.Dictionary())
		remap := e.remap
		switch idx := a.Indices().(type) {
		case *array.Int32:
			for i, v := range idx.Int32Values() {
				if uint64(v) >= uint64(len(remap)) {
					return rowerr.Atf(rowerr.Row(firstRow, i), e.name, "dictionary index %d out of range", v)
				}
				c := remap[v]
				if c == nullCode {
					return rowerr.At(rowerr.Row(firstRow, i), e.name, errNullKey)
				}
				out[i] = c
			}
		default:
			for i := 0; i < a.Len(); i++ {
				v := a.GetValueIndex(i)
				if v < 0 || v >= len(remap) {
					return rowerr.Atf(rowerr.Row(firstRow, i), e.name, "dictionary index %d out of range", v)
				}
				if remap[v] == nullCode {
					return rowerr.At(rowerr.Row(firstRow, i), e.name, errNullKey)
				}
				out[i] = remap[v]
			}
		}
	case *array.String:
		for i := 0; i < a.Len(); i++ {
			out[i] = e.strCode(a.Value(i))
		}
	case *array.LargeString:
		for i := 0; i < a.Len(); i++ {
			out[i] = e.strCode(a.Value(i))
		}
	default:
		if e.ints == nil {
			e.ints = newU64Table(1024)
		}
		t := e.ints
		if a64, ok := arr.(*array.Int64); ok {
			for i, v := range a64.Int64Values() {
				out[i] = e.intCode(t, arr, i, v)
			}
			return nil
		}
		for i := 0; i < arr.Len(); i++ {
			v, _ := intValue(arr, i)
			out[i] = e.intCode(t, arr, i, v)
		}
	}
	return nil
}

func (e *colEncoder) intCode(t *u64Table, arr arrow.Array, i int, v int64) uint32 {
	n := t.n
	c := t.get(uint64(v))
	if e.reverse && t.n > n {
		s, _ := canonical(arr, i)
		e.values = append(e.values, s)
	}
	return c
}

// prepareDict readies the fast path for a dictionary column with int32
// indices and no nulls at the index level: it (re)builds the remap of the
// dictionary and returns the indices and the remap (nullCode marks null
// dictionary values; indices must still be range-checked). ok is false when
// the column does not qualify and must go through encode.
func (e *colEncoder) prepareDict(arr arrow.Array) (idx []int32, remap []uint32, ok bool, err error) {
	a, isDict := arr.(*array.Dictionary)
	if !isDict || arr.NullN() > 0 {
		return nil, nil, false, nil
	}
	ind, isI32 := a.Indices().(*array.Int32)
	if !isI32 {
		return nil, nil, false, nil
	}
	kt, supported := keyTypeOf(arr.DataType())
	if !supported {
		return nil, nil, false, nil
	}
	if e.kt.Kind == "" {
		e.kt = kt
	} else if e.kt != kt {
		return nil, nil, false, rowerr.Atf(0, e.name, "type changed between batches (%s)", arr.DataType())
	}
	e.buildRemap(a.Dictionary())
	return ind.Int32Values(), e.remap, true, nil
}

// buildRemap maps every entry of dict to a code, unless dict is the one
// mapped last.
func (e *colEncoder) buildRemap(dict arrow.Array) {
	if e.lastDict != nil && e.lastDict == dict.Data() {
		return
	}
	e.remap = e.remap[:0]
	if len(e.strs) == 0 {
		// The first dictionary usually holds most values the column will
		// have (one shared dictionary per file or stream): size the map for
		// it at once instead of growing it through ~log2(n) rehashes.
		e.strs = make(map[string]uint32, dict.Len())
	}
	for j := 0; j < dict.Len(); j++ {
		if dict.IsNull(j) {
			// A null dictionary value: rows pointing at it are null.
			e.remap = append(e.remap, nullCode)
			continue
		}
		var s string
		switch d := dict.(type) {
		case *array.String:
			s = d.Value(j)
		case *array.LargeString:
			s = d.Value(j)
		}
		e.remap = append(e.remap, e.strCode(s))
	}
	// Hold a reference: a released dictionary's memory could be reused by
	// the next batch's, and a pointer match would then apply a stale remap.
	e.close()
	e.lastDict = dict.Data()
	e.lastDict.Retain()
}

// close drops the reference to the last dictionary.
func (e *colEncoder) close() {
	if e.lastDict != nil {
		e.lastDict.Release()
		e.lastDict = nil
	}
}

// cardinality is the number of distinct codes handed out.
func (e *colEncoder) cardinality() int {
	if e.ints != nil {
		return e.ints.n
	}
	return len(e.strs)
}

// errNullKey is the cause of a null in a subject or key column.
var errNullKey = errors.New("null value (nulls are not allowed in subject and key columns)")

// notFinite is the cause of a NaN or ±Inf value.
func notFinite(v float64) error {
	return fmt.Errorf("value %v is not finite (NaN and ±Inf are rejected: they have no place between the declared bounds)", v)
}

// valueColumn returns the values of a numeric column as float64, rejecting
// nulls, NaN and ±Inf with an error naming the column and row. buf is reused
// for non-float64 columns.
func valueColumn(name string, arr arrow.Array, buf []float64, firstRow int64) ([]float64, error) {
	if arr.NullN() > 0 {
		for i := 0; i < arr.Len(); i++ {
			if arr.IsNull(i) {
				return nil, rowerr.Atf(rowerr.Row(firstRow, i), name, "null value")
			}
		}
	}
	var vals []float64
	switch a := arr.(type) {
	case *array.Float64:
		vals = a.Float64Values()
	case *array.Float32:
		buf = buf[:0]
		for _, v := range a.Float32Values() {
			buf = append(buf, float64(v))
		}
		vals = buf
	default:
		if _, ok := intValue(arr, 0); !ok && arr.Len() > 0 {
			return nil, rowerr.Atf(0, name, "type %s is not numeric", arr.DataType())
		}
		buf = buf[:0]
		for i := 0; i < arr.Len(); i++ {
			v, _ := intValue(arr, i)
			buf = append(buf, float64(v))
		}
		vals = buf
	}
	for i, v := range vals {
		// v-v is 0 for finite v and NaN for NaN and ±Inf: one compare per row.
		if v-v != 0 {
			return nil, rowerr.At(rowerr.Row(firstRow, i), name, notFinite(v))
		}
	}
	return vals, nil
}
