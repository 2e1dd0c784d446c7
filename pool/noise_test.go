package pool

import (
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// exactTotals computes the released quantities without noise from the
// members' measurements (plain integer arithmetic, no field, no shares).
func (p *plan) exactTotals(meas [][]uint64) []int64 {
	ns, na := len(p.slots), len(p.aggs)
	out := make([]int64, p.outLen)
	for i := range p.rows {
		sums := make([]int64, ns)
		for _, m := range meas {
			for s := range ns {
				sums[s] += int64(m[i*ns+s])
			}
		}
		for j, a := range p.aggs {
			if a.kind == "count" {
				out[i*na+j] = sums[0]
			} else {
				out[i*na+j] = sums[a.slot] + a.coef*sums[0]
			}
		}
	}
	return out
}

// noisyRound runs one round of three members with the library's noise over
// many partitions and returns the release and the exact totals.
func noisyRound(t *testing.T, noise [2]noiseSource) (*testPool, *Result, []int64) {
	t.Helper()
	mem := memory.NewGoAllocator()
	tp := newTestPool(t, 3, testRelease(), testSegs(1200), nil)
	contribs, meas := tp.contributeFleets(t, mem, 400, 1200, 20)
	res, err := tp.roundInMemory(t, contribs, noise)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Release)
	return tp, res, tp.cfg.plan.exactTotals(meas)
}

// ksDiscrete is the Kolmogorov–Smirnov distance between integer samples and
// the distribution of a continuous variable rounded to integers (cdf at
// ±0.5 around each value).
func ksDiscrete(samples []int64, cdf func(float64) float64) float64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	n := float64(len(s))
	var d float64
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		below, upto := float64(i)/n, float64(j)/n
		d = max(d, math.Abs(below-cdf(float64(s[i])-0.5)), math.Abs(upto-cdf(float64(s[i])+0.5)))
		i = j
	}
	return d
}

// ksCritical is the two-sided KS critical value at significance 0.001 for n
// samples (asymptotic: 1.949/√n).
func ksCritical(n int) float64 { return 1.949 / math.Sqrt(float64(n)) }

// TestNoiseMatchesCalibration: the release's error (released − exact total)
// per partition follows the sum of two independent Laplace draws at the
// calibrated scale b = L0·lInf/ε_share — both aggregators add noise with the
// full calibration, neither less nor more. Kolmogorov–Smirnov at α = 0.001
// over 1,200 partitions per aggregate (false rejection probability 0.1% per
// aggregate). The intervals cover the exact totals at the stated 95%, and
// not much more (they are not needlessly wide): at least 0.95 − 4σ
// (binomial), at most 0.99.
func TestNoiseMatchesCalibration(t *testing.T) {
	tp, res, exact := noisyRound(t, [2]noiseSource{})
	p := tp.cfg.plan
	na := len(p.aggs)
	for j, a := range p.aggs {
		var errs []int64
		for i := range p.rows {
			errs = append(errs, res.totals[i*na+j]-exact[i*na+j])
		}
		b := float64(a.l0) * float64(a.lInf) / a.eps
		d := ksDiscrete(errs, func(z float64) float64 { return twoLaplaceCDF(z, b) })
		t.Logf("%s KS two=%.4f", a.name, d)
		if d > ksCritical(len(errs)) {
			t.Errorf("%s: errors do not follow two Laplace draws of scale %v: KS distance %.4f > %.4f", a.name, b, d, ksCritical(len(errs)))
		}
		// One draw only (an aggregator that adds no noise) is told apart.
		single := ksDiscrete(errs, func(z float64) float64 {
			if z < 0 {
				return math.Exp(z/b) / 2
			}
			return 1 - math.Exp(-z/b)/2
		})
		if single < ksCritical(len(errs)) {
			t.Errorf("%s: errors are indistinguishable from a single draw (KS %.4f): the test has no power", a.name, single)
		}
	}
	// Coverage of count and sum intervals.
	rec := res.Record
	for _, c := range []struct {
		name string
		col  int
		unit float64
	}{{"count", 1, 1}, {"sum_temp", 4, 0.125}} {
		lo := rec.Column(c.col + 1).(*array.Float64)
		hi := rec.Column(c.col + 2).(*array.Float64)
		j := slices.IndexFunc(p.aggs, func(a released) bool { return a.name == c.name })
		in := 0
		for i := range p.rows {
			v := float64(exact[i*na+j]) * c.unit
			if lo.Value(i) <= v && v <= hi.Value(i) {
				in++
			}
		}
		cov := float64(in) / float64(len(p.rows))
		t.Logf("%s coverage %.3f", c.name, cov)
		// 95 % is a lower bound (integer rounding widens the intervals by
		// up to a unit: the count's coverage runs at about 0.958), so the
		// upper limit is 0.99, not 0.95 + 4 sd, which a run crosses now
		// and then (0.969 seen against a limit of 0.975).
		sd := math.Sqrt(0.95 * 0.05 / float64(len(p.rows)))
		if cov < 0.95-4*sd || cov > 0.99 {
			t.Errorf("%s: 95%% intervals cover %.3f of the exact totals, want at least %.3f and at most 0.99", c.name, cov, 0.95-4*sd)
		}
	}
}

func TestTwoLaplaceQuantile(t *testing.T) {
	for _, alpha := range []float64{0.5, 0.05, 0.01, 1e-6} {
		q := twoLaplaceQuantile(alpha)
		if got := 2 * (1 - twoLaplaceCDF(q*3, 3)); math.Abs(got-alpha) > 1e-9*alpha {
			t.Errorf("α=%v: P(|Z| > %v·b) = %v", alpha, q, got)
		}
	}
	// Wider than one draw's quantile, narrower than twice it.
	one := -math.Log(0.05)
	if q := twoLaplaceQuantile(0.05); q <= one || q >= 2*one {
		t.Errorf("two-draw 95%% quantile %v outside (%v, %v)", q, one, 2*one)
	}
}

// TestGaussianRound: with Gaussian noise the intervals cover both draws
// (σ·√2): 95% ± 4σ of the binomial over 1,200 partitions. Intervals of
// one draw would cover about 84%, twice the width about 99.5%.
func TestGaussianRound(t *testing.T) {
	mem := memory.NewGoAllocator()
	rel := testRelease()
	rel.Noise, rel.Delta = noiseGaussian, 1e-6
	tp := newTestPool(t, 2, rel, testSegs(1200), func(o *InitOptions) { o.Budget.Delta = 1e-5 })
	contribs, meas := tp.contributeFleets(t, mem, 300, 1200, 60)
	res, err := tp.roundInMemory(t, contribs, [2]noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	exact := tp.cfg.plan.exactTotals(meas)
	na := len(tp.cfg.plan.aggs)
	lo := res.Record.Column(2).(*array.Float64)
	hi := res.Record.Column(3).(*array.Float64)
	in := 0
	for i := range tp.cfg.plan.rows {
		if v := float64(exact[i*na]); lo.Value(i) <= v && v <= hi.Value(i) {
			in++
		}
	}
	// The stated 95 % is a lower bound (halfWidth rounds the half-width up
	// and adds a unit for the integer noise), and over 30 runs the
	// coverage was 0.952–0.975, mean 0.962: the test fails on
	// under-coverage (against 0.95, 4 sd) and on intervals so wide that
	// they are no longer 95 % intervals (above 0.99, 5 sd above that mean).
	cov := float64(in) / 1200
	sd := math.Sqrt(0.95 * 0.05 / 1200)
	if cov < 0.95-4*sd || cov > 0.99 {
		t.Errorf("Gaussian count intervals cover %.3f, want at least %.3f and at most 0.99", cov, 0.95-4*sd)
	}
	if res.Report.Release.Noise != noiseGaussian || res.Report.Budget[0].DeltaSpent != 1e-6 {
		t.Errorf("report: %+v, budget %+v", res.Report.Release, res.Report.Budget)
	}
}
