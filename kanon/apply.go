package kanon

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// Applier applies a search result to record batches (the second pass): each
// quasi-identifier becomes a dictionary<int32, utf8> column of its values
// generalised to the result's level, and the rows of suppressed classes are
// removed and counted. Other columns pass through unchanged.
//
// The batches must be the data the histogram was built from (or a subset):
// a value the first pass did not see is an error, never passed through.
type Applier struct {
	h       *Histogram
	levels  []int
	mem     memory.Allocator
	dicts   []arrow.Array // per quasi-identifier: its values at the result's level
	widths  []uint
	wide    bool
	supp    map[uint64]struct{}
	suppW   map[string]struct{}
	caches  []*valueCache
	leaves0 []int // leaves known after the first pass
	scratch [][]int32
	in      int64
	out     int64
	dropped int64
}

// NewApplier prepares the application of r, a result of Search on h.
// mem allocates the output (nil means memory.DefaultAllocator). Release the
// Applier when done.
func NewApplier(h *Histogram, r *Result, mem memory.Allocator) (*Applier, error) {
	const fn = "kanon.NewApplier"
	s, err := newSearcherFor(h, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	a := &Applier{h: h, levels: append([]int(nil), r.Levels...), mem: mem}
	nc := len(h.dims)
	a.widths = make([]uint, nc)
	var total uint
	for c, d := range h.dims {
		a.widths[c] = uint(bits.Len(uint(d.size(r.Levels[c]))))
		total += a.widths[c]
		a.leaves0 = append(a.leaves0, d.size(0))
		bld := array.NewStringBuilder(mem)
		for _, v := range d.values[r.Levels[c]] {
			bld.Append(v)
		}
		a.dicts = append(a.dicts, bld.NewArray())
		bld.Release()
	}
	a.wide = total > 64
	cl, supp, _ := s.classesOf(s.engine.lattice.id(r.Levels))
	a.supp = map[uint64]struct{}{}
	a.suppW = map[string]struct{}{}
	ids := make([]int32, nc)
	for i, sup := range supp {
		if !sup {
			continue
		}
		for c := range nc {
			ids[c] = cl.ids[c][i]
		}
		if a.wide {
			a.suppW[wideKey(ids)] = struct{}{}
		} else {
			a.supp[a.pack(ids)] = struct{}{}
		}
	}
	a.caches = make([]*valueCache, nc)
	for c := range a.caches {
		a.caches[c] = &valueCache{}
	}
	a.scratch = make([][]int32, nc)
	return a, nil
}

func (a *Applier) pack(ids []int32) uint64 {
	var k uint64
	var sh uint
	for c, id := range ids {
		k |= uint64(id) << sh
		sh += a.widths[c]
	}
	return k
}

func wideKey(ids []int32) string {
	b := make([]byte, 0, 4*len(ids))
	for _, v := range ids {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return string(b)
}

// Release frees the generalised dictionaries.
func (a *Applier) Release() {
	for _, d := range a.dicts {
		d.Release()
	}
	a.dicts = nil
}

// Counts returns the rows seen, written and suppressed so far
// (in = out + suppressed).
func (a *Applier) Counts() (in, out, suppressed int64) { return a.in, a.out, a.dropped }

// Schema returns the output schema for input schema sc.
func (a *Applier) Schema(sc *arrow.Schema) *arrow.Schema {
	fields := make([]arrow.Field, sc.NumFields())
	for i, f := range sc.Fields() {
		fields[i] = f
		for _, q := range a.h.qi {
			if f.Name == q {
				fields[i] = arrow.Field{Name: f.Name, Type: genDictType, Nullable: false, Metadata: f.Metadata}
			}
		}
	}
	md := sc.Metadata()
	return arrow.NewSchema(fields, &md)
}

var genDictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// Apply returns batch generalised, without its suppressed rows. The caller
// releases the result (which may have zero rows).
func (a *Applier) Apply(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	if a.dicts == nil {
		return nil, errors.New("kanon.Applier.Apply: applier released")
	}
	n := int(batch.NumRows())
	sc := batch.Schema()
	nc := len(a.h.dims)
	qcol := make([]int, nc)
	for c, d := range a.h.dims {
		idx := sc.FieldIndices(d.name)
		if len(idx) != 1 {
			return nil, rowerr.Atf(0, d.name, "not in input (or not unique)")
		}
		qcol[c] = idx[0]
		if cap(a.scratch[c]) < n {
			a.scratch[c] = make([]int32, 0, n)
		}
		ids, err := a.caches[c].leaves(d, batch.Column(idx[0]), a.in, a.scratch[c][:0])
		if err != nil {
			return nil, err
		}
		if d.size(0) != a.leaves0[c] {
			return nil, rowerr.Atf(0, d.name, "a value the first pass did not see (%q): the input changed between passes", d.values[0][d.size(0)-1])
		}
		gen := d.gen[a.levels[c]]
		for i, leaf := range ids {
			ids[i] = gen[leaf]
		}
		a.scratch[c] = ids
	}
	keep := make([]bool, n)
	kept := 0
	ids := make([]int32, nc)
	for r := range n {
		for c := range nc {
			ids[c] = a.scratch[c][r]
		}
		var sup bool
		if a.wide {
			_, sup = a.suppW[wideKey(ids)]
		} else {
			_, sup = a.supp[a.pack(ids)]
		}
		if !sup {
			keep[r] = true
			kept++
		}
	}
	a.in += int64(n)
	a.out += int64(kept)
	a.dropped += int64(n - kept)

	// Build the generalised columns for all rows, then filter.
	cols := make([]arrow.Array, batch.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		cols[i] = batch.Column(i)
		cols[i].Retain()
	}
	for c := range nc {
		ib := array.NewInt32Builder(a.mem)
		ib.AppendValues(a.scratch[c], nil)
		idx := ib.NewArray()
		ib.Release()
		dict := array.NewDictionaryArray(genDictType, idx, a.dicts[c])
		idx.Release()
		cols[qcol[c]].Release()
		cols[qcol[c]] = dict
	}
	full := array.NewRecordBatch(a.Schema(sc), cols, int64(n))
	if kept == n {
		return full, nil
	}
	defer full.Release()
	mb := array.NewBooleanBuilder(a.mem)
	mb.AppendValues(keep, nil)
	mask := mb.NewArray()
	mb.Release()
	defer mask.Release()
	out, err := compute.FilterRecordBatch(compute.WithAllocator(ctx, a.mem), full, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, fmt.Errorf("kanon.Applier.Apply: filtering suppressed rows: %w", err)
	}
	return out, nil
}
