package wilson

import "math"

// Interval is the Wilson score interval for x successes in n trials at the
// two-sided confidence conf (e.g. 0.95). With no trials it is [0, 1]:
// nothing is known.
func Interval(x, n int, conf float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	z := math.Sqrt2 * math.Erfinv(conf)
	nf, xf := float64(n), float64(x)
	p := xf / nf
	den := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / den
	half := z / den * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))
	return math.Max(0, center-half), math.Min(1, center+half)
}
