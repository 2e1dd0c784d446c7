package anonymize

import (
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// interner maps the text of values to small ids, per column.
type interner struct {
	ids  map[string]uint32
	vals []string
	ints map[int64]uint32
	// the last dictionary interned and its ids (see dictKey)
	lastDict dictKey
	lastIDs  []uint32
}

func newInterner() *interner {
	return &interner{ids: map[string]uint32{}, ints: map[int64]uint32{}}
}

func (in *interner) id(s string) uint32 {
	if id, ok := in.ids[s]; ok {
		return id
	}
	id := uint32(len(in.vals))
	in.ids[s] = id
	in.vals = append(in.vals, s)
	return id
}

// column fills dst with the ids of col's values. Nulls are errors: a null
// quasi-identifier cannot be generalised or counted safely. Errors are
// located (rowerr) at rowBase+1+i for the i-th row.
func (in *interner) column(name string, col arrow.Array, rowBase int64, dst []uint32) error {
	if col.NullN() > 0 {
		for i := range col.Len() {
			if col.IsNull(i) {
				return rowerr.Atf(rowerr.Row(rowBase, i), name, "null value in a quasi-identifier or subject")
			}
		}
	}
	switch c := col.(type) {
	case *array.Dictionary:
		dict := c.Dictionary()
		sd, isStr := stringDictOf(c)
		var ids []uint32
		if isStr && in.lastIDs != nil && in.lastDict.matches(sd) {
			ids = in.lastIDs
		} else {
			ids = make([]uint32, dict.Len())
			for j := range ids {
				if dict.IsNull(j) {
					continue
				}
				s, err := valueText(dict, j)
				if err != nil {
					return rowerr.At(0, name, err)
				}
				ids[j] = in.id(s)
			}
			if isStr {
				in.lastDict.set(sd)
				in.lastIDs = ids
			}
		}
		for i := range c.Len() {
			dst[i] = ids[c.GetValueIndex(i)]
		}
	case *array.Int64:
		for i, v := range c.Int64Values() {
			id, ok := in.ints[v]
			if !ok {
				id = in.id(strconv.FormatInt(v, 10))
				in.ints[v] = id
			}
			dst[i] = id
		}
	default:
		for i := range col.Len() {
			s, err := valueText(col, i)
			if err != nil {
				return rowerr.At(rowerr.Row(rowBase, i), name, err)
			}
			dst[i] = in.id(s)
		}
	}
	return nil
}

// packKey appends ids as 4 bytes each.
func packKey(dst []byte, ids ...uint32) []byte {
	for _, id := range ids {
		dst = append(dst, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	}
	return dst
}

func growU32(b []uint32, n int) []uint32 {
	if cap(b) < n {
		return make([]uint32, n)
	}
	return b[:n]
}

func unpack(key string, i int) uint32 {
	return uint32(key[4*i]) | uint32(key[4*i+1])<<8 | uint32(key[4*i+2])<<16 | uint32(key[4*i+3])<<24
}
