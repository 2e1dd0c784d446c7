package dp

import (
	"context"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/differential-privacy/go/v2/noise"
)

// offsetNoise is a deterministic recording double: integers get +intOff,
// floats +floatOff, so a released value shows which noisy value it was
// computed from. Intervals are the real library's. Test-only.
type offsetNoise struct {
	intOff   int64
	floatOff float64
	real     noise.Noise
	mu       sync.Mutex
	calls    []noiseCall
}

func (o *offsetNoise) String() string { return "offsetNoise" }
func (o *offsetNoise) AddNoiseInt64(x, l0, li int64, e, d float64) (int64, error) {
	o.mu.Lock()
	o.calls = append(o.calls, noiseCall{float64(x), l0, float64(li), e, d})
	o.mu.Unlock()
	return x + o.intOff, nil
}
func (o *offsetNoise) AddNoiseFloat64(x float64, l0 int64, li, e, d float64) (float64, error) {
	o.mu.Lock()
	o.calls = append(o.calls, noiseCall{x, l0, li, e, d})
	o.mu.Unlock()
	return x + o.floatOff, nil
}
func (o *offsetNoise) Threshold(l0 int64, li, e, nd, td float64) (float64, error) {
	return o.real.Threshold(l0, li, e, nd, td)
}
func (o *offsetNoise) ComputeConfidenceIntervalInt64(x, l0, li int64, e, d, a float64) (noise.ConfidenceInterval, error) {
	return o.real.ComputeConfidenceIntervalInt64(x, l0, li, e, d, a)
}
func (o *offsetNoise) ComputeConfidenceIntervalFloat64(x float64, l0 int64, li, e, d, a float64) (noise.ConfidenceInterval, error) {
	return o.real.ComputeConfidenceIntervalFloat64(x, l0, li, e, d, a)
}

// TestMeanDividesByReleasedCount: with a Count in the release whose share
// is at least what a mean's (variance's) own count would get, the mean is
// noisy-normalised-sum / released count + midpoint where the count is
// exactly the released count column, and the variance uses the same count;
// the mean draws one value (its sum, at its whole share, sensitivity
// (hi-mid)·L∞), the variance two (halves of its share). An aggregate whose
// own count would get more than the Count's share, and every mean and
// variance without a Count, draw their own count (the library's estimators:
// halves, thirds). The accountant and the result state the declared shares.
func TestMeanDividesByReleasedCount(t *testing.T) {
	const lo, hi, l0, linf, mid = 0.0, 100.0, 2, 3, 50.0
	rows := []row{
		{"v1", "a", 10}, {"v1", "a", 20}, {"v2", "a", 30}, {"v3", "a", 90},
		{"v1", "b", 60}, {"v2", "b", 70}, {"v2", "b", 75},
	}
	// Mean ε 0.4, variance ε 0.2 throughout.
	for _, tc := range []struct {
		name      string
		countEps  float64 // 0: no Count
		divided   []string
		intEps    []float64 // ε of the integer (count) draws per partition
		sumEps    []float64 // ε of the normalised-sum draws per partition
		squareEps []float64 // ε of the sum-of-squares draws per partition
	}{
		{"count shared by both", 0.3, []string{"mean_temp", "variance_temp"}, []float64{0.3}, []float64{0.1, 0.4}, []float64{0.1}},
		{"count shared by variance only", 0.1, []string{"variance_temp"}, []float64{0.1, 0.2}, []float64{0.1, 0.2}, []float64{0.1}},
		{"no count", 0, nil, []float64{0.2 / 3, 0.2}, []float64{0.2 / 3, 0.2}, []float64{0.2 - 0.2/3 - 0.2/3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			opts := baseOpts()
			opts.MaxPartitions, opts.MaxPerPartition = l0, linf
			opts.Aggregates = []Aggregate{
				{Kind: Mean, Column: "temp", Lower: lo, Upper: hi, Epsilon: 0.4},
				{Kind: Variance, Column: "temp", Lower: lo, Upper: hi, Epsilon: 0.2},
			}
			if tc.countEps > 0 {
				opts.Aggregates = append(opts.Aggregates, Aggregate{Kind: Count, Epsilon: tc.countEps})
			}
			pl, _ := NewPartitionList("seg")
			pl.Add("a")
			pl.Add("b")
			opts.Public = pl
			p := partialOf(t, mem, opts, rows, 3)
			on := &offsetNoise{intOff: 5, floatOff: 17.5, real: noise.Laplace()}
			acct, _ := NewAccountant(1, 0)
			res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem, noise: on})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			if want := 0.6 + tc.countEps; !near(res.Spent.EpsilonSpent, want, 1e-12) || !near(acct.Spent().EpsilonSpent, want, 1e-12) {
				t.Errorf("spent %+v, accountant %+v, want ε %v", res.Spent, acct.Spent(), want)
			}
			if !slices.Equal(res.DividedByCount, tc.divided) || (res.Denominator == "count") != (len(tc.divided) > 0) {
				t.Errorf("Denominator %q DividedByCount %q, want count %q", res.Denominator, res.DividedByCount, tc.divided)
			}
			// Noise draws: ε per kind of draw, two partitions each.
			var ints, sums, squares []float64
			for _, c := range on.calls {
				switch {
				case c.l0 == l0 && c.lInf == linf:
					ints = append(ints, c.eps)
				case c.l0 == l0 && c.lInf == (hi-mid)*linf:
					sums = append(sums, c.eps)
				case c.l0 == l0 && c.lInf == (hi-mid)*(hi-mid)*linf:
					squares = append(squares, c.eps)
				default:
					t.Errorf("unexpected noise call %+v", c)
				}
			}
			for _, k := range []struct {
				what      string
				got, want []float64
			}{{"count", ints, tc.intEps}, {"sum", sums, tc.sumEps}, {"sum of squares", squares, tc.squareEps}} {
				want := append(slices.Clone(k.want), k.want...)
				sort.Float64s(want)
				sort.Float64s(k.got)
				if len(k.got) != len(want) {
					t.Errorf("%s draws at ε %v, want %v", k.what, k.got, want)
					continue
				}
				for i := range want {
					if !near(k.got[i], want[i], 1e-12) {
						t.Errorf("%s draws at ε %v, want %v", k.what, k.got, want)
						break
					}
				}
			}
			means := col(t, res.Record, "mean_temp").(*array.Float64)
			vars := col(t, res.Record, "variance_temp").(*array.Float64)
			for i, vals := range [][]float64{{10, 20, 30, 90}, {60, 70, 75}} {
				var s, s2 float64
				for _, v := range vals {
					s += v - mid
					s2 += (v - mid) * (v - mid)
				}
				// Every denominator is a noisy count (+5 in this double);
				// a shared one is the count column itself.
				cnt := int64(len(vals)) + 5
				if tc.countEps > 0 {
					if c := col(t, res.Record, "count").(*array.Int64).Value(i); c != cnt {
						t.Fatalf("count column %d, want %d", c, cnt)
					}
				}
				want := clamp((s+17.5)/float64(cnt)+mid, lo, hi)
				if !near(means.Value(i), want, 1e-12) {
					t.Errorf("partition %d mean %v, want %v", i, means.Value(i), want)
				}
				m := (s + 17.5) / float64(cnt)
				if wv := clamp((s2+17.5)/float64(cnt)-m*m, 0, 2500); !near(vars.Value(i), wv, 1e-12) {
					t.Errorf("partition %d variance %v, want %v", i, vars.Value(i), wv)
				}
			}
		})
	}
}

// TestMeanOverCountNoiseAndCoverage releases one fixed partial 4,000 times
// (Count ε 0.3, Mean ε 0.5, Laplace, public partition) with the library's
// noise and checks:
//   - the mean's sum noise, recovered as (mean-mid)·count - true normalised
//     sum, is Laplace with scale L0·(hi-mid)·L∞/ε_mean (the whole share;
//     the library's own BoundedMean would use ε_mean/2): Kolmogorov–Smirnov
//     with the DKW critical value at α = 1e-3, and the statistic against a
//     50 % larger scale must reject (the test has power);
//   - the count column's noise is independent of it and the mean uses that
//     very count (implied by the exact recovery: mean is never clamped here);
//   - the interval [mean_ci_low, mean_ci_high] at 90 % covers the true mean
//     in at least 90 % - 4σ of the releases, and is not the trivial [lo, hi].
func TestMeanOverCountNoiseAndCoverage(t *testing.T) {
	const lo, hi, l0, linf, epsC, epsM, n = 0.0, 100.0, 2, 3, 0.3, 0.5, 4000
	const mid = (lo + hi) / 2
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var rows []row
	var normSum, trueSum float64
	for s := range 100 {
		for r := range 3 {
			v := 30 + float64((s*7+r*13)%40)
			rows = append(rows, row{subj: "v" + strconv.Itoa(s), key: "a", v: v})
			normSum += v - mid
			trueSum += v
		}
	}
	trueMean := trueSum / float64(len(rows))
	opts := baseOpts()
	opts.MaxPartitions, opts.MaxPerPartition = l0, linf
	opts.Confidence = 0.9
	opts.Aggregates = []Aggregate{
		{Kind: Count, Epsilon: epsC},
		{Kind: Mean, Column: "temp", Lower: lo, Upper: hi, Epsilon: epsM},
	}
	pl, _ := NewPartitionList("seg")
	pl.Add("a")
	opts.Public = pl
	p := partialOf(t, mem, opts, rows, 64)
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	draws := make([]float64, n)
	covered := 0
	var width float64
	for i := range n {
		var q Partial
		if err := q.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		acct, _ := NewAccountant(epsC+epsM, 0)
		res, err := q.Release(context.Background(), acct, ReleaseOptions{Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		cnt := col(t, res.Record, "count").(*array.Int64).Value(0)
		mean := col(t, res.Record, "mean_temp").(*array.Float64).Value(0)
		ciLo := col(t, res.Record, "mean_temp_ci_low").(*array.Float64).Value(0)
		ciHi := col(t, res.Record, "mean_temp_ci_high").(*array.Float64).Value(0)
		res.Release()
		if mean <= lo || mean >= hi || cnt < 1 {
			t.Fatalf("release %d: mean %v count %d: clamped, noise cannot be recovered", i, mean, cnt)
		}
		draws[i] = (mean-mid)*float64(cnt) - normSum
		if ciLo <= trueMean && trueMean <= ciHi {
			covered++
		}
		width += ciHi - ciLo
	}
	sort.Float64s(draws)
	scale := float64(l0) * (hi - mid) * linf / epsM
	crit := math.Sqrt(math.Log(2/1e-3)/2) / math.Sqrt(n)
	ks := func(b float64) float64 {
		var d float64
		for i, x := range draws {
			f := laplaceCDF(x, b)
			d = math.Max(d, math.Max(float64(i+1)/n-f, f-float64(i)/n))
		}
		return d
	}
	if d := ks(scale); d > crit {
		t.Errorf("KS %.4f > %.4f: the mean's sum noise is not Laplace(%v)", d, crit, scale)
	}
	if d := ks(1.5 * scale); d <= crit {
		t.Errorf("KS against 1.5× the scale %.4f <= %.4f: test has no power", d, crit)
	}
	cov := float64(covered) / n
	if min := 0.9 - 4*math.Sqrt(0.9*0.1/n); cov < min {
		t.Errorf("mean interval covers the true mean in %.3f of releases, want >= %.3f", cov, min)
	}
	if w := width / n; w >= (hi-lo)/2 {
		t.Errorf("mean interval width %.1f: trivial", w)
	}
	t.Logf("coverage %.3f at 90 %%, mean width %.2f, KS %.4f (crit %.4f)", cov, width/n, ks(scale), crit)
}
