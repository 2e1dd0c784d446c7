package kanon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// HistogramOptions configures a HistogramBuilder.
type HistogramOptions struct {
	// QuasiIdentifiers are the columns to generalise, in lattice order.
	// Required, at least one, no duplicates.
	QuasiIdentifiers []string
	// Hierarchies holds one hierarchy per quasi-identifier. Required.
	Hierarchies map[string]Hierarchy
	// Sensitive is the sensitive column for l-diversity or t-closeness.
	// Optional; it must not be a quasi-identifier.
	Sensitive string
}

// Histogram counts the rows of each distinct combination of quasi-identifier
// values (and sensitive value, if any). It is built in one pass over the data
// and is all a Search needs: nodes of the lattice are evaluated by rolling it
// up, never by rescanning rows. Its size is bounded by the number of distinct
// combinations, not by the number of rows.
type Histogram struct {
	qi     []string
	dims   []*dimension
	sens   *dimension // nil without a sensitive column
	sensNm string
	leaves [][]int32 // leaves[c][e] = leaf id of column c in entry e
	sensID []int32   // sensitive value id per entry (nil without sensitive column)
	counts []int64
	rows   int64
	// leafCnt[c][leaf]: rows with that level-0 value of column c (what the
	// metrics and the one-column bounds start from).
	leafCnt [][]int64
	// keys[e]: entry e's key in the builder's index (leaf ids packed,
	// keyWidths[c] bits for column c, the sensitive id above), when it fits
	// 64 bits (nil otherwise): roll-ups from the histogram then move runs of
	// columns with a mask instead of one pass per column.
	keys      []uint64
	keyWidths []uint
}

// QuasiIdentifiers returns the quasi-identifier columns in lattice order.
func (h *Histogram) QuasiIdentifiers() []string { return slices.Clone(h.qi) }

// Rows returns the number of rows counted.
func (h *Histogram) Rows() int64 { return h.rows }

// Entries returns the number of distinct combinations.
func (h *Histogram) Entries() int { return len(h.counts) }

// Sensitive returns the sensitive column, or "".
func (h *Histogram) Sensitive() string { return h.sensNm }

// HistogramBuilder builds a Histogram from record batches.
type HistogramBuilder struct {
	h       *Histogram
	widths  []uint // bits per key component (qi columns, then sensitive)
	wide    bool   // key does not fit 64 bits: string keys
	index   *growTable
	sindex  map[string]int32
	caches  []*valueCache
	scratch [][]int32
	keybuf  []byte
	keys    []uint64
	fresh   []int32 // rows of the current chunk that start a new entry
	// entryKeys[e]: entry e's key (not wide; the histogram's keys).
	entryKeys []uint64
	err       error
	done      bool
	bufs      *histBufs // nil once handed back
}

// histBufs are a builder's growing buffers: the index, the per-chunk
// scratch and the histogram's columns while they fill. Builders take them
// from histPool and give them back when the histogram is finished (copied
// out at its exact size), so building many histograms — the benchmark,
// repeated runs in one process — does not allocate and garbage-collect
// them each time, and a histogram does not keep the slack of buffers sized
// for all rows being distinct.
type histBufs struct {
	index     *growTable
	scratch   [][]int32
	keys      []uint64
	fresh     []int32
	entryKeys []uint64
	leaves    [][]int32
	counts    []int64
	sensID    []int32
}

var histPool = sync.Pool{New: func() any { return new(histBufs) }}

// errBuilderDone is returned by Add after Histogram.
var errBuilderDone = errors.New("kanon.HistogramBuilder.Add: called after Histogram (start a new builder)")

// NewHistogramBuilder validates opts and returns an empty builder.
func NewHistogramBuilder(opts HistogramOptions) (*HistogramBuilder, error) {
	if len(opts.QuasiIdentifiers) == 0 {
		return nil, errors.New("kanon.NewHistogramBuilder: QuasiIdentifiers must name at least one column")
	}
	seen := map[string]bool{}
	h := &Histogram{qi: slices.Clone(opts.QuasiIdentifiers), sensNm: opts.Sensitive}
	for _, c := range opts.QuasiIdentifiers {
		if c == "" {
			return nil, errors.New("kanon.NewHistogramBuilder: QuasiIdentifiers contains an empty name")
		}
		if seen[c] {
			return nil, fmt.Errorf("kanon.NewHistogramBuilder: QuasiIdentifiers names %q twice", c)
		}
		seen[c] = true
		hi, ok := opts.Hierarchies[c]
		if !ok || hi == nil {
			return nil, fmt.Errorf("kanon.NewHistogramBuilder: Hierarchies has no hierarchy for column %q", c)
		}
		d, err := newDimension(c, hi)
		if err != nil {
			return nil, fmt.Errorf("kanon.NewHistogramBuilder: %w", err)
		}
		h.dims = append(h.dims, d)
	}
	if opts.Sensitive != "" {
		if seen[opts.Sensitive] {
			return nil, fmt.Errorf("kanon.NewHistogramBuilder: Sensitive column %q is also a quasi-identifier", opts.Sensitive)
		}
		d, _ := newDimension(opts.Sensitive, identityHierarchy{})
		h.sens = d
	}
	b := &HistogramBuilder{h: h, bufs: histPool.Get().(*histBufs)}
	h.leaves = make([][]int32, len(h.dims))
	for c := range h.leaves {
		if c == len(b.bufs.leaves) {
			b.bufs.leaves = append(b.bufs.leaves, nil)
		}
		h.leaves[c] = b.bufs.leaves[c][:0]
	}
	h.counts = b.bufs.counts[:0]
	if h.sens != nil {
		h.sensID = b.bufs.sensID[:0]
	}
	ncomp := len(h.dims)
	if h.sens != nil {
		ncomp++
	}
	b.widths = make([]uint, ncomp)
	for i := range ncomp {
		b.widths[i] = 4
		if i < len(h.dims) {
			b.widths[i] = max(4, uint(bits.Len(uint(h.dims[i].size(0)))))
		}
	}
	b.caches = make([]*valueCache, ncomp)
	for len(b.bufs.scratch) < ncomp {
		b.bufs.scratch = append(b.bufs.scratch, nil)
	}
	b.scratch = b.bufs.scratch[:ncomp]
	b.keys, b.fresh = b.bufs.keys, b.bufs.fresh
	if !b.wide {
		b.entryKeys = b.bufs.entryKeys[:0]
	}
	b.checkWidth()
	if b.wide {
		b.sindex = make(map[string]int32)
	}
	return b, nil
}

// identityHierarchy is the one-level hierarchy of a sensitive column.
type identityHierarchy struct{}

func (identityHierarchy) Levels() int { return 1 }
func (identityHierarchy) Generalize(v string, level int) (string, error) {
	if level != 0 {
		return "", fmt.Errorf("level %d out of range [0,0]", level)
	}
	return v, nil
}

func (b *HistogramBuilder) dim(i int) *dimension {
	if i < len(b.h.dims) {
		return b.h.dims[i]
	}
	return b.h.sens
}

func (b *HistogramBuilder) checkWidth() {
	var total uint
	for _, w := range b.widths {
		total += w
	}
	b.wide = total > 64
}

// Add counts the rows of batch. A null in a quasi-identifier or sensitive
// column, a value outside its hierarchy, or a missing column is an error
// naming the column and row (rows are numbered from 1 across all batches).
// After an error the builder is unusable.
func (b *HistogramBuilder) Add(batch arrow.RecordBatch) error {
	if b.err != nil {
		return b.err
	}
	if b.done {
		return errBuilderDone
	}
	if err := b.add(batch); err != nil {
		b.err = err
		return err
	}
	return nil
}

// histChunk bounds the rows converted at once, so the per-column scratch
// buffers stay small (and in cache) whatever the batch size.
const histChunk = 8192

func (b *HistogramBuilder) add(batch arrow.RecordBatch) error {
	n := int(batch.NumRows())
	if n == 0 {
		return nil
	}
	sch := batch.Schema()
	cols := make([]arrow.Array, len(b.widths))
	for i := range b.widths {
		d := b.dim(i)
		idx := sch.FieldIndices(d.name)
		if len(idx) == 0 {
			return rowerr.Atf(0, d.name, "not in input (columns: %s)", strings.Join(fieldNames(sch), ", "))
		}
		if len(idx) > 1 {
			return rowerr.Atf(0, d.name, "appears %d times in input", len(idx))
		}
		if b.caches[i] == nil {
			b.caches[i] = &valueCache{}
		}
		cols[i] = batch.Column(idx[0])
	}
	h := b.h
	if h.rows == 0 && len(h.counts) == 0 {
		// Size the first batch's structures for all its rows being
		// distinct: no rehashing or regrowth while the histogram fills.
		// (They are the pool's buffers: the histogram gets exact-size
		// copies.)
		hint := min(n, 1<<20)
		if !b.wide && b.index == nil {
			b.index = b.bufs.takeIndex(hint)
		}
		for c := range h.dims {
			h.leaves[c] = slices.Grow(h.leaves[c], hint)
		}
		if h.sens != nil {
			h.sensID = slices.Grow(h.sensID, hint)
		}
		h.counts = slices.Grow(h.counts, hint)
		if !b.wide {
			b.entryKeys = slices.Grow(b.entryKeys, hint)
		}
	}
	for lo := 0; lo < n; lo += histChunk {
		hi := min(n, lo+histChunk)
		if err := b.addChunk(cols, lo, hi, n); err != nil {
			return err
		}
	}
	return nil
}

// addChunk counts rows [lo,hi) of the batch whose columns are cols.
func (b *HistogramBuilder) addChunk(cols []arrow.Array, lo, hi, n int) error {
	m := hi - lo
	h := b.h
	for i, col := range cols {
		d := b.dim(i)
		if lo > 0 || hi < n {
			col = array.NewSlice(col, int64(lo), int64(hi))
		}
		if cap(b.scratch[i]) < m {
			b.scratch[i] = make([]int32, 0, m)
		}
		ids, err := b.caches[i].leaves(d, col, h.rows, b.scratch[i][:0])
		if col != cols[i] {
			col.Release()
		}
		if err != nil {
			return err
		}
		b.scratch[i] = ids
		if need := uint(bits.Len(uint(d.size(0)))); need > b.widths[i] {
			b.grow(i, need)
		}
	}
	if !b.wide {
		// Pack the keys column by column (sequential memory access), then
		// count them.
		if cap(b.keys) < m {
			b.keys = make([]uint64, m)
		}
		keys := b.keys[:m]
		var shift uint
		for i, w := range b.widths {
			ids := b.scratch[i][:m]
			ids = ids[:len(keys)]
			sh := shift & 63 // a bare shift: the total fits 64 bits
			if i == 0 {
				for r, id := range ids {
					keys[r] = uint64(id)
				}
			} else {
				for r, id := range ids {
					keys[r] |= uint64(id) << sh
				}
			}
			shift += w
		}
	}
	// Count; note the rows that start a new entry, whose ids are then
	// appended column by column.
	fresh := b.fresh[:0]
	if b.wide {
		for r := range m {
			e, ok := b.find(r)
			if !ok {
				e = int32(len(h.counts))
				fresh = append(fresh, int32(r))
				h.counts = append(h.counts, 0)
				b.insert(r, e)
			}
			h.counts[e]++
		}
	} else {
		for r, k := range b.keys[:m] {
			e, ok := b.index.getOrPut(k, int32(len(h.counts)))
			if !ok {
				fresh = append(fresh, int32(r))
				h.counts = append(h.counts, 0)
				b.entryKeys = append(b.entryKeys, k)
			}
			h.counts[e]++
		}
	}
	for c := range h.dims {
		h.leaves[c] = appendAt(h.leaves[c], b.scratch[c], fresh)
	}
	if h.sens != nil {
		h.sensID = appendAt(h.sensID, b.scratch[len(h.dims)], fresh)
	}
	b.fresh = fresh
	h.rows += int64(m)
	return nil
}

// appendAt appends src[i] for every i of at to dst.
func appendAt(dst, src, at []int32) []int32 {
	n := len(dst)
	dst = slices.Grow(dst, len(at))[:n+len(at)]
	out := dst[n:]
	for j, i := range at {
		out[j] = src[i]
	}
	return dst
}

func (b *HistogramBuilder) packRow(r int) uint64 {
	var k uint64
	var shift uint
	for i, w := range b.widths {
		k |= uint64(b.scratch[i][r]) << shift
		shift += w
	}
	return k
}

func (b *HistogramBuilder) wideKey(r int) []byte {
	b.keybuf = b.keybuf[:0]
	for i := range b.widths {
		b.keybuf = binary.LittleEndian.AppendUint32(b.keybuf, uint32(b.scratch[i][r]))
	}
	return b.keybuf
}

func (b *HistogramBuilder) find(r int) (int32, bool) {
	if b.wide {
		e, ok := b.sindex[string(b.wideKey(r))]
		return e, ok
	}
	return b.index.get(b.packRow(r))
}

func (b *HistogramBuilder) insert(r int, e int32) {
	if b.wide {
		b.sindex[string(b.wideKey(r))] = e
		return
	}
	b.index.put(b.packRow(r), e)
}

// grow widens key component i (a hierarchy without a fixed domain met more
// values than fit) and re-keys the existing entries.
func (b *HistogramBuilder) grow(i int, need uint) {
	b.widths[i] = max(need, b.widths[i]*2)
	wasWide := b.wide
	b.checkWidth()
	h := b.h
	ncomp := len(b.widths)
	comp := func(c, e int) int32 {
		if c < len(h.dims) {
			return h.leaves[c][e]
		}
		return h.sensID[e]
	}
	if b.wide {
		b.sindex = make(map[string]int32, len(h.counts))
		for e := range h.counts {
			b.keybuf = b.keybuf[:0]
			for c := range ncomp {
				b.keybuf = binary.LittleEndian.AppendUint32(b.keybuf, uint32(comp(c, e)))
			}
			b.sindex[string(b.keybuf)] = int32(e)
		}
		b.index, b.entryKeys = nil, nil
		return
	}
	_ = wasWide
	b.index = newGrowTable(len(h.counts))
	for e := range h.counts {
		var k uint64
		var shift uint
		for c, w := range b.widths {
			k |= uint64(comp(c, e)) << shift
			shift += w
		}
		b.index.put(k, int32(e))
		b.entryKeys[e] = k
	}
}

// Histogram returns the histogram built so far. The builder takes no more
// batches afterwards (Add returns an error); calling Histogram again
// returns the same histogram.
func (b *HistogramBuilder) Histogram() (*Histogram, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.done {
		return b.h, nil
	}
	b.done = true
	h := b.h
	// Copy the columns out of the pool's buffers at their exact size, in
	// one allocation.
	m := len(h.counts)
	all := make([]int32, len(h.dims)*m)
	for c, col := range h.leaves {
		b.bufs.leaves[c] = col[:0]
		h.leaves[c] = all[c*m : (c+1)*m : (c+1)*m]
		copy(h.leaves[c], col)
	}
	b.bufs.counts = h.counts[:0]
	h.counts = slices.Clone(h.counts)
	if h.sens != nil {
		b.bufs.sensID = h.sensID[:0]
		h.sensID = slices.Clone(h.sensID)
	}
	h.leafCnt = make([][]int64, len(h.dims))
	for c, d := range h.dims {
		h.leafCnt[c] = countLeaves(h.leaves[c], h.counts, d.size(0))
	}
	if !b.wide {
		b.bufs.entryKeys = b.entryKeys[:0]
		h.keys = slices.Clone(b.entryKeys)
		h.keyWidths = slices.Clone(b.widths[:len(h.dims)])
	}
	if b.index != nil {
		b.bufs.index = b.index
	}
	b.bufs.keys, b.bufs.fresh = b.keys, b.fresh[:0]
	// b.scratch shares its backing array with b.bufs.scratch: the grown
	// chunk buffers stay there.
	b.index, b.sindex, b.scratch, b.keys = nil, nil, nil, nil
	histPool.Put(b.bufs)
	b.bufs = nil
	return h, nil
}

// countLeaves returns the rows per leaf id. With few distinct values,
// consecutive entries mostly hit the same few counters, and each addition
// would wait for the previous one to the same counter: four interleaved
// tallies let them overlap (on Adult this pass was a tenth of a search).
func countLeaves(leaves []int32, counts []int64, size int) []int64 {
	out := make([]int64, size)
	const few = 64
	if size > few {
		for e, leaf := range leaves {
			out[leaf] += counts[e]
		}
		return out
	}
	var acc [4][few]int64
	e := 0
	for ; e+4 <= len(leaves); e += 4 {
		acc[0][leaves[e]&(few-1)] += counts[e]
		acc[1][leaves[e+1]&(few-1)] += counts[e+1]
		acc[2][leaves[e+2]&(few-1)] += counts[e+2]
		acc[3][leaves[e+3]&(few-1)] += counts[e+3]
	}
	for ; e < len(leaves); e++ {
		acc[0][leaves[e]&(few-1)] += counts[e]
	}
	for i := range out {
		out[i] = acc[0][i] + acc[1][i] + acc[2][i] + acc[3][i]
	}
	return out
}

// takeIndex returns an empty index for about n entries: the pooled one
// when its size fits (not more than 8 times too large, which would make
// clearing it cost more than it saves), else a new one.
func (hb *histBufs) takeIndex(n int) *growTable {
	if g := hb.index; g != nil {
		hb.index = nil
		if want := growTableSize(n); len(g.slots) >= want && len(g.slots) <= 8*want {
			g.reset()
			return g
		}
	}
	return newGrowTable(n)
}

// BuildHistogram reads every batch of rdr into a histogram. It does not
// release rdr.
func BuildHistogram(ctx context.Context, rdr array.RecordReader, opts HistogramOptions) (*Histogram, error) {
	b, err := NewHistogramBuilder(opts)
	if err != nil {
		return nil, err
	}
	for rdr.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.Add(rdr.RecordBatch()); err != nil {
			return nil, err
		}
	}
	if err := rdr.Err(); err != nil {
		return nil, fmt.Errorf("reading input: %w", err)
	}
	return b.Histogram()
}

func fieldNames(s *arrow.Schema) []string {
	out := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		out[i] = f.Name
	}
	return out
}

// valueCache turns one column's Arrow values into leaf ids, caching by
// native value so the hierarchy is consulted once per distinct value.
type valueCache struct {
	ints   map[int64]int32
	floats map[uint64]int32
	dict   []int32 // per dictionary index: leaf id, or -1 not yet computed
	dictOf arrow.ArrayData
}

// Errors about values, located by row and column (rowerr).
var (
	errNull = errors.New("null value (nulls in quasi-identifiers and sensitive columns are not allowed: fill or drop them first)")
	errNaN  = errors.New("NaN (not a value a hierarchy can generalise)")
)

// leaves appends the leaf id of every row of col to dst. base is the number
// of rows already counted, for error locations.
func (vc *valueCache) leaves(d *dimension, col arrow.Array, base int64, dst []int32) ([]int32, error) {
	n := col.Len()
	nullErr := func(i int) error { return rowerr.At(rowerr.Row(base, i), d.name, errNull) }
	wrap := func(i int, err error) error { return rowerr.At(rowerr.Row(base, i), d.name, err) }
	if col.NullN() > 0 {
		for i := range n {
			if col.IsNull(i) {
				return nil, nullErr(i)
			}
		}
	}
	switch a := col.(type) {
	case *array.Dictionary:
		dictVals := a.Dictionary()
		// Slices of one dictionary column share its dictionary data (the
		// Dictionary() arrays differ): key the cache on the data.
		if dd := a.Data().Dictionary(); vc.dictOf != dd {
			vc.dictOf = dd
			vc.dict = resize(vc.dict, dictVals.Len())
			for k := range vc.dict {
				vc.dict[k] = -1
			}
		}
		miss := func(i, k int) (int32, error) {
			if dictVals.IsNull(k) {
				return 0, nullErr(i)
			}
			s, err := formatValue(dictVals, k)
			if err != nil {
				return 0, wrap(i, err)
			}
			id, err := d.lookup(strings.Clone(s))
			if err != nil {
				return 0, wrap(i, err)
			}
			vc.dict[k] = id
			return id, nil
		}
		start := len(dst)
		dst = slices.Grow(dst, n)[:start+n]
		out, cache := dst[start:], vc.dict
		if ix, ok := a.Indices().(*array.Int32); ok {
			for i, k := range ix.Int32Values()[:n] {
				id := cache[k]
				if id < 0 {
					var err error
					if id, err = miss(i, int(k)); err != nil {
						return nil, err
					}
				}
				out[i] = id
			}
			return dst, nil
		}
		for i := range out {
			k := a.GetValueIndex(i)
			id := cache[k]
			if id < 0 {
				var err error
				if id, err = miss(i, k); err != nil {
					return nil, err
				}
			}
			out[i] = id
		}
		return dst, nil
	case *array.String:
		for i := range n {
			v := a.Value(i)
			id, ok := d.leaf[v]
			if !ok {
				var err error
				if id, err = d.lookup(strings.Clone(v)); err != nil {
					return nil, wrap(i, err)
				}
			}
			dst = append(dst, id)
		}
		return dst, nil
	case *array.LargeString:
		for i := range n {
			v := a.Value(i)
			id, ok := d.leaf[v]
			if !ok {
				var err error
				if id, err = d.lookup(strings.Clone(v)); err != nil {
					return nil, wrap(i, err)
				}
			}
			dst = append(dst, id)
		}
		return dst, nil
	case *array.Int64:
		return vc.intLeaves(d, n, a.Value, dst, wrap, func(v int64) string { return strconv.FormatInt(v, 10) })
	case *array.Int32:
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string { return strconv.FormatInt(v, 10) })
	case *array.Int16:
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string { return strconv.FormatInt(v, 10) })
	case *array.Int8:
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string { return strconv.FormatInt(v, 10) })
	case *array.Uint32:
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string { return strconv.FormatInt(v, 10) })
	case *array.Uint16:
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string { return strconv.FormatInt(v, 10) })
	case *array.Uint8:
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string { return strconv.FormatInt(v, 10) })
	case *array.Boolean:
		return vc.intLeaves(d, n, func(i int) int64 {
			if a.Value(i) {
				return 1
			}
			return 0
		}, dst, wrap, func(v int64) string { return strconv.FormatBool(v == 1) })
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string {
			return arrow.Timestamp(v).ToTime(unit).UTC().Format(time.RFC3339Nano)
		})
	case *array.Date32:
		return vc.intLeaves(d, n, func(i int) int64 { return int64(a.Value(i)) }, dst, wrap, func(v int64) string {
			return arrow.Date32(v).ToTime().Format("2006-01-02")
		})
	case *array.Float64:
		return vc.floatLeaves(d, n, a.Value, dst, wrap)
	case *array.Float32:
		return vc.floatLeaves(d, n, func(i int) float64 { return float64(a.Value(i)) }, dst, wrap)
	}
	return nil, rowerr.Atf(0, d.name, "type %s cannot be generalised (want string, dictionary, integer, float, boolean, date or timestamp)", col.DataType())
}

func (vc *valueCache) intLeaves(d *dimension, n int, val func(int) int64, dst []int32, wrap func(int, error) error, format func(int64) string) ([]int32, error) {
	if vc.ints == nil {
		vc.ints = make(map[int64]int32)
	}
	for i := range n {
		v := val(i)
		id, ok := vc.ints[v]
		if !ok {
			var err error
			if id, err = d.lookup(format(v)); err != nil {
				return nil, wrap(i, err)
			}
			vc.ints[v] = id
		}
		dst = append(dst, id)
	}
	return dst, nil
}

func (vc *valueCache) floatLeaves(d *dimension, n int, val func(int) float64, dst []int32, wrap func(int, error) error) ([]int32, error) {
	if vc.floats == nil {
		vc.floats = make(map[uint64]int32)
	}
	for i := range n {
		v := val(i)
		key := math.Float64bits(v)
		id, ok := vc.floats[key]
		if !ok {
			if v != v {
				return nil, wrap(i, errNaN)
			}
			var err error
			if id, err = d.lookup(strconv.FormatFloat(v, 'g', -1, 64)); err != nil {
				return nil, wrap(i, err)
			}
			vc.floats[key] = id
		}
		dst = append(dst, id)
	}
	return dst, nil
}

// formatValue renders element i of a (dictionary values) as a string.
func formatValue(a arrow.Array, i int) (string, error) {
	switch v := a.(type) {
	case *array.String:
		return v.Value(i), nil
	case *array.LargeString:
		return v.Value(i), nil
	case *array.Int64:
		return strconv.FormatInt(v.Value(i), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(v.Value(i)), 10), nil
	case *array.Float64:
		return strconv.FormatFloat(v.Value(i), 'g', -1, 64), nil
	case *array.Binary:
		return string(v.Value(i)), nil
	}
	return "", fmt.Errorf("dictionary of type %s is not supported", a.DataType())
}
