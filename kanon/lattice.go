package kanon

import (
	"fmt"
)

// lattice indexes the full-domain generalisation lattice: a node is one
// level per quasi-identifier, its id the mixed-radix number of its levels.
type lattice struct {
	heights []int // levels per column (hierarchy height = heights[c]-1 steps)
	mult    []int
	size    int
	lv      []uint8 // lv[id*d+c] = level of column c in node id
}

// maxLatticeSize bounds the number of transformations (and so the memory
// of the search's per-node state).
const maxLatticeSize = 1 << 24

func newLattice(heights []int) (*lattice, error) {
	l := &lattice{heights: heights, mult: make([]int, len(heights))}
	m := 1
	for c := len(heights) - 1; c >= 0; c-- {
		l.mult[c] = m
		m *= heights[c]
		if m > maxLatticeSize {
			return nil, fmt.Errorf("the lattice has more than %d transformations: use fewer quasi-identifiers or shallower hierarchies", maxLatticeSize)
		}
	}
	l.size = m
	d := len(heights)
	l.lv = make([]uint8, m*d)
	cur := make([]uint8, d)
	for id := range m {
		copy(l.lv[id*d:], cur)
		for c := d - 1; c >= 0; c-- {
			cur[c]++
			if int(cur[c]) < heights[c] {
				break
			}
			cur[c] = 0
		}
	}
	return l, nil
}

func (l *lattice) levels(id int, dst []int) []int {
	dst = dst[:0]
	d := len(l.heights)
	for _, v := range l.lv[id*d : id*d+d] {
		dst = append(dst, int(v))
	}
	return dst
}

// level returns the level of column c in node id.
func (l *lattice) level(id, c int) int { return int(l.lv[id*len(l.heights)+c]) }

func (l *lattice) id(levels []int) int {
	id := 0
	for c, v := range levels {
		id += v * l.mult[c]
	}
	return id
}

// leq reports whether node a is componentwise <= node b.
func (l *lattice) leq(a, b int) bool {
	d := len(l.heights)
	x, y := l.lv[a*d:a*d+d], l.lv[b*d:b*d+d]
	for c := range x {
		if x[c] > y[c] {
			return false
		}
	}
	return true
}
