package kanon

// tagUp tags node and every node above it anonymous.
func (s *searcher) tagUp(node int) {
	lat := s.engine.lattice
	stack := append(s.stack[:0], node)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.tags[n] == tagAnon {
			continue
		}
		s.tags[n] = tagAnon
		for c := range lat.heights {
			if lat.level(n, c) < lat.heights[c]-1 {
				if m := n + lat.mult[c]; s.tags[m] != tagAnon {
					stack = append(stack, m)
				}
			}
		}
	}
	s.stack = stack
}

// tagDown tags node and every node below it non-anonymous.
func (s *searcher) tagDown(node int) {
	lat := s.engine.lattice
	stack := append(s.stack[:0], node)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.tags[n] == tagNotAnon {
			continue
		}
		s.tags[n] = tagNotAnon
		for c := range lat.heights {
			if lat.level(n, c) > 0 {
				if m := n - lat.mult[c]; s.tags[m] != tagNotAnon {
					stack = append(stack, m)
				}
			}
		}
	}
	s.stack = stack
}

// raiseFloor raises the floor of every node above node to v, the value of
// an always-monotone metric at node: none of them can have less loss.
func (s *searcher) raiseFloor(node int, v float64) {
	lat := s.engine.lattice
	stack := append(s.stack[:0], node)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for c := range lat.heights {
			if lat.level(n, c) < lat.heights[c]-1 {
				if m := n + lat.mult[c]; s.floors[m] < v {
					s.floors[m] = v
					stack = append(stack, m)
				}
			}
		}
	}
	s.stack = stack
}

// probe decides the anonymity of node by a binary search on a greedy path of
// undecided nodes from node upwards (the core of Kohlmayer et al.'s FLASH).
//
// Nodes whose loss bound exceeds limit (the best loss found so far) cannot
// be the optimum; the path stops before them, as ARX prunes transformations
// of insufficient utility.
func (s *searcher) probe(node int, limit float64) {
	lat := s.engine.lattice
	path := []int{node}
	cur := node
	for {
		next := -1
		for c := range lat.heights {
			if lat.level(cur, c) == lat.heights[c]-1 {
				continue
			}
			m := cur + lat.mult[c]
			if s.tags[m] != tagUnknown || s.bounds[m] > limit {
				continue
			}
			if next < 0 || s.bounds[m] < s.bounds[next] || (s.bounds[m] == s.bounds[next] && m < next) {
				next = m
			}
		}
		if next < 0 {
			break
		}
		path = append(path, next)
		cur = next
	}
	lo, hi := 0, len(path)-1
	for lo <= hi && s.tags[node] == tagUnknown {
		mid := (lo + hi) / 2
		n := path[mid]
		if s.tags[n] != tagUnknown {
			if s.tags[n] == tagAnon {
				hi = mid - 1
			} else {
				lo = mid + 1
			}
			continue
		}
		if s.provablyFails(n) {
			lo = mid + 1
			continue
		}
		ev := s.evaluate(n)
		if s.tagsUp(ev) {
			s.evaluated[n] = ev
			hi = mid - 1
		} else {
			lo = mid + 1
		}
	}
}

// provablyFails checks the one- and two-column bounds of kBounds and tags
// the node (and all below it) when they prove it non-anonymous.
func (s *searcher) provablyFails(node int) bool {
	s.levels = s.engine.lattice.levels(node, s.levels)
	if !s.proofs.fails(s.levels, s.maxOutliers, true) {
		return false
	}
	// The bound counts rows in classes below the minimal size only, and
	// those never increase along generalisation: the proof holds for every
	// node below, whatever the models.
	s.tagDown(node)
	return true
}
