package dp

import (
	"fmt"
)

// Assumption describes the partition a Prediction is made for.
type Assumption struct {
	// Subjects is the number of subjects that contribute to the partition
	// (after L0 bounding). Required, >= 1.
	Subjects int64
	// RowsPerSubject is the number of rows each of them contributes (after
	// L∞ bounding), in [1, MaxPerPartition]. 0 means MaxPerPartition: every
	// subject uses its whole allowance, the most favourable case for a
	// mean (fewer rows, wider mean intervals).
	RowsPerSubject int64
}

// Prediction is the accuracy a release would have, computed from its
// options and budget alone: it reads no data, draws no noise and spends
// nothing. For each aggregate it gives the interval the release would
// publish around a partition as assumed when the noise happens to be zero
// — the same library intervals, computed by the same mechanisms as
// Partial.Release, so the widths are the widths the release will publish
// (count and sum intervals are as wide whatever the draw, up to clipping
// at 0; a mean's width depends on the draw only through its noisy count).
type Prediction struct {
	// Assumption with RowsPerSubject filled in.
	Assumption Assumption `json:"assumption"`
	// Rows in the partition: Subjects × RowsPerSubject.
	Rows int64 `json:"rows"`
	// Confidence level of the intervals.
	Confidence float64 `json:"confidence"`
	// Noise names the distribution ("laplace" or "gaussian").
	Noise      string                `json:"noise"`
	Aggregates []AggregatePrediction `json:"aggregates"`
	// Selection is the private partition selection's chance of releasing
	// the partition; nil with public partitions (every one is released).
	Selection *SelectionPrediction `json:"selection,omitempty"`
}

// AggregatePrediction is one aggregate's predicted interval.
type AggregatePrediction struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Lower and Upper are the clamp bounds (both 0 for a count).
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	// Budget is the aggregate's share of the release budget.
	Budget Budget `json:"budget"`
	// DividedByCount: a mean or variance that divides by the release's
	// Count (see Result.DividedByCount).
	DividedByCount bool `json:"divided_by_count,omitempty"`
	// HasInterval is false for variance and quantiles: the library has no
	// confidence interval for them, and nothing below is set.
	HasInterval bool `json:"has_interval"`
	// Value is the true value the prediction assumes: Rows (count),
	// Rows × the bounds' midpoint (sum), the midpoint (mean) — for means
	// the case with the least clipping at the bounds, so the widest.
	Value float64 `json:"value,omitempty"`
	// Low and High are the interval the release would publish.
	Low  float64 `json:"ci_low,omitempty"`
	High float64 `json:"ci_high,omitempty"`
	// HalfWidth is (High-Low)/2: the error at the confidence level.
	HalfWidth float64 `json:"half_width,omitempty"`
	// Narrow says whether the interval passes the test Result.Verdict
	// applies (see AggregateVerdict.Criterion).
	Narrow bool `json:"narrow"`
}

// SelectionPrediction is private partition selection's chance of keeping
// a partition with the assumed number of subjects.
type SelectionPrediction struct {
	// Budget is the selection's share of the release budget.
	Budget Budget `json:"budget"`
	// KeepProbability is estimated by running the release's own selection
	// (the library's algorithm) Trials times on the assumed subject count
	// (standard error at most 0.5/√Trials), or exactly 1 from the
	// library's hard threshold on.
	KeepProbability float64 `json:"keep_probability"`
	Trials          int     `json:"trials,omitempty"`
}

// selectionTrials is how many selection decisions a prediction draws:
// standard error ≤ 0.016, a few milliseconds.
const selectionTrials = 1000

// Predict returns the accuracy a release with opts would have under a
// total budget of (epsilon, delta) — what a fresh Accountant with that
// budget would give Partial.Release — for a partition as assumed. It
// validates opts as NewAggregator does and touches no data: run it before
// spending budget, with a few assumed subject counts, to choose partitions
// coarse enough that the release says something.
func Predict(opts Options, epsilon, delta float64, assume Assumption) (*Prediction, error) {
	s, err := opts.validate("Predict")
	if err != nil {
		return nil, err
	}
	if err := checkEpsilon("Predict", "epsilon", epsilon); err != nil {
		return nil, err
	}
	if err := checkDelta("Predict", "delta", delta); err != nil {
		return nil, err
	}
	if assume.Subjects < 1 || assume.Subjects > maxSubjects {
		return nil, fmt.Errorf("dp.Predict: Assumption.Subjects must be in [1, %d] (got %d)", int64(maxSubjects), assume.Subjects)
	}
	if assume.RowsPerSubject == 0 {
		assume.RowsPerSubject = s.MaxPerPartition
	}
	if assume.RowsPerSubject < 1 || assume.RowsPerSubject > s.MaxPerPartition {
		return nil, fmt.Errorf("dp.Predict: Assumption.RowsPerSubject must be in [1, MaxPerPartition = %d] (got %d)", s.MaxPerPartition, assume.RowsPerSubject)
	}
	rp, err := s.planMechanisms(epsilon, delta, nil)
	if err != nil {
		return nil, fmt.Errorf("dp.Predict: %w", err)
	}
	rows := assume.Subjects * assume.RowsPerSubject
	pr := &Prediction{Assumption: assume, Rows: rows, Confidence: s.Confidence, Noise: s.Noise.String()}
	for i, m := range rp.mechs {
		a := &s.Aggregates[i]
		ap := AggregatePrediction{Name: a.Name, Kind: a.Kind.String(), Lower: a.Lower, Upper: a.Upper, Budget: Budget{rp.shares[i].epsilon, rp.shares[i].delta}, DividedByCount: rp.shared[i]}
		switch m := m.(type) {
		case *countMechanism:
			ap.Value = float64(rows)
			ci := m.interval(rows)
			ap.Low, ap.High = ci.LowerBound, ci.UpperBound
		case *sumMechanism:
			ap.Value = float64(rows) * (a.Lower + (a.Upper-a.Lower)/2)
			ci := m.interval(ap.Value)
			ap.Low, ap.High = ci.LowerBound, ci.UpperBound
		case *meanMechanism:
			// Values at the midpoint: the normalised sum is 0.
			v, ci := m.estimate(0, rows)
			ap.Value, ap.Low, ap.High = v, ci.LowerBound, ci.UpperBound
		default:
			pr.Aggregates = append(pr.Aggregates, ap)
			continue
		}
		ap.HasInterval = true
		ap.HalfWidth = (ap.High - ap.Low) / 2
		ap.Narrow = a.narrow(ap.Value, ap.Low, ap.High)
		pr.Aggregates = append(pr.Aggregates, ap)
	}
	if rp.selector != nil {
		sel := rp.shares[len(rp.shares)-1]
		pr.Selection = &SelectionPrediction{Budget: Budget{sel.epsilon, sel.delta}}
		if pr.Selection.KeepProbability, pr.Selection.Trials, err = rp.selector.keepProbability(assume.Subjects); err != nil {
			return nil, fmt.Errorf("dp.Predict: partition selection: %w", err)
		}
	}
	return pr, nil
}
