package dp

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/differential-privacy/go/v2/checks"
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
	// Values are post-processed to lie inside their intervals and their
	// feasible range (counts >= 0; see the package doc).
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
	// Stats, PartitionsDropped and PartitionsPublicEmpty are exact facts
	// about the input for the operator's accounting. They are NOT
	// differentially private (ε = ∞ for whoever sees them): publish
	// Record (and PartitionsKept, its number of rows), not these.
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
	// Aggregates are the release's aggregates (names, kinds, bounds,
	// declared shares) in output order: public parameters, which Verdict
	// reads beside Record.
	Aggregates []AggregateSpec `json:"aggregates"`
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
//
// It runs in four steps: plan (shares, mechanisms, selector — everything
// that can fail without noise), spend, draw (per partition), and build the
// record.
func (p *Partial) Release(ctx context.Context, acct *Accountant, ro ReleaseOptions) (*Result, error) {
	if err := p.releasable(ctx, acct); err != nil {
		return nil, fmt.Errorf("dp.Partial.Release: %w", err)
	}
	eps, del := acct.Remaining()
	rp, err := p.planRelease(eps, del, ro.noise)
	if err != nil {
		return nil, fmt.Errorf("dp.Partial.Release: %w", err)
	}
	if err := acct.spendAll(rp.shares); err != nil {
		return nil, fmt.Errorf("dp.Partial.Release: %w", err)
	}
	p.used = true // from here on, noise is drawn: the partial is spent
	outs, err := rp.draw(p.Partitions)
	p.Partitions = nil
	if err != nil {
		return nil, fmt.Errorf("dp.Partial.Release: %w", err)
	}
	res, err := rp.result(acct, outs, ro.Mem)
	if err != nil {
		return nil, fmt.Errorf("dp.Partial.Release: %w", err)
	}
	res.Stats = p.Stats
	return res, nil
}

// releasable checks that p can be released under acct at all.
func (p *Partial) releasable(ctx context.Context, acct *Accountant) error {
	if p.used {
		return errors.New("partial was already released or merged (results are single-use)")
	}
	if acct == nil {
		return errors.New("an Accountant is required")
	}
	if err := p.check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(p.Partitions) == 0 && !p.Spec.Public {
		return fmt.Errorf("no data (%d input rows, %d used after bounding): nothing to release", p.Stats.RowsIn, p.Stats.RowsUsed)
	}
	return nil
}

// releasePlan is what a release decides before it draws any noise: the
// budget shares, one mechanism per aggregate, the partition selector and
// the candidate partitions. Building it can fail; drawing from it spends.
type releasePlan struct {
	spec   *Spec
	shares []share // what the accountant is charged, by mechanism
	mechs  []mechanism
	// countIdx is the Count whose released value the aggregates marked in
	// shared divide by (-1: none; see Spec.sharedCount).
	countIdx int
	shared   []bool
	selector *selector // nil with public partitions
	keys     []string  // candidate partitions, in output order
}

// planRelease splits the remaining budget (eps, del) and builds the
// mechanisms and the selector. n replaces the library noise in tests.
func (p *Partial) planRelease(eps, del float64, n noise.Noise) (*releasePlan, error) {
	s := &p.Spec
	if len(s.KeyTypes) == 0 {
		// Public partitions but no data at all: keys are released as text.
		for range s.GroupBy {
			s.KeyTypes = append(s.KeyTypes, keyType{Kind: "string"})
		}
	}
	rp, err := s.planMechanisms(eps, del, n)
	if err != nil {
		return nil, err
	}
	if s.Public {
		rp.keys = s.PublicKeys
	} else {
		rp.keys = p.sortedKeys()
	}
	return rp, nil
}

// planMechanisms is the data-free part of a release plan: shares,
// mechanisms and selector for a remaining budget (eps, del). Predict uses
// it too, so a prediction is made by the mechanisms a release would use.
func (s *Spec) planMechanisms(eps, del float64, n noise.Noise) (*releasePlan, error) {
	if n == nil {
		n = s.Noise.library()
	}
	aggB, selB, err := s.plan(eps, del)
	if err != nil {
		return nil, err
	}
	rp := &releasePlan{spec: s, shares: make([]share, 0, len(aggB)+1)}
	for i, b := range aggB {
		if err := checkMechanism(s.Noise, b); err != nil {
			return nil, fmt.Errorf("aggregate %q: %w", s.Aggregates[i].Name, err)
		}
		rp.shares = append(rp.shares, share{what: s.Aggregates[i].Name, epsilon: b.Epsilon, delta: b.Delta})
	}
	if !s.Public {
		if err := checks.CheckEpsilonStrict(selB.Epsilon); err != nil {
			return nil, fmt.Errorf("partition selection: %v", err)
		}
		if err := checks.CheckDeltaStrict(selB.Delta); err != nil {
			return nil, fmt.Errorf("partition selection: %v", err)
		}
		rp.shares = append(rp.shares, share{what: "partition selection", epsilon: selB.Epsilon, delta: selB.Delta})
		if rp.selector, err = newSelector(s.MaxPartitions, selB); err != nil {
			return nil, fmt.Errorf("partition selection: %w", err)
		}
	}
	// Means and variances divide by the released count when the release
	// has one with at least their own count's share (see sharedCount).
	rp.countIdx, rp.shared = s.sharedCount(aggB)
	if rp.mechs, err = s.newMechanisms(n, aggB, rp.countIdx, rp.shared); err != nil {
		return nil, err
	}
	return rp, nil
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

// partitionOut is the released state of one candidate partition.
type partitionOut struct {
	keep, dropped, empty bool
	aggs                 []aggOut
}

// draw releases every candidate partition of parts: selection first, then
// every aggregate of the kept ones, the shared count before the aggregates
// that divide by it.
//
// Noise per partition is independent, but the library draws all its
// randomness through one mutex-guarded crypto/rand buffer: for counts,
// sums, means and variances a second worker only spins on that mutex (9% of
// the benchmark's CPU) without shortening the release (12 ns/row either
// way). Quantile trees do real work outside the mutex (leaf counts into the
// tree), so they are released in parallel. Outputs are in key order either
// way.
func (rp *releasePlan) draw(parts map[string]*PartitionState) ([]partitionOut, error) {
	s := rp.spec
	outs := make([]partitionOut, len(rp.keys))
	workers := 1
	for _, a := range s.Aggregates {
		if a.Kind == Quantiles {
			workers = max(1, min(runtime.GOMAXPROCS(0), 8))
		}
	}
	empty := newPartitionState(s)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for ki := w; ki < len(rp.keys); ki += workers {
				ps := parts[rp.keys[ki]]
				if ps == nil {
					if !s.Public {
						continue
					}
					ps, outs[ki].empty = empty, true
				}
				if errs[w] = rp.drawPartition(ps, &outs[ki]); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return outs, errors.Join(errs...)
}

// drawPartition releases one partition into o (or marks it dropped).
func (rp *releasePlan) drawPartition(ps *PartitionState, o *partitionOut) error {
	if rp.selector != nil {
		keep, err := rp.selector.keep(ps.Subjects)
		if err != nil {
			return fmt.Errorf("partition selection: %w", err)
		}
		if !keep {
			o.dropped = true
			return nil
		}
	}
	o.keep = true
	o.aggs = make([]aggOut, len(rp.mechs))
	// The shared count first: means and variances divide by it.
	var released *int64
	if rp.countIdx >= 0 {
		if err := rp.mechs[rp.countIdx].release(ps, nil, &o.aggs[rp.countIdx]); err != nil {
			return fmt.Errorf("aggregate %q: %w", rp.spec.Aggregates[rp.countIdx].Name, err)
		}
		released = &o.aggs[rp.countIdx].noisy
	}
	for i, m := range rp.mechs {
		if i == rp.countIdx {
			continue
		}
		cnt := released
		if !rp.shared[i] {
			cnt = nil
		}
		if err := m.release(ps, cnt, &o.aggs[i]); err != nil {
			return fmt.Errorf("aggregate %q: %w", rp.spec.Aggregates[i].Name, err)
		}
	}
	return nil
}

// result assembles the released partitions into the Result: the record in
// key order, the partition counts and the budget spent.
func (rp *releasePlan) result(acct *Accountant, outs []partitionOut, mem memory.Allocator) (*Result, error) {
	s := rp.spec
	res := &Result{Confidence: s.Confidence, Noise: s.Noise.String(), Aggregates: append([]AggregateSpec(nil), s.Aggregates...)}
	for i, sh := range rp.shared {
		if sh {
			res.Denominator = s.Aggregates[rp.countIdx].Name
			res.DividedByCount = append(res.DividedByCount, s.Aggregates[i].Name)
		}
	}
	for _, sh := range rp.shares {
		res.Spent.EpsilonSpent += sh.epsilon
		res.Spent.DeltaSpent += sh.delta
	}
	tot := acct.Spent()
	res.Spent.EpsilonTotal, res.Spent.DeltaTotal = tot.EpsilonTotal, tot.DeltaTotal

	if mem == nil {
		mem = memory.DefaultAllocator
	}
	b := newResultBuilder(mem, s)
	defer b.release()
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
		if err := b.appendKey(rp.keys[ki]); err != nil {
			return nil, err
		}
		for i := range o.aggs {
			b.appendAggregate(i, &o.aggs[i])
		}
		res.PartitionsKept++
	}
	res.Record = b.record()
	return res, nil
}
