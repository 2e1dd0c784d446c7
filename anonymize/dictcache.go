package anonymize

import (
	"bytes"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// dictKey is the content of a string dictionary, to recognise the same
// dictionary in the next batch. Parquet hands every batch of a row group the
// whole row-group dictionary (20,000 VINs for 20,000 vehicles), so work per
// dictionary entry — pseudonyms, opt-out tests, generalisation, interning —
// is done once per row group instead of once per batch. The key is input
// data the batch holds anyway; it lives only for one Run.
type dictKey struct {
	offsets []int32
	data    []byte
}

func stringDictOf(a arrow.Array) (*array.String, bool) {
	d, ok := a.(*array.Dictionary)
	if !ok {
		return nil, false
	}
	s, ok := d.Dictionary().(*array.String)
	return s, ok
}

func (k *dictKey) matches(s *array.String) bool {
	return k.data != nil && slices.Equal(k.offsets, s.ValueOffsets()) && bytes.Equal(k.data, s.ValueBytes())
}

func (k *dictKey) set(s *array.String) {
	k.offsets = append(k.offsets[:0], s.ValueOffsets()...)
	k.data = append(k.data[:0], s.ValueBytes()...)
	if k.data == nil {
		k.data = []byte{}
	}
}

// dictResultCache remembers the output dictionary an op produced for the
// last input dictionary, for ops that map a dictionary array to one with the
// same indices (pseudonyms, masks, generalisation). Safe for concurrent use.
type dictResultCache struct {
	mu  sync.Mutex
	key dictKey
	out arrow.Array // the output dictionary's values
	typ arrow.DataType
}

// lookup returns a new dictionary array over col's indices with the cached
// output values, or nil.
func (c *dictResultCache) lookup(col arrow.Array) arrow.Array {
	s, ok := stringDictOf(col)
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out == nil || !c.key.matches(s) {
		return nil
	}
	return array.NewDictionaryArray(c.typ, col.(*array.Dictionary).Indices(), c.out)
}

// store remembers out (computed from col) when out has col's indices.
func (c *dictResultCache) store(col, out arrow.Array) {
	s, ok := stringDictOf(col)
	if !ok {
		return
	}
	od, ok := out.(*array.Dictionary)
	if !ok {
		return
	}
	in := col.(*array.Dictionary).Indices()
	if !array.Equal(in, od.Indices()) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out != nil {
		c.out.Release()
	}
	c.key.set(s)
	c.out = od.Dictionary()
	c.out.Retain()
	c.typ = od.DataType()
}

func (c *dictResultCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out != nil {
		c.out.Release()
		c.out = nil
	}
	c.key = dictKey{}
}
