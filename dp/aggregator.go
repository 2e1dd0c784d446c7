package dp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// Aggregator streams record batches into per-(subject, partition)
// reservoirs and, at the end, bounds contributions and pre-aggregates them
// per partition into a Partial. Memory is O(subject×partition pairs · L∞),
// not O(rows). Not safe for concurrent use (it parallelises internally).
type Aggregator struct {
	spec    *Spec
	public  *PartitionList
	subj    *colEncoder
	keys    []*colEncoder
	combine []*u64Table
	rev     [][][2]uint32 // per combine level: id → (left id, right code)
	pidKeys []string      // canonical tuple key of every partition code
	pidPub  []bool        // whether the partition is listed (public mode)
	shards  []*shard
	split   [][]int32 // fast path: rows of each half per shard

	sid, pid, tmp []uint32
	valBufs       [][]float64
	cols          [][]float64
	rowsIn        int64
	rowsNotPublic int64
	err           error
	done          bool
}

// NewAggregator validates opts and returns an Aggregator.
func NewAggregator(opts Options) (*Aggregator, error) {
	s, err := opts.validate("NewAggregator")
	if err != nil {
		return nil, err
	}
	a := &Aggregator{spec: s, subj: newColEncoder(opts.Subject, false)}
	if opts.Public != nil {
		// A snapshot: the list the spec recorded is the list rows are
		// filtered by, even if the caller changes theirs later.
		a.public = &PartitionList{columns: slices.Clone(opts.Public.columns), keys: maps.Clone(opts.Public.keys)}
	}
	for _, g := range opts.GroupBy {
		a.keys = append(a.keys, newColEncoder(g, true))
	}
	for range len(opts.GroupBy) - 1 {
		a.combine = append(a.combine, newU64Table(1024))
		a.rev = append(a.rev, nil)
	}
	// A power of two of shards (1, 2, 4 or 8) so that routing is a mask.
	var shift uint
	for 1<<(shift+1) <= min(runtime.GOMAXPROCS(0), 8) {
		shift++
	}
	for range 1 << shift {
		sh, err := newShard(int(opts.MaxPerPartition), len(s.ValueColumns), shift)
		if err != nil {
			return nil, fmt.Errorf("dp.NewAggregator: %w", err)
		}
		a.shards = append(a.shards, sh)
	}
	a.valBufs = make([][]float64, len(s.ValueColumns))
	a.cols = make([][]float64, len(s.ValueColumns))
	return a, nil
}

func column(rec arrow.RecordBatch, name, role string) (arrow.Array, error) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, rowerr.Atf(0, name, "%s column not found in the input (columns: %v)", role, fieldNames(rec.Schema()))
	}
	return rec.Column(idx[0]), nil
}

func fieldNames(s *arrow.Schema) []string {
	var out []string
	for _, f := range s.Fields() {
		out = append(out, f.Name)
	}
	return out
}

func grow32(b []uint32, n int) []uint32 {
	if cap(b) < n {
		return make([]uint32, n)
	}
	return b[:n]
}

// Add feeds one record batch. After an error the Aggregator is unusable:
// every later call returns the same error and nothing can be released.
func (a *Aggregator) Add(ctx context.Context, rec arrow.RecordBatch) error {
	if a.err != nil {
		return a.err
	}
	if a.done {
		return errors.New("dp.Aggregator.Add: Partial was already called")
	}
	if err := a.add(ctx, rec); err != nil {
		a.err = fmt.Errorf("dp.Aggregator.Add: %w", err)
		a.closeEncoders()
		return a.err
	}
	return nil
}

func (a *Aggregator) add(ctx context.Context, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	first := a.rowsIn
	subjCol, err := column(rec, a.spec.Subject, "subject")
	if err != nil {
		return err
	}
	if fast, err := a.addFast(rec, subjCol, first); fast || err != nil {
		if err == nil {
			a.rowsIn += int64(n)
		}
		return err
	}
	a.sid = grow32(a.sid, n)
	if err := a.subj.encode(subjCol, a.sid, first); err != nil {
		return err
	}
	a.pid = grow32(a.pid, n)
	a.tmp = grow32(a.tmp, n)
	for ki, enc := range a.keys {
		col, err := column(rec, enc.name, "key")
		if err != nil {
			return err
		}
		dst := a.pid
		if ki > 0 {
			dst = a.tmp
		}
		if err := enc.encode(col, dst, first); err != nil {
			return err
		}
		if ki > 0 {
			t := a.combine[ki-1]
			for i := range n {
				before := t.n
				id := t.get(uint64(a.pid[i])<<32 | uint64(a.tmp[i]))
				if t.n > before {
					a.rev[ki-1] = append(a.rev[ki-1], [2]uint32{a.pid[i], a.tmp[i]})
				}
				a.pid[i] = id
			}
		}
	}
	a.describeNewPartitions()
	for vi, name := range a.spec.ValueColumns {
		col, err := column(rec, name, "value")
		if err != nil {
			return err
		}
		vals, err := valueColumn(name, col, a.valBufs[vi], first)
		if err != nil {
			return err
		}
		if col.DataType().ID() != arrow.FLOAT64 {
			a.valBufs[vi] = vals // keep the grown buffer for the next batch
		}
		a.cols[vi] = vals
	}
	// Route rows to shards by subject (branch-free append), skipping rows
	// of partitions a public list does not name.
	mask := uint32(len(a.shards) - 1)
	for _, sh := range a.shards {
		sh.rows = sh.rows[:0]
		if cap(sh.rows) < n {
			sh.rows = make([]int32, 0, n)
		}
	}
	if a.public != nil {
		for i := range n {
			if !a.pidPub[a.pid[i]] {
				a.rowsNotPublic++
				continue
			}
			sh := a.shards[a.sid[i]&mask]
			sh.rows = append(sh.rows, int32(i))
		}
	} else if mask == 1 {
		r0, r1 := a.shards[0].rows[:n], a.shards[1].rows[:n]
		c := [2]int{}
		for i, s := range a.sid[:n] {
			b := s & 1
			r0[c[0]] = int32(i)
			r1[c[1]] = int32(i)
			c[b]++
		}
		a.shards[0].rows, a.shards[1].rows = r0[:c[0]], r1[:c[1]]
	} else {
		for i := range n {
			sh := a.shards[a.sid[i]&mask]
			sh.rows = append(sh.rows, int32(i))
		}
	}
	var wg sync.WaitGroup
	for _, sh := range a.shards {
		wg.Go(func() { sh.add(a.sid, a.pid, a.cols) })
	}
	wg.Wait()
	for _, sh := range a.shards {
		if sh.err != nil {
			return sh.err
		}
	}
	a.rowsIn += int64(n)
	return nil
}

// addFast is the path for the common layout — dictionary subject and one
// dictionary key column, float64 values — where every per-row step is a
// slice lookup and can run in the shards in parallel: each shard checks a
// contiguous share of the values for NaN/±Inf, then picks its own subjects'
// rows and stages them. fast is false when the batch does not qualify.
func (a *Aggregator) addFast(rec arrow.RecordBatch, subjCol arrow.Array, first int64) (fast bool, err error) {
	if len(a.keys) != 1 {
		return false, nil
	}
	keyCol, err := column(rec, a.keys[0].name, "key")
	if err != nil {
		return false, err
	}
	cols := make([][]float64, len(a.spec.ValueColumns))
	for vi, name := range a.spec.ValueColumns {
		col, err := column(rec, name, "value")
		if err != nil {
			return false, err
		}
		f, ok := col.(*array.Float64)
		if !ok || col.NullN() > 0 {
			return false, nil
		}
		cols[vi] = f.Float64Values()
	}
	sIdx, sRemap, ok, err := a.subj.prepareDict(subjCol)
	if !ok || err != nil {
		return false, err
	}
	kIdx, kRemap, ok, err := a.keys[0].prepareDict(keyCol)
	if !ok || err != nil {
		return false, err
	}
	a.describeNewPartitions()
	n := len(sIdx)
	ns := len(a.shards)
	a.sid, a.pid = grow32(a.sid, n), grow32(a.pid, n)
	// Phase 1, rows split in contiguous halves (quarters, ...): codes
	// through the remaps, null, range and NaN/±Inf checks, then each half's
	// rows split by shard (a.split[w·ns+shard]), skipping rows of
	// partitions a public list does not name.
	errs := make([]error, ns)
	notPublic := make([]int64, ns)
	if len(a.split) != ns*ns {
		a.split = make([][]int32, ns*ns)
	}
	var wg sync.WaitGroup
	for w := range ns {
		wg.Go(func() {
			lo, hi := w*n/ns, (w+1)*n/ns
			if bad := mapCodes(sIdx[lo:hi], sRemap, a.sid[lo:hi]); bad >= 0 {
				errs[w] = rowerr.At(rowerr.Row(first, lo+bad), a.spec.Subject, badCode(sIdx[lo+bad], sRemap))
				return
			}
			if bad := mapCodes(kIdx[lo:hi], kRemap, a.pid[lo:hi]); bad >= 0 {
				errs[w] = rowerr.At(rowerr.Row(first, lo+bad), a.keys[0].name, badCode(kIdx[lo+bad], kRemap))
				return
			}
			for vi, vals := range cols {
				for i, v := range vals[lo:hi] {
					if v-v != 0 {
						errs[w] = rowerr.At(rowerr.Row(first, lo+i), a.spec.ValueColumns[vi], notFinite(v))
						return
					}
				}
			}
			notPublic[w] = splitRows(lo, hi, a.sid, a.pid, a.pidPub, a.split[w*ns:(w+1)*ns])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return true, err
	}
	// Phase 2, per shard: stage its rows of every half, in row order.
	for si, sh := range a.shards {
		wg.Go(func() {
			for w := range ns {
				sh.rows = a.split[w*ns+si]
				sh.add(a.sid, a.pid, cols)
			}
		})
	}
	wg.Wait()
	for _, np := range notPublic {
		a.rowsNotPublic += np
	}
	return true, nil
}

// splitRows writes the rows lo..hi-1 to out[subject & (len(out)-1)]
// (branch-free: every row is written, only its shard's count advances),
// skipping and counting the rows whose partition pub does not list (pub nil:
// no list).
func splitRows(lo, hi int, sid, pid []uint32, pub []bool, out [][]int32) (notPublic int64) {
	mask := uint32(len(out) - 1)
	var cnt [8]int
	for sh := range out {
		if cap(out[sh]) < hi-lo {
			out[sh] = make([]int32, hi-lo)
		}
		out[sh] = out[sh][:hi-lo]
	}
	if pub == nil {
		for i := lo; i < hi; i++ {
			sh := sid[i] & mask
			out[sh][cnt[sh]] = int32(i)
			cnt[sh]++
		}
	} else {
		for i := lo; i < hi; i++ {
			sh := sid[i] & mask
			listed := 0
			if pub[pid[i]] {
				listed = 1
			}
			out[sh][cnt[sh]] = int32(i)
			cnt[sh] += listed
			notPublic += int64(1 - listed)
		}
	}
	for sh := range out {
		out[sh] = out[sh][:cnt[sh]]
	}
	return notPublic
}

// mapCodes writes remap[idx[i]] to out[i] and returns the first row whose
// index is out of range or points at a null value, or -1.
func mapCodes(idx []int32, remap []uint32, out []uint32) int {
	out = out[:len(idx)]
	for i, x := range idx {
		if uint64(uint32(x)) >= uint64(len(remap)) {
			return i
		}
		c := remap[x]
		if c == nullCode {
			return i
		}
		out[i] = c
	}
	return -1
}

func badCode(x int32, remap []uint32) error {
	if uint64(uint32(x)) >= uint64(len(remap)) {
		return fmt.Errorf("dictionary index %d out of range", x)
	}
	return errNullKey
}

// describeNewPartitions records the canonical key (and public flag) of
// partition codes first seen in this batch: work per partition, not per row.
func (a *Aggregator) describeNewPartitions() {
	total := a.keys[0].cardinality()
	if len(a.combine) > 0 {
		total = a.combine[len(a.combine)-1].n
	}
	for p := len(a.pidKeys); p < total; p++ {
		vals := make([]string, len(a.keys))
		id := uint32(p)
		for l := len(a.combine) - 1; l >= 0; l-- {
			lr := a.rev[l][id]
			vals[l+1] = a.keys[l+1].values[lr[1]]
			id = lr[0]
		}
		vals[0] = a.keys[0].values[id]
		k := tupleKey(vals)
		a.pidKeys = append(a.pidKeys, k)
		if a.public != nil {
			a.pidPub = append(a.pidPub, a.public.keys[k])
		}
	}
}

func (a *Aggregator) closeEncoders() {
	a.subj.close()
	for _, k := range a.keys {
		k.close()
	}
}

// Close releases the references the Aggregator holds on input
// dictionaries. Partial calls it; call it yourself when abandoning an
// Aggregator.
func (a *Aggregator) Close() { a.closeEncoders() }

// accum holds pre-noise per-partition values of one shard (dense by code).
type accum struct {
	subjects []int64
	rows     []int64
	sums     [][]float64 // [aggregate][partition]
	sumsq    [][]float64
	leaves   [][]map[int]int64
}

func newAccum(nAgg, nPart int) *accum {
	ac := &accum{subjects: make([]int64, nPart), rows: make([]int64, nPart)}
	ac.sums = make([][]float64, nAgg)
	ac.sumsq = make([][]float64, nAgg)
	ac.leaves = make([][]map[int]int64, nAgg)
	return ac
}

// Partial bounds contributions (L0 per subject, L∞ per pair, clamping) and
// returns the pre-noise per-partition state. It consumes the Aggregator.
func (a *Aggregator) Partial(ctx context.Context) (*Partial, error) {
	if a.err != nil {
		return nil, a.err
	}
	if a.done {
		return nil, errors.New("dp.Aggregator.Partial: already called")
	}
	a.done = true
	a.closeEncoders()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	spec := *a.spec
	spec.KeyTypes = nil
	for _, k := range a.keys {
		spec.KeyTypes = append(spec.KeyTypes, k.kt)
	}
	nPart := len(a.pidKeys)
	stats := make([]Stats, len(a.shards))
	accs := make([]*accum, len(a.shards))
	errs := make([]error, len(a.shards))
	var wg sync.WaitGroup
	for si, sh := range a.shards {
		wg.Go(func() {
			ac := newAccum(len(spec.Aggregates), nPart)
			accs[si] = ac
			errs[si] = sh.bound(int(spec.MaxPartitions), func(p chosenPair) {
				ac.subjects[p.pid]++
				ac.rows[p.pid] += int64(p.rows)
				if sh.nv == 0 {
					return
				}
				for ai := range spec.Aggregates {
					accumulate(ac, ai, &spec.Aggregates[ai], p.pid, p.vals, sh.nv, nPart)
				}
			}, &stats[si])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dp.Aggregator.Partial: %w", err)
	}
	p := &Partial{Spec: spec, Partitions: map[string]*PartitionState{}}
	for _, st := range stats {
		p.Stats.add(st)
	}
	p.Stats.RowsIn = a.rowsIn
	p.Stats.RowsNotPublic = a.rowsNotPublic
	for pid := range nPart {
		var subjects int64
		for _, ac := range accs {
			subjects += ac.subjects[pid]
		}
		if subjects == 0 {
			continue
		}
		ps := newPartitionState(&spec)
		ps.Subjects = subjects
		for _, ac := range accs {
			ps.Rows += ac.rows[pid]
			for ai := range spec.Aggregates {
				if ac.sums[ai] != nil {
					ps.Sums[ai] += ac.sums[ai][pid]
				}
				if ac.sumsq[ai] != nil {
					ps.SumSquares[ai] += ac.sumsq[ai][pid]
				}
				if ac.leaves[ai] != nil && ac.leaves[ai][pid] != nil {
					for l, c := range ac.leaves[ai][pid] {
						ps.Leaves[ai][l] += c
					}
				}
			}
		}
		p.Partitions[a.pidKeys[pid]] = ps
	}
	return p, nil
}

// numLeaves is the number of leaves of the library's default quantile tree
// (branching factor 16, height 4).
const numLeaves = 65536

// leafIndex is the library's BoundedQuantiles.getIndex for a clamped value.
func leafIndex(v, lo, hi float64) int {
	if v >= hi {
		return numLeaves - 1
	}
	return int((v - lo) / (hi - lo) * float64(numLeaves))
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// accumulate adds one kept pair's rows (blk: rows × nv values) to the
// partition accumulators of aggregate ai.
func accumulate(ac *accum, ai int, ag *AggregateSpec, pid uint32, blk []float64, nv, nPart int) {
	if ag.Kind == Count {
		return
	}
	lo, hi := ag.Lower, ag.Upper
	mid := lo + (hi-lo)/2
	vi := ag.ValueIndex
	switch ag.Kind {
	case Sum:
		if ac.sums[ai] == nil {
			ac.sums[ai] = make([]float64, nPart)
		}
		var s float64
		for r := vi; r < len(blk); r += nv {
			s += clamp(blk[r], lo, hi)
		}
		ac.sums[ai][pid] += s
	case Mean, Variance:
		if ac.sums[ai] == nil {
			ac.sums[ai] = make([]float64, nPart)
			if ag.Kind == Variance {
				ac.sumsq[ai] = make([]float64, nPart)
			}
		}
		var s, s2 float64
		for r := vi; r < len(blk); r += nv {
			x := clamp(blk[r], lo, hi) - mid
			s += x
			s2 += x * x
		}
		ac.sums[ai][pid] += s
		if ag.Kind == Variance {
			ac.sumsq[ai][pid] += s2
		}
	case Quantiles:
		if ac.leaves[ai] == nil {
			ac.leaves[ai] = make([]map[int]int64, nPart)
		}
		m := ac.leaves[ai][pid]
		if m == nil {
			m = map[int]int64{}
			ac.leaves[ai][pid] = m
		}
		for r := vi; r < len(blk); r += nv {
			m[leafIndex(clamp(blk[r], lo, hi), lo, hi)]++
		}
	}
}

// AggregateReader is the one-call form: it reads every batch of r, bounds
// contributions and releases the result under acct. On any error before
// noise is drawn nothing is released and no budget is spent.
func AggregateReader(ctx context.Context, r array.RecordReader, acct *Accountant, opts Options) (*Result, error) {
	ag, err := NewAggregator(opts)
	if err != nil {
		return nil, err
	}
	defer ag.Close()
	for r.Next() {
		if err := ag.Add(ctx, r.RecordBatch()); err != nil {
			return nil, err
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("dp.AggregateReader: reading input: %w", err)
	}
	p, err := ag.Partial(ctx)
	if err != nil {
		return nil, err
	}
	return p.Release(ctx, acct, ReleaseOptions{Mem: opts.Mem})
}
