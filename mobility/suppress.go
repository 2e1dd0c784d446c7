package mobility

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/compute/exec"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// SuppressOptions configures a CellSuppressor.
type SuppressOptions struct {
	// Subject is the column whose distinct values are counted per group:
	// the real data subject (e.g. "vin"), not a per-trip pseudonym, so that
	// k means k vehicles. Required.
	Subject string
	// Cell and Time are the group columns: the coarsened cell and the time
	// bucket. Required.
	Cell, Time string
	// K is the minimum number of distinct subjects a (cell, bucket) group
	// needs to be released. Required, >= 2.
	K int
	// Mem allocates the output; nil means memory.DefaultAllocator.
	Mem memory.Allocator
}

// SuppressStats counts what a CellSuppressor did.
type SuppressStats struct {
	Groups           int   // (cell, bucket) groups observed
	GroupsSuppressed int   // groups with fewer than K subjects
	RowsObserved     int64 // rows seen by Observe
	RowsSuppressed   int64 // rows removed by Apply
	RowsKept         int64 // rows passed by Apply
}

// CellSuppressor removes the rows of (cell, time bucket) groups that fewer
// than K distinct subjects visit. It works in two passes over the same rows:
// Observe every batch first, then Apply to every batch. Memory is one entry
// per group holding at most K subject ids.
type CellSuppressor struct {
	opts           SuppressOptions
	mem            memory.Allocator
	schema         *arrow.Schema
	subj, cell, ts int
	subjects       *denser
	cells          *interner
	groups         map[[2]uint64]uint32 // (cell, time) key → group id
	subs           [][]uint32           // per group id: distinct subjects, up to K
	sealed         bool
	stats          SuppressStats
	buf            [3][]uint64
}

// NewCellSuppressor validates opts against the schema.
func NewCellSuppressor(schema *arrow.Schema, opts SuppressOptions) (*CellSuppressor, error) {
	const fn = "mobility.NewCellSuppressor"
	if schema == nil {
		return nil, fmt.Errorf("%s: nil schema", fn)
	}
	s := &CellSuppressor{opts: opts, schema: schema, mem: opts.Mem, subjects: newDenser(), cells: newInterner(), groups: map[[2]uint64]uint32{}}
	if s.mem == nil {
		s.mem = memory.DefaultAllocator
	}
	var err error
	for _, c := range []struct {
		field, name string
		dst         *int
	}{{"Subject", opts.Subject, &s.subj}, {"Cell", opts.Cell, &s.cell}, {"Time", opts.Time, &s.ts}} {
		if *c.dst, err = fieldIndex(fn, c.field, schema, c.name); err != nil {
			return nil, err
		}
		if err := checkKeyType(fn, c.field, c.name, schema.Field(*c.dst).Type); err != nil {
			return nil, err
		}
	}
	if opts.K < 2 {
		return nil, fmt.Errorf("%s: K must be >= 2, got %d", fn, opts.K)
	}
	return s, nil
}

func (s *CellSuppressor) keys(fn string, rec arrow.RecordBatch, base int64) ([]uint64, []uint64, []uint64, error) {
	n := int(rec.NumRows())
	for i := range s.buf {
		if cap(s.buf[i]) < n {
			s.buf[i] = make([]uint64, n)
		}
		s.buf[i] = s.buf[i][:n]
	}
	if err := s.subjects.keys(fn, s.opts.Subject, rec.Column(s.subj), base, s.buf[0]); err != nil {
		return nil, nil, nil, err
	}
	if err := keyValues(fn, s.opts.Cell, rec.Column(s.cell), s.cells, base, s.buf[1]); err != nil {
		return nil, nil, nil, err
	}
	if err := keyValues(fn, s.opts.Time, rec.Column(s.ts), s.cells, base, s.buf[2]); err != nil {
		return nil, nil, nil, err
	}
	return s.buf[0], s.buf[1], s.buf[2], nil
}

// Observe counts the subjects of one batch (first pass).
func (s *CellSuppressor) Observe(ctx context.Context, rec arrow.RecordBatch) error {
	const fn = "mobility.CellSuppressor.Observe"
	if s.sealed {
		return fmt.Errorf("%s: called after Apply; observe all rows first", fn)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSameSchema(fn, s.schema, rec); err != nil {
		return err
	}
	subj, cell, ts, err := s.keys(fn, rec, s.stats.RowsObserved)
	if err != nil {
		return err
	}
	s.observe(subj, cell, ts, nil, nil)
	s.stats.RowsObserved += rec.NumRows()
	return nil
}

// ObserveIDs is Observe that also writes, per row, the dense id of the
// row's (cell, time) group to groups and the dense id of its subject to
// subjects (both len(rec) long). Group ids count from 0 in order of first
// appearance (see GroupKept); subject ids likewise. A caller that keeps these
// ids per row can later decide suppression without recomputing the keys.
func (s *CellSuppressor) ObserveIDs(ctx context.Context, rec arrow.RecordBatch, groups, subjects []uint32) error {
	const fn = "mobility.CellSuppressor.ObserveIDs"
	if s.sealed {
		return fmt.Errorf("%s: called after Apply; observe all rows first", fn)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSameSchema(fn, s.schema, rec); err != nil {
		return err
	}
	if n := int(rec.NumRows()); len(groups) != n || len(subjects) != n {
		return fmt.Errorf("%s: %d rows but %d group and %d subject slots", fn, n, len(groups), len(subjects))
	}
	subj, cell, ts, err := s.keys(fn, rec, s.stats.RowsObserved)
	if err != nil {
		return err
	}
	s.observe(subj, cell, ts, groups, subjects)
	s.stats.RowsObserved += rec.NumRows()
	return nil
}

func (s *CellSuppressor) observe(subj, cell, ts []uint64, groups, subjects []uint32) {
	for i := range subj {
		k := [2]uint64{cell[i], ts[i]}
		g, ok := s.groups[k]
		if !ok {
			g = uint32(len(s.subs))
			s.groups[k] = g
			s.subs = append(s.subs, nil)
		}
		id := uint32(subj[i])
		if groups != nil {
			groups[i], subjects[i] = g, id
		}
		subs := s.subs[g]
		if len(subs) >= s.opts.K {
			continue
		}
		seen := false
		for _, x := range subs {
			if x == id {
				seen = true
				break
			}
		}
		if !seen {
			s.subs[g] = append(subs, id)
		}
	}
}

// Groups is the number of (cell, time) groups observed so far; group ids
// run from 0 to Groups()-1.
func (s *CellSuppressor) Groups() int { return len(s.subs) }

// GroupKept reports whether group id (from ObserveIDs) has at least K
// subjects, that is whether Apply keeps its rows. Only meaningful once every
// row has been observed.
func (s *CellSuppressor) GroupKept(id uint32) bool {
	return int(id) < len(s.subs) && len(s.subs[id]) >= s.opts.K
}

// Seal ends observation (as the first Apply does) and counts the groups
// below K for Stats.
func (s *CellSuppressor) Seal() { s.seal() }

// Apply returns the rows of rec whose group has at least K subjects (second
// pass) and the number of rows it removed. Rows of groups never observed are
// removed too (fail closed). The caller releases the result.
func (s *CellSuppressor) Apply(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, int64, error) {
	const fn = "mobility.CellSuppressor.Apply"
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := checkSameSchema(fn, s.schema, rec); err != nil {
		return nil, 0, err
	}
	s.seal()
	base := s.stats.RowsKept + s.stats.RowsSuppressed
	_, cell, ts, err := s.keys(fn, rec, base)
	if err != nil {
		return nil, 0, err
	}
	mb := array.NewBooleanBuilder(s.mem)
	defer mb.Release()
	mb.Reserve(len(cell))
	var dropped int64
	for i := range cell {
		g, seen := s.groups[[2]uint64{cell[i], ts[i]}]
		ok := seen && len(s.subs[g]) >= s.opts.K
		if !ok {
			dropped++
		}
		mb.UnsafeAppend(ok)
	}
	mask := mb.NewArray()
	defer mask.Release()
	var out arrow.RecordBatch
	if dropped == 0 {
		rec.Retain()
		out = rec
	} else {
		ctx = exec.WithAllocator(ctx, s.mem)
		out, err = compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
		if err != nil {
			return nil, 0, fmt.Errorf("%s: filter: %w", fn, err)
		}
	}
	s.stats.RowsSuppressed += dropped
	s.stats.RowsKept += rec.NumRows() - dropped
	return out, dropped, nil
}

// seal ends observation and counts the groups.
func (s *CellSuppressor) seal() {
	if s.sealed {
		return
	}
	s.sealed = true
	s.stats.Groups = len(s.groups)
	for _, subs := range s.subs {
		if len(subs) < s.opts.K {
			s.stats.GroupsSuppressed++
		}
	}
}

// Stats returns the counters so far (group counts once Apply has started).
func (s *CellSuppressor) Stats() SuppressStats { return s.stats }

// keptGroup reports whether the (cell, time) group of a cell value and a
// time key survives suppression; only valid once observation is complete.
func (s *CellSuppressor) keptGroup(cell string, ts uint64) bool {
	id, ok := s.cells.ids[cell]
	if !ok {
		return false
	}
	g, seen := s.groups[[2]uint64{uint64(id), ts}]
	return seen && len(s.subs[g]) >= s.opts.K
}
