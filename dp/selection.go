package dp

import (
	"math"

	"github.com/google/differential-privacy/go/v2/dpagg"
	"github.com/google/differential-privacy/go/v2/noise"
)

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

// keepProbability is the chance that the selection keeps a partition with
// the given number of subjects: 1 from the library's hard threshold on (L0
// <= 3), otherwise the share of selectionTrials decisions of this selector
// that keep it — the release's own code, so the estimate cannot drift from
// what a release does. It reads no data and spends nothing (the draws are
// about an assumed count).
func (s *selector) keepProbability(subjects int64) (float64, int, error) {
	if s.l0 <= 3 {
		sel, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{Epsilon: s.b.Epsilon, Delta: s.b.Delta, MaxPartitionsContributed: s.l0})
		if err != nil {
			return 0, 0, err
		}
		hard, err := sel.GetHardThreshold()
		if err != nil {
			return 0, 0, err
		}
		if subjects >= int64(hard) {
			return 1, 0, nil
		}
	}
	kept := 0
	for range selectionTrials {
		k, err := s.keep(subjects)
		if err != nil {
			return 0, 0, err
		}
		if k {
			kept++
		}
	}
	return float64(kept) / selectionTrials, selectionTrials, nil
}
