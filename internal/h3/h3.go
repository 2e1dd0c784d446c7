//go:build cgo

package h3

import "github.com/uber/h3-go/v4"

// The types of github.com/uber/h3-go/v4, under their names.
type (
	Cell         = h3.Cell
	LatLng       = h3.LatLng
	GeoLoop      = h3.GeoLoop
	GeoPolygon   = h3.GeoPolygon
	CellBoundary = h3.CellBoundary
)

// NewLatLng is h3.NewLatLng: a position in degrees.
func NewLatLng(lat, lng float64) LatLng { return h3.NewLatLng(lat, lng) }

// LatLngToCell is h3.LatLngToCell: the cell of resolution res holding ll.
func LatLngToCell(ll LatLng, res int) Cell { return h3.LatLngToCell(ll, res) }

// CellToLatLng is h3.CellToLatLng: the cell's centre.
func CellToLatLng(c Cell) LatLng { return h3.CellToLatLng(c) }

// CellToBoundary is h3.CellToBoundary: the cell's corners.
func CellToBoundary(c Cell) CellBoundary { return h3.CellToBoundary(c) }

// PolygonToCells is h3.PolygonToCells: the cells of resolution res whose
// centres lie in the polygon.
func PolygonToCells(p GeoPolygon, res int) []Cell { return h3.PolygonToCells(p, res) }

// GreatCircleDistanceM is h3.GreatCircleDistanceM: metres between a and b.
func GreatCircleDistanceM(a, b LatLng) float64 { return h3.GreatCircleDistanceM(a, b) }

// HexagonEdgeLengthAvgKm is h3.HexagonEdgeLengthAvgKm.
func HexagonEdgeLengthAvgKm(res int) float64 { return h3.HexagonEdgeLengthAvgKm(res) }

// IndexFromString is h3.IndexFromString: a cell index from its hex form.
func IndexFromString(s string) uint64 { return h3.IndexFromString(s) }
