package fsumbench

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tarnkappe/tarnkappe/internal/fsum"
)

// BenchmarkAdd adds 65,536 readings (0 to 200, to 0.1) into 256 group
// sums per op: float64 (the baseline, order-dependent) and fsum (exact).
func BenchmarkAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1<<16)
	for i := range xs {
		xs[i] = math.Round(rng.Float64()*2000) / 10
	}
	perValue := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/value")
	}
	b.Run("float64", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(8 * len(xs)))
		sums := make([]float64, 256)
		for b.Loop() {
			for i, x := range xs {
				sums[i&255] += x
			}
		}
		perValue(b)
	})
	b.Run("fsum", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(8 * len(xs)))
		sums := make([]fsum.Sum, 256)
		for b.Loop() {
			for i, x := range xs {
				sums[i&255].Add(x)
			}
		}
		perValue(b)
	})
}
