package kanon

import (
	"context"
	"math"
	"slices"
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

// TestAdultReferenceLT reproduces ARX's l-diversity and t-closeness optima
// on Adult (TestAnonymizationLDiversity, TestAnonymizationTCloseness):
// occupation is sensitive, the other eight columns quasi-identifiers.
func TestAdultReferenceLT(t *testing.T) {
	qi := []string{"sex", "age", "race", "marital-status", "education", "native-country", "workclass", "salary-class"}
	h := adultHistogram(t, qi, "occupation")
	cases := []struct {
		name   string
		opts   Options
		loss   float64
		levels string // "" = no solution
	}{
		{"entropy-l5,supp0.04", Options{K: 2, SuppressionLimit: 0.04, Metric: MetricEntropyNM,
			LDiversity: &LDiversity{Sensitive: "occupation", L: 5, Variant: LEntropy}}, 228878.2039109517, "1,0,1,1,2,2,2,1"},
		{"entropy-l5,supp0", Options{K: 2, SuppressionLimit: 0, Metric: MetricEntropyNM,
			LDiversity: &LDiversity{Sensitive: "occupation", L: 5, Variant: LEntropy}}, 324620.5269918692, "1,1,1,1,3,2,2,1"},
		{"entropy-l100,supp0.04", Options{K: 2, SuppressionLimit: 0.04, Metric: MetricEntropyNM,
			LDiversity: &LDiversity{Sensitive: "occupation", L: 100, Variant: LEntropy}}, 0, ""},
		{"t0.2-equal,k5,supp0.04", Options{K: 5, SuppressionLimit: 0.04, Metric: MetricDiscernibility,
			TCloseness: &TCloseness{Sensitive: "occupation", T: 0.2, Distance: TEqual}}, 3.11880088e8, "1,4,1,0,3,2,2,1"},
		{"t0.2-equal,k100,supp0.04", Options{K: 100, SuppressionLimit: 0.04, Metric: MetricDiscernibility,
			TCloseness: &TCloseness{Sensitive: "occupation", T: 0.2, Distance: TEqual}}, 3.11880088e8, "1,4,1,0,3,2,2,1"},
		{"t0.2-equal,k5,supp0", Options{K: 5, SuppressionLimit: 0, Metric: MetricDiscernibility,
			TCloseness: &TCloseness{Sensitive: "occupation", T: 0.2, Distance: TEqual}}, 4.56853172e8, "1,4,1,1,3,2,2,1"},
		// TestAnonymizationOrderedDistanceTCloseness (occupation ordered as text).
		{"t0.2-ordered,k5,supp0.04", Options{K: 5, SuppressionLimit: 0.04, Metric: MetricDiscernibility,
			TCloseness: &TCloseness{Sensitive: "occupation", T: 0.2, Distance: TOrdered}}, 2712340.0, "0,0,1,1,2,2,2,0"},
		{"t0.2-ordered,k100,supp0.04", Options{K: 100, SuppressionLimit: 0.04, Metric: MetricDiscernibility,
			TCloseness: &TCloseness{Sensitive: "occupation", T: 0.2, Distance: TOrdered}}, 1.9937246e7, "1,0,1,2,3,2,2,1"},
		{"t0.1-ordered,k5,supp0", Options{K: 5, SuppressionLimit: 0, Metric: MetricDiscernibility,
			TCloseness: &TCloseness{Sensitive: "occupation", T: 0.1, Distance: TOrdered}}, 9.786802e7, "1,1,1,2,3,2,2,1"},
		{"t0.2-ordered,k100,supp0", Options{K: 100, SuppressionLimit: 0, Metric: MetricDiscernibility,
			TCloseness: &TCloseness{Sensitive: "occupation", T: 0.2, Distance: TOrdered}}, 1.6231213e8, "1,4,1,1,1,2,2,1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			// ARX's l-diversity cases set no k; k=2 is implied by l >= 2.
			r, err := Search(context.Background(), h, c.opts)
			if c.levels == "" {
				if err == nil {
					t.Fatalf("got %s, ARX finds no solution", join(r.Levels))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := r.InformationLoss[string(c.opts.Metric)]
			t.Logf("%s loss %.10g checked %d in %v", join(r.Levels), got, r.NodesChecked, time.Since(start))
			if join(r.Levels) != c.levels {
				t.Errorf("transformation %s, ARX %s", join(r.Levels), c.levels)
			}
			if math.Abs(got-c.loss)/c.loss > 1e-6 {
				t.Errorf("loss %.10g, ARX %.10g", got, c.loss)
			}
		})
	}
}

// TestAdultLossPerColumn checks the Loss metric's per-column values against
// ARX's TestUtilityMetricsLoss, which reports them (sorted, ARX's rank
// aggregate) for given transformations of Adult with occupation sensitive.
func TestAdultLossPerColumn(t *testing.T) {
	qi := []string{"sex", "age", "race", "marital-status", "education", "native-country", "workclass", "salary-class"}
	h := adultHistogram(t, qi, "occupation")
	// ARX's recursive-(4,5)-diversity cases of the same test suppress 32
	// more rows than this package for the same transformation (case 3,
	// 0,3,0,0,1,1,1,0: 5,422 vs 5,390; the four level-0 columns' loss is
	// exactly the suppressed share), so they are not asserted. The cause is
	// not found: ARX 3.x's RecursiveCLDiversity.isAnonymous (at least l
	// distinct values; r1 < c·(sum of all frequencies but the l-1 largest))
	// is what lOK implements, and no nearby reading gives
	// 5,422 (<= instead of <: 5,056; tail from l+1: 7,506; from l-1: 4,520;
	// more than l values: 5,614; a class minimum of 6 or 7 rows: 5,450,
	// 5,474); nor do one to three kept classes account for all five
	// per-column loss differences.
	cases := []struct {
		opts   Options
		levels []int
		want   []float64
	}{
		{Options{K: 5, SuppressionLimit: 0.99, Metric: MetricLoss}, []int{0, 3, 0, 0, 1, 0, 0, 0},
			[]float64{0.297248193, 0.29678055, 0.1297659306, 0.1297659306, 0.1297659306, 0.1297659306, 0.1297659306, 0.1297659306}},
	}
	for _, c := range cases {
		r, _, err := Evaluate(context.Background(), h, c.opts, c.levels)
		if err != nil {
			t.Fatal(err)
		}
		var got []float64
		for _, q := range qi {
			got = append(got, r.PerColumnLoss[q])
		}
		slices.Sort(got)
		slices.Reverse(got)
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-9 {
				t.Errorf("%v: per-column loss %v, ARX %v", c.levels, got, c.want)
				break
			}
		}
	}
}
