package fsum

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exact is the sum of xs (finite) rounded to
// the nearest float64 by math/big, the reference.
func exact(xs []float64) float64 {
	acc := new(big.Float).SetPrec(4096)
	for _, x := range xs {
		acc.Add(acc, new(big.Float).SetPrec(4096).SetFloat64(x))
	}
	v, _ := acc.Float64() // nearest, ties to even
	return v
}

func sumOf(xs []float64) float64 {
	var s Sum
	for _, x := range xs {
		s.Add(x)
	}
	return s.Value()
}

func TestSumExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	readings := func(n int, scale float64) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = rng.NormFloat64() * scale
		}
		return xs
	}
	for _, tc := range []struct {
		name string
		xs   []float64
	}{
		{"empty", nil},
		{"one", []float64{57.3}},
		{"tenths", []float64{0.1, 0.2, 0.3, -0.6}},
		{"cancelling", []float64{1e100, 1, -1e100}},
		{"tie across partials", []float64{1, 0x1p-53, 0x1p-106}},
		{"tie to even", []float64{1, 0x1p-53}},
		{"wide", []float64{1e300, 1e-300, 1, 1e200, -1e300, 3e-10}},
		{"near overflow", []float64{math.MaxFloat64, math.MaxFloat64, -math.MaxFloat64}},
		{"overflow", []float64{math.MaxFloat64, math.MaxFloat64}},
		{"subnormal", []float64{5e-324, 1, -1, 5e-324, 1e-310}},
		{"zero", []float64{0, -0.0, 1.5, -1.5}},
		{"readings", readings(10_000, 80)},
		{"mixed magnitudes", append(readings(1000, 1e-8), readings(1000, 1e12)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := exact(tc.xs)
			if got := sumOf(tc.xs); got != want {
				t.Fatalf("sum %v (%x), want %v (%x)", got, math.Float64bits(got), want, math.Float64bits(want))
			}
			// Any order, any split and merge: the same bits.
			for r := range 5 {
				xs := append([]float64(nil), tc.xs...)
				rng.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
				cut := 0
				if len(xs) > 0 {
					cut = rng.IntN(len(xs) + 1)
				}
				var a, b Sum
				for _, x := range xs[:cut] {
					a.Add(x)
				}
				for _, x := range xs[cut:] {
					b.Add(x)
				}
				if r%2 == 0 {
					a.Merge(&b)
				} else {
					st, _ := b.AppendBinary(nil)
					rest, err := a.AddBinary(st)
					if err != nil || len(rest) != 0 {
						t.Fatalf("AddBinary: %v, %d bytes left", err, len(rest))
					}
				}
				if got := a.Value(); got != want {
					t.Fatalf("shuffled and split at %d: %v, want %v", cut, got, want)
				}
			}
		})
	}
}

func TestSumSpecialAndMean(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{1, math.Inf(1), 2}, math.Inf(1)},
		{[]float64{math.Inf(-1), 1}, math.Inf(-1)},
		{[]float64{math.Inf(1), math.Inf(-1)}, math.NaN()},
		{[]float64{1, math.NaN()}, math.NaN()},
	} {
		got := sumOf(tc.xs)
		if !(got == tc.want || (math.IsNaN(got) && math.IsNaN(tc.want))) {
			t.Errorf("%v: %v, want %v", tc.xs, got, tc.want)
		}
	}
	var s Sum
	for _, x := range []float64{0.1, 0.2, 0.4} {
		s.Add(x)
	}
	if got, want := s.Mean(3), exact([]float64{0.1, 0.2, 0.4})/3; got != want {
		t.Errorf("mean %v, want %v", got, want)
	}
	if !math.IsNaN(s.Mean(0)) {
		t.Error("mean of nothing should be NaN")
	}
}

// FuzzAddBinary: a state from another worker is parsed; corrupt bytes are
// an error, never a panic.
func FuzzAddBinary(f *testing.F) {
	var s Sum
	for _, x := range []float64{1e300, 1, 1e-300, math.Inf(1)} {
		s.Add(x)
	}
	st, _ := s.AppendBinary(nil)
	f.Add(st)
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Sum
		rest, err := a.AddBinary(b)
		if err == nil && len(rest) > len(b) {
			t.Fatal("rest longer than the input")
		}
		_ = a.Value()
	})
}

// TestSumRounding: random sums whose integer spans up to 123 bits (the
// 128-bit path: the top bits with a sticky bit) and beyond (math/big),
// with ties built in, against math/big.
func TestSumRounding(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 20_000 {
		n := 1 + rng.IntN(6)
		xs := make([]float64, n)
		for j := range xs {
			m := float64(rng.Uint64()>>11) + 1 // up to 53 bits
			if rng.IntN(4) == 0 {
				m = 1 // a lone bit: ties
			}
			x := math.Ldexp(m, rng.IntN(160)-80-52)
			if rng.IntN(2) == 0 {
				x = -x
			}
			xs[j] = x
		}
		if got, want := sumOf(xs), exact(xs); got != want {
			t.Fatalf("case %d %v: %v (%x), want %v (%x)", i, xs, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
}
