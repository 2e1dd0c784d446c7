package dp

import (
	"context"
	"math"
	"sort"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/google/differential-privacy/go/v2/dpagg"
	"github.com/google/differential-privacy/go/v2/noise"
)

// laplaceCDF is the CDF of a centred Laplace distribution with scale b.
func laplaceCDF(x, b float64) float64 {
	if x < 0 {
		return 0.5 * math.Exp(x/b)
	}
	return 1 - 0.5*math.Exp(-x/b)
}

// TestCountNoiseLaplaceScale: the noise of a released count follows Laplace
// with scale L0·L∞/ε. The library's integer Laplace noise is a continuous
// Laplace rounded to integers, so we compare the empirical CDF at the
// half-integers with the Laplace CDF there: that statistic is at most the
// continuous Kolmogorov–Smirnov statistic, so the critical value from the
// Dvoretzky–Kiefer–Wolfowitz inequality (Massart), P(D > c) ≤ 2·exp(-2nc²),
// c = sqrt(ln(2/α)/(2n)), keeps the false-rejection probability ≤ α = 1e-3.
// The same statistic against a 30 % larger scale must reject (the test can fail).
func TestCountNoiseLaplaceScale(t *testing.T) {
	const n, eps, l0, linf, rows = 10000, 0.5, 2, 3, 1000
	b := float64(l0*linf) / eps
	draws := make([]float64, n)
	for i := range draws {
		m := &countMechanism{mechParams: mechParams{noise: noise.Laplace(), l0: l0, linf: linf}, budget: Budget{Epsilon: eps}}
		v, _, err := m.result(rows)
		if err != nil {
			t.Fatal(err)
		}
		draws[i] = float64(v - rows)
	}
	sort.Float64s(draws)
	crit := math.Sqrt(math.Log(2/1e-3)/2) / math.Sqrt(n)
	stat := func(scale float64) float64 {
		var d float64
		j := 0
		for x := -20*b - 0.5; x <= 20*b; x++ {
			for j < n && draws[j] <= x {
				j++
			}
			d = math.Max(d, math.Abs(float64(j)/n-laplaceCDF(x, scale)))
		}
		return d
	}
	if d := stat(b); d > crit {
		t.Errorf("KS statistic %.4f > %.4f: count noise is not Laplace(%v)", d, crit, b)
	}
	if d := stat(1.3 * b); d <= crit {
		t.Errorf("KS statistic against the wrong scale %.4f <= %.4f: test has no power", d, crit)
	}
}

// shiftNoise is a deterministic double: it adds a fixed offset and computes
// intervals with the real library noise, so the library's BoundedMean and our
// release can be compared on identical noisy values.
type shiftNoise struct {
	off  float64
	real noise.Noise
}

func (s shiftNoise) AddNoiseInt64(x, _, _ int64, _, _ float64) (int64, error) {
	return x + int64(s.off), nil
}
func (s shiftNoise) AddNoiseFloat64(x float64, _ int64, _, _, _ float64) (float64, error) {
	return x + s.off, nil
}
func (s shiftNoise) Threshold(l0 int64, li, e, nd, td float64) (float64, error) {
	return s.real.Threshold(l0, li, e, nd, td)
}
func (s shiftNoise) ComputeConfidenceIntervalInt64(x, l0, li int64, e, d, a float64) (noise.ConfidenceInterval, error) {
	return s.real.ComputeConfidenceIntervalInt64(x, l0, li, e, d, a)
}
func (s shiftNoise) ComputeConfidenceIntervalFloat64(x float64, l0 int64, li, e, d, a float64) (noise.ConfidenceInterval, error) {
	return s.real.ComputeConfidenceIntervalFloat64(x, l0, li, e, d, a)
}

// TestIntervalsMatchLibrary: intervals computed once around zero and shifted
// equal the library's per-value intervals (count, sum), and the mean's
// interval matches the library's BoundedMean.ComputeConfidenceInterval on the
// same noisy values (ours searches 100 α splits, the library 1000: widths
// agree within 3 %).
func TestIntervalsMatchLibrary(t *testing.T) {
	const l0, linf, lo, hi, alpha = 3, 2, -10.0, 150.0, 0.05
	for _, nk := range []NoiseKind{Laplace, Gaussian} {
		b := Budget{Epsilon: 0.7}
		if nk == Gaussian {
			b.Delta = 1e-6
		}
		n := nk.library()
		cm, err := newCountMechanism(mechParams{shiftNoise{0, n}, l0, linf, alpha}, b)
		if err != nil {
			t.Fatal(err)
		}
		sm, err := newSumMechanism(mechParams{shiftNoise{0, n}, l0, linf, alpha}, 0, &AggregateSpec{Kind: Sum, Lower: lo, Upper: hi}, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []int64{0, 7, 1234, 987654321} {
			want, _ := n.ComputeConfidenceIntervalInt64(x, l0, linf, b.Epsilon, b.Delta, alpha)
			_, got, _ := cm.result(x)
			if got.LowerBound != math.Max(0, want.LowerBound) || got.UpperBound != math.Max(0, want.UpperBound) {
				t.Errorf("%v count %d: interval %+v, library %+v", nk, x, got, want)
			}
			fx := float64(x) * 1.37
			wantF, _ := n.ComputeConfidenceIntervalFloat64(fx, l0, sumLInf(lo, hi, linf), b.Epsilon, b.Delta, alpha)
			_, gotF, _ := sm.result(fx)
			if !near(gotF.LowerBound, wantF.LowerBound, 1e-12) || !near(gotF.UpperBound, wantF.UpperBound, 1e-12) {
				t.Errorf("%v sum %v: interval %+v, library %+v", nk, fx, gotF, wantF)
			}
		}
		for _, off := range []float64{-40, 0, 25} {
			vals := []float64{20, 30, 35, 80, 120, 140, -5}
			bm, err := dpagg.NewBoundedMean(&dpagg.BoundedMeanOptions{Epsilon: b.Epsilon, Delta: b.Delta, MaxPartitionsContributed: l0, MaxContributionsPerPartition: linf, Lower: lo, Upper: hi, Noise: shiftNoise{off, n}})
			if err != nil {
				t.Fatal(err)
			}
			var norm float64
			for _, v := range vals {
				bm.Add(v)
				norm += v - (lo + (hi-lo)/2)
			}
			wantMean, _ := bm.Result()
			want, err := bm.ComputeConfidenceInterval(alpha)
			if err != nil {
				t.Fatal(err)
			}
			mm, err := newMeanMechanism(mechParams{shiftNoise{off, n}, l0, linf, alpha}, 0, &AggregateSpec{Kind: Mean, Lower: lo, Upper: hi}, b, nil)
			if err != nil {
				t.Fatal(err)
			}
			gotMean, got, err := mm.result(int64(len(vals)), norm, nil)
			if err != nil {
				t.Fatal(err)
			}
			wg, ww := got.UpperBound-got.LowerBound, want.UpperBound-want.LowerBound
			if !near(gotMean, wantMean, 1e-9) || wg < ww-1e-9 || wg > ww*1.03+1e-9 {
				t.Errorf("%v mean offset %v: %v %+v (width %v), library %v %+v (width %v)", nk, off, gotMean, got, wg, wantMean, want, ww)
			}
		}
	}
}

// TestQuantilesMatchLibrary: quantiles released from leaf counts equal the
// library's BoundedQuantiles fed the same values row by row (no-noise double).
func TestQuantilesMatchLibrary(t *testing.T) {
	const lo, hi, l0, linf = -5.0, 120.0, 2, 50
	vals := []float64{-7, 0, 1.5, 3, 3, 17.25, 40, 41, 42, 99.9, 119.99, 120, 300}
	leaves := map[int]int64{}
	lib, err := dpagg.NewBoundedQuantiles(&dpagg.BoundedQuantilesOptions{Epsilon: 1, MaxPartitionsContributed: l0, MaxContributionsPerPartition: linf, Lower: lo, Upper: hi, Noise: &noNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		leaves[leafIndex(clamp(v, lo, hi), lo, hi)]++
		lib.Add(v)
	}
	ranks := []float64{0, 0.1, 0.5, 0.9, 0.99, 1}
	m := &quantilesMechanism{mechParams: mechParams{noise: &noNoise{}, l0: l0, linf: linf}, lower: lo, upper: hi, ranks: ranks, budget: Budget{Epsilon: 1}}
	got, err := m.result(leaves)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range ranks {
		want, _ := lib.Result(r)
		if got[i] != want {
			t.Errorf("rank %v: %v, library %v", r, got[i], want)
		}
	}
}

// TestPostProcessing: what users expect of published values holds for
// every partition — counts are never negative, sums take the sign their
// bounds allow, means stay within their bounds, variances within [0,
// (hi-lo)²/4], and every value lies inside its own interval — on
// partitions of one subject at a small ε, where about half of the raw
// noisy counts are negative (the test checks that clamping happened).
func TestPostProcessing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const parts = 400
	var keys []string
	var rows []row
	for k := range parts {
		key := "p" + strconv.Itoa(k)
		keys = append(keys, key)
		rows = append(rows, row{subj: "v" + strconv.Itoa(k), key: key, v: float64(k % 100)})
	}
	opts := predictOpts(Laplace, []Aggregate{
		{Kind: Count},
		{Kind: Sum, Column: "temp", Lower: 0, Upper: 100},
		{Kind: Sum, Column: "temp", Lower: -100, Upper: -1, Name: "neg"},
		{Kind: Mean, Column: "temp", Lower: 0, Upper: 100, Name: "shared"},
		{Kind: Mean, Column: "temp", Lower: 0, Upper: 100, Name: "own", Epsilon: 0.2},
		{Kind: Variance, Column: "temp", Lower: 0, Upper: 100},
	}, keys...)
	p := partialOf(t, mem, opts, rows, 128)
	acct, _ := NewAccountant(0.6, 0)
	res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	f := func(name string) *array.Float64 { return col(t, res.Record, name).(*array.Float64) }
	count := col(t, res.Record, "count").(*array.Int64)
	zeros, sumZeros := 0, 0
	for r := range parts {
		c := float64(count.Value(r))
		if c < 0 || c < f("count_ci_low").Value(r) || c > f("count_ci_high").Value(r) {
			t.Errorf("partition %d: count %v outside [%v, %v] or negative", r, c, f("count_ci_low").Value(r), f("count_ci_high").Value(r))
		}
		if c == 0 {
			zeros++
		}
		for _, s := range []struct {
			name string
			sign float64
		}{{"sum_temp", 1}, {"neg", -1}, {"shared", 1}, {"own", 1}} {
			v, lo, hi := f(s.name).Value(r), f(s.name+"_ci_low").Value(r), f(s.name+"_ci_high").Value(r)
			if v*s.sign < 0 || v < lo || v > hi {
				t.Errorf("partition %d: %s %v outside [%v, %v] or of the wrong sign", r, s.name, v, lo, hi)
			}
			if (s.name == "shared" || s.name == "own") && (lo < 0 || hi > 100) {
				t.Errorf("partition %d: %s interval [%v, %v] outside the bounds", r, s.name, lo, hi)
			}
			if s.name == "sum_temp" && v == 0 {
				sumZeros++
			}
		}
		if v := f("variance_temp").Value(r); v < 0 || v > 2500 {
			t.Errorf("partition %d: variance %v outside [0, 2500]", r, v)
		}
	}
	// Each partition has 1 row; its count's noise (Laplace, scale
	// L0·L∞/ε = 6/0.08 = 75: the declared 0.2 and five even shares of the
	// remaining 0.4) is below -1 with probability ≈ 0.49, so fewer
	// than 100 zeros of 400 has probability far below 1e-20.
	if zeros < 100 || sumZeros < 100 {
		t.Errorf("%d counts and %d sums published as 0: negative draws are not being clamped (or the test lost its power)", zeros, sumZeros)
	}
}

// TestMeanInterval: each end of the mean takes the count's end that makes
// it widest, counts below 1 count as 1, and the ends are clamped to the
// bounds after mid is added back.
func TestMeanInterval(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		numLow, numHigh, cLow, cHigh float64
		mid, lower, upper            float64
		lo, hi                       float64
	}{
		{"positive numerator", 2, 6, 1.5, 4, 0, -10, 10, 0.5, 4},
		{"negative numerator", -6, -2, 2, 4, 0, -10, 10, -3, -0.5},
		{"numerator across 0", -4, 8, 2, 4, 0, -10, 10, -2, 4},
		{"count below 1", -2, 6, -3, 0.5, 0, -10, 10, -2, 6},
		{"clamped to bounds", -2, 6, -3, 0.5, 1, 0, 5, 0, 5},
		{"mid added back", 1, 2, 10, 10, 3, 0, 10, 3.1, 3.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := MeanInterval(tc.numLow, tc.numHigh, tc.cLow, tc.cHigh, tc.mid, tc.lower, tc.upper)
			if math.Abs(lo-tc.lo) > 1e-12 || math.Abs(hi-tc.hi) > 1e-12 {
				t.Fatalf("got [%v, %v], want [%v, %v]", lo, hi, tc.lo, tc.hi)
			}
		})
	}
}
