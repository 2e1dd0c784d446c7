package kanon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Options configures Search.
type Options struct {
	// K is the k of k-anonymity: every released class has at least K rows.
	// Required, >= 2.
	K int
	// SuppressionLimit is the fraction of rows that may be suppressed, in
	// [0,1). At most floor(SuppressionLimit·rows) rows are suppressed, as in
	// ARX. Zero means no suppression.
	SuppressionLimit float64
	// Metric is the information-loss metric to minimise. Required.
	Metric Metric
	// LDiversity, when set, also requires l-diversity of its sensitive
	// column; the histogram must have been built with that column as
	// HistogramOptions.Sensitive.
	LDiversity *LDiversity
	// TCloseness, when set, also requires t-closeness; same column rule.
	TCloseness *TCloseness
}

func (o *Options) validate(h *Histogram) error {
	const fn = "kanon.Search"
	if o.K < 2 {
		return fmt.Errorf("%s: K must be >= 2 (got %d)", fn, o.K)
	}
	if !(o.SuppressionLimit >= 0 && o.SuppressionLimit < 1) {
		return fmt.Errorf("%s: SuppressionLimit must be in [0,1) (got %v)", fn, o.SuppressionLimit)
	}
	if _, err := ParseMetric(string(o.Metric)); err != nil {
		return fmt.Errorf("%s: Metric: %w", fn, err)
	}
	sens := ""
	if o.LDiversity != nil {
		if err := o.LDiversity.validate(fn); err != nil {
			return err
		}
		sens = o.LDiversity.Sensitive
	}
	if o.TCloseness != nil {
		if err := o.TCloseness.validate(fn); err != nil {
			return err
		}
		if sens != "" && sens != o.TCloseness.Sensitive {
			return fmt.Errorf("%s: LDiversity and TCloseness name different sensitive columns (%q, %q); one is supported", fn, sens, o.TCloseness.Sensitive)
		}
		sens = o.TCloseness.Sensitive
	}
	if sens != "" && h.sensNm != sens {
		return fmt.Errorf("%s: sensitive column %q: the histogram was built with Sensitive %q", fn, sens, h.sensNm)
	}
	return nil
}

// Result is the outcome of a search: the optimal full-domain generalisation.
// Its JSON form is the "kanon" block of the run report.
type Result struct {
	K                int      `json:"k"`
	QuasiIdentifiers []string `json:"quasi_identifiers"`
	// Transformation maps each quasi-identifier to its generalisation level.
	Transformation map[string]int `json:"transformation"`
	// Levels is Transformation in quasi-identifier order.
	Levels []int `json:"levels"`
	// Metric is the metric that was minimised; InformationLoss has its value
	// under that name, and the values of the other metrics for the same
	// transformation and suppression.
	Metric          Metric             `json:"metric"`
	InformationLoss map[string]float64 `json:"information_loss"`
	// PerColumnLoss has the per-column values of multi-dimensional metrics
	// for Metric (entropy, loss, precision).
	PerColumnLoss    map[string]float64 `json:"per_column_loss,omitempty"`
	SuppressionLimit float64            `json:"suppression_limit"`
	Rows             int64              `json:"rows"`
	SuppressedRows   int64              `json:"suppressed_rows"`
	Classes          int                `json:"classes"`
	LDiversity       *LDiversity        `json:"l_diversity,omitempty"`
	TCloseness       *TCloseness        `json:"t_closeness,omitempty"`
	// LatticeSize is the number of transformations; NodesChecked how many
	// the search had to roll up.
	LatticeSize  int `json:"lattice_size"`
	NodesChecked int `json:"nodes_checked"`
}

// ErrNoSolution is returned when no transformation satisfies the models
// within the suppression limit (for example k larger than the input).
var ErrNoSolution = errors.New("kanon: no transformation satisfies the privacy models within the suppression limit")

// node tags
const (
	tagUnknown uint8 = iota
	tagAnon
	tagNotAnon
)

type searcher struct {
	ctx         context.Context
	h           *Histogram
	o           Options
	e           *engine
	m           *metrics
	chk         *checker
	maxOutliers int64
	tags        []uint8
	monoCrit    bool // anonymity is monotone: predictive tagging is exact
	monoMetric  bool
	cache       []*table
	s           *scratch  // for roll-ups outside checks (stones, results)
	w0          worker    // sequential checks
	workers     []*worker // parallel checks
	checked     int
	lv2         []int
	evaluated   map[int]*evaluation // anonymous nodes checked by probes
	srcRows     int
	fromBase    int
	cachedRows  int
	badStone    map[int]bool // stepping stones too large to help
	stoneDemand map[int]bool // stones asked for once (built the second time)
	free        []*table     // evicted tables whose buffers clones reuse
	kEff        int64        // classes below this size always fail (k, or l's minimum)
	kb          *kBounds
	stack       []int       // tagUp/tagDown work list
	bufs        *searchBufs // nil outside Search
}

// searchBufs are the buffers of one Search whose size follows the lattice
// and the histogram (candidate list, tags, hash tables, cached tables).
// Searches take them from searchPool and give them back, so a caller that
// runs many searches — a sweep over k, a service, the benchmark — does not
// allocate and garbage-collect megabytes per search: on Adult (k=100, no
// suppression) that garbage collection was a third of the search's time.
// Nothing a Result holds points into them.
type searchBufs struct {
	lat    *lattice // reused when the heights match
	cands  []candidate
	sorted []candidate
	keys   []uint64
	keyTmp []uint64
	bounds []float64
	tags   []uint8
	s      scratch
	ws     []*scratch
	free   []*table // table buffers for clones
	stack  []int
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

// Search finds the transformation of minimal information loss that satisfies
// k-anonymity (and the l/t models of opts) with at most
// floor(SuppressionLimit·rows) suppressed rows.
//
// The search is exact. Nodes are visited in order of a lower bound of their
// loss, which needs no data (for MetricEntropy the bound is the loss itself);
// the search stops when no unvisited node can beat the best found. Anonymity
// is decided by rolling the histogram (or the smallest already rolled-up
// table below the node) up to the node, and tagged through the lattice
// (non-anonymous downwards, anonymous upwards) wherever the models are
// monotone: k-anonymity always is (a class at or above k stays so when
// merged, and merging classes below k can only lift rows above k), and
// l-diversity and t-closeness are without suppression.
//
// Ties in loss go to the transformation on the lower lattice level (as
// ARX's FLASH implementation does); remaining ties to ARX's FLASH ordering
// (lower average relative level first, then more distinct values kept),
// then to the lexically smallest transformation. ARX itself resolves those last ties in traversal order, so
// on exact ties of loss and level the transformations may differ while the
// loss is the same.
func Search(ctx context.Context, h *Histogram, opts Options) (*Result, error) {
	if h == nil {
		return nil, errors.New("kanon.Search: nil histogram")
	}
	if err := opts.validate(h); err != nil {
		return nil, err
	}
	if h.rows == 0 {
		return nil, errors.New("kanon.Search: empty input (no rows)")
	}
	bufs := searchPool.Get().(*searchBufs)
	var s *searcher
	defer func() { bufs.release(s) }()
	e, err := newEngineWith(h, bufs.lat)
	if err != nil {
		return nil, fmt.Errorf("kanon.Search: %w", err)
	}
	bufs.lat = e.lat
	s = &searcher{ctx: ctx, h: h, o: opts, e: e, m: newMetrics(h), bufs: bufs, stack: bufs.stack}
	s.chk = newChecker(h, opts.K, opts.LDiversity, opts.TCloseness)
	// Sequential checks share the searcher's scratch buffers (roll-ups are
	// never concurrent there): one set of large hash tables, not two.
	s.s = &bufs.s
	s.w0.chk, s.w0.s = s.chk, s.s
	for i := range max(1, runtime.GOMAXPROCS(0)) {
		if i == len(bufs.ws) {
			bufs.ws = append(bufs.ws, &scratch{})
		}
		s.workers = append(s.workers, &worker{s: bufs.ws[i], chk: newChecker(h, opts.K, opts.LDiversity, opts.TCloseness)})
	}
	s.free = bufs.free
	s.maxOutliers = int64(math.Floor(opts.SuppressionLimit * float64(h.rows)))
	s.tags = resize(bufs.tags, s.e.lat.size)
	clear(s.tags)
	bufs.tags = s.tags
	s.monoCrit = (opts.LDiversity == nil && opts.TCloseness == nil) || s.maxOutliers == 0
	s.monoMetric = opts.Metric.monotone(s.maxOutliers)
	s.cache = []*table{s.e.base}
	s.kEff = max(effectiveK(opts), s.chk.minTCloseSize())
	s.kb = newKBounds(s.e, s.kEff)
	s.kb.source = s.pairSource
	s.kb.tagSingles(s.tags, s.maxOutliers)
	return s.run()
}

type candidate struct {
	id       int
	bound    float64
	level    int
	prec     float64 // Σ level/height: ARX's second FLASH criterion
	distinct float64 // Σ distinct(level)/distinct(0): ARX's third, larger first
}

func (s *searcher) run() (*Result, error) {
	lat := s.e.lat
	b := s.bufs
	cands := resize(b.cands, lat.size)
	b.cands = cands
	lv := make([]int, 0, len(lat.heights))
	// level/height per column and level, divided once (the same values, so
	// the same sums, as dividing per node).
	precOf := make([][]float64, len(lat.heights))
	for col, h := range lat.heights {
		precOf[col] = make([]float64, h)
		if h > 1 {
			for l := range h {
				precOf[col][l] = float64(l) / float64(h-1)
			}
		}
	}
	for id := range lat.size {
		lv = lat.levels(id, lv)
		c := candidate{id: id, bound: s.m.bound(s.o.Metric, lv)}
		for col, l := range lv {
			c.level += l
			c.prec += precOf[col][l]
			c.distinct += s.m.distinct[col][l]
		}
		cands[id] = c
	}
	b.sorted = resize(b.sorted, lat.size)
	b.keys = resize(b.keys, lat.size)
	b.keyTmp = resize(b.keyTmp, lat.size)
	cands = sortCandidates(cands, b.sorted, b.keys, b.keyTmp)
	bounds := resize(b.bounds, lat.size)
	b.bounds = bounds
	for _, c := range cands {
		bounds[c.id] = c.bound
	}
	s.evaluated = make(map[int]*evaluation)
	var best *evaluation
	consider := func(ev *evaluation, c candidate) {
		if !ev.anonymous {
			return
		}
		ev.level = c.level
		if best == nil || ev.loss < best.loss || (ev.loss == best.loss && c.level < best.level) {
			best = ev
		}
	}
	var pending []candidate
	flush := func() {
		if len(pending) == 0 {
			return
		}
		nodes := make([]int, len(pending))
		for i, c := range pending {
			nodes[i] = c.id
		}
		for i, ev := range s.checkBatch(nodes) {
			consider(ev, pending[i])
		}
		pending = pending[:0]
	}
	for i, c := range cands {
		if i&63 == 0 {
			if err := s.ctx.Err(); err != nil {
				return nil, err
			}
		}
		if best == nil && len(pending) > 0 && c.bound > pending[0].bound {
			// A pending check may set the bound that ends the search.
			flush()
		}
		if best != nil {
			if c.bound > best.loss || (c.bound == best.loss && c.level >= best.level) {
				// Sorted by bound: nothing later can have lower loss, and
				// equal bounds only matter on a lower level.
				if c.bound > best.loss {
					break
				}
				continue
			}
		}
		tag := s.tags[c.id]
		if tag == tagNotAnon {
			// Set by monotone tagging or by a k-only proof (valid for
			// every model).
			continue
		}
		if tag == tagAnon && s.monoCrit && s.monoMetric && s.evaluated[c.id] == nil {
			// An anonymous predecessor exists with no more loss on a lower
			// level; it was or will be considered.
			continue
		}
		if tag == tagUnknown && s.provablyFails(c.id) {
			continue
		}
		if s.monoCrit && tag == tagUnknown {
			// Flash-style probe: walk a path of undecided nodes upwards from
			// the candidate and binary-search it for the anonymity border.
			// Every check tags a cone of the lattice, so most candidates
			// are decided without being rolled up themselves.
			// Paths stop at nodes that cannot beat the best found. (Capping
			// them by the loss of any anonymous node seen would be valid too,
			// but shorter paths tag less: measured, it triples the checks.)
			limit := math.Inf(1)
			if best != nil {
				limit = best.loss
			}
			s.probe(c.id, bounds, limit)
			tag = s.tags[c.id]
			if tag == tagNotAnon {
				continue
			}
			if tag == tagAnon && s.monoMetric && s.evaluated[c.id] == nil {
				continue
			}
		}
		if !s.monoCrit && len(s.workers) > 1 {
			// Without tagging, checks do not depend on each other: run
			// them a batch at a time on all cores, in candidate order.
			pending = append(pending, c)
			if len(pending) == len(s.workers) {
				flush()
			}
			continue
		}
		ev := s.evaluated[c.id]
		if ev == nil {
			ev = s.evaluate(c.id)
		}
		consider(ev, c)
	}
	flush()
	if best == nil {
		return nil, ErrNoSolution
	}
	return s.result(best), nil
}

type evaluation struct {
	node      int
	anonymous bool
	loss      float64
	perColumn []float64
	level     int
	outliers  int64
}

// evaluate rolls the histogram up to node, decides anonymity, tags the
// lattice and, when anonymous, computes the loss.
func (s *searcher) evaluate(node int) *evaluation {
	src := s.source(node)
	ev, t, small := s.check(node, src, &s.w0)
	s.integrate(ev, t, small, src)
	return ev
}

// worker holds what one goroutine needs to check nodes.
type worker struct {
	s   *scratch
	chk *checker
	lv  []int
}

// check rolls src up to node, decides anonymity and computes the loss of an
// anonymous node. It touches no searcher state, so checks run in parallel.
// t lives in w's scratch buffers until w's next check.
func (s *searcher) check(node int, src *table, w *worker) (ev *evaluation, t *table, small int64) {
	t, cl := s.e.rollup(src, node, w.s)
	ev = &evaluation{node: node}
	suppressed := make([]bool, cl.n())
	for i := range cl.n() {
		if !w.chk.ok(cl, i) {
			suppressed[i] = true
			ev.outliers += cl.counts[i]
		}
		if cl.counts[i] < s.kEff {
			small += cl.counts[i]
		}
	}
	ev.anonymous = ev.outliers <= s.maxOutliers
	if ev.anonymous {
		w.lv = s.e.lat.levels(node, w.lv)
		ev.loss, ev.perColumn = s.m.value(s.o.Metric, w.lv, cl, suppressed)
	}
	return ev, t, small
}

// integrate records a check: caches its table and tags the lattice.
func (s *searcher) integrate(ev *evaluation, t *table, small int64, src *table) {
	s.checked++
	s.srcRows += src.rows()
	if src == s.e.base {
		s.fromBase++
	}
	s.remember(t)
	node := ev.node
	if s.monoCrit {
		if ev.anonymous {
			s.tagUp(node)
		} else {
			s.tagDown(node)
		}
	} else if !ev.anonymous && small > s.maxOutliers {
		// l and t are not monotone with suppression, but the rows in
		// classes below k are: if they alone exceed the limit, every node
		// below fails too.
		s.tagDown(node)
	}
}

// checkBatch checks nodes in parallel (one worker per core) and integrates
// the results in order.
func (s *searcher) checkBatch(nodes []int) []*evaluation {
	srcs := make([]*table, len(nodes))
	for i, n := range nodes {
		srcs[i] = s.source(n)
	}
	evs := make([]*evaluation, len(nodes))
	tabs := make([]*table, len(nodes))
	smalls := make([]int64, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs[i], tabs[i], smalls[i] = s.check(n, srcs[i], s.workers[i])
		}()
	}
	wg.Wait()
	for i := range nodes {
		s.integrate(evs[i], tabs[i], smalls[i], srcs[i])
	}
	return evs
}

// classesOf rolls the histogram up to node again and returns its classes
// and which of them are suppressed, in freshly allocated memory.
func (s *searcher) classesOf(node int) (*classes, []bool, int64) {
	t, _ := s.e.rollup(s.source(node), node, s.s)
	t = t.clone()
	var keys []uint64
	_ = keys
	cl := s.e.regroup(t, s.s)
	supp := make([]bool, cl.n())
	var out int64
	for i := range cl.n() {
		if !s.chk.ok(cl, i) {
			supp[i] = true
			out += cl.counts[i]
		}
	}
	return cl, supp, out
}

// source picks the smallest cached table below node. When that is the
// histogram itself, it rolls the histogram up to a stepping stone — the
// node with every column of node capped at level 1 — and caches it: level 1
// already merges most values, and the stones are shared by all the nodes
// with the same columns at level 0. A stone is built the second time it is
// asked for: one that serves a single node costs a pass over the histogram
// for nothing (on Adult, k=5 without suppression, a sixth of the search).
func (s *searcher) source(node int) *table {
	best := s.cachedSource(node)
	if best != s.e.base || !s.monoCrit {
		// Without monotone tagging nearly every node is rolled up, mostly
		// from level-0 heavy sources: stones would not be reused enough.
		return best
	}
	lat := s.e.lat
	s.lv2 = lat.levels(node, s.lv2)
	for c, l := range s.lv2 {
		s.lv2[c] = min(l, 1)
	}
	stone := lat.id(s.lv2)
	if stone == node || stone == 0 || s.badStone[stone] {
		return best
	}
	if s.stoneDemand == nil {
		s.stoneDemand = map[int]bool{}
	}
	if !s.stoneDemand[stone] {
		s.stoneDemand[stone] = true
		return best
	}
	t, _ := s.e.rollup(s.e.base, stone, s.s)
	s.srcRows += s.e.base.rows()
	if t.rows()*2 > s.e.base.rows() {
		if s.badStone == nil {
			s.badStone = map[int]bool{}
		}
		s.badStone[stone] = true
		return best
	}
	t = t.cloneInto(s.takeFree(t.rows()))
	s.cache = append(s.cache, t)
	s.cachedRows += t.rows()
	return t
}

func (s *searcher) cachedSource(node int) *table {
	best := s.cache[0]
	for _, t := range s.cache[1:] {
		if t.rows() < best.rows() && s.e.lat.leq(t.node, node) {
			best = t
		}
	}
	return best
}

// cacheBudget bounds the rows of all cached tables, as a multiple of the
// histogram's entries (memory stays proportional to the histogram), and
// cacheMaxRows absolutely (about 180 MB with ten quasi-identifiers).
const (
	cacheBudget  = 128
	cacheMaxRows = 1 << 22
)

func (s *searcher) remember(t *table) {
	if t.rows()*10 > s.e.base.rows()*9 {
		// Barely smaller than the base: not worth the memory.
		return
	}
	if s.cachedRows+t.rows() > s.cacheLimit() {
		largest := 0
		for _, c := range s.cache[1:] {
			largest = max(largest, c.rows())
		}
		if largest <= t.rows() {
			return
		}
	}
	t = t.cloneInto(s.takeFree(t.rows()))
	for s.cachedRows+t.rows() > s.cacheLimit() && len(s.cache) > 1 {
		// Evict the largest cached table (never the base).
		worst := 1
		for i := 2; i < len(s.cache); i++ {
			if s.cache[i].rows() > s.cache[worst].rows() {
				worst = i
			}
		}
		if s.cache[worst].rows() <= t.rows() {
			s.free = append(s.free, t)
			return
		}
		s.cachedRows -= s.cache[worst].rows()
		if len(s.free) < 64 {
			s.free = append(s.free, s.cache[worst])
		}
		s.cache[worst] = s.cache[len(s.cache)-1]
		s.cache = s.cache[:len(s.cache)-1]
	}
	s.cachedRows += t.rows()
	s.cache = append(s.cache, t)
}

func (s *searcher) tagUp(node int) {
	lat := s.e.lat
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

func (s *searcher) tagDown(node int) {
	lat := s.e.lat
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

func (s *searcher) result(best *evaluation) *Result {
	h := s.h
	lv := s.e.lat.levels(best.node, nil)
	r := &Result{
		K:                s.o.K,
		QuasiIdentifiers: slices.Clone(h.qi),
		Transformation:   make(map[string]int, len(h.qi)),
		Levels:           lv,
		Metric:           s.o.Metric,
		InformationLoss:  make(map[string]float64),
		SuppressionLimit: s.o.SuppressionLimit,
		Rows:             h.rows,
		SuppressedRows:   best.outliers,
		LDiversity:       s.o.LDiversity,
		TCloseness:       s.o.TCloseness,
		LatticeSize:      s.e.lat.size,
		NodesChecked:     s.checked,
	}
	for c, q := range h.qi {
		r.Transformation[q] = lv[c]
	}
	cl, supp, _ := s.classesOf(best.node)
	for _, sup := range supp {
		if !sup {
			r.Classes++
		}
	}
	for _, m := range metricNames {
		v, _ := s.m.value(m, lv, cl, supp)
		r.InformationLoss[string(m)] = v
	}
	r.InformationLoss[string(s.o.Metric)] = best.loss
	if best.perColumn != nil {
		r.PerColumnLoss = make(map[string]float64, len(h.qi))
		for c, q := range h.qi {
			r.PerColumnLoss[q] = best.perColumn[c]
		}
	}
	return r
}

// probe decides the anonymity of node by a binary search on a greedy path of
// undecided nodes from node upwards (the core of Kohlmayer et al.'s FLASH).
//
// Nodes whose loss bound exceeds limit (the best loss found so far) cannot
// be the optimum; the path stops before them, as ARX prunes transformations
// of insufficient utility.
func (s *searcher) probe(node int, bounds []float64, limit float64) {
	lat := s.e.lat
	path := []int{node}
	cur := node
	for {
		next := -1
		for c := range lat.heights {
			if lat.level(cur, c) == lat.heights[c]-1 {
				continue
			}
			m := cur + lat.mult[c]
			if s.tags[m] != tagUnknown || bounds[m] > limit {
				continue
			}
			if next < 0 || bounds[m] < bounds[next] || (bounds[m] == bounds[next] && m < next) {
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
		if ev.anonymous {
			s.evaluated[n] = ev
			hi = mid - 1
		} else {
			lo = mid + 1
		}
	}
}

// provablyFails checks the one- and two-column bounds of kBounds and tags
// the node (and, with monotone models, all below it) when they prove it
// non-anonymous.
func (s *searcher) provablyFails(node int) bool {
	s.lv2 = s.e.lat.levels(node, s.lv2)
	if !s.kb.fails(s.lv2, s.maxOutliers, true) {
		return false
	}
	// The bound counts rows in classes below k only, and those never
	// increase along generalisation: the proof holds for every node below,
	// whatever the other models.
	s.tagDown(node)
	return true
}

// sortCandidates writes cands to out ordered by (bound, level, prec,
// distinct, id) and returns out; keys and tmp are scratch, all of
// len(cands). It radix-sorts packed uint64 keys (the bound's bits,
// truncated, and the index) and fixes the order within runs of equal
// truncated bounds exactly: several times faster than a comparison sort of
// the structs.
func sortCandidates(cands, out []candidate, keys, tmp []uint64) []candidate {
	for i, c := range cands {
		b := c.bound
		if b < 0 || b != b {
			b = 0 // bounds are >= 0; keep NaN out of the bit trick
		}
		keys[i] = math.Float64bits(b)&^(1<<candIndexBits-1) | uint64(i)
	}
	keys = radixSortHigh(keys, tmp, candIndexBits)
	for i, k := range keys {
		out[i] = cands[k&(1<<candIndexBits-1)]
	}
	less := func(a, b candidate) int {
		if c := cmp.Compare(a.bound, b.bound); c != 0 {
			return c
		}
		if c := cmp.Compare(a.level, b.level); c != 0 {
			return c
		}
		if c := cmp.Compare(a.prec, b.prec); c != 0 {
			return c
		}
		if c := cmp.Compare(b.distinct, a.distinct); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	}
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && keys[j]>>candIndexBits == keys[i]>>candIndexBits {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(out[i:j], less)
		}
		i = j
	}
	return out
}

// candIndexBits is the width of the candidate index in sortCandidates' keys
// (maxLatticeSize fits).
const candIndexBits = 24

// radixSortHigh sorts keys by their bits from lo up, stably (LSD radix sort,
// a byte at a time, skipping bytes all keys share). With the low bits
// unique and ascending in input order, as sortCandidates' indices are, the
// result is the fully sorted keys. It returns keys or tmp, whichever holds
// the result.
func radixSortHigh(keys, tmp []uint64, lo uint) []uint64 {
	if len(keys) < 2 {
		return keys
	}
	var cnt [256]int
	for shift := lo; shift < 64; shift += 8 {
		clear(cnt[:])
		for _, k := range keys {
			cnt[byte(k>>shift)]++
		}
		if cnt[byte(keys[0]>>shift)] == len(keys) {
			continue
		}
		sum := 0
		for i, c := range cnt {
			cnt[i] = sum
			sum += c
		}
		for _, k := range keys {
			d := byte(k >> shift)
			tmp[cnt[d]] = k
			cnt[d]++
		}
		keys, tmp = tmp, keys
	}
	return keys
}

func (s *searcher) cacheLimit() int {
	return min(cacheBudget*s.e.base.rows(), cacheMaxRows)
}

// pairSource picks the smallest cached table at or below levels (la, lb) on
// columns a and b.
func (s *searcher) pairSource(a, b, la, lb int) *table {
	best := s.e.base
	lat := s.e.lat
	for _, t := range s.cache[1:] {
		if t.rows() < best.rows() && lat.level(t.node, a) <= la && lat.level(t.node, b) <= lb {
			best = t
		}
	}
	return best
}

// Evaluate returns the result of one given transformation (levels in
// quasi-identifier order) under opts: its suppressed rows, classes and the
// value of every metric, whether or not it satisfies the models within the
// suppression limit (Anonymous reports that). It is what Search computes
// for the optimum, for any node — to compare a chosen transformation with
// the optimum, or with another tool's.
func Evaluate(ctx context.Context, h *Histogram, opts Options, levels []int) (*Result, bool, error) {
	if h == nil {
		return nil, false, errors.New("kanon.Evaluate: nil histogram")
	}
	if err := opts.validate(h); err != nil {
		return nil, false, err
	}
	if h.rows == 0 {
		return nil, false, errors.New("kanon.Evaluate: empty input (no rows)")
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	r := &Result{K: opts.K, QuasiIdentifiers: slices.Clone(h.qi), Levels: slices.Clone(levels), LDiversity: opts.LDiversity, TCloseness: opts.TCloseness}
	s, err := newSearcherFor(h, r)
	if err != nil {
		return nil, false, fmt.Errorf("kanon.Evaluate: %w", err)
	}
	s.o = opts
	s.maxOutliers = int64(math.Floor(opts.SuppressionLimit * float64(h.rows)))
	node := s.e.lat.id(levels)
	cl, supp, out := s.classesOf(node)
	lv := s.e.lat.levels(node, nil)
	loss, per := s.m.value(opts.Metric, lv, cl, supp)
	res := s.result(&evaluation{node: node, loss: loss, perColumn: per, outliers: out})
	return res, out <= s.maxOutliers, nil
}

// takeFree returns an evicted table with room for rows, or nil.
func (s *searcher) takeFree(rows int) *table {
	for i, t := range s.free {
		if cap(t.counts) >= rows {
			s.free[i] = s.free[len(s.free)-1]
			s.free = s.free[:len(s.free)-1]
			return t
		}
	}
	return nil
}

// effectiveK is the class size below which every class fails the models:
// k, or for l-diversity the l distinct values a class needs (so at least l
// rows). Rows in such classes never increase along generalisation, which
// makes them usable for pruning even when l itself is not monotone.
func effectiveK(o Options) int64 {
	k := int64(o.K)
	if l := o.LDiversity; l != nil {
		need := int64(l.L) // distinct and recursive: floor(l) values, as ARX
		if l.Variant == LEntropy {
			need = int64(math.Ceil(l.L)) // entropy log(m) >= log(l) needs m >= l
		}
		k = max(k, need)
	}
	return k
}
