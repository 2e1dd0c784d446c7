package kanon

import (
	"context"
	"math"
	"runtime"
	"sync"
)

// searcher is the state of one Search: what is searched, how the lattice is
// traversed (chosen once, in newSearcher), what is known about its nodes,
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

	// How the lattice is traversed.
	step func(*searcher, candidate) // visits one candidate; see chooseStep
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

	// What is known about the nodes.
	tags []uint8 // tagUnknown, tagAnon or tagNotAnon per node
	// floors[n]: a lower bound of node n's loss from a checked node below
	// it (raiseFloors only).
	floors    []float64
	bounds    []float64           // data-free lower bound of each node's loss
	evaluated map[int]*evaluation // anonymous nodes checked by probes
	best      *evaluation         // the best anonymous node found so far
	pending   []candidate         // candidates waiting for a parallel check
	batch     []*evaluation       // results of the last parallel check

	// Rolled-up tables kept as sources for later roll-ups.
	cache      []*table // cache[0] is the engine's base table
	cachedRows int      // rows of cache[1:]
	free       []*table // evicted tables whose buffers clones reuse
	// Stepping stones (see source): asked for once, or found too large.
	stoneAsked  map[int]bool
	stoneTooBig map[int]bool

	// Scratch space.
	scratch *scratch  // roll-ups outside checks (stones, results); shared with seq
	seq     worker    // sequential checks
	workers []*worker // parallel checks, one per core
	levels  []int
	stack   []int       // tagUp/tagDown work list
	bufs    *searchBufs // nil outside Search

	// Counters: checked is Result.NodesChecked; the others measure how
	// well the cache serves (rows rolled up, roll-ups from the base).
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
	bufs.lat = e.lat
	s := &searcher{ctx: ctx, hist: h, opts: opts, engine: e, metrics: newMetrics(h), bufs: bufs, stack: bufs.stack, free: bufs.free}
	s.checker = newChecker(h, opts.K, opts.LDiversity, opts.TCloseness)
	// Sequential checks share the searcher's scratch buffers (roll-ups are
	// never concurrent there): one set of large hash tables, not two.
	s.scratch = &bufs.scratch
	s.seq = worker{scratch: s.scratch, checker: s.checker}
	for i := range max(1, runtime.GOMAXPROCS(0)) {
		if i == len(bufs.workers) {
			bufs.workers = append(bufs.workers, &scratch{})
		}
		s.workers = append(s.workers, &worker{scratch: bufs.workers[i], checker: newChecker(h, opts.K, opts.LDiversity, opts.TCloseness)})
	}
	s.maxOutliers = int64(math.Floor(opts.SuppressionLimit * float64(h.rows)))
	s.tags = resize(bufs.tags, e.lat.size)
	clear(s.tags)
	bufs.tags = s.tags
	s.cache = []*table{e.base}
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
	s.monotonePrivacy = (o.LDiversity == nil && o.TCloseness == nil) || s.maxOutliers == 0
	s.monotoneLoss = o.Metric.monotone(s.maxOutliers)
	switch {
	case s.monotonePrivacy:
		s.step = (*searcher).probeStep
	default:
		s.raiseFloors = o.Metric.alwaysMonotone() && !o.Metric.boundIsExact()
		if s.raiseFloors {
			s.floors = resize(s.bufs.floors, s.engine.lat.size)
			clear(s.floors)
			s.bufs.floors = s.floors
		}
		s.step = (*searcher).kProbeStep
		s.linear = (*searcher).checkNow
		if len(s.workers) > 1 {
			s.linear = (*searcher).checkLater
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
		b.free = s.free
		for _, t := range s.cache[1:] {
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
