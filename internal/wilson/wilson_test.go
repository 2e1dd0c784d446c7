package wilson

import (
	"math"
	"testing"
)

// TestInterval checks published values (Newcombe 1998, Stat. Med. 17:857,
// table I, method 3, and the usual textbook figures at 95%).
func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		x, n   int
		conf   float64
		lo, hi float64
	}{
		{5, 10, 0.95, 0.2366, 0.7634},
		{0, 10, 0.95, 0, 0.2775},
		{10, 10, 0.95, 0.7225, 1},
		{950, 1000, 0.95, 0.9346, 0.9621},
		{81, 263, 0.95, 0.2553, 0.3662},
		{15, 148, 0.95, 0.0624, 0.1605},
		{0, 20, 0.95, 0, 0.1611},
		{1, 29, 0.95, 0.0061, 0.1718},
		{0, 0, 0.95, 0, 1},
	} {
		lo, hi := Interval(tc.x, tc.n, tc.conf)
		if math.Abs(lo-tc.lo) > 5e-4 || math.Abs(hi-tc.hi) > 5e-4 {
			t.Errorf("Interval(%d, %d, %v) = [%.4f, %.4f], want [%.4f, %.4f]", tc.x, tc.n, tc.conf, lo, hi, tc.lo, tc.hi)
		}
	}
}

// TestIntervalWidens: a higher confidence gives a wider interval that still
// holds the observed share.
func TestIntervalWidens(t *testing.T) {
	lo90, hi90 := Interval(30, 100, 0.90)
	lo99, hi99 := Interval(30, 100, 0.99)
	if !(lo99 < lo90 && lo90 < 0.3 && 0.3 < hi90 && hi90 < hi99) {
		t.Fatalf("90%%: [%v, %v], 99%%: [%v, %v]", lo90, hi90, lo99, hi99)
	}
}
