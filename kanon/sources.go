package kanon

// The searcher keeps rolled-up tables as sources: a node is rolled up from
// the smallest kept table below it, not from the histogram.

// source picks the smallest cached table below node. When that is the
// histogram itself, it rolls the histogram up to a stepping stone — the
// node with every column of node capped at level 1 — and caches it: level 1
// already merges most values, and the stones are shared by all the nodes
// with the same columns at level 0. A stone is built the second time it is
// asked for: one that serves a single node costs a pass over the histogram
// for nothing (on Adult, k=5 without suppression, a sixth of the search).
func (s *searcher) source(node int) *table {
	best := s.cachedSource(node)
	if best != s.engine.base {
		return best
	}
	lat := s.engine.lattice
	s.levels = lat.levels(node, s.levels)
	for c, l := range s.levels {
		s.levels[c] = min(l, 1)
	}
	stone := lat.id(s.levels)
	if stone == node || stone == 0 || s.sources.stoneTooBig[stone] {
		return best
	}
	if s.sources.stoneAsked == nil {
		s.sources.stoneAsked = map[int]bool{}
	}
	if !s.sources.stoneAsked[stone] {
		s.sources.stoneAsked[stone] = true
		return best
	}
	base := s.engine.base
	t := s.engine.rollup(base, stone, s.scratch)
	s.stats.sourceRows += base.rows()
	if t.rows()*2 > base.rows() {
		if s.sources.stoneTooBig == nil {
			s.sources.stoneTooBig = map[int]bool{}
		}
		s.sources.stoneTooBig[stone] = true
		return best
	}
	t = t.cloneInto(s.takeFree(t.rows()))
	s.sources.tables = append(s.sources.tables, t)
	s.sources.rows += t.rows()
	return t
}

// cachedSource returns the smallest cached table at or below node.
func (s *searcher) cachedSource(node int) *table {
	best := s.sources.tables[0]
	for _, t := range s.sources.tables[1:] {
		if t.rows() < best.rows() && s.engine.lattice.leq(t.node, node) {
			best = t
		}
	}
	return best
}

// pairSource picks the smallest cached table at or below levels (la, lb) on
// columns a and b.
func (s *searcher) pairSource(a, b, la, lb int) *table {
	best := s.engine.base
	lat := s.engine.lattice
	for _, t := range s.sources.tables[1:] {
		if t.rows() < best.rows() && lat.level(t.node, a) <= la && lat.level(t.node, b) <= lb {
			best = t
		}
	}
	return best
}

// cacheBudget bounds the rows of all cached tables, as a multiple of the
// base table's rows (memory stays proportional to the histogram), and
// cacheMaxRows absolutely (about 180 MB with ten quasi-identifiers).
const (
	cacheBudget  = 128
	cacheMaxRows = 1 << 22
)

func (s *searcher) cacheLimit() int {
	return min(cacheBudget*s.engine.base.rows(), cacheMaxRows)
}

// remember keeps a copy of t as a source, evicting the largest cached
// tables when over budget.
func (s *searcher) remember(t *table) {
	base := s.engine.base
	if s.engine.hasSens && !t.values {
		// A check that failed on class sizes alone did not merge the
		// sensitive frequencies: the table cannot be a source.
		return
	}
	if t.rows()*10 > base.rows()*9 {
		// Barely smaller than the base: not worth the memory.
		return
	}
	if s.sources.rows+t.rows() > s.cacheLimit() {
		largest := 0
		for _, c := range s.sources.tables[1:] {
			largest = max(largest, c.rows())
		}
		if largest <= t.rows() {
			return
		}
	}
	t = t.cloneInto(s.takeFree(t.rows()))
	for s.sources.rows+t.rows() > s.cacheLimit() && len(s.sources.tables) > 1 {
		// Evict the largest cached table (never the base).
		worst := 1
		for i := 2; i < len(s.sources.tables); i++ {
			if s.sources.tables[i].rows() > s.sources.tables[worst].rows() {
				worst = i
			}
		}
		if s.sources.tables[worst].rows() <= t.rows() {
			s.sources.free = append(s.sources.free, t)
			return
		}
		s.sources.rows -= s.sources.tables[worst].rows()
		if len(s.sources.free) < maxFreeTables {
			s.sources.free = append(s.sources.free, s.sources.tables[worst])
		}
		s.sources.tables[worst] = s.sources.tables[len(s.sources.tables)-1]
		s.sources.tables = s.sources.tables[:len(s.sources.tables)-1]
	}
	s.sources.rows += t.rows()
	s.sources.tables = append(s.sources.tables, t)
}

// takeFree returns an evicted table with room for rows, or nil.
func (s *searcher) takeFree(rows int) *table {
	for i, t := range s.sources.free {
		if cap(t.counts) >= rows {
			s.sources.free[i] = s.sources.free[len(s.sources.free)-1]
			s.sources.free = s.sources.free[:len(s.sources.free)-1]
			return t
		}
	}
	return nil
}
