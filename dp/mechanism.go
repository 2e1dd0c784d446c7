package dp

import (
	"fmt"
	"math"
	"sort"

	"github.com/google/differential-privacy/go/v2/dpagg"
	"github.com/google/differential-privacy/go/v2/noise"
)

// A mechanism releases one aggregate of one partition. Like dpagg's
// BoundedMean, it holds every parameter of the release — noise,
// sensitivities, its budget share, the confidence interval of its noise
// around zero — so that releasing a partition takes only that partition's
// exact state. One is built per release and aggregate, before any noise is
// drawn (construction fails where the library would reject the parameters).
type mechanism interface {
	// release writes the aggregate's output columns for one partition.
	// count is the partition's released value of the shared Count when the
	// mechanism divides by it (see Spec.sharedCount), nil otherwise.
	release(ps *PartitionState, count *int64, out *aggOut) error
}

// Compile-time checks: every kind of aggregate has its mechanism.
var (
	_ mechanism = (*countMechanism)(nil)
	_ mechanism = (*sumMechanism)(nil)
	_ mechanism = (*meanMechanism)(nil)
	_ mechanism = (*varianceMechanism)(nil)
	_ mechanism = (*quantilesMechanism)(nil)
)

// mechParams are the parameters every mechanism of a release shares: the
// noise, the contribution bounds its sensitivities derive from, and the
// level of its intervals.
type mechParams struct {
	noise noise.Noise
	l0    int64 // partitions per subject (L0)
	linf  int64 // rows per subject and partition (L∞)
	alpha float64
}

// aggOut holds one aggregate's output columns for one partition: count is
// the published Count value, vals the float64 columns in output order (for
// Count, its interval). noisy is a Count's draw before it was clamped at 0:
// means and variances that share the count divide by it, as they would by
// their own draw.
type aggOut struct {
	count int64
	noisy int64
	vals  []float64
}

// newMechanisms builds the mechanism of every aggregate of s for a release
// whose shares are aggB, with intervals at level 1-alpha. shared[i] says
// whether aggregate i divides by the Count at index countIdx (see
// sharedCount).
func (s *Spec) newMechanisms(n noise.Noise, aggB []Budget, countIdx int, shared []bool) ([]mechanism, error) {
	p := mechParams{noise: n, l0: s.MaxPartitions, linf: s.MaxPerPartition, alpha: 1 - s.Confidence}
	mechs := make([]mechanism, len(s.Aggregates))
	for i := range s.Aggregates {
		a := &s.Aggregates[i]
		var countB *Budget
		if shared[i] {
			countB = &aggB[countIdx]
		}
		var m mechanism
		var err error
		switch a.Kind {
		case Count:
			m, err = newCountMechanism(p, aggB[i])
		case Sum:
			m, err = newSumMechanism(p, i, a, aggB[i])
		case Mean:
			m, err = newMeanMechanism(p, i, a, aggB[i], countB)
		case Variance:
			m = newVarianceMechanism(p, i, a, aggB[i], countB != nil)
		case Quantiles:
			m = &quantilesMechanism{mechParams: p, index: i, lower: a.Lower, upper: a.Upper, ranks: a.Ranks, budget: aggB[i]}
		default:
			err = fmt.Errorf("unknown kind %v", a.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("aggregate %q: %w", a.Name, err)
		}
		mechs[i] = m
	}
	return mechs, nil
}

// countMechanism releases a row count where a subject adds at most linf
// rows to at most l0 partitions: AddNoiseInt64(count, l0, linf, ε, δ), the
// interval clamped at 0. That is the library's Count.Result (for linf = 1,
// as a standalone Count; for linf > 1, as the Count inside BoundedMean,
// whose per-partition bound is unexported) — tested call for call.
type countMechanism struct {
	mechParams
	budget Budget
	// ciLow, ciHigh: the library's integer interval of the noise around
	// zero (its intervals are translation invariant, so a partition's
	// interval is its noisy value plus these offsets).
	ciLow, ciHigh float64
}

func newCountMechanism(p mechParams, b Budget) (*countMechanism, error) {
	ci, err := p.noise.ComputeConfidenceIntervalInt64(0, p.l0, p.linf, b.Epsilon, b.Delta, p.alpha)
	if err != nil {
		return nil, err
	}
	return &countMechanism{mechParams: p, budget: b, ciLow: ci.LowerBound, ciHigh: ci.UpperBound}, nil
}

func (m *countMechanism) release(ps *PartitionState, _ *int64, out *aggOut) error {
	v, ci, err := m.result(ps.Rows)
	if err != nil {
		return err
	}
	// Post-processing: a count is never negative, and the published value
	// lies inside its interval (which the library clamps at 0 already).
	out.noisy, out.count, out.vals = v, max(0, v), []float64{ci.LowerBound, ci.UpperBound}
	return nil
}

// result is the noisy count of rows (as drawn: it may be negative) and its
// interval.
func (m *countMechanism) result(rows int64) (int64, noise.ConfidenceInterval, error) {
	v, err := m.noise.AddNoiseInt64(rows, m.l0, m.linf, m.budget.Epsilon, m.budget.Delta)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	return v, m.interval(v), nil
}

// interval is the interval around a noisy count v, clamped at 0 (a count
// is never negative) as the library's Count.ComputeConfidenceInterval does.
func (m *countMechanism) interval(v int64) noise.ConfidenceInterval {
	return noise.ConfidenceInterval{LowerBound: math.Max(0, float64(v)+m.ciLow), UpperBound: math.Max(0, float64(v)+m.ciHigh)}
}

// sumLInf is the library's L∞ sensitivity of a bounded sum with linf
// contributions per partition: max(|lo|, |hi|)·linf (dpagg getLInfFloat).
func sumLInf(lo, hi float64, linf int64) float64 {
	return math.Max(math.Abs(lo), math.Abs(hi)) * float64(linf)
}

// sumMechanism releases a clamped sum as the library's BoundedSumFloat64
// does (noise with L∞ sensitivity max(|lo|,|hi|)·linf; interval trimmed to
// the sign the bounds allow). The library's object takes one value per
// subject and partition; we hold the exact pre-aggregated sum, so we call
// its noise directly with the same parameters (tested against the library
// object).
type sumMechanism struct {
	mechParams
	index        int     // position of the aggregate in PartitionState.Sums
	sensitivity  float64 // L∞ sensitivity: sumLInf of the bounds
	lower, upper float64
	budget       Budget
	// ciLow, ciHigh: the library's interval of the noise around zero.
	ciLow, ciHigh float64
}

func newSumMechanism(p mechParams, index int, a *AggregateSpec, b Budget) (*sumMechanism, error) {
	m := &sumMechanism{mechParams: p, index: index, sensitivity: sumLInf(a.Lower, a.Upper, p.linf), lower: a.Lower, upper: a.Upper, budget: b}
	ci, err := p.noise.ComputeConfidenceIntervalFloat64(0, p.l0, m.sensitivity, b.Epsilon, b.Delta, p.alpha)
	if err != nil {
		return nil, err
	}
	m.ciLow, m.ciHigh = ci.LowerBound, ci.UpperBound
	return m, nil
}

func (m *sumMechanism) release(ps *PartitionState, _ *int64, out *aggOut) error {
	v, ci, err := m.result(ps.Sums[m.index])
	if err != nil {
		return err
	}
	out.vals = []float64{m.feasible(v), ci.LowerBound, ci.UpperBound}
	return nil
}

// feasible is post-processing of a noisy sum: a sum of values clamped to
// non-negative (non-positive) bounds is never negative (positive), so the
// published value takes the sign the bounds allow — as its interval does,
// which then still contains it.
func (m *sumMechanism) feasible(v float64) float64 {
	if m.lower >= 0 {
		v = math.Max(0, v)
	}
	if m.upper <= 0 {
		v = math.Min(0, v)
	}
	return v
}

// result is the noisy sum and its interval.
func (m *sumMechanism) result(sum float64) (float64, noise.ConfidenceInterval, error) {
	v, err := m.noise.AddNoiseFloat64(sum, m.l0, m.sensitivity, m.budget.Epsilon, m.budget.Delta)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	return v, m.interval(v), nil
}

// interval is the interval around a noisy sum v, trimmed to the sign the
// bounds allow.
func (m *sumMechanism) interval(v float64) noise.ConfidenceInterval {
	ci := noise.ConfidenceInterval{LowerBound: v + m.ciLow, UpperBound: v + m.ciHigh}
	if m.lower >= 0 {
		ci.LowerBound, ci.UpperBound = math.Max(0, ci.LowerBound), math.Max(0, ci.UpperBound)
	}
	if m.upper <= 0 {
		ci.LowerBound, ci.UpperBound = math.Min(0, ci.LowerBound), math.Min(0, ci.UpperBound)
	}
	return ci
}

// ciSteps is the resolution of the search for the tightest split of α in
// the mean's interval. The library searches 1000 splits; every split gives a
// valid interval (coverage ≥ 1-α), the search only picks the narrowest, so
// 100 splits lose little width.
const ciSteps = 100

// meanMechanism is the library's BoundedMean.Result on exact
// pre-aggregated state: a noisy count (sensitivity linf) and a noisy sum
// of values normalised to the bounds' midpoint (sensitivity (hi-mid)·linf);
// mean = clamp(sum/max(1,count) + mid, lo, hi).
//
// On its own, half the budget goes to each, as in BoundedMean. When the
// release has a Count over the same bounded rows with at least that half
// (see Spec.sharedCount), the denominator is that count's released value
// (post-processing: no budget, no draw) and the whole share goes to the
// sum.
//
// The interval is the library's (BoundedMean.ComputeConfidenceInterval's
// search over the split of α between numerator and denominator, at
// ciSteps resolution), from intervals of both noises around zero computed
// once per release.
type meanMechanism struct {
	mechParams
	index        int // position of the aggregate in PartitionState.Sums
	lower, upper float64
	mid          float64 // midpoint of the bounds
	sumBudget    Budget
	countBudget  Budget // the own count's share, or the shared Count's
	sharedCount  bool   // divide by the release's Count instead of drawing one
	// splits: for each tried split of α, the intervals of the sum's and the
	// count's noise around zero.
	splits []meanSplit
}

// meanSplit holds the numerator's and the denominator's interval around
// zero at one split of α.
type meanSplit struct {
	numLow, numHigh float64
	denLow, denHigh float64
}

// newMeanMechanism: countB, when not nil, is the budget of the release's
// shared count, which then is the mean's denominator (all of b goes to the
// numerator).
func newMeanMechanism(p mechParams, index int, a *AggregateSpec, b Budget, countB *Budget) (*meanMechanism, error) {
	lo, hi := a.Lower, a.Upper
	mid := lo + (hi-lo)/2
	m := &meanMechanism{mechParams: p, index: index, lower: lo, upper: hi, mid: mid,
		sumBudget:   Budget{b.Epsilon / 2, b.Delta / 2},
		countBudget: Budget{b.Epsilon / 2, b.Delta / 2},
	}
	if countB != nil {
		m.sumBudget, m.countBudget, m.sharedCount = b, *countB, true
	}
	n, l0, linf, alpha := p.noise, p.l0, p.linf, p.alpha
	sens := (hi - mid) * float64(linf)
	for i := 1; i < ciSteps; i++ {
		// The numerator's and the denominator's noise are independent
		// draws, so both intervals hold with probability
		// (1-αnum)(1-αden) = 1-α.
		alphaNum := float64(i) / ciSteps * alpha
		alphaDen := (alpha - alphaNum) / (1 - alphaNum)
		num, err := n.ComputeConfidenceIntervalFloat64(0, l0, sens, m.sumBudget.Epsilon, m.sumBudget.Delta, alphaNum)
		if err != nil {
			return nil, err
		}
		den, err := n.ComputeConfidenceIntervalInt64(0, l0, linf, m.countBudget.Epsilon, m.countBudget.Delta, alphaDen)
		if err != nil {
			return nil, err
		}
		m.splits = append(m.splits, meanSplit{num.LowerBound, num.UpperBound, den.LowerBound, den.UpperBound})
	}
	return m, nil
}

func (m *meanMechanism) release(ps *PartitionState, count *int64, out *aggOut) error {
	if m.sharedCount && count == nil {
		return fmt.Errorf("mean: the shared count was not released first")
	}
	if !m.sharedCount {
		count = nil
	}
	v, ci, err := m.result(ps.Rows, ps.Sums[m.index], count)
	if err != nil {
		return err
	}
	out.vals = []float64{v, ci.LowerBound, ci.UpperBound}
	return nil
}

// result is the noisy mean of rows values whose normalised sum is normSum,
// and its interval; released, when not nil, is the shared count's released
// value (then no count is drawn).
func (m *meanMechanism) result(rows int64, normSum float64, released *int64) (float64, noise.ConfidenceInterval, error) {
	var cnt int64
	if released != nil {
		cnt = *released
	} else {
		var err error
		if cnt, err = m.noise.AddNoiseInt64(rows, m.l0, m.linf, m.countBudget.Epsilon, m.countBudget.Delta); err != nil {
			return 0, noise.ConfidenceInterval{}, err
		}
	}
	maxDist := m.upper - m.mid
	sum, err := m.noise.AddNoiseFloat64(normSum, m.l0, maxDist*float64(m.linf), m.sumBudget.Epsilon, m.sumBudget.Delta)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	mean, ci := m.estimate(sum, cnt)
	return mean, ci, nil
}

// estimate is BoundedMean's estimator and interval from a noisy normalised
// sum and a noisy count: mean = clamp(sum/max(1,cnt) + mid, lo, hi), the
// interval the narrowest over the α splits.
func (m *meanMechanism) estimate(sum float64, cnt int64) (float64, noise.ConfidenceInterval) {
	lo, hi, mid := m.lower, m.upper, m.mid
	mean := clamp(sum/math.Max(1, float64(cnt))+mid, lo, hi)

	best := noise.ConfidenceInterval{LowerBound: lo, UpperBound: hi}
	minSize := math.Inf(1)
	for _, sp := range m.splits {
		c := float64(cnt)
		ml, mu := MeanInterval(sum+sp.numLow, sum+sp.numHigh, c+sp.denLow, c+sp.denHigh, mid, lo, hi)
		if mu-ml < minSize {
			minSize = mu - ml
			best = noise.ConfidenceInterval{LowerBound: ml, UpperBound: mu}
		}
	}
	return mean, best
}

// MeanInterval is the interval of a mean num/count + mid, clamped to
// [lower, upper], from an interval [numLow, numHigh] of its noisy
// (normalised) numerator and an independent interval [countLow, countHigh]
// of its noisy count, as google/differential-privacy's BoundedMean builds
// it for one split of α between the two: the count's interval is clamped
// at 0 (as Count's is) and then at 1 (as the mean divides by at least 1),
// and each end of the mean takes the count's end that makes it widest.
// The caller picks the narrowest over its splits.
func MeanInterval(numLow, numHigh, countLow, countHigh, mid, lower, upper float64) (lo, hi float64) {
	dl := math.Max(math.Max(0, countLow), 1)
	du := math.Max(math.Max(0, countHigh), 1)
	if numLow >= 0 {
		lo = numLow / du
	} else {
		lo = numLow / dl
	}
	if numHigh >= 0 {
		hi = numHigh / dl
	} else {
		hi = numHigh / du
	}
	return clamp(lo+mid, lower, upper), clamp(hi+mid, lower, upper)
}

// varianceMechanism is the library's BoundedVariance.Result on exact
// state: ε/3 (δ/3) each on count, normalised sum and normalised sum of
// squares (sensitivities linf, (hi-mid)·linf, (hi-mid)²·linf); variance =
// clamp(s2/c - (s/c)², 0, (hi-lo)²/4). When the release has a Count over
// the same bounded rows with at least a third of the share, the count is
// that released value and the share is split in halves between the two
// sums. The library has no interval for a variance.
type varianceMechanism struct {
	mechParams
	index         int // position of the aggregate in PartitionState.Sums and SumSquares
	lower, upper  float64
	sharedCount   bool
	countBudget   Budget // own count (unused when sharedCount)
	sumBudget     Budget
	squaresBudget Budget
}

func newVarianceMechanism(p mechParams, index int, a *AggregateSpec, b Budget, sharedCount bool) *varianceMechanism {
	m := &varianceMechanism{mechParams: p, index: index, lower: a.Lower, upper: a.Upper, sharedCount: sharedCount}
	if sharedCount {
		se, sd := b.Epsilon/2, b.Delta/2
		m.sumBudget = Budget{se, sd}
		m.squaresBudget = Budget{b.Epsilon - se, b.Delta - sd}
		return m
	}
	ce, cd := b.Epsilon/3, b.Delta/3
	se, sd := b.Epsilon/3, b.Delta/3
	m.countBudget = Budget{ce, cd}
	m.sumBudget = Budget{se, sd}
	m.squaresBudget = Budget{b.Epsilon - ce - se, b.Delta - cd - sd}
	return m
}

func (m *varianceMechanism) release(ps *PartitionState, count *int64, out *aggOut) error {
	if m.sharedCount && count == nil {
		return fmt.Errorf("variance: the shared count was not released first")
	}
	if !m.sharedCount {
		count = nil
	}
	v, err := m.result(ps.Rows, ps.Sums[m.index], ps.SumSquares[m.index], count)
	if err != nil {
		return err
	}
	out.vals = []float64{v}
	return nil
}

// result is the noisy variance; released, when not nil, is the shared
// count's released value (then no count is drawn).
func (m *varianceMechanism) result(rows int64, normSum, normSumSq float64, released *int64) (float64, error) {
	mid := m.lower + (m.upper-m.lower)/2
	maxDist := m.upper - mid
	var cnt int64
	if released != nil {
		cnt = *released
	} else {
		var err error
		if cnt, err = m.noise.AddNoiseInt64(rows, m.l0, m.linf, m.countBudget.Epsilon, m.countBudget.Delta); err != nil {
			return 0, err
		}
	}
	sum, err := m.noise.AddNoiseFloat64(normSum, m.l0, maxDist*float64(m.linf), m.sumBudget.Epsilon, m.sumBudget.Delta)
	if err != nil {
		return 0, err
	}
	sq, err := m.noise.AddNoiseFloat64(normSumSq, m.l0, maxDist*maxDist*float64(m.linf), m.squaresBudget.Epsilon, m.squaresBudget.Delta)
	if err != nil {
		return 0, err
	}
	return varianceOf(cnt, sum, sq, m.lower, m.upper), nil
}

// varianceOf is BoundedVariance's estimator from noisy normalised moments.
func varianceOf(cnt int64, sum, sq, lo, hi float64) float64 {
	c := math.Max(1, float64(cnt))
	m := sum / c
	return clamp(sq/c-m*m, 0, (hi-lo)*(hi-lo)/4)
}

// quantilesMechanism feeds the library's BoundedQuantiles with a
// partition's leaf counts (one representative value per leaf: the tree only
// depends on which leaf a value falls in) and reads the ranks. The library
// has no interval for quantiles.
type quantilesMechanism struct {
	mechParams
	index        int // position of the aggregate in PartitionState.Leaves
	lower, upper float64
	ranks        []float64
	budget       Budget
}

func (m *quantilesMechanism) release(ps *PartitionState, _ *int64, out *aggOut) error {
	qs, err := m.result(ps.Leaves[m.index])
	if err != nil {
		return err
	}
	out.vals = qs
	return nil
}

// result is the noisy quantile at every rank.
func (m *quantilesMechanism) result(leaves map[int]int64) ([]float64, error) {
	lo, hi := m.lower, m.upper
	q, err := dpagg.NewBoundedQuantiles(&dpagg.BoundedQuantilesOptions{
		Epsilon: m.budget.Epsilon, Delta: m.budget.Delta, MaxPartitionsContributed: m.l0, MaxContributionsPerPartition: m.linf,
		Lower: lo, Upper: hi, Noise: m.noise,
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
	out := make([]float64, len(m.ranks))
	for i, r := range m.ranks {
		if out[i], err = q.Result(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}
