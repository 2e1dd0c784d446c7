package kanon

import (
	"context"
	"math"
	"runtime"
	"sync"
)

// searcher is the state of one Search: what is searched, how the lattice is
// traversed (chosen once, in chooseStep), what is known about its nodes,
// the rolled-up tables kept as sources, and scratch space.
type searcher struct {
	// What is searched; fixed for the search.
	ctx         context.Context
	hist        *Histogram
	opts        Options
	engine      *engine
	metrics     *metrics
	checker     *checker // the models, for sequential checks and the result
	proofs      *kBounds // one- and two-column proofs of non-anonymity
	maxOutliers int64    // floor(SuppressionLimit·rows)
	// minClass is the class size below which every class fails the models
	// (k, or the size l-diversity or t-closeness implies). Rows in such
	// classes never increase along generalisation: their count is monotone
	// even where the models are not.
	minClass int64

	strategy strategy // how the lattice is traversed

	// What is known about the nodes.
	tags []uint8 // tagUnknown, tagAnon or tagNotAnon per node
	// floors[n]: a lower bound of node n's loss from a checked node below
	// it (strategy.raiseFloors only).
	floors    []float64
	bounds    []float64           // data-free lower bound of each candidate's loss
	evaluated map[int]*evaluation // checks made by probes, for their candidates
	best      *evaluation         // the best anonymous node found so far
	pending   []candidate         // candidates waiting for a parallel check
	batch     []*evaluation       // results of the last parallel check

	sources sources // rolled-up tables kept as sources for later roll-ups

	// Scratch space.
	scratch    *scratch  // roll-ups outside checks (stones, results); shared with seq
	sequential worker    // sequential checks
	workers    []*worker // parallel checks, one per core
	levels     []int
	stack      []int       // tagUp/tagDown/raiseFloor work list
	bufs       *searchBufs // nil outside Search

	stats stats
}

// strategy is how a search visits its candidates, chosen once by
// chooseStep so that the loop over them never asks which models or metric
// it runs with.
type strategy struct {
	step func(*searcher, candidate) // visits one candidate
	// linear checks a candidate no tag decided, where anonymity is not
	// monotone: at once, or in a batch across cores.
	linear func(*searcher, candidate)
	// monotonePrivacy: anonymity is monotone along generalisation, so a
	// check tags a cone of the lattice (k-anonymity; l-diversity and
	// t-closeness without suppression).
	monotonePrivacy bool
	// monotoneLoss: the metric never decreases along generalisation under
	// the suppression limit, so an anonymous node beats every node above.
	monotoneLoss bool
	// raiseFloors: the metric never decreases along generalisation whatever
	// is suppressed (MetricDiscernibility), so the loss of any checked node
	// bounds the nodes above it; used where anonymity is not monotone.
	raiseFloors bool
}

// sources are the rolled-up tables a search keeps: a node is rolled up
// from the smallest one below it, not from the histogram (see sources.go).
type sources struct {
	tables []*table // tables[0] is the engine's base table
	rows   int      // rows of tables[1:]
	free   []*table // evicted tables whose buffers clones reuse
	// Stepping stones (see searcher.source): asked for once, or found too
	// large to help.
	stoneAsked  map[int]bool
	stoneTooBig map[int]bool
}

// stats count a search's work: checked is Result.NodesChecked; the others
// measure how well the sources serve (rows rolled up, roll-ups from the
// base).
type stats struct {
	checked    int
	sourceRows int
	fromBase   int
}

// Node tags.
const (
	tagUnknown uint8 = iota
	tagAnon
	tagNotAnon
)

// newSearcher prepares a search of h under opts, with the buffers of bufs,
// and chooses how the lattice is traversed.
func newSearcher(ctx context.Context, h *Histogram, opts Options, bufs *searchBufs) (*searcher, error) {
	e, err := newEngineWith(h, bufs.lat, &bufs.scratch)
	if err != nil {
		return nil, err
	}
	bufs.lat = e.lattice
	s := &searcher{ctx: ctx, hist: h, opts: opts, engine: e, metrics: newMetrics(h), bufs: bufs, stack: bufs.stack}
	s.sources.free = bufs.free
	s.checker = newChecker(h, opts.K, opts.LDiversity, opts.TCloseness)
	// Sequential checks share the searcher's scratch buffers (roll-ups are
	// never concurrent there): one set of large hash tables, not two.
	s.scratch = &bufs.scratch
	s.sequential = worker{scratch: s.scratch, checker: s.checker}
	for i := range max(1, runtime.GOMAXPROCS(0)) {
		if i == len(bufs.workers) {
			bufs.workers = append(bufs.workers, &scratch{})
		}
		s.workers = append(s.workers, &worker{scratch: bufs.workers[i], checker: newChecker(h, opts.K, opts.LDiversity, opts.TCloseness)})
	}
	s.maxOutliers = int64(math.Floor(opts.SuppressionLimit * float64(h.rows)))
	s.tags = resize(bufs.tags, e.lattice.size)
	clear(s.tags)
	bufs.tags = s.tags
	s.sources.tables = []*table{e.base}
	s.minClass = max(effectiveK(opts), s.checker.minTCloseSize())
	s.proofs = newKBounds(e, s.minClass)
	s.proofs.source = s.pairSource
	s.proofs.tagSingles(s.tags, s.maxOutliers)
	s.chooseStep()
	return s, nil
}

// chooseStep picks how candidates are visited, once, so that the loop over
// them never asks which models or metric it runs with (as compress/flate's
// compressor.init picks its step function).
func (s *searcher) chooseStep() {
	o := s.opts
	s.strategy.monotonePrivacy = (o.LDiversity == nil && o.TCloseness == nil) || s.maxOutliers == 0
	s.strategy.monotoneLoss = o.Metric.monotone(s.maxOutliers)
	switch {
	case s.strategy.monotonePrivacy:
		s.strategy.step = (*searcher).probeStep
	default:
		s.strategy.raiseFloors = o.Metric.alwaysMonotone() && !o.Metric.boundIsExact()
		if s.strategy.raiseFloors {
			s.floors = resize(s.bufs.floors, s.engine.lattice.size)
			clear(s.floors)
			s.bufs.floors = s.floors
		}
		s.strategy.step = (*searcher).kProbeStep
		s.strategy.linear = (*searcher).checkNow
		if len(s.workers) > 1 {
			s.strategy.linear = (*searcher).checkLater
		}
	}
}

// searchBufs are the buffers of one Search whose size follows the lattice
// and the histogram (candidate list, tags, hash tables, cached tables).
// Searches take them from searchPool and give them back, so a caller that
// runs many searches — a sweep over k, a service, the benchmark — does not
// allocate and garbage-collect megabytes per search: on Adult (k=100, no
// suppression) that garbage collection was a third of the search's time.
// Nothing a Result holds points into them.
type searchBufs struct {
	lat     *lattice // reused when the heights match
	cands   []candidate
	sorted  []candidate
	keys    []uint64
	keyTmp  []uint64
	bounds  []float64
	tags    []uint8
	floors  []float64
	scratch scratch
	workers []*scratch
	free    []*table // table buffers for clones
	stack   []int
}

var searchPool = sync.Pool{New: func() any { return new(searchBufs) }}

// maxFreeTables bounds the table buffers kept for reuse.
const maxFreeTables = 64

// release hands the buffers back to the pool, keeping the searcher's cached
// tables as buffers for the next search's clones. s may be nil (the search
// failed before it started).
func (b *searchBufs) release(s *searcher) {
	if s != nil {
		b.free = s.sources.free
		for _, t := range s.sources.tables[1:] {
			if len(b.free) < maxFreeTables {
				b.free = append(b.free, t)
			}
		}
		b.stack = s.stack
	}
	searchPool.Put(b)
}

// resize returns buf with length n, reallocating only when too small.
func resize[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}
