package anonymize

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/fsum"
	"github.com/tarnkappe/tarnkappe/linkage"
)

// microAgg is microaggregation (action microaggregate): pass 1 sums every
// microaggregated column per (cell, time bucket) group, over every row of
// the group before suppression; pass 2 writes each row's group mean in
// place of its value (nulls too: the column now describes the group, and a
// per-row null pattern would be a per-reading value again). A published
// group holds at least mobility.k subjects (cell-hour k), so each value is
// an average over at least k vehicles, and it is the same for every row of
// the group: it adds nothing to what the row's cell and hour already say
// about whose reading it is. The group mean of the column is kept exactly,
// which is what the movement output is for (mobility.utility).
type microAgg struct {
	noHooks
	cols     []int // trans positions of the microaggregated columns
	names    []string
	cell, ts int // trans positions
	keyer    *linkage.Keyer
	groups   map[uint64]int32 // (cell, bucket) key → group index
	sums     [][]fsum.Sum     // per column, per group: exact, so any order of rows gives the same mean
	counts   [][]int64
	means    [][]float64 // per column, per group: the means apply writes (micro_mean.go)
	blockBuf [3][]uint64
	groupBuf []int32
	schema   *arrow.Schema // the rows after apply: trans with the columns as float64
}

// newMicroAgg returns nil when the plan has no microaggregated column.
func newMicroAgg(pl *plan, m *MobilityPolicy) *microAgg {
	a := &microAgg{cell: pl.trans.FieldIndices(m.CellColumn)[0], ts: pl.trans.FieldIndices(m.Time)[0],
		keyer: linkage.NewKeyer(0x6d6963726f), groups: map[uint64]int32{}}
	fields := pl.trans.Fields()
	for i, act := range pl.actions {
		if act == ActionMicroaggregate {
			a.cols = append(a.cols, i)
			a.names = append(a.names, fields[i].Name)
			fields[i].Type, fields[i].Nullable = arrow.PrimitiveTypes.Float64, true
		}
	}
	if len(a.cols) == 0 {
		return nil
	}
	a.sums = make([][]fsum.Sum, len(a.cols))
	a.counts = make([][]int64, len(a.cols))
	a.schema = arrow.NewSchema(fields, nil)
	return a
}

// blocks returns the (cell, bucket) key of every row of rec.
func (a *microAgg) blocks(rec arrow.RecordBatch) ([]uint64, error) {
	return a.blocksAt(rec, a.cell, a.ts)
}

// blocksAt is blocks for rows whose cell and time columns are at cell
// and ts.
func (a *microAgg) blocksAt(rec arrow.RecordBatch, cell, ts int) ([]uint64, error) {
	n := int(rec.NumRows())
	for i := range a.blockBuf {
		a.blockBuf[i] = growU64(a.blockBuf[i], n)
	}
	if err := a.keyer.Column("cell", rec.Column(cell), a.blockBuf[0]); err != nil {
		return nil, err
	}
	if err := a.keyer.Column("time", rec.Column(ts), a.blockBuf[1]); err != nil {
		return nil, err
	}
	linkage.CombineColumns(a.blockBuf[:2], a.blockBuf[2])
	return a.blockBuf[2], nil
}

func (a *microAgg) pass1(_ context.Context, rec arrow.RecordBatch, _ int64) error {
	blocks, err := a.blocks(rec)
	if err != nil {
		return fmt.Errorf("microaggregate: %w", err)
	}
	gs := a.groupBuf[:0]
	last, g := uint64(0), int32(-1)
	for _, b := range blocks {
		if b != last || g < 0 {
			g, last = a.group(b), b
		}
		gs = append(gs, g)
	}
	a.groupBuf = gs
	a.means = nil
	for c, col := range a.cols {
		sums, counts := a.sums[c], a.counts[c]
		switch arr := rec.Column(col).(type) {
		case *array.Float64:
			for i, v := range arr.Float64Values() {
				if arr.IsValid(i) {
					sums[gs[i]].Add(v)
					counts[gs[i]]++
				}
			}
		default:
			for i := range gs {
				if arr.IsValid(i) {
					v, _ := numberAt(arr, i)
					sums[gs[i]].Add(v)
					counts[gs[i]]++
				}
			}
		}
	}
	return nil
}

// apply returns rec (in the trans layout: the cell and time columns as
// pass 1 had them) with every microaggregated column replaced by its
// group's mean, in a.schema.
func (a *microAgg) apply(mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	blocks, err := a.blocks(rec)
	if err != nil {
		return nil, fmt.Errorf("microaggregate: %w", err)
	}
	cols := make([]arrow.Array, len(rec.Columns()))
	copy(cols, rec.Columns())
	var owned []arrow.Array
	defer func() {
		for _, c := range owned {
			c.Release()
		}
	}()
	// Each row's group, looked up once for all columns (consecutive rows
	// of a trip mostly share their cell-hour: the last lookup is reused).
	gs := a.groupBuf[:0]
	last, g := uint64(0), int32(-1)
	for i, k := range blocks {
		if i == 0 || k != last {
			last, g = k, -1
			if gi, ok := a.groups[k]; ok {
				g = gi
			}
		}
		gs = append(gs, g)
	}
	a.groupBuf = gs
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	means := a.meanTable()
	for c, col := range a.cols {
		b.Reserve(len(gs))
		counts := a.counts[c]
		for _, g := range gs {
			if g < 0 || counts[g] == 0 {
				b.UnsafeAppendBoolToBitmap(false)
				continue
			}
			b.UnsafeAppend(means[c][g])
		}
		arr := b.NewArray()
		owned = append(owned, arr)
		cols[col] = arr
	}
	return array.NewRecordBatch(a.schema, cols, rec.NumRows()), nil
}

// observePublished takes the group values from a published file
// (Runner.Attack): the rows' cell and time at cell and ts, the
// microaggregated columns at cols (in a.cols' order). apply then gives a
// raw row its cell-hour's published value, or null where the output
// publishes none.
func (a *microAgg) observePublished(rec arrow.RecordBatch, cell, ts int, cols []int) error {
	blocks, err := a.blocksAt(rec, cell, ts)
	if err != nil {
		return fmt.Errorf("microaggregate: %w", err)
	}
	a.means = nil
	for i, b := range blocks {
		g := a.group(b)
		for c, col := range cols {
			arr := rec.Column(col)
			if arr.IsNull(i) {
				continue
			}
			v, ok := numberAt(arr, i)
			if !ok {
				return fmt.Errorf("microaggregate: published column %q is %s, not a number", a.names[c], arr.DataType())
			}
			a.sums[c][g], a.counts[c][g] = fsum.Sum{}, 1
			a.sums[c][g].Add(v)
		}
	}
	return nil
}

// group returns the index of the (cell, bucket) group whose key is key,
// adding an empty group when there is none yet.
func (a *microAgg) group(key uint64) int32 {
	if g, ok := a.groups[key]; ok {
		return g
	}
	g := int32(len(a.groups))
	a.groups[key] = g
	for c := range a.cols {
		a.sums[c] = append(a.sums[c], fsum.Sum{})
		a.counts[c] = append(a.counts[c], 0)
	}
	return g
}

func growU64(b []uint64, n int) []uint64 {
	if cap(b) < n {
		return make([]uint64, n)
	}
	return b[:n]
}
