package mobility

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/tarnkappe/tarnkappe/internal/h3"
)

// CellCache maps coordinates to H3 cells faster than the H3 library for
// points well inside a cell seen before, with the same result.
//
// Why it is exact: an H3 cell is a hexagon in the gnomonic projection of its
// icosahedron face, and gnomonic projections map great circles to straight
// lines, so a hexagon that lies in one face is the spherical polygon whose
// edges are the great-circle arcs between its six vertices. A point is inside
// such a polygon when it lies on the inner side of each edge's great-circle
// plane, a sign test on 3-D unit vectors. The cache accepts a point only when
// it is inside by a margin (a thousandth of the cell's edge, metres at
// resolution 6, far above floating-point error) and otherwise asks the H3
// library. Cells where the reasoning may not hold are never cached:
// pentagons, cells whose boundary is not six vertices (distortion vertices
// where a cell crosses a face edge), cells near the poles, and any cell whose
// geometry fails a check against the library at 18 points just inside and
// just outside its vertices and edges. Tests compare the cache with the
// library on millions of points.
//
// Candidates are found through a grid of squares about a quarter of a cell
// edge wide, each listing up to four cells that points in it fell in. Memory
// is bounded: at most maxCacheSquares squares and maxCacheCells cells; beyond
// that points go to the library. Safe for concurrent use: a Coarsener looks
// squares up in its own map first and takes the lock only on its misses.
type CellCache struct {
	res    int
	square float64 // grid square side, degrees
	margin float64 // sine of the inside margin, radians
	mu     sync.Mutex
	geo    map[h3.Cell]*cellGeom // nil value: cell not usable
	grid   map[uint64][]*cellGeom
}

const (
	maxCacheSquares = 1 << 20
	maxCacheCells   = 1 << 18
	maxCandidates   = 4
)

// cellGeom is a cell as six inward edge-plane normals.
type cellGeom struct {
	cell h3.Cell
	n    [6][3]float64
}

// NewCellCache returns an empty cache for one H3 resolution (0..15).
func NewCellCache(resolution int) (*CellCache, error) {
	if resolution < 0 || resolution > 15 {
		return nil, fmt.Errorf("mobility.NewCellCache: resolution must be in 0..15, got %d", resolution)
	}
	edgeKm := h3.HexagonEdgeLengthAvgKm(resolution)
	return &CellCache{
		res:    resolution,
		square: edgeKm / 4 / 111.2,
		margin: max(1e-10, 1e-3*edgeKm/6371.0088),
		geo:    map[h3.Cell]*cellGeom{},
		grid:   map[uint64][]*cellGeom{},
	}, nil
}

func unitVec(latDeg, lonDeg float64) [3]float64 {
	sla, cla := math.Sincos(latDeg * (math.Pi / 180))
	slo, clo := math.Sincos(lonDeg * (math.Pi / 180))
	return [3]float64{cla * clo, cla * slo, sla}
}

func dot(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func cross(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func normalize(a [3]float64) [3]float64 {
	l := math.Sqrt(dot(a, a))
	return [3]float64{a[0] / l, a[1] / l, a[2] / l}
}

func toLatLng(p [3]float64) h3.LatLng {
	return h3.LatLng{Lat: math.Asin(max(-1, min(1, p[2]))) * (180 / math.Pi), Lng: math.Atan2(p[1], p[0]) * (180 / math.Pi)}
}

// lerp is the unit vector at fraction t from a towards b (t may exceed 1).
func lerp(a, b [3]float64, t float64) [3]float64 {
	return normalize([3]float64{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1]), a[2] + t*(b[2]-a[2])})
}

func (g *cellGeom) contains(p [3]float64, margin float64) bool {
	for i := range g.n {
		if dot(g.n[i], p) <= margin {
			return false
		}
	}
	return true
}

// newCellGeom builds the geometry of cell, or nil when the cell is not one
// the cache may answer for (see CellCache).
func newCellGeom(cell h3.Cell, res int, margin float64) *cellGeom {
	if cell.IsPentagon() {
		return nil
	}
	b := h3.CellToBoundary(cell)
	if len(b) != 6 {
		return nil
	}
	center := h3.CellToLatLng(cell)
	if math.Abs(center.Lat) > 80 {
		return nil
	}
	c := unitVec(center.Lat, center.Lng)
	var v [6][3]float64
	for i, ll := range b {
		if math.Abs(ll.Lat) > 85 {
			return nil
		}
		v[i] = unitVec(ll.Lat, ll.Lng)
	}
	g := &cellGeom{cell: cell}
	for i := range v {
		n := normalize(cross(v[i], v[(i+1)%6]))
		if dot(n, c) < 0 {
			n = [3]float64{-n[0], -n[1], -n[2]}
		}
		// The centre must be well inside every edge.
		if dot(n, c) <= 10*margin {
			return nil
		}
		g.n[i] = n
	}
	// Check the geometry against the library: points just inside each
	// vertex and each edge's midpoint are in the cell (and pass contains),
	// points just outside each edge's midpoint are not.
	for i := range v {
		mid := normalize([3]float64{v[i][0] + v[(i+1)%6][0], v[i][1] + v[(i+1)%6][1], v[i][2] + v[(i+1)%6][2]})
		for _, q := range [][3]float64{lerp(c, v[i], 0.97), lerp(c, mid, 0.97)} {
			if !g.contains(q, margin) || h3.LatLngToCell(toLatLng(q), res) != cell {
				return nil
			}
		}
		if q := lerp(c, mid, 1.03); g.contains(q, 0) || h3.LatLngToCell(toLatLng(q), res) == cell {
			return nil
		}
	}
	return g
}

func (c *CellCache) key(lat, lon float64) uint64 {
	return uint64(uint32(int32(math.Floor(lat/c.square))))<<32 | uint64(uint32(int32(math.Floor(lon/c.square))))
}

// lookup maps one valid coordinate to its cell. local is the caller's own
// map of grid squares (not shared between goroutines).
func (c *CellCache) lookup(lat, lon float64, local map[uint64][]*cellGeom) h3.Cell {
	key := c.key(lat, lon)
	cands, ok := local[key]
	if !ok {
		c.mu.Lock()
		cands = c.grid[key]
		c.mu.Unlock()
		local[key] = cands
	}
	if len(cands) > 0 {
		p := unitVec(lat, lon)
		for _, g := range cands {
			if g.contains(p, c.margin) {
				return g.cell
			}
		}
	}
	cell := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lon}, c.res)
	if len(cands) >= maxCandidates || slices.ContainsFunc(cands, func(g *cellGeom) bool { return g.cell == cell }) {
		return cell
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, known := c.geo[cell]
	if !known {
		if len(c.geo) >= maxCacheCells {
			return cell
		}
		g = newCellGeom(cell, c.res, c.margin)
		c.geo[cell] = g
	}
	if g == nil {
		return cell
	}
	shared, ok := c.grid[key]
	if !ok && len(c.grid) >= maxCacheSquares {
		return cell
	}
	if len(shared) < maxCandidates && !slices.Contains(shared, g) {
		shared = append(shared[:len(shared):len(shared)], g) // copy on write: readers hold the old slice
		c.grid[key] = shared
	}
	local[key] = shared
	return cell
}
