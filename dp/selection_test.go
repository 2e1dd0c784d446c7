package dp

import (
	"math"
	"testing"

	"github.com/google/differential-privacy/go/v2/dpagg"
)

// TestSelectorMatchesLibrary: for L0 > 3 our selector (threshold computed
// once) keeps a partition as often as the library's PreAggSelectPartition.
// At the subject count where both keep about half the partitions, 1,500
// decisions each; two-proportion z-test at |z| < 4.5 (false rejection
// ≈ 6.8e-6).
func TestSelectorMatchesLibrary(t *testing.T) {
	b := Budget{Epsilon: 0.5, Delta: 1e-6}
	const l0 = 5
	sel, err := newSelector(l0, b)
	if err != nil {
		t.Fatal(err)
	}
	n := sel.thr // the noisy count is centred on n: about half are kept
	const trials = 1500
	var ours, lib int
	for range trials {
		if k, _ := sel.keep(n); k {
			ours++
		}
		s, _ := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{Epsilon: b.Epsilon, Delta: b.Delta, MaxPartitionsContributed: l0})
		for range n {
			s.Increment()
		}
		if k, _ := s.ShouldKeepPartition(); k {
			lib++
		}
	}
	p := float64(ours+lib) / (2 * trials)
	z := (float64(ours) - float64(lib)) / trials / math.Sqrt(2*p*(1-p)/trials)
	if math.Abs(z) > 4.5 || ours < trials/4 || ours > trials*3/4 {
		t.Errorf("kept %d (ours) vs %d (library) of %d at n = %d: z = %.2f", ours, lib, trials, n, z)
	}
}
