package dp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/differential-privacy/go/v2/checks"
	"github.com/google/differential-privacy/go/v2/dpagg"
	"github.com/google/differential-privacy/go/v2/noise"
)

// ReleaseOptions configure Partial.Release.
type ReleaseOptions struct {
	// Mem allocates the result record. Defaults to memory.DefaultAllocator.
	Mem memory.Allocator

	// noise replaces the library noise in tests (a no-noise double for exact
	// arithmetic). Unexported: never selectable by users, the CLI or a policy.
	noise noise.Noise
}

// Result is a released table: one row per released partition with its key
// columns, noisy aggregates and confidence intervals.
type Result struct {
	// Record has the key columns (strings as utf8, integers as int64,
	// timestamps with their type), then per aggregate: Count "<name>"
	// (int64), Sum and Mean "<name>" (float64), each with "<name>_ci_low",
	// "<name>_ci_high" (float64) at Confidence; Variance "<name>"
	// (float64, the library has no interval for it); Quantiles
	// "<name>_p50", ... (float64). Means and variances divide by the
	// released Count column when the release has one (see Denominator).
	// The caller releases it.
	Record arrow.RecordBatch `json:"-"`
	// PartitionsKept is the number of released partitions.
	PartitionsKept int64 `json:"partitions_kept"`
	// PartitionsDropped is the number of partitions present in the data
	// that private partition selection did not release.
	PartitionsDropped int64 `json:"partitions_dropped"`
	// PartitionsPublicEmpty is the number of public partitions without any
	// data, released with noise over zero.
	PartitionsPublicEmpty int64 `json:"partitions_public_empty"`
	// Confidence level of the intervals.
	Confidence float64 `json:"confidence"`
	// Stats account for every input row.
	//
	// Stats and the partition counts above are exact facts about the input
	// for the operator's accounting (report, logs). They are NOT
	// differentially private: publish Record, not these.
	Stats Stats `json:"rows"`
	// Spent is what this release spent; the totals are the accountant's.
	Spent Spent `json:"budget"`
	// Noise names the distribution ("laplace" or "gaussian").
	Noise string `json:"noise"`
	// Denominator, when set, names the Count column whose released values
	// are the denominators of the means and variances in DividedByCount:
	// the release had a Count over the same bounded rows with at least the
	// share those aggregates' own counts would have had, so they spend
	// their whole share on their sums instead of drawing a count of their
	// own. Means and variances not listed drew their own noisy count (the
	// library's BoundedMean and BoundedVariance).
	Denominator    string   `json:"denominator,omitempty"`
	DividedByCount []string `json:"divided_by_count,omitempty"`
}

// Release releases the record.
func (r *Result) Release() {
	if r.Record != nil {
		r.Record.Release()
		r.Record = nil
	}
}

// Release draws noise once per partition and aggregate and returns the
// result. The partial is consumed (a second Release is an error: a noisy
// value is never drawn twice). The budget is taken from acct before any
// noise is drawn; if it does not suffice nothing is drawn or spent.
func (p *Partial) Release(ctx context.Context, acct *Accountant, ro ReleaseOptions) (*Result, error) {
	if p.used {
		return nil, errors.New("dp.Partial.Release: partial was already released or merged (results are single-use)")
	}
	if acct == nil {
		return nil, errors.New("dp.Partial.Release: an Accountant is required")
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("dp.Partial.Release: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &p.Spec
	if len(p.Partitions) == 0 && !s.Public {
		return nil, fmt.Errorf("dp.Partial.Release: no data (%d input rows, %d used after bounding): nothing to release", p.Stats.RowsIn, p.Stats.RowsUsed)
	}
	if len(s.KeyTypes) == 0 {
		// Public partitions but no data at all: keys are released as text.
		for range s.GroupBy {
			s.KeyTypes = append(s.KeyTypes, keyType{Kind: "string"})
		}
	}
	n := ro.noise
	if n == nil {
		n = s.Noise.library()
	}
	eps, del := acct.Remaining()
	aggB, selB, err := s.plan(eps, del)
	if err != nil {
		return nil, err
	}
	shares := make([]share, 0, len(aggB)+1)
	for i, b := range aggB {
		if err := checkMechanism(s.Noise, b); err != nil {
			return nil, fmt.Errorf("dp.Partial.Release: aggregate %q: %w", s.Aggregates[i].Name, err)
		}
		shares = append(shares, share{what: s.Aggregates[i].Name, epsilon: b.Epsilon, delta: b.Delta})
	}
	if !s.Public {
		if err := checks.CheckEpsilonStrict(selB.Epsilon); err != nil {
			return nil, fmt.Errorf("dp.Partial.Release: partition selection: %v", err)
		}
		if err := checks.CheckDeltaStrict(selB.Delta); err != nil {
			return nil, fmt.Errorf("dp.Partial.Release: partition selection: %v", err)
		}
		shares = append(shares, share{what: "partition selection", epsilon: selB.Epsilon, delta: selB.Delta})
	}
	// Keys of the partitions to consider, before any noise.
	var keys []string
	if s.Public {
		keys = s.PublicKeys
	} else {
		keys = p.sortedKeys()
	}
	// Everything that can fail without drawing noise happens before the
	// budget is spent.
	alpha := 1 - s.Confidence
	var sel *selector
	if !s.Public {
		if sel, err = newSelector(s.MaxPartitions, selB); err != nil {
			return nil, fmt.Errorf("dp.Partial.Release: partition selection: %w", err)
		}
	}
	// Means and variances divide by the released count when the release
	// has one with at least their own count's share (see sharedCount).
	ci, shared := s.sharedCount(aggB)
	plans := make([]*ciPlan, len(s.Aggregates))
	for i := range s.Aggregates {
		a := &s.Aggregates[i]
		var countB *Budget
		if shared[i] {
			countB = &aggB[ci]
		}
		if plans[i], err = newCIPlan(n, a.Kind, s.MaxPartitions, s.MaxPerPartition, a.Lower, a.Upper, aggB[i], alpha, countB); err != nil {
			return nil, fmt.Errorf("dp.Partial.Release: aggregate %q: %w", a.Name, err)
		}
	}
	if err := acct.spendAll(shares); err != nil {
		return nil, fmt.Errorf("dp.Partial.Release: %w", err)
	}
	p.used = true // from here on, noise is drawn: the partial is spent

	res := &Result{Confidence: s.Confidence, Stats: p.Stats, Noise: s.Noise.String()}
	for i, sh := range shared {
		if sh {
			res.Denominator = s.Aggregates[ci].Name
			res.DividedByCount = append(res.DividedByCount, s.Aggregates[i].Name)
		}
	}
	for _, sh := range shares {
		res.Spent.EpsilonSpent += sh.epsilon
		res.Spent.DeltaSpent += sh.delta
	}
	tot := acct.Spent()
	res.Spent.EpsilonTotal, res.Spent.DeltaTotal = tot.EpsilonTotal, tot.DeltaTotal

	mem := ro.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	b := newResultBuilder(mem, s)
	defer b.release()
	empty := newPartitionState(s)
	// Noise per partition is independent, but the library draws all its
	// randomness through one mutex-guarded crypto/rand buffer: for counts,
	// sums, means and variances a second worker only spins on that mutex
	// (9% of the benchmark's CPU) without shortening the release (12 ns/row
	// either way). Quantile trees do real work outside the mutex (leaf
	// counts into the tree), so they are released in parallel. Rows are
	// appended in key order either way.
	outs := make([]partitionOut, len(keys))
	workers := 1
	for _, a := range s.Aggregates {
		if a.Kind == Quantiles {
			workers = max(1, min(runtime.GOMAXPROCS(0), 8))
		}
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for ki := w; ki < len(keys); ki += workers {
				o := &outs[ki]
				ps := p.Partitions[keys[ki]]
				if ps == nil {
					if !s.Public {
						continue
					}
					ps, o.empty = empty, true
				} else if !s.Public {
					keep, err := sel.keep(ps.Subjects)
					if err != nil {
						errs[w] = fmt.Errorf("dp.Partial.Release: partition selection: %w", err)
						return
					}
					if !keep {
						o.dropped = true
						continue
					}
				}
				o.keep = true
				o.aggs = make([]aggOut, len(s.Aggregates))
				// The shared count first: means and variances divide by it.
				var released *int64
				if ci >= 0 {
					if err := computeAggregate(s, ci, ps, n, aggB[ci], plans[ci], nil, &o.aggs[ci]); err != nil {
						errs[w] = fmt.Errorf("dp.Partial.Release: aggregate %q: %w", s.Aggregates[ci].Name, err)
						return
					}
					released = &o.aggs[ci].count
				}
				for i := range s.Aggregates {
					if i == ci {
						continue
					}
					cnt := released
					if !shared[i] {
						cnt = nil
					}
					if err := computeAggregate(s, i, ps, n, aggB[i], plans[i], cnt, &o.aggs[i]); err != nil {
						errs[w] = fmt.Errorf("dp.Partial.Release: aggregate %q: %w", s.Aggregates[i].Name, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for ki, o := range outs {
		if o.dropped {
			res.PartitionsDropped++
		}
		if !o.keep {
			continue
		}
		if o.empty {
			res.PartitionsPublicEmpty++
		}
		if err := b.appendKey(keys[ki]); err != nil {
			return nil, fmt.Errorf("dp.Partial.Release: %w", err)
		}
		for i := range o.aggs {
			b.appendAggregate(i, &o.aggs[i])
		}
		res.PartitionsKept++
	}
	res.Record = b.record()
	p.Partitions = nil
	return res, nil
}

// checkMechanism rejects a share the library would reject, before noise.
func checkMechanism(k NoiseKind, b Budget) error {
	if err := checks.CheckEpsilonVeryStrict(b.Epsilon); err != nil {
		return err
	}
	if k == Laplace {
		return checks.CheckNoDelta(b.Delta)
	}
	return checks.CheckDeltaStrict(b.Delta)
}

// selector decides which data partitions are released. It is the library's
// PreAggSelectPartition: for L0 <= 3 the object itself, fed with the
// partition's number of (bounded) subjects; for L0 > 3 the library's
// algorithm for that case — a Gaussian count of subjects with (ε, δ/2),
// kept when it reaches the library's threshold for δ/2 — with the threshold
// computed once per release instead of once per partition (the object also
// draws and discards one noise sample per partition when it is built).
type selector struct {
	l0  int64
	b   Budget
	thr int64 // L0 > 3: keep when the noisy subject count is >= thr
}

func newSelector(l0 int64, b Budget) (*selector, error) {
	if _, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{Epsilon: b.Epsilon, Delta: b.Delta, MaxPartitionsContributed: l0}); err != nil {
		return nil, err
	}
	s := &selector{l0: l0, b: b}
	if l0 > 3 {
		t, err := noise.Gaussian().Threshold(l0, 1, b.Epsilon, b.Delta/2, b.Delta/2)
		if err != nil {
			return nil, err
		}
		// Rounded up, as Count.ThresholdedResult does.
		s.thr = int64(math.Ceil(t))
	}
	return s, nil
}

func (s *selector) keep(subjects int64) (bool, error) {
	if s.l0 > 3 {
		v, err := noise.Gaussian().AddNoiseInt64(subjects, s.l0, 1, s.b.Epsilon, s.b.Delta/2)
		if err != nil {
			return false, err
		}
		return v >= s.thr, nil
	}
	sel, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{Epsilon: s.b.Epsilon, Delta: s.b.Delta, MaxPartitionsContributed: s.l0})
	if err != nil {
		return false, err
	}
	for range subjects {
		if err := sel.Increment(); err != nil {
			return false, err
		}
	}
	return sel.ShouldKeepPartition()
}

// resultBuilder assembles the result record column by column.
type resultBuilder struct {
	s      *Spec
	schema *arrow.Schema
	rb     *array.RecordBuilder
}

func newResultBuilder(mem memory.Allocator, s *Spec) *resultBuilder {
	var fields []arrow.Field
	for i, g := range s.GroupBy {
		fields = append(fields, arrow.Field{Name: g, Type: s.KeyTypes[i].arrowType()})
	}
	for _, a := range s.Aggregates {
		for j, name := range a.outputNames() {
			t := arrow.DataType(arrow.PrimitiveTypes.Float64)
			if a.Kind == Count && j == 0 {
				t = arrow.PrimitiveTypes.Int64
			}
			fields = append(fields, arrow.Field{Name: name, Type: t})
		}
	}
	schema := arrow.NewSchema(fields, nil)
	return &resultBuilder{s: s, schema: schema, rb: array.NewRecordBuilder(mem, schema)}
}

func (b *resultBuilder) release() { b.rb.Release() }

func (b *resultBuilder) record() arrow.RecordBatch { return b.rb.NewRecordBatch() }

func (b *resultBuilder) appendKey(k string) error {
	vals, err := splitTupleKey(k)
	if err != nil {
		return err
	}
	for i, v := range vals {
		kt := b.s.KeyTypes[i]
		switch fb := b.rb.Field(i).(type) {
		case *array.StringBuilder:
			fb.Append(v)
		case *array.Int64Builder:
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("key column %q: %q is not an integer", b.s.GroupBy[i], v)
			}
			fb.Append(x)
		case *array.TimestampBuilder:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("key column %q: %q is not an RFC 3339 timestamp", b.s.GroupBy[i], v)
			}
			ts, err := arrow.TimestampFromTime(t, kt.Unit)
			if err != nil {
				return fmt.Errorf("key column %q: %w", b.s.GroupBy[i], err)
			}
			fb.Append(ts)
		}
	}
	return nil
}

// fieldIndex is the first output column of aggregate i.
func (b *resultBuilder) fieldIndex(i int) int {
	idx := len(b.s.GroupBy)
	for j := 0; j < i; j++ {
		idx += len(b.s.Aggregates[j].outputNames())
	}
	return idx
}

// partitionOut is the released state of one candidate partition.
type partitionOut struct {
	keep, dropped, empty bool
	aggs                 []aggOut
}

// aggOut holds one aggregate's output columns for one partition: count is
// the Count value, vals the float64 columns in output order (for Count,
// its interval).
type aggOut struct {
	count int64
	vals  []float64
}

// computeAggregate releases aggregate i of one partition. count, when not
// nil, is the partition's released (noisy) value of the shared count: means
// and variances then divide by it instead of drawing a count of their own.
func computeAggregate(s *Spec, i int, ps *PartitionState, n noise.Noise, bud Budget, plan *ciPlan, count *int64, out *aggOut) error {
	a := &s.Aggregates[i]
	l0, linf := s.MaxPartitions, s.MaxPerPartition
	switch a.Kind {
	case Count:
		v, ci, err := noisyCount(n, ps.Rows, l0, linf, bud, plan)
		if err != nil {
			return err
		}
		out.count, out.vals = v, []float64{ci.LowerBound, ci.UpperBound}
	case Sum:
		v, ci, err := noisySum(n, ps.Sums[i], l0, linf, a.Lower, a.Upper, bud, plan)
		if err != nil {
			return err
		}
		out.vals = []float64{v, ci.LowerBound, ci.UpperBound}
	case Mean:
		var v float64
		var ci noise.ConfidenceInterval
		var err error
		if count != nil {
			v, ci, err = noisyMeanOverCount(n, *count, ps.Sums[i], l0, linf, a.Lower, a.Upper, bud, plan)
		} else {
			v, ci, err = noisyMean(n, ps.Rows, ps.Sums[i], l0, linf, a.Lower, a.Upper, bud, plan)
		}
		if err != nil {
			return err
		}
		out.vals = []float64{v, ci.LowerBound, ci.UpperBound}
	case Variance:
		var v float64
		var err error
		if count != nil {
			v, err = noisyVarianceOverCount(n, *count, ps.Sums[i], ps.SumSquares[i], l0, linf, a.Lower, a.Upper, bud)
		} else {
			v, err = noisyVariance(n, ps.Rows, ps.Sums[i], ps.SumSquares[i], l0, linf, a.Lower, a.Upper, bud)
		}
		if err != nil {
			return err
		}
		out.vals = []float64{v}
	case Quantiles:
		qs, err := noisyQuantiles(n, ps.Leaves[i], l0, linf, a.Lower, a.Upper, a.Ranks, bud)
		if err != nil {
			return err
		}
		out.vals = qs
	}
	return nil
}

func (b *resultBuilder) appendAggregate(i int, o *aggOut) {
	f := b.fieldIndex(i)
	if b.s.Aggregates[i].Kind == Count {
		b.rb.Field(f).(*array.Int64Builder).Append(o.count)
		f++
	}
	for j, v := range o.vals {
		b.rb.Field(f + j).(*array.Float64Builder).Append(v)
	}
}

// ciPlan holds confidence intervals of the noise around zero, computed once
// per release and aggregate by the library's ComputeConfidenceInterval. The
// library computes every interval around zero and shifts it by the noisy
// value (its intervals are translation invariant), so per partition the
// interval is the noisy value plus these offsets — the same numbers as a
// per-partition library call, without recomputing quantiles (and, for
// Gaussian noise, σ) for every partition.
type ciPlan struct {
	lo, hi       float64   // Count (integer interval) or Sum
	numLo, numHi []float64 // Mean: numerator interval at each α split
	denLo, denHi []float64 // Mean: denominator interval at each α split
}

// ciSteps is the resolution of the search for the tightest split of α in
// the mean's interval. The library searches 1000 splits; every split gives a
// valid interval (coverage ≥ 1-α), the search only picks the narrowest, so
// 100 splits lose little width.
const ciSteps = 100

// countB, when not nil, is the budget of the release's shared count: a
// mean's denominator is then that count (all of b goes to the numerator).
func newCIPlan(n noise.Noise, k Kind, l0, linf int64, lo, hi float64, b Budget, alpha float64, countB *Budget) (*ciPlan, error) {
	p := &ciPlan{}
	switch k {
	case Count:
		ci, err := n.ComputeConfidenceIntervalInt64(0, l0, linf, b.Epsilon, b.Delta, alpha)
		if err != nil {
			return nil, err
		}
		p.lo, p.hi = ci.LowerBound, ci.UpperBound
	case Sum:
		ci, err := n.ComputeConfidenceIntervalFloat64(0, l0, sumLInf(lo, hi, linf), b.Epsilon, b.Delta, alpha)
		if err != nil {
			return nil, err
		}
		p.lo, p.hi = ci.LowerBound, ci.UpperBound
	case Mean:
		mid := lo + (hi-lo)/2
		sens := (hi - mid) * float64(linf)
		nb, db := Budget{b.Epsilon / 2, b.Delta / 2}, Budget{b.Epsilon / 2, b.Delta / 2}
		if countB != nil {
			nb, db = b, *countB
		}
		for i := 1; i < ciSteps; i++ {
			// The numerator's and the denominator's noise are independent
			// draws, so both intervals hold with probability
			// (1-αnum)(1-αden) = 1-α.
			alphaNum := float64(i) / ciSteps * alpha
			alphaDen := (alpha - alphaNum) / (1 - alphaNum)
			num, err := n.ComputeConfidenceIntervalFloat64(0, l0, sens, nb.Epsilon, nb.Delta, alphaNum)
			if err != nil {
				return nil, err
			}
			den, err := n.ComputeConfidenceIntervalInt64(0, l0, linf, db.Epsilon, db.Delta, alphaDen)
			if err != nil {
				return nil, err
			}
			p.numLo, p.numHi = append(p.numLo, num.LowerBound), append(p.numHi, num.UpperBound)
			p.denLo, p.denHi = append(p.denLo, den.LowerBound), append(p.denHi, den.UpperBound)
		}
	}
	return p, nil
}

// noisyCount releases a row count where a subject adds at most linf rows to
// at most l0 partitions: AddNoiseInt64(count, l0, linf, ε, δ), the interval
// clamped at 0. That is the library's Count.Result (for linf = 1, as a
// standalone Count; for linf > 1, as the Count inside BoundedMean, whose
// per-partition bound is unexported) — tested call for call.
func noisyCount(n noise.Noise, rows, l0, linf int64, b Budget, plan *ciPlan) (int64, noise.ConfidenceInterval, error) {
	v, err := n.AddNoiseInt64(rows, l0, linf, b.Epsilon, b.Delta)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	ci := noise.ConfidenceInterval{LowerBound: math.Max(0, float64(v)+plan.lo), UpperBound: math.Max(0, float64(v)+plan.hi)}
	return v, ci, nil
}

// sumLInf is the library's L∞ sensitivity of a bounded sum with linf
// contributions per partition: max(|lo|, |hi|)·linf (dpagg getLInfFloat).
func sumLInf(lo, hi float64, linf int64) float64 {
	return math.Max(math.Abs(lo), math.Abs(hi)) * float64(linf)
}

// noisySum releases a clamped sum as the library's BoundedSumFloat64 does
// (noise with L∞ sensitivity max(|lo|,|hi|)·linf; interval trimmed to the
// sign the bounds allow). The library's object takes one value per subject
// and partition; we hold the exact pre-aggregated sum, so we call its noise
// directly with the same parameters (tested against the library object).
func noisySum(n noise.Noise, sum float64, l0, linf int64, lo, hi float64, b Budget, plan *ciPlan) (float64, noise.ConfidenceInterval, error) {
	v, err := n.AddNoiseFloat64(sum, l0, sumLInf(lo, hi, linf), b.Epsilon, b.Delta)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	ci := noise.ConfidenceInterval{LowerBound: v + plan.lo, UpperBound: v + plan.hi}
	if lo >= 0 {
		ci.LowerBound, ci.UpperBound = math.Max(0, ci.LowerBound), math.Max(0, ci.UpperBound)
	}
	if hi <= 0 {
		ci.LowerBound, ci.UpperBound = math.Min(0, ci.LowerBound), math.Min(0, ci.UpperBound)
	}
	return v, ci, nil
}

// noisyMean is the library's BoundedMean.Result on exact pre-aggregated
// state: half the budget on the count (sensitivity linf), half on the sum
// of values normalised to the bounds' midpoint (sensitivity
// (hi-mid)·linf); mean = clamp(sum/max(1,count) + mid, lo, hi). The
// interval is the library's (ComputeConfidenceInterval's search over the
// split of α between numerator and denominator, at ciSteps resolution).
func noisyMean(n noise.Noise, rows int64, normSum float64, l0, linf int64, lo, hi float64, b Budget, plan *ciPlan) (float64, noise.ConfidenceInterval, error) {
	mid := lo + (hi-lo)/2
	maxDist := hi - mid
	he, hd := b.Epsilon/2, b.Delta/2
	cnt, err := n.AddNoiseInt64(rows, l0, linf, he, hd)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	sum, err := n.AddNoiseFloat64(normSum, l0, maxDist*float64(linf), he, hd)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	mean, ci := meanAndInterval(sum, cnt, lo, hi, plan)
	return mean, ci, nil
}

// noisyMeanOverCount is the mean when the release also has a Count over
// the same bounded rows: the denominator is that count's released value
// (post-processing: no budget, no draw), so the mean's whole share (ε, δ)
// goes to the normalised sum (sensitivity (hi-mid)·linf, as in
// noisyMean). Same estimator clamp(sum/max(1,count) + mid, lo, hi); the
// interval splits α between the sum's interval at (ε, δ) and the count's
// interval at the count's budget (plan built with countB).
func noisyMeanOverCount(n noise.Noise, count int64, normSum float64, l0, linf int64, lo, hi float64, b Budget, plan *ciPlan) (float64, noise.ConfidenceInterval, error) {
	mid := lo + (hi-lo)/2
	sum, err := n.AddNoiseFloat64(normSum, l0, (hi-mid)*float64(linf), b.Epsilon, b.Delta)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	mean, ci := meanAndInterval(sum, count, lo, hi, plan)
	return mean, ci, nil
}

// meanAndInterval is BoundedMean's estimator and interval from a noisy
// normalised sum and a noisy count: mean = clamp(sum/max(1,cnt) + mid, lo,
// hi), the interval the narrowest over the plan's α splits.
func meanAndInterval(sum float64, cnt int64, lo, hi float64, plan *ciPlan) (float64, noise.ConfidenceInterval) {
	mid := lo + (hi-lo)/2
	mean := clamp(sum/math.Max(1, float64(cnt))+mid, lo, hi)

	best := noise.ConfidenceInterval{LowerBound: lo, UpperBound: hi}
	minSize := math.Inf(1)
	for i := range plan.numLo {
		nl, nu := sum+plan.numLo[i], sum+plan.numHi[i]
		// As the library: the count's interval clamped at 0 (Count), then at 1.
		dl := math.Max(math.Max(0, float64(cnt)+plan.denLo[i]), 1)
		du := math.Max(math.Max(0, float64(cnt)+plan.denHi[i]), 1)
		var ml, mu float64
		if nl >= 0 {
			ml = nl / du
		} else {
			ml = nl / dl
		}
		if nu >= 0 {
			mu = nu / dl
		} else {
			mu = nu / du
		}
		ml, mu = clamp(ml+mid, lo, hi), clamp(mu+mid, lo, hi)
		if mu-ml < minSize {
			minSize = mu - ml
			best = noise.ConfidenceInterval{LowerBound: ml, UpperBound: mu}
		}
	}
	return mean, best
}

// noisyVariance is the library's BoundedVariance.Result on exact state:
// ε/3 (δ/3) each on count, normalised sum and normalised sum of squares
// (sensitivities linf, (hi-mid)·linf, (hi-mid)²·linf); variance =
// clamp(s2/c - (s/c)², 0, (hi-lo)²/4).
func noisyVariance(n noise.Noise, rows int64, normSum, normSumSq float64, l0, linf int64, lo, hi float64, b Budget) (float64, error) {
	mid := lo + (hi-lo)/2
	maxDist := hi - mid
	ce, cd := b.Epsilon/3, b.Delta/3
	se, sd := b.Epsilon/3, b.Delta/3
	qe, qd := b.Epsilon-ce-se, b.Delta-cd-sd
	cnt, err := n.AddNoiseInt64(rows, l0, linf, ce, cd)
	if err != nil {
		return 0, err
	}
	sum, err := n.AddNoiseFloat64(normSum, l0, maxDist*float64(linf), se, sd)
	if err != nil {
		return 0, err
	}
	sq, err := n.AddNoiseFloat64(normSumSq, l0, maxDist*maxDist*float64(linf), qe, qd)
	if err != nil {
		return 0, err
	}
	return varianceOf(cnt, sum, sq, lo, hi), nil
}

// noisyVarianceOverCount is the variance when the release also has a Count
// over the same bounded rows: the count is that released value, and the
// variance's share is split in halves between the normalised sum and the
// normalised sum of squares (sensitivities as in noisyVariance).
func noisyVarianceOverCount(n noise.Noise, count int64, normSum, normSumSq float64, l0, linf int64, lo, hi float64, b Budget) (float64, error) {
	mid := lo + (hi-lo)/2
	maxDist := hi - mid
	se, sd := b.Epsilon/2, b.Delta/2
	qe, qd := b.Epsilon-se, b.Delta-sd
	sum, err := n.AddNoiseFloat64(normSum, l0, maxDist*float64(linf), se, sd)
	if err != nil {
		return 0, err
	}
	sq, err := n.AddNoiseFloat64(normSumSq, l0, maxDist*maxDist*float64(linf), qe, qd)
	if err != nil {
		return 0, err
	}
	return varianceOf(count, sum, sq, lo, hi), nil
}

// varianceOf is BoundedVariance's estimator from noisy normalised moments.
func varianceOf(cnt int64, sum, sq, lo, hi float64) float64 {
	c := math.Max(1, float64(cnt))
	m := sum / c
	return clamp(sq/c-m*m, 0, (hi-lo)*(hi-lo)/4)
}

// noisyQuantiles feeds the library's BoundedQuantiles with the partition's
// leaf counts (one representative value per leaf: the tree only depends on
// which leaf a value falls in) and reads the ranks.
func noisyQuantiles(n noise.Noise, leaves map[int]int64, l0, linf int64, lo, hi float64, ranks []float64, b Budget) ([]float64, error) {
	q, err := dpagg.NewBoundedQuantiles(&dpagg.BoundedQuantilesOptions{
		Epsilon: b.Epsilon, Delta: b.Delta, MaxPartitionsContributed: l0, MaxContributionsPerPartition: linf,
		Lower: lo, Upper: hi, Noise: n,
	})
	if err != nil {
		return nil, err
	}
	idx := make([]int, 0, len(leaves))
	for l := range leaves {
		idx = append(idx, l)
	}
	sort.Ints(idx)
	for _, l := range idx {
		v := lo + (float64(l)+0.5)/numLeaves*(hi-lo)
		for range leaves[l] {
			if err := q.Add(v); err != nil {
				return nil, err
			}
		}
	}
	out := make([]float64, len(ranks))
	for i, r := range ranks {
		if out[i], err = q.Result(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}
