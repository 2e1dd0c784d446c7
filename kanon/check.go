package kanon

import "sync"

// evaluation is what a check found about a node.
type evaluation struct {
	node      int
	anonymous bool
	loss      float64 // for anonymous nodes
	perColumn []float64
	level     int // of the candidate considered (see consider)
	rank      int
	// outliers: rows in classes failing the models; of a node that is not
	// anonymous, only as many as proved it (more than the limit).
	outliers int64
	// small is the rows in classes below the minimal class size, which
	// every model fails.
	small int64
	// floor is the node's value of an always-monotone metric, a lower bound
	// of the loss of every node above (searcher.raiseFloors only).
	floor float64
}

// worker holds what one goroutine needs to check nodes.
type worker struct {
	scratch *scratch
	checker *checker
	levels  []int
	supp    []bool
}

// evaluate rolls the histogram up to node, decides anonymity, tags the
// lattice and, when anonymous, computes the loss.
func (s *searcher) evaluate(node int) *evaluation {
	src := s.source(node)
	ev, t := s.check(node, src, &s.sequential)
	s.integrate(ev, t, src)
	return ev
}

// check rolls src up to node, decides anonymity and computes the loss of an
// anonymous node. It touches no searcher state, so checks run in parallel.
// t lives in w's scratch buffers until w's next check. The sensitive
// frequencies are merged only when the class sizes leave the node a chance
// (most nodes the k-part probes check fail on sizes alone), and the
// models are asked only until the suppression limit is exceeded.
func (s *searcher) check(node int, src *table, w *worker) (ev *evaluation, t *table) {
	t = s.engine.rollupCounts(src, node, w.scratch)
	ev = &evaluation{node: node}
	for _, n := range t.counts {
		if n < s.minClass {
			ev.small += n
		}
	}
	w.levels = s.engine.lattice.levels(node, w.levels)
	if s.strategy.raiseFloors {
		// The always-monotone metrics need class sizes only.
		ev.floor, _ = s.metrics.value(s.opts.Metric, w.levels, t, nil)
	}
	if ev.small > s.maxOutliers {
		ev.outliers = ev.small
		return ev, t
	}
	s.engine.mergeValues(src, t, w.scratch)
	w.supp = resize(w.supp, t.rows())
	suppressed := w.supp
	for i, n := range t.counts {
		ok := w.checker.ok(t, i)
		suppressed[i] = !ok
		if !ok {
			ev.outliers += n
			if ev.outliers > s.maxOutliers {
				return ev, t
			}
		}
	}
	ev.anonymous = true
	ev.loss, ev.perColumn = s.metrics.value(s.opts.Metric, w.levels, t, suppressed)
	return ev, t
}

// integrate records a check: caches its table and tags the lattice.
func (s *searcher) integrate(ev *evaluation, t, src *table) {
	s.stats.checked++
	s.stats.sourceRows += src.rows()
	if src == s.engine.base {
		s.stats.fromBase++
	}
	s.remember(t)
	node := ev.node
	if s.tagsUp(ev) {
		s.tagUp(node)
	} else {
		s.tagDown(node)
	}
	if s.strategy.raiseFloors {
		s.raiseFloor(node, ev.floor)
	}
}

// tagsUp reports whether the property tagged through the lattice holds at
// the node ev checked. Where anonymity is monotone, it is anonymity. Where
// it is not (l or t with suppression), it is the k-part: the rows in
// classes below the minimal size, which every model fails, fit the
// suppression limit. Those rows never increase along generalisation, so
// the k-part holds above such a node and fails below one where it fails
// (ARX's K_ANONYMOUS property); tagAnon then means only that.
func (s *searcher) tagsUp(ev *evaluation) bool {
	if s.strategy.monotonePrivacy {
		return ev.anonymous
	}
	return ev.small <= s.maxOutliers
}

// checkBatch checks the candidates in parallel (one worker per core) and
// integrates the results in order.
func (s *searcher) checkBatch(cands []candidate) []*evaluation {
	n := len(cands)
	srcs := make([]*table, n)
	for i, c := range cands {
		srcs[i] = s.source(c.id)
	}
	s.batch = resize(s.batch, n)
	evs := s.batch
	tabs := make([]*table, n)
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs[i], tabs[i] = s.check(c.id, srcs[i], s.workers[i])
		}()
	}
	wg.Wait()
	for i := range cands {
		s.integrate(evs[i], tabs[i], srcs[i])
	}
	return evs
}
