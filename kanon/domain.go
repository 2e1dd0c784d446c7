package kanon

import (
	"errors"
	"fmt"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// dimension is the encoded form of one quasi-identifier: every level-0 value
// seen (or known from the hierarchy's domain) gets a leaf id, and every
// generalised value an id per level. Rolling a histogram up to a level is a
// table lookup gen[level][leaf].
type dimension struct {
	name   string
	h      Hierarchy
	levels int
	leaf   map[string]int32 // level-0 value → leaf id
	gen    [][]int32        // gen[l][leaf] = id of the leaf's ancestor at level l
	values [][]string       // values[l][id] = generalised value
	intern []map[string]int32
	parent [][]int32 // parent[l][id] = id at level l+1 (monotonicity check)
	// domainLeaves is the number of leaves that came from the hierarchy's
	// declared domain (ARX's Loss uses the hierarchy's rows as the domain).
	domainLeaves int
}

func newDimension(name string, h Hierarchy) (*dimension, error) {
	if h == nil {
		return nil, rowerr.At(0, name, errors.New("no hierarchy"))
	}
	n := h.Levels()
	if n < 1 || n > 64 {
		return nil, rowerr.Atf(0, name, "hierarchy has %d levels, want 1..64: %w", n, ErrBadHierarchy)
	}
	d := &dimension{
		name: name, h: h, levels: n,
		leaf:   make(map[string]int32),
		gen:    make([][]int32, n),
		values: make([][]string, n),
		intern: make([]map[string]int32, n),
		parent: make([][]int32, n),
	}
	for l := range n {
		d.intern[l] = make(map[string]int32)
	}
	if dh, ok := h.(DomainHierarchy); ok {
		for _, v := range dh.Domain() {
			if _, err := d.add(v); err != nil {
				return nil, rowerr.At(0, name, err)
			}
		}
		d.domainLeaves = len(d.values[0])
	}
	return d, nil
}

// lookup returns the leaf id of v, adding it (and its ancestors) on first
// sight.
func (d *dimension) lookup(v string) (int32, error) {
	if id, ok := d.leaf[v]; ok {
		return id, nil
	}
	return d.add(v)
}

func (d *dimension) add(v string) (int32, error) {
	if id, ok := d.leaf[v]; ok {
		return id, nil
	}
	chain := make([]string, d.levels)
	chain[0] = v
	for l := 1; l < d.levels; l++ {
		g, err := d.h.Generalize(v, l)
		if err != nil {
			return 0, err
		}
		chain[l] = g
	}
	if _, err := d.h.Generalize(v, 0); err != nil {
		return 0, err
	}
	ids := make([]int32, d.levels)
	for l, g := range chain {
		id, ok := d.intern[l][g]
		if !ok {
			id = int32(len(d.values[l]))
			d.intern[l][g] = id
			d.values[l] = append(d.values[l], g)
			d.parent[l] = append(d.parent[l], -1)
		}
		ids[l] = id
	}
	for l := 0; l+1 < d.levels; l++ {
		p := d.parent[l][ids[l]]
		if p >= 0 && p != ids[l+1] {
			return 0, fmt.Errorf("value %q: %q at level %d has two parents %q and %q (levels must be monotone): %w",
				v, chain[l], l, d.values[l+1][p], chain[l+1], ErrBadHierarchy)
		}
		d.parent[l][ids[l]] = ids[l+1]
	}
	leaf := ids[0]
	if int(leaf) != len(d.gen[0]) {
		// Two distinct level-0 strings can never intern to the same id, so
		// this only fires if a hierarchy rewrites level 0.
		return 0, fmt.Errorf("value %q: hierarchy changes the value at level 0: %w", v, ErrBadHierarchy)
	}
	d.leaf[v] = leaf
	for l := range d.levels {
		d.gen[l] = append(d.gen[l], ids[l])
	}
	return leaf, nil
}

// size returns the number of distinct generalised values at level l.
func (d *dimension) size(l int) int { return len(d.values[l]) }

// upMap returns the map from ids at level from to ids at level to (to >= from).
func (d *dimension) upMap(from, to int) []int32 {
	out := make([]int32, len(d.values[from]))
	for i := range out {
		out[i] = int32(i)
	}
	for l := from; l < to; l++ {
		for i, id := range out {
			out[i] = d.parent[l][id]
		}
	}
	return out
}
