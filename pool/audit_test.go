package pool

import (
	"fmt"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"
	"gonum.org/v1/gonum/stat/distuv"
)

// clopperPearson returns the exact one-sided Clopper–Pearson bounds at
// confidence 1−a each: the lower and the upper bound of p for k successes
// in n trials.
func clopperPearson(k, n int, a float64) (lo, hi float64) {
	if k > 0 {
		lo = distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(a)
	}
	hi = 1
	if k < n {
		hi = distuv.Beta{Alpha: float64(k + 1), Beta: float64(n - k)}.Quantile(1 - a)
	}
	return lo, hi
}

// auditPool is a pool whose release is one count (ε = 1, L0 = L∞ = 1,
// sensitivity 1) over one partition, with three members.
func auditPool(t *testing.T) *testPool {
	rel := ReleaseSpec{Subject: "vin", By: []string{"seg"}, MaxPartitions: 1, MaxPerPartition: 1, MaxRows: 1 << 10,
		Aggregates: []AggregateSpec{{Kind: "count"}}, Epsilon: 1}
	return newTestPool(t, 3, rel, [][]string{{"s00"}}, nil)
}

// preparedShares runs a round as far as the aggregators' noise-free shares:
// contributions, both prep steps and both combine steps (the valid reports'
// output shares summed and projected). extra vehicles join member b.
func preparedShares(t *testing.T, tp *testPool, extra int) [2]fp128.Vec {
	t.Helper()
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: arrow.BinaryTypes.String}, {Name: "seg", Type: arrow.BinaryTypes.String}, {Name: "temp", Type: arrow.PrimitiveTypes.Float64}}, nil)
	var cs []*Contribution
	for i, m := range tp.members {
		b := array.NewRecordBuilder(mem, schema)
		n := 20 - 5*i
		if i == 1 {
			n += extra
		}
		for v := range n {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%s-%d", m.ID(), v))
			b.Field(1).(*array.StringBuilder).Append("s00")
			b.Field(2).(*array.Float64Builder).Append(1)
		}
		rec := b.NewRecordBatch()
		b.Release()
		c, err := Contribute(tp.cfg, m, tp.partialOf(t, mem, rec))
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	var preps [2]*Prepared
	for agg := range 2 {
		var ups []Upload
		for _, c := range cs {
			ups = append(ups, Upload{Name: c.Member, Manifest: c.Manifest, Share: c.Uploads[agg]})
		}
		var peer []byte
		if agg == helper {
			peer = preps[leader].File
		}
		p, err := Prepare(tp.cfg, tp.aggs[agg], ups, PrepareOptions{Peer: peer, Ledger: tp.ledgers[agg]})
		if err != nil {
			t.Fatal(err)
		}
		preps[agg] = p
	}
	var out [2]fp128.Vec
	for agg := range 2 {
		r, err := combine(tp.cfg, agg, preps[leader].File, preps[helper].File, preps[agg].State)
		if err != nil {
			t.Fatal(err)
		}
		out[agg] = r.share
	}
	return out
}

// scaledNoise calibrates the library's noise to a multiple of the share's
// ε: a broken aggregator that adds too little noise (negative control).
type scaledNoise struct {
	n      noiseSource
	factor float64
}

func (s scaledNoise) draw(l0, lInf int64, eps, delta float64) (int64, error) {
	return s.n.draw(l0, lInf, eps*s.factor, delta)
}

// TestEpsilonAudit is an empirical ε audit of the pool release: neighbouring
// inputs that differ in one vehicle (count 45 vs 46 at one partition,
// released with ε = 1 and sensitivity 1), runs of the release's random part
// — both aggregators adding their noise to their shares (the pool's
// addNoise), the collector unsharding (the pool's unshard) — and a threshold
// test: E = {released count ≥ 47} (fixed before looking). With n runs per
// input, k₁ and k₀ hits, the Clopper–Pearson bounds at confidence 1 − 10⁻⁴
// each give the lower confidence bound ε_lb = ln(p₁_low / p₀_high), which a
// mechanism that is ε-DP exceeds with probability below 2·10⁻⁴.
//
// Parameters: 8,000 runs per input and scenario, threshold count ≥ c₁+1.
// Scenarios: both aggregators honest; one adds no noise at all (the release
// must stay ε-DP from the other's noise alone); and a negative control in
// which each aggregator calibrates its noise to 2ε (half the noise) and one
// of them adds none: that release is only 2ε-DP and the audit must say so
// (ε_lb > 1), so the audit is shown to have the power to fail.
func TestEpsilonAudit(t *testing.T) {
	const (
		runs  = 8_000
		alpha = 1e-4
	)
	tp := auditPool(t)
	p := tp.cfg.plan
	d0, d1 := preparedShares(t, tp, 0), preparedShares(t, tp, 1)
	lib := p.libraryNoise()
	release := func(sh [2]fp128.Vec, n [2]noiseSource) int64 {
		var noisy [2]fp128.Vec
		for agg := range 2 {
			noisy[agg] = make(fp128.Vec, len(sh[agg]))
			copy(noisy[agg], sh[agg])
			if err := p.addNoise(noisy[agg], n[agg]); err != nil {
				t.Fatal(err)
			}
		}
		tot, err := p.unshard(noisy[leader], noisy[helper])
		if err != nil {
			t.Fatal(err)
		}
		return tot[0]
	}
	// The inputs are what they should be.
	if c0, c1 := release(d0, [2]noiseSource{zeroNoise{}, zeroNoise{}}), release(d1, [2]noiseSource{zeroNoise{}, zeroNoise{}}); c0 != 45 || c1 != 46 {
		t.Fatalf("neighbouring counts %d, %d; want 45, 46", c0, c1)
	}
	const threshold = 47
	for _, sc := range []struct {
		name   string
		noise  [2]noiseSource
		maxEps float64 // the audit must stay at or below (honest)
		minEps float64 // or must exceed (negative control)
	}{
		{name: "both aggregators honest", noise: [2]noiseSource{lib, lib}, maxEps: 1},
		{name: "the helper adds no noise", noise: [2]noiseSource{lib, zeroNoise{}}, maxEps: 1},
		{name: "negative control: half the noise, one aggregator silent", noise: [2]noiseSource{scaledNoise{lib, 2}, zeroNoise{}}, minEps: 1},
	} {
		k := [2]int{}
		for side, sh := range [][2]fp128.Vec{d0, d1} {
			for range runs {
				if release(sh, sc.noise) >= threshold {
					k[side]++
				}
			}
		}
		p1lo, _ := clopperPearson(k[1], runs, alpha)
		_, p0hi := clopperPearson(k[0], runs, alpha)
		epsLB := math.Log(p1lo / p0hi)
		t.Logf("%s: P(count ≥ %d) %d/%d with the vehicle, %d/%d without: ε ≥ %.3f (claimed 1)", sc.name, threshold, k[1], runs, k[0], runs, epsLB)
		if sc.maxEps > 0 && epsLB > sc.maxEps {
			t.Errorf("%s: the audit's lower bound ε ≥ %.3f exceeds the claimed ε = %v", sc.name, epsLB, sc.maxEps)
		}
		if sc.minEps > 0 && epsLB <= sc.minEps {
			t.Errorf("%s: the audit did not detect a 2ε mechanism (ε ≥ %.3f): it has no power", sc.name, epsLB)
		}
	}
}
