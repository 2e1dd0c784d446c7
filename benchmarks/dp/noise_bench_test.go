package dpbench

import (
	"testing"

	"github.com/google/differential-privacy/go/v2/dpagg"
	"github.com/google/differential-privacy/go/v2/noise"
)

// BenchmarkLibraryNoise measures one draw of the library's secure noise with
// the parameters BenchmarkDPAggregate's release uses (L0 = 8, L∞ = 4): the
// count's Laplace, the mean's Laplace on the count and the normalised sum,
// and the selection's Gaussian; "gaussian-sigma" is the σ calibration
// (binary search) every Gaussian draw repeats inside the library, and
// "preagg-select" the library's PreAggSelectPartition object per partition
// (what the selector replaces for L0 > 3). Run with -cpu 1,2 to see whether draws scale
// over cores (the library's randomness is one mutex-guarded crypto/rand
// buffer).
func BenchmarkLibraryNoise(b *testing.B) {
	cases := []struct {
		name string
		draw func() error
	}{
		{"laplace-int64", func() error {
			_, err := noise.Laplace().AddNoiseInt64(1000, l0, linf, 0.25, 0)
			return err
		}},
		{"laplace-float64", func() error {
			_, err := noise.Laplace().AddNoiseFloat64(1000, l0, 300*linf, 0.125, 0)
			return err
		}},
		{"laplace-float64-whole-share", func() error {
			_, err := noise.Laplace().AddNoiseFloat64(1000, l0, 300*linf, 0.25, 0)
			return err
		}},
		{"gaussian-int64", func() error {
			_, err := noise.Gaussian().AddNoiseInt64(1000, l0, 1, 0.5, 5e-7)
			return err
		}},
		{"gaussian-sigma", func() error {
			noise.SigmaForGaussian(l0, 1, 0.5, 5e-7)
			return nil
		}},
		{"preagg-select", func() error {
			s, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{Epsilon: 0.5, Delta: 1e-6, MaxPartitionsContributed: l0})
			if err != nil {
				return err
			}
			for range 200 { // one per subject, ≈ a segment of BenchmarkDPAggregate
				if err := s.Increment(); err != nil {
					return err
				}
			}
			_, err = s.ShouldKeepPartition()
			return err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.draw(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
