package dp

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// predictOpts is a release over public partitions with every aggregate
// that has an interval, plus a variance (which has none).
func predictOpts(nk NoiseKind, aggs []Aggregate, keys ...string) Options {
	pl, _ := NewPartitionList("seg")
	for _, k := range keys {
		pl.Add(k)
	}
	return Options{Subject: "vin", GroupBy: []string{"seg"}, Aggregates: aggs, MaxPartitions: 2, MaxPerPartition: 3, Noise: nk, Public: pl}
}

// TestPredictMatchesRelease: the interval Predict gives for an assumed
// partition is the interval Release publishes for a partition with exactly
// those subjects and rows when the noise is zero (the double adds nothing
// and computes intervals with the real library), for count, sum, mean on
// its own and over the shared count, with Laplace and Gaussian noise, for
// several subject counts — equal to the last bit, since both come from the
// same mechanisms.
func TestPredictMatchesRelease(t *testing.T) {
	const lo, hi = 10.0, 140.0 // midpoint 75: sums of it are exact in float64
	const mid = lo + (hi-lo)/2
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sizes := []int64{1, 4, 30, 500}
	for _, c := range []struct {
		name string
		aggs []Aggregate
	}{
		{"count, sum, mean over the count", []Aggregate{{Kind: Count}, {Kind: Sum, Column: "temp", Lower: lo, Upper: hi}, {Kind: Mean, Column: "temp", Lower: lo, Upper: hi}}},
		{"mean with its own count, variance", []Aggregate{{Kind: Mean, Column: "temp", Lower: lo, Upper: hi}, {Kind: Variance, Column: "temp", Lower: lo, Upper: hi}}},
		{"sum with negative bounds", []Aggregate{{Kind: Sum, Column: "temp", Lower: -hi, Upper: -lo, Name: "neg"}, {Kind: Count, Epsilon: 0.1}}},
	} {
		for _, nk := range []NoiseKind{Laplace, Gaussian} {
			t.Run(fmt.Sprintf("%s/%v", c.name, nk), func(t *testing.T) {
				eps, del := 0.8, 0.0
				if nk == Gaussian {
					del = 1e-5
				}
				var keys []string
				var rows []row
				for _, n := range sizes {
					k := "p" + strconv.FormatInt(n, 10)
					keys = append(keys, k)
					for s := range n {
						for range 2 { // 2 rows per subject (L∞ is 3)
							v := mid
							if strings.HasPrefix(c.name, "sum with negative") {
								v = -mid
							}
							rows = append(rows, row{subj: k + "-" + strconv.FormatInt(s, 10), key: k, v: v})
						}
					}
				}
				opts := predictOpts(nk, c.aggs, keys...)
				p := partialOf(t, mem, opts, rows, 256)
				acct, _ := NewAccountant(eps, del)
				res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem, noise: shiftNoise{0, nk.library()}})
				if err != nil {
					t.Fatal(err)
				}
				defer res.Release()
				seg := col(t, res.Record, "seg").(*array.String)
				for r := 0; r < int(res.Record.NumRows()); r++ {
					n, _ := strconv.ParseInt(strings.TrimPrefix(seg.Value(r), "p"), 10, 64)
					pr, err := Predict(opts, eps, del, Assumption{Subjects: n, RowsPerSubject: 2})
					if err != nil {
						t.Fatal(err)
					}
					if pr.Rows != 2*n || pr.Selection != nil {
						t.Errorf("prediction rows %d, selection %v", pr.Rows, pr.Selection)
					}
					for _, ap := range pr.Aggregates {
						if !ap.HasInterval {
							if ap.Kind != "variance" {
								t.Errorf("%s has no interval", ap.Name)
							}
							continue
						}
						low := col(t, res.Record, ap.Name+"_ci_low").(*array.Float64).Value(r)
						high := col(t, res.Record, ap.Name+"_ci_high").(*array.Float64).Value(r)
						if low != ap.Low || high != ap.High || ap.HalfWidth != (high-low)/2 {
							t.Errorf("%d subjects, %s: released [%v, %v], predicted [%v, %v] ±%v", n, ap.Name, low, high, ap.Low, ap.High, ap.HalfWidth)
						}
					}
				}
			})
		}
	}
}

// TestPredictErrors: Predict validates as NewAggregator does and names
// itself and the field.
func TestPredictErrors(t *testing.T) {
	aggs := []Aggregate{{Kind: Count}, {Kind: Mean, Column: "temp", Lower: 0, Upper: 100}}
	for _, c := range []struct {
		name       string
		opts       func(*Options)
		eps, delta float64
		assume     Assumption
		want       string
	}{
		{"no subjects", nil, 1, 0, Assumption{}, "dp.Predict: Assumption.Subjects must be in [1,"},
		{"too many rows", nil, 1, 0, Assumption{Subjects: 5, RowsPerSubject: 4}, "RowsPerSubject must be in [1, MaxPerPartition = 3]"},
		{"bad epsilon", nil, math.NaN(), 0, Assumption{Subjects: 5}, "dp.Predict: epsilon"},
		{"bad options", func(o *Options) { o.Subject = "" }, 1, 0, Assumption{Subjects: 5}, "dp.Predict: Subject must be set"},
		{"declared shares exceed", func(o *Options) { o.Aggregates[0].Epsilon = 2 }, 1, 0, Assumption{Subjects: 5}, "budget exceeded"},
		{"selection without delta", func(o *Options) { o.Public = nil }, 1, 0, Assumption{Subjects: 5}, "needs δ > 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := predictOpts(Laplace, append([]Aggregate(nil), aggs...), "a")
			if c.opts != nil {
				c.opts(&o)
			}
			_, err := Predict(o, c.eps, c.delta, c.assume)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
			if err != nil && strings.Count(err.Error(), "dp.") != 1 {
				t.Errorf("error %q names package dp more than once", err)
			}
		})
	}
}

// TestPredictSelection: with private selection the prediction estimates
// the chance a partition is kept, by the release's own selection — near 0
// for one subject, 1 well above the threshold — for the Gaussian threshold
// (L0 > 3) and the library's other algorithm (L0 <= 3). A partition of one
// subject is kept with probability at most δ-ish; 1,000 trials keep it at
// most 10 times unless the selection is broken (binomial tail at p = 0.001:
// P(X > 10) < 1e-7).
func TestPredictSelection(t *testing.T) {
	for _, l0 := range []int64{2, 5} {
		o := predictOpts(Laplace, []Aggregate{{Kind: Count}}, "a")
		o.Public, o.MaxPartitions = nil, l0
		for _, c := range []struct {
			subjects int64
			low, hi  float64
		}{{1, 0, 0.01}, {3000, 1, 1}} {
			pr, err := Predict(o, 1, 1e-6, Assumption{Subjects: c.subjects})
			if err != nil {
				t.Fatal(err)
			}
			if pr.Selection == nil || pr.Selection.KeepProbability < c.low || pr.Selection.KeepProbability > c.hi {
				t.Errorf("L0 %d, %d subjects: selection %+v, want keep probability in [%v, %v]", l0, c.subjects, pr.Selection, c.low, c.hi)
			}
			if pr.Selection != nil && pr.Selection.Budget.Delta != 1e-6 {
				t.Errorf("selection budget %+v, want all of δ", pr.Selection.Budget)
			}
		}
	}
}

// TestIntervalCoverage: the published intervals (after post-processing)
// cover the true value at about their confidence level, with real noise.
// 4,000 partitions of 40 subjects (3 rows each, values spread over the
// bounds) are released at once; each partition's noise is independent, so
// coverage is a binomial proportion. Counts and sums use the library's
// interval of their noise (exact up to rounding to integers for counts):
// coverage must lie within ±4.4 standard errors of 0.95 (two-sided, false
// rejection 1e-5 per check) plus 0.01 for integer rounding. A mean's
// interval combines two intervals and is conservative by construction, so
// only the lower side is tested (one-sided, z = 4.3, false rejection 1e-5),
// with an upper limit that still fails for a trivial interval: a mean
// interval must be narrower than the clamp range on average.
func TestIntervalCoverage(t *testing.T) {
	const parts, subjects, perSubject, lo, hi = 4000, 40, 3, 0.0, 100.0
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	keys := make([]string, parts)
	var rows []row
	for k := range keys {
		keys[k] = "k" + strconv.Itoa(k)
		for s := range subjects {
			for r := range perSubject {
				rows = append(rows, row{subj: keys[k] + "-" + strconv.Itoa(s), key: keys[k], v: float64((k*31 + s*17 + r*7) % 101)})
			}
		}
	}
	truth := map[string][1]float64{} // sum per key
	for _, r := range rows {
		tr := truth[r.key]
		tr[0] += r.v
		truth[r.key] = tr
	}
	for _, nk := range []NoiseKind{Laplace, Gaussian} {
		t.Run(nk.String(), func(t *testing.T) {
			del := 0.0
			if nk == Gaussian {
				del = 1e-5
			}
			opts := predictOpts(nk, []Aggregate{
				{Kind: Count, Epsilon: 0.5},
				{Kind: Sum, Column: "temp", Lower: lo, Upper: hi, Epsilon: 0.5},
				{Kind: Mean, Column: "temp", Lower: lo, Upper: hi, Epsilon: 0.5, Name: "shared"},
				{Kind: Mean, Column: "temp", Lower: lo, Upper: hi, Epsilon: 1.5, Name: "own"},
			}, keys...)
			p := partialOf(t, mem, opts, rows, 4096)
			acct, _ := NewAccountant(3, del)
			res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			if len(res.DividedByCount) != 1 || res.DividedByCount[0] != "shared" {
				t.Fatalf("divided by count: %v, want [shared]", res.DividedByCount)
			}
			seg := col(t, res.Record, "seg").(*array.String)
			n := float64(res.Record.NumRows())
			for _, name := range []string{"count", "sum_temp", "shared", "own"} {
				lows := col(t, res.Record, name+"_ci_low").(*array.Float64)
				highs := col(t, res.Record, name+"_ci_high").(*array.Float64)
				covered, width := 0, 0.0
				for r := 0; r < int(n); r++ {
					want := float64(subjects * perSubject)
					switch name {
					case "sum_temp":
						want = truth[seg.Value(r)][0]
					case "shared", "own":
						want = truth[seg.Value(r)][0] / (subjects * perSubject)
					}
					if lows.Value(r) <= want && want <= highs.Value(r) {
						covered++
					}
					width += highs.Value(r) - lows.Value(r)
				}
				cov := float64(covered) / n
				se := math.Sqrt(0.95 * 0.05 / n)
				t.Logf("%s: coverage %.4f, mean width %.2f", name, cov, width/n)
				switch name {
				case "count", "sum_temp":
					if math.Abs(cov-0.95) > 4.4*se+0.01 {
						t.Errorf("%s: coverage %.4f, want 0.95 ± %.4f", name, cov, 4.4*se+0.01)
					}
				default:
					if cov < 0.95-4.3*se {
						t.Errorf("%s: coverage %.4f below 0.95 - %.4f", name, cov, 4.3*se)
					}
					if width/n >= hi-lo {
						t.Errorf("%s: mean width %.1f is the clamp range: coverage proves nothing", name, width/n)
					}
				}
			}
		})
	}
}
