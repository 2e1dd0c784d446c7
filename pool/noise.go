package pool

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v2/noise"
	"github.com/tarnkappe/tarnkappe/dp"
)

// noiseSource draws the integer noise an aggregator adds to one released
// quantity of its share. The library's secure noise is the only
// implementation outside tests; tests substitute a no-noise double to check
// the arithmetic exactly (as dpagg's tests do). Unexported: never
// selectable by users, the CLI or a configuration.
type noiseSource interface {
	draw(l0, lInf int64, eps, delta float64) (int64, error)
}

// libraryNoise is google/differential-privacy's secure (discretised) noise,
// drawn as the value 0 plus noise with the quantity's sensitivity.
type libraryNoise struct{ n noise.Noise }

func (l libraryNoise) draw(l0, lInf int64, eps, delta float64) (int64, error) {
	return l.n.AddNoiseInt64(0, l0, lInf, eps, delta)
}

func (p *plan) libraryNoise() noiseSource {
	if p.noiseGau {
		return libraryNoise{noise.Gaussian()}
	}
	return libraryNoise{noise.Laplace()}
}

// Intervals. The released value of a quantity is T + N₀ + N₁: both
// aggregators add independent noise with the full calibration, so that
// either alone makes the release ε-DP. The interval therefore covers the
// sum of two draws:
//
//   - Laplace of scale b: Z = N₀ + N₁ has P(|Z| > z) = e^(−z/b)·(1 + z/(2b));
//   - Gaussian of deviation σ: Z is Gaussian of deviation σ·√2.
//
// The library's integer noise is its discretised continuous noise rounded
// to an integer (scale (l1+g)/ε for a granularity g ≤ 2^−20·l1 at the ε a
// configuration allows): the half-widths below use b·(1+2^−20), and as the
// two roundings move the sum by at most one unit, P(|Z| ≤ ⌈z⌉+1) ≥
// P(|Z_continuous| ≤ z). The stated confidence is a lower bound on the
// coverage.

// halfWidth is the half-width, in units, of the two-draw interval of a
// quantity with sensitivity (l0, lInf) at (eps, delta) and level 1−alpha.
func (p *plan) halfWidth(l0, lInf int64, eps, delta, alpha float64) (float64, error) {
	if p.noiseGau {
		ci, err := noise.Gaussian().ComputeConfidenceIntervalFloat64(0, l0, float64(lInf), eps, delta, alpha)
		if err != nil {
			return 0, err
		}
		return math.Ceil(math.Sqrt2*ci.UpperBound) + 1, nil
	}
	b := float64(l0) * float64(lInf) / eps * (1 + 0x1p-20)
	return math.Ceil(b*twoLaplaceQuantile(alpha)) + 1, nil
}

// twoLaplaceQuantile is t with P(|Z| > t·b) = alpha for Z the sum of two
// independent Laplace draws of scale b: e^(−t)·(1 + t/2) = alpha.
func twoLaplaceQuantile(alpha float64) float64 {
	lo, hi := 0.0, 1.0
	for math.Exp(-hi)*(1+hi/2) > alpha {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if math.Exp(-mid)*(1+mid/2) > alpha {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// twoLaplaceCDF is P(Z ≤ z) for Z the sum of two independent Laplace draws
// of scale b (for the statistical tests and the report).
func twoLaplaceCDF(z, b float64) float64 {
	t := math.Abs(z) / b
	tail := math.Exp(-t) * (2 + t) / 4
	if z < 0 {
		return tail
	}
	return 1 - tail
}

// ciSteps is the resolution of the search for the narrowest split of α
// between a mean's numerator and denominator (as package dp searches).
const ciSteps = 100

// intervalPlan holds the half-widths of one released aggregate, in units:
// hw for count and sum; for a mean, per split of α, the numerator's (its
// own draw) and the denominator's (the count's draw).
type intervalPlan struct {
	hw           float64
	numHW, denHW []float64
}

func (p *plan) intervals() ([]intervalPlan, error) {
	out := make([]intervalPlan, len(p.aggs))
	ci := -1
	for j, a := range p.aggs {
		if a.kind == "count" {
			ci = j
		}
	}
	for j, a := range p.aggs {
		var err error
		switch a.kind {
		case "count", "sum":
			out[j].hw, err = p.halfWidth(a.l0, a.lInf, a.eps, a.delta, p.alpha)
		case "mean":
			c := p.aggs[ci]
			for i := 1; i < ciSteps; i++ {
				// The numerator's and the count's noise are independent, so
				// both intervals hold with probability (1−αn)(1−αd) = 1−α.
				an := float64(i) / ciSteps * p.alpha
				ad := (p.alpha - an) / (1 - an)
				n, err := p.halfWidth(a.l0, a.lInf, a.eps, a.delta, an)
				if err != nil {
					return nil, err
				}
				d, err := p.halfWidth(c.l0, c.lInf, c.eps, c.delta, ad)
				if err != nil {
					return nil, err
				}
				out[j].numHW = append(out[j].numHW, n)
				out[j].denHW = append(out[j].denHW, d)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("aggregate %s: %w", a.name, err)
		}
	}
	return out, nil
}

// meanInterval is the narrowest interval over the α splits for a mean of
// numerator t (units of q, normalised to mid) over count c, clamped to the
// declared bounds, each split's interval built as package dp builds its
// means' (dp.MeanInterval).
func meanInterval(t, c float64, q, mid, lower, upper float64, ip *intervalPlan) (float64, float64) {
	bestLo, bestHi, best := lower, upper, math.Inf(1)
	for i := range ip.numHW {
		ml, mu := dp.MeanInterval((t-ip.numHW[i])*q, (t+ip.numHW[i])*q, c-ip.denHW[i], c+ip.denHW[i], mid, lower, upper)
		if mu-ml < best {
			best, bestLo, bestHi = mu-ml, ml, mu
		}
	}
	return bestLo, bestHi
}

func clamp(x, lo, hi float64) float64 { return math.Min(math.Max(x, lo), hi) }
