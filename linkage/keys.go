package linkage

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Keyer turns the values of Arrow columns into 64-bit keys, by value: equal
// values give equal keys whatever the column's physical type (a dictionary
// or a plain string column, int32 or int64, 50 or 50.0, a timestamp in
// milliseconds or microseconds, true or 1), so that a published file read
// back from Parquet or CSV matches the rows the pipeline wrote. Two
// different values collide with probability about 2⁻⁶⁴ per pair.
//
// Keys are never 0 (the value 0 stands for "no unit" in Traces). A Keyer
// is not safe for concurrent use: it caches the keys of the last string
// dictionary of each column it saw.
type Keyer struct {
	seed  uint64
	dicts map[string]*dictKeys
}

// dictKeys is the last string dictionary of one column (a copy of its
// content) and its keys: Parquet hands every batch of a row group the row
// group's whole dictionary.
type dictKeys struct {
	offsets []int32
	data    []byte
	keys    []uint64
}

// NewKeyer returns a Keyer whose keys are mixed with seed (from Key.Seed:
// the same seed gives the same keys, so two Keyers of one measurement
// agree).
func NewKeyer(seed uint64) *Keyer {
	return &Keyer{seed: seed, dicts: map[string]*dictKeys{}}
}

// Type tags keep values of different kinds apart (the string "1" and the
// number 1).
const (
	tagNull uint64 = iota + 1
	tagString
	tagInt
	tagFloat
	tagTime
	tagDate
)

func (k *Keyer) fin(tag, v uint64) uint64 {
	h := mix64(mix64(v^k.seed) ^ tag*0x9e3779b97f4a7c15)
	if h == 0 {
		return 1
	}
	return h
}

func (k *Keyer) str(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return k.fin(tagString, h.Sum64())
}

// Null is the key of a null value.
func (k *Keyer) Null() uint64 { return k.fin(tagNull, 0) }

// String is the key of a string value (as String columns give it).
func (k *Keyer) String(s string) uint64 { return k.str([]byte(s)) }

func (k *Keyer) int64Key(v int64) uint64 { return k.fin(tagInt, uint64(v)) }

// Int64 is the key of an integer, as Column gives it for any numeric type.
func (k *Keyer) Int64(v int64) uint64 { return k.int64Key(v) }

// Float64 is the key of a number, as Column gives it for any numeric type.
func (k *Keyer) Float64(v float64) uint64 { return k.float64Key(v) }

func (k *Keyer) float64Key(v float64) uint64 {
	switch {
	case math.IsNaN(v):
		return k.fin(tagFloat, 0x7ff8000000000001)
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return k.int64Key(int64(v)) // 50.0 as 50; -0 as 0
	}
	return k.fin(tagFloat, math.Float64bits(v))
}

// Supported reports whether Column can key a column of type t.
func Supported(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY,
		arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL, arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.NULL:
		return true
	case arrow.DICTIONARY:
		return Supported(t.(*arrow.DictionaryType).ValueType)
	}
	return false
}

// Column writes the key of every value of col into dst[:col.Len()]; name
// is the column's name, for the cache of its dictionary and for errors.
func (k *Keyer) Column(name string, col arrow.Array, dst []uint64) error {
	n := col.Len()
	if len(dst) < n {
		return fmt.Errorf("linkage.Keyer.Column: column %q: dst holds %d keys, want %d", name, len(dst), n)
	}
	dst = dst[:n]
	null := k.Null()
	switch c := col.(type) {
	case *array.Dictionary:
		dk, err := k.dictionary(name, c.Dictionary())
		if err != nil {
			return err
		}
		for i := range dst {
			if c.IsNull(i) {
				dst[i] = null
				continue
			}
			j := c.GetValueIndex(i)
			if dk[j] == 0 {
				dst[i] = null // a null dictionary entry
				continue
			}
			dst[i] = dk[j]
		}
		return nil
	case *array.String:
		for i := range dst {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.String(c.Value(i))
			}
		}
	case *array.LargeString:
		for i := range dst {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.String(c.Value(i))
			}
		}
	case *array.Binary:
		for i := range dst {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.str(c.Value(i))
			}
		}
	case *array.LargeBinary:
		for i := range dst {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.str(c.Value(i))
			}
		}
	case *array.Int8:
		intKeys(k, c, c.Int8Values(), dst)
	case *array.Int16:
		intKeys(k, c, c.Int16Values(), dst)
	case *array.Int32:
		intKeys(k, c, c.Int32Values(), dst)
	case *array.Int64:
		intKeys(k, c, c.Int64Values(), dst)
	case *array.Uint8:
		intKeys(k, c, c.Uint8Values(), dst)
	case *array.Uint16:
		intKeys(k, c, c.Uint16Values(), dst)
	case *array.Uint32:
		intKeys(k, c, c.Uint32Values(), dst)
	case *array.Uint64:
		for i, v := range c.Uint64Values() {
			switch {
			case c.IsNull(i):
				dst[i] = null
			case v <= math.MaxInt64:
				dst[i] = k.int64Key(int64(v))
			default:
				dst[i] = k.float64Key(float64(v))
			}
		}
	case *array.Float32:
		for i, v := range c.Float32Values() {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.float64Key(float64(v))
			}
		}
	case *array.Float64:
		// The hot case (per-reading values): the last value's key is
		// reused, as sensor values repeat between neighbouring rows.
		var last float64
		var lastKey uint64
		for i, v := range c.Float64Values() {
			switch {
			case c.IsNull(i):
				dst[i] = null
			case lastKey != 0 && v == last: // -0 == 0, and both key as 0
				dst[i] = lastKey
			default:
				last, lastKey = v, k.float64Key(v)
				dst[i] = lastKey
			}
		}
	case *array.Boolean:
		for i := range dst {
			switch {
			case c.IsNull(i):
				dst[i] = null
			case c.Value(i):
				dst[i] = k.int64Key(1) // a 0/1 flag keys alike as bool or int
			default:
				dst[i] = k.int64Key(0)
			}
		}
	case *array.Timestamp:
		// Keyed in nanoseconds, so that units compare by instant.
		mul := int64(c.DataType().(*arrow.TimestampType).Unit.Multiplier())
		for i, v := range c.TimestampValues() {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.fin(tagTime, uint64(int64(v)*mul))
			}
		}
	case *array.Date32:
		for i, v := range c.Date32Values() {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.fin(tagDate, uint64(int64(v)))
			}
		}
	case *array.Date64:
		for i, v := range c.Date64Values() {
			if c.IsNull(i) {
				dst[i] = null
			} else {
				dst[i] = k.fin(tagDate, uint64(int64(v)/86_400_000))
			}
		}
	case *array.Null:
		for i := range dst {
			dst[i] = null
		}
	default:
		return fmt.Errorf("linkage.Keyer.Column: column %q: type %s cannot be compared by value", name, col.DataType())
	}
	return nil
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32
}

func intKeys[T integer](k *Keyer, a arrow.Array, vals []T, dst []uint64) {
	null := k.Null()
	var last T
	var lastKey uint64
	for i, v := range vals {
		switch {
		case a.IsNull(i):
			dst[i] = null
		case lastKey != 0 && v == last:
			dst[i] = lastKey
		default:
			last, lastKey = v, k.int64Key(int64(v))
			dst[i] = lastKey
		}
	}
}

// dictionary returns the keys of a dictionary's entries (0 for a null
// entry), reusing the last result of the column when the content is the same.
func (k *Keyer) dictionary(name string, d arrow.Array) ([]uint64, error) {
	if s, ok := d.(*array.String); ok {
		c := k.dicts[name]
		if c != nil && slices.Equal(c.offsets, s.ValueOffsets()) && bytes.Equal(c.data, s.ValueBytes()) {
			return c.keys, nil
		}
		if c == nil {
			c = &dictKeys{}
			k.dicts[name] = c
		}
		c.keys = slices.Grow(c.keys[:0], s.Len())[:s.Len()]
		for j := range c.keys {
			if s.IsNull(j) {
				c.keys[j] = 0
			} else {
				c.keys[j] = k.String(s.Value(j))
			}
		}
		c.offsets = append(c.offsets[:0], s.ValueOffsets()...)
		c.data = append(c.data[:0], s.ValueBytes()...)
		return c.keys, nil
	}
	keys := make([]uint64, d.Len())
	if err := k.Column(name, d, keys); err != nil {
		return nil, err
	}
	null := k.Null()
	for j := range keys {
		if d.IsNull(j) || keys[j] == null {
			keys[j] = 0
		}
	}
	return keys, nil
}

// mix64 is the SplitMix64 finaliser: a bijection of 64-bit words that
// spreads every input bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Combine folds the keys of several columns of one row into the key of
// the row's point; the order of the columns matters.
func Combine(keys ...uint64) uint64 {
	h := uint64(0x243f6a8885a308d3)
	for _, k := range keys {
		h = mix64(h ^ k)
	}
	if h == 0 {
		return 1
	}
	return h
}

// CombineColumns writes into dst[i] the Combine of cols[c][i] over the
// columns c, for every row i of dst.
func CombineColumns(cols [][]uint64, dst []uint64) {
	for i := range dst {
		h := uint64(0x243f6a8885a308d3)
		for _, c := range cols {
			h = mix64(h ^ c[i])
		}
		if h == 0 {
			h = 1
		}
		dst[i] = h
	}
}
