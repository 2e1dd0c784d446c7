package dp

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// Partial is the pre-noise, contribution-bounded state of a release: per
// partition the number of subjects, rows, and the sums (or quantile-tree
// leaf counts) of the clamped values. It holds no noise and no raw rows,
// but it is NOT private: treat it like the input data. Only Release makes
// it safe to publish.
//
// Partials merge: partials built from disjoint sets of subjects (shard the
// input by subject!) merge into the partial of the whole input. A subject
// split across partials would be bounded in each separately and could
// contribute up to L0 partitions per partial, breaking the guarantee.
// Partials serialise (MarshalBinary, JSON) so a Beam combiner can ship them.
type Partial struct {
	Spec       Spec                       `json:"spec"`
	Partitions map[string]*PartitionState `json:"partitions"`
	Stats      Stats                      `json:"stats"`
	used       bool
}

// PartitionState is the pre-noise state of one partition. Per aggregate i:
// Sums[i] is the clamped sum (Sum) or the sum of clamped values minus the
// bounds' midpoint (Mean, Variance, as the library normalises);
// SumSquares[i] the sum of squared normalised values (Variance); Leaves[i]
// the leaf counts of the library's quantile tree (Quantiles).
type PartitionState struct {
	Subjects   int64           `json:"subjects"`
	Rows       int64           `json:"rows"`
	Sums       []float64       `json:"sums"`
	SumSquares []float64       `json:"sum_squares"`
	Leaves     []map[int]int64 `json:"leaves"`
}

func newPartitionState(s *Spec) *PartitionState {
	ps := &PartitionState{Sums: make([]float64, len(s.Aggregates)), SumSquares: make([]float64, len(s.Aggregates)), Leaves: make([]map[int]int64, len(s.Aggregates))}
	for i, a := range s.Aggregates {
		if a.Kind == Quantiles {
			ps.Leaves[i] = map[int]int64{}
		}
	}
	return ps
}

// Stats account for every input row: RowsIn = RowsUsed + RowsNotPublic +
// RowsDroppedL0 + RowsDroppedLInf.
type Stats struct {
	RowsIn          int64 `json:"rows_in"`
	RowsUsed        int64 `json:"rows_used"`
	RowsNotPublic   int64 `json:"rows_not_public"`   // partition not in the public list
	RowsDroppedL0   int64 `json:"rows_dropped_l0"`   // subject over MaxPartitions
	RowsDroppedLInf int64 `json:"rows_dropped_linf"` // pair over MaxPerPartition
	Subjects        int64 `json:"subjects"`          // distinct subjects seen
	PairsDroppedL0  int64 `json:"pairs_dropped_l0"`  // (subject, partition) pairs dropped
}

func (s *Stats) add(o Stats) {
	s.RowsIn += o.RowsIn
	s.RowsUsed += o.RowsUsed
	s.RowsNotPublic += o.RowsNotPublic
	s.RowsDroppedL0 += o.RowsDroppedL0
	s.RowsDroppedLInf += o.RowsDroppedLInf
	s.Subjects += o.Subjects
	s.PairsDroppedL0 += o.PairsDroppedL0
}

// Merge adds o into p and consumes o (it may not be used afterwards), like
// the library's Merge. Both must come from the same Options (same spec and
// key types) and from disjoint subjects.
func (p *Partial) Merge(o *Partial) error {
	if p.used || o.used {
		return errors.New("dp.Partial.Merge: a partial that was released or merged cannot be merged")
	}
	if p == o {
		return errors.New("dp.Partial.Merge: cannot merge a partial into itself")
	}
	if err := p.check(); err != nil {
		return fmt.Errorf("dp.Partial.Merge: %w", err)
	}
	if err := o.check(); err != nil {
		return fmt.Errorf("dp.Partial.Merge: %w", err)
	}
	ps, os := p.Spec, o.Spec
	// A partial without data does not know its key types yet.
	if len(ps.KeyTypes) == 0 {
		ps.KeyTypes = os.KeyTypes
	}
	if len(os.KeyTypes) == 0 {
		os.KeyTypes = ps.KeyTypes
	}
	if !reflect.DeepEqual(ps, os) {
		return errors.New("dp.Partial.Merge: partials come from different options (subject, keys, aggregates, bounds or budget differ)")
	}
	p.Spec.KeyTypes = ps.KeyTypes
	for k, b := range o.Partitions {
		a := p.Partitions[k]
		if a == nil {
			p.Partitions[k] = b
			continue
		}
		a.Subjects += b.Subjects
		a.Rows += b.Rows
		for i := range a.Sums {
			a.Sums[i] += b.Sums[i]
			a.SumSquares[i] += b.SumSquares[i]
			for l, c := range b.Leaves[i] {
				a.Leaves[i][l] += c
			}
		}
	}
	p.Stats.add(o.Stats)
	o.used = true
	o.Partitions = nil
	return nil
}

// maxSubjects bounds the subjects of one partition in a partial (2^40):
// far above any real fleet, low enough that counts cannot overflow.
const maxSubjects = 1 << 40

// check validates a partial's shape, so that a deserialised partial cannot
// cause a panic or an out-of-range leaf.
func (p *Partial) check() error {
	n := len(p.Spec.Aggregates)
	if n == 0 || len(p.Spec.GroupBy) == 0 || p.Spec.MaxPartitions < 1 || p.Spec.MaxPerPartition < 1 {
		return errors.New("partial has no valid spec")
	}
	if len(p.Spec.KeyTypes) != 0 && len(p.Spec.KeyTypes) != len(p.Spec.GroupBy) {
		return errors.New("partial's key types do not match its key columns")
	}
	if p.Partitions == nil {
		return errors.New("partial has no partition map")
	}
	for k, ps := range p.Partitions {
		if ps == nil || len(ps.Sums) != n || len(ps.SumSquares) != n || len(ps.Leaves) != n {
			return fmt.Errorf("partition %q: state does not match the %d aggregates", k, n)
		}
		if ps.Subjects < 1 || ps.Subjects > maxSubjects || ps.Rows < ps.Subjects || ps.Rows > ps.Subjects*p.Spec.MaxPerPartition {
			return fmt.Errorf("partition %q: %d rows from %d subjects violates the bounds", k, ps.Rows, ps.Subjects)
		}
		vals, err := splitTupleKey(k)
		if err != nil || len(vals) != len(p.Spec.GroupBy) {
			return fmt.Errorf("partition %q: malformed key", k)
		}
		// The invariants bounding guarantees: a tampered or corrupted
		// partial fails here instead of releasing values whose sensitivity
		// the noise does not cover.
		rows := float64(ps.Rows)
		for i, a := range p.Spec.Aggregates {
			if (a.Kind == Quantiles) != (ps.Leaves[i] != nil) {
				return fmt.Errorf("partition %q: aggregate %d has the wrong state", k, i)
			}
			var total int64
			for l, c := range ps.Leaves[i] {
				if l < 0 || l >= numLeaves || c < 0 || c > ps.Rows {
					return fmt.Errorf("partition %q: aggregate %d: leaf %d count %d out of range", k, i, l, c)
				}
				total += c
			}
			if a.Kind == Quantiles && total != ps.Rows {
				return fmt.Errorf("partition %q: aggregate %d: leaf counts add up to %d, not %d rows", k, i, total, ps.Rows)
			}
			mid := a.Lower + (a.Upper-a.Lower)/2
			var maxAbs, maxSq float64
			switch a.Kind {
			case Sum:
				maxAbs = math.Max(math.Abs(a.Lower), math.Abs(a.Upper))
			case Mean, Variance:
				maxAbs = a.Upper - mid
				if a.Kind == Variance {
					maxSq = maxAbs * maxAbs
				}
			}
			const slack = 1 + 1e-9 // float rounding of sums
			if s, q := ps.Sums[i], ps.SumSquares[i]; math.IsNaN(s) || math.IsNaN(q) || math.Abs(s) > rows*maxAbs*slack || q < 0 || q > rows*maxSq*slack {
				return fmt.Errorf("partition %q: aggregate %d: sums (%v, %v) outside what %d bounded rows allow", k, i, s, q, ps.Rows)
			}
		}
	}
	return nil
}

// Partials travel between workers as bytes.
var (
	_ encoding.BinaryMarshaler   = (*Partial)(nil)
	_ encoding.BinaryUnmarshaler = (*Partial)(nil)
)

// MarshalBinary serialises the partial (JSON).
func (p *Partial) MarshalBinary() ([]byte, error) {
	if p.used {
		return nil, errors.New("dp.Partial.MarshalBinary: partial was released or merged")
	}
	return json.Marshal(p)
}

// UnmarshalBinary restores a partial written by MarshalBinary and checks it.
func (p *Partial) UnmarshalBinary(b []byte) error {
	var q Partial
	if err := json.Unmarshal(b, &q); err != nil {
		return fmt.Errorf("dp.Partial.UnmarshalBinary: %w", err)
	}
	if err := q.check(); err != nil {
		return fmt.Errorf("dp.Partial.UnmarshalBinary: %w", err)
	}
	*p = q
	return nil
}

// sortedKeys returns the partition keys in order (output order is by key,
// which depends only on the released keys).
func (p *Partial) sortedKeys() []string {
	out := make([]string, 0, len(p.Partitions))
	for k := range p.Partitions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PartitionList is a public list of partitions: key tuples known without
// looking at the private data (e.g. a published list of road segments ×
// hours). Keys are matched on their canonical text (strings as-is, integers
// in decimal, timestamps RFC 3339 UTC).
type PartitionList struct {
	columns []string
	keys    map[string]bool
	rows    int64 // rows read by AddRecord so far, to locate errors
}

// NewPartitionList returns an empty list over the given key columns.
func NewPartitionList(columns ...string) (*PartitionList, error) {
	if len(columns) == 0 {
		return nil, errors.New("dp.NewPartitionList: at least one key column is required")
	}
	return &PartitionList{columns: append([]string(nil), columns...), keys: map[string]bool{}}, nil
}

// Add adds one partition, its values in column order.
func (l *PartitionList) Add(values ...string) error {
	if len(values) != len(l.columns) {
		return fmt.Errorf("dp.PartitionList.Add: %d values for %d key columns", len(values), len(l.columns))
	}
	l.keys[tupleKey(values)] = true
	return nil
}

// AddRecord adds every row of rec (which must contain the list's columns).
// Errors locate rows counted from 1 over all records added so far.
func (l *PartitionList) AddRecord(rec arrow.RecordBatch) error {
	cols := make([]arrow.Array, len(l.columns))
	for i, c := range l.columns {
		col, err := column(rec, c, "public partition")
		if err != nil {
			return fmt.Errorf("dp.PartitionList.AddRecord: %w", err)
		}
		cols[i] = col
	}
	vals := make([]string, len(cols))
	for r := 0; r < int(rec.NumRows()); r++ {
		for i, col := range cols {
			if col.IsNull(r) {
				return fmt.Errorf("dp.PartitionList.AddRecord: %w", rowerr.Atf(rowerr.Row(l.rows, r), l.columns[i], "null key"))
			}
			v, err := canonical(col, r)
			if err != nil {
				return fmt.Errorf("dp.PartitionList.AddRecord: %w", rowerr.At(rowerr.Row(l.rows, r), l.columns[i], err))
			}
			vals[i] = v
		}
		l.keys[tupleKey(vals)] = true
	}
	l.rows += rec.NumRows()
	return nil
}

// Len is the number of listed partitions.
func (l *PartitionList) Len() int { return len(l.keys) }

func (l *PartitionList) sortedKeys() []string {
	out := make([]string, 0, len(l.keys))
	for k := range l.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
