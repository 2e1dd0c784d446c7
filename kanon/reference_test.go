package kanon

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestAdultReference reproduces the four optima of ARX's own test suite
// (TestAnonymizationKAnonymity, listed in ../shared/data/adult/README.md).
func TestAdultReference(t *testing.T) {
	h := adultHistogram(t, adultColumns, "")
	cases := []struct {
		k       int
		supp    float64
		entropy float64
		levels  string
	}{
		{5, 0.04, 255559.85455731067, "1,0,1,1,3,2,2,0,1"},
		{100, 0.04, 379417.3460570988, "1,1,1,1,3,2,2,1,1"},
		{5, 0, 407289.5388925293, "1,2,1,1,3,2,2,1,1"},
		{100, 0, 453196.8932458743, "0,4,1,1,3,2,2,1,1"},
	}
	for _, c := range cases {
		start := time.Now()
		r, err := Search(context.Background(), h, Options{K: c.k, SuppressionLimit: c.supp, Metric: MetricEntropy})
		if err != nil {
			t.Fatal(err)
		}
		got := r.InformationLoss[string(MetricEntropy)]
		t.Logf("k=%d supp=%v: %s loss %.10g checked %d in %v", c.k, c.supp, join(r.Levels), got, r.NodesChecked, time.Since(start))
		if join(r.Levels) != c.levels {
			t.Errorf("k=%d supp=%v: transformation %s, ARX %s", c.k, c.supp, join(r.Levels), c.levels)
		}
		if math.Abs(got-c.entropy)/c.entropy > 1e-6 {
			t.Errorf("k=%d supp=%v: entropy %.10g, ARX %.10g", c.k, c.supp, got, c.entropy)
		}
	}
}
