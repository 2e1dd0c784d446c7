package kanon

import "math"

// run visits the candidates in order of their loss bound, with the step
// chooseStep picked, until no remaining candidate can beat the best
// anonymous node found, and returns the result for that node.
func (s *searcher) run() (*Result, error) {
	cands := s.candidates()
	s.evaluated = make(map[int]*evaluation)
	for i, c := range cands {
		if i&63 == 0 {
			if err := s.ctx.Err(); err != nil {
				return nil, err
			}
		}
		if s.beaten(c.bound, c.level) {
			if c.bound > s.best.loss {
				// Sorted by bound: nothing later can have lower loss.
				break
			}
			// Equal bounds only matter on a lower level.
			continue
		}
		s.strategy.step(s, c)
	}
	s.flush()
	if s.best == nil {
		return nil, ErrNoSolution
	}
	return s.result(s.best), nil
}

// beaten reports whether a node whose loss is at least bound, on the given
// level, cannot beat the best node found: ties in loss go to the lower
// level, and the earlier candidate on the same level.
func (s *searcher) beaten(bound float64, level int) bool {
	b := s.best
	return b != nil && (bound > b.loss || (bound == b.loss && level >= b.level))
}

// consider records ev, the check of candidate c, as the best node when it
// is anonymous and beats the best so far: less loss, or the same on a lower
// level, or the same on the same level and earlier in candidate order. The
// best is then the same whatever order the checks complete in.
func (s *searcher) consider(ev *evaluation, c candidate) {
	if !ev.anonymous {
		return
	}
	ev.level, ev.rank = c.level, c.rank
	b := s.best
	if b == nil || ev.loss < b.loss || (ev.loss == b.loss && (c.level < b.level || (c.level == b.level && c.rank < b.rank))) {
		s.best = ev
	}
}

// probeStep visits a candidate where anonymity is monotone: it probes a
// path upwards from the candidate (FLASH's binary search with predictive
// tagging), so that most candidates are decided by the tags of others'
// checks and never rolled up themselves.
func (s *searcher) probeStep(c candidate) {
	tag := s.tags[c.id]
	if tag == tagNotAnon {
		// Set by monotone tagging or by a k-only proof (valid for every
		// model).
		return
	}
	if tag == tagUnknown {
		if s.provablyFails(c.id) {
			return
		}
		// Paths stop at nodes that cannot beat the best found. (Capping
		// them by the loss of any anonymous node seen would be valid too,
		// but shorter paths tag less: measured, it triples the checks.)
		limit := math.Inf(1)
		if s.best != nil {
			limit = s.best.loss
		}
		s.probe(c.id, limit)
		tag = s.tags[c.id]
		if tag == tagNotAnon {
			return
		}
	}
	ev := s.evaluated[c.id]
	if ev == nil {
		if tag == tagAnon && s.strategy.monotoneLoss {
			// An anonymous predecessor exists with no more loss on a
			// lower level; it was or will be considered.
			return
		}
		ev = s.evaluate(c.id)
	}
	s.consider(ev, c)
}

// kProbeStep visits a candidate where anonymity is not monotone (l or t
// with suppression): its k-part (see tagsUp) is decided by a probe as in
// probeStep, and a candidate whose k-part holds is checked unless a floor
// rules it out (ARX's two phases: binary search on k-anonymity, then the
// remaining nodes one by one). Those checks are independent of each other
// and go to s.strategy.linear.
func (s *searcher) kProbeStep(c candidate) {
	if s.best == nil && len(s.pending) > 0 && c.bound > s.pending[0].bound {
		// A pending check may set the bound that ends the search.
		s.flush()
	}
	if s.ruledOut(c) {
		return
	}
	if s.tags[c.id] == tagUnknown {
		limit := math.Inf(1)
		if s.best != nil {
			limit = s.best.loss
		}
		s.probe(c.id, limit)
		if s.tags[c.id] == tagNotAnon {
			return
		}
	}
	if ev := s.evaluated[c.id]; ev != nil {
		s.consider(ev, c)
		return
	}
	s.strategy.linear(s, c)
}

// ruledOut reports whether a candidate needs no check where anonymity is
// not monotone: tagged non-anonymous (its k-part fails), proved so now, or
// above a checked node whose loss it cannot beat.
func (s *searcher) ruledOut(c candidate) bool {
	switch s.tags[c.id] {
	case tagNotAnon:
		return true
	case tagUnknown:
		if s.provablyFails(c.id) {
			return true
		}
	}
	return s.strategy.raiseFloors && s.beaten(s.floors[c.id], c.level)
}

// checkNow checks a candidate at once (one core).
func (s *searcher) checkNow(c candidate) {
	s.consider(s.evaluate(c.id), c)
}

// checkLater queues a candidate for a parallel check, a batch at a time,
// one per core.
func (s *searcher) checkLater(c candidate) {
	s.pending = append(s.pending, c)
	if len(s.pending) == len(s.workers) {
		s.flush()
	}
}

// flush checks the pending candidates in parallel and considers them.
func (s *searcher) flush() {
	if len(s.pending) == 0 {
		return
	}
	for i, ev := range s.checkBatch(s.pending) {
		s.consider(ev, s.pending[i])
	}
	s.pending = s.pending[:0]
}
