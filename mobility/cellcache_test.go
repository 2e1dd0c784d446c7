package mobility

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tarnkappe/tarnkappe/internal/h3"
)

// TestCellCacheMatchesH3 compares the cache with the H3 library point by
// point: random points in a city-sized box (where most are answered by the
// cache), points clustered at cell boundaries (where the margin matters),
// and points all over the globe, at several resolutions.
func TestCellCacheMatchesH3(t *testing.T) {
	n := 60_000
	if testing.Short() {
		n = 10_000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, res := range []int{0, 3, 5, 6, 7, 9, 12} {
		c, err := NewCellCache(res)
		if err != nil {
			t.Fatal(err)
		}
		local := map[uint64][]*cellGeom{}
		hits := 0
		check := func(lat, lon float64) {
			want := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lon}, res)
			p := unitVec(lat, lon)
			for _, g := range local[c.key(lat, lon)] {
				if g.contains(p, c.margin) {
					hits++
					break
				}
			}
			got := c.lookup(lat, lon, local)
			if got != want {
				t.Fatalf("res %d: (%v, %v): cache %v, H3 %v", res, lat, lon, got, want)
			}
		}
		// A city box, uniformly.
		span := math.Min(0.5, 40*h3.HexagonEdgeLengthAvgKm(res)/111)
		for range n {
			check(48.0+rng.Float64()*span, 11.3+rng.Float64()*span)
		}
		if res == 6 && hits < n*8/10 {
			t.Errorf("res 6: the cache answered %d of %d points in a city box, want most", hits, n)
		}
		t.Logf("res %d: cache answered %d of %d points in the box", res, hits, n)
		// Near boundaries: points at tiny offsets around cell vertices.
		for range n / 10 {
			cell := h3.LatLngToCell(h3.LatLng{Lat: 48.0 + rng.Float64()*span, Lng: 11.3 + rng.Float64()*span}, res)
			for _, v := range h3.CellToBoundary(cell) {
				d := h3.HexagonEdgeLengthAvgKm(res) / 111 * math.Pow(10, -1-6*rng.Float64())
				check(v.Lat+d*(rng.Float64()*2-1), v.Lng+d*(rng.Float64()*2-1))
			}
		}
		// The globe, including the poles and the antimeridian.
		for range n / 10 {
			lat := math.Asin(rng.Float64()*2-1) * 180 / math.Pi
			lon := rng.Float64()*360 - 180
			check(lat, lon)
			// A second point nearby, which the cache may now answer.
			check(math.Max(-90, math.Min(90, lat+1e-3*(rng.Float64()-0.5))), math.Max(-180, math.Min(180, lon+1e-3*(rng.Float64()-0.5))))
		}
		t.Logf("res %d: %d squares, %d cells cached", res, len(c.grid), len(c.geo))
	}
}
