package anonymize

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// MicroAgg is microaggregation (the microaggregate column action, micro.go)
// for engines that spread pass 1 over workers: each worker adds its Trans
// batches to its own MicroAgg, the partial states merge (State, Merge), and
// Apply writes each row's group mean, as Run does in pass 2. The sums are
// exact (package internal/fsum), so the means are the Runner's bit for bit
// whatever the order and split of the rows.
type MicroAgg struct {
	a   *microAgg
	mem memory.Allocator
}

// NewMicroAgg returns the policy's microaggregation for Trans batches, or
// nil when the policy microaggregates no column.
func (s *Steps) NewMicroAgg() *MicroAgg {
	m := s.r.p.Mobility
	if m == nil {
		return nil
	}
	a := newMicroAgg(s.pl, m)
	if a == nil {
		return nil
	}
	return &MicroAgg{a: a, mem: s.r.mem}
}

// Add adds a Trans batch's rows to the group sums (pass 1: every row,
// before any suppression).
func (m *MicroAgg) Add(ctx context.Context, rec arrow.RecordBatch) error {
	return m.a.pass1(ctx, rec, 0)
}

// Schema is the schema of Apply's result: Trans with the microaggregated
// columns as nullable float64.
func (m *MicroAgg) Schema() *arrow.Schema { return m.a.schema }

// Apply returns a Trans batch with every microaggregated column replaced by
// its group's mean (null where the group has no value), in Schema. The
// caller releases the result.
func (m *MicroAgg) Apply(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	return m.a.apply(m.mem, rec)
}

const magicMicro = 0x746b6d6131 // "tkma1"

// State returns the group sums added so far, for Merge on another
// MicroAgg of the same policy.
func (m *MicroAgg) State() ([]byte, error) {
	a := m.a
	b := binary.LittleEndian.AppendUint64(nil, magicMicro)
	b = binary.AppendUvarint(b, uint64(len(a.cols)))
	b = binary.AppendUvarint(b, uint64(len(a.groups)))
	for key, g := range a.groups {
		b = binary.LittleEndian.AppendUint64(b, key)
		for c := range a.cols {
			b = binary.AppendUvarint(b, uint64(a.counts[c][g]))
			var err error
			if b, err = a.sums[c][g].AppendBinary(b); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// Merge adds another MicroAgg's State.
func (m *MicroAgg) Merge(b []byte) error {
	const fn = "anonymize.MicroAgg.Merge"
	a := m.a
	corrupt := func(what string) error { return fmt.Errorf("%s: corrupt state (%s)", fn, what) }
	if len(b) < 8 || binary.LittleEndian.Uint64(b) != magicMicro {
		return errors.New(fn + ": not a microaggregation state")
	}
	b = b[8:]
	cols, k := binary.Uvarint(b)
	if k <= 0 || cols != uint64(len(a.cols)) {
		return corrupt("columns")
	}
	b = b[k:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return corrupt("groups")
	}
	b = b[k:]
	a.means = nil
	for range n {
		if len(b) < 8 {
			return corrupt("truncated")
		}
		key := binary.LittleEndian.Uint64(b)
		b = b[8:]
		g := a.group(key)
		for c := range a.cols {
			cnt, k := binary.Uvarint(b)
			if k <= 0 || cnt > 1<<62 {
				return corrupt("count")
			}
			a.counts[c][g] += int64(cnt)
			var err error
			if b, err = a.sums[c][g].AddBinary(b[k:]); err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
		}
	}
	if len(b) != 0 {
		return corrupt("trailing bytes")
	}
	return nil
}
