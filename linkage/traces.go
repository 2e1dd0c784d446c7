package linkage

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// TraceOptions configures Traces.
type TraceOptions struct {
	// Columns names the point columns, in the order Raw and Published get
	// their keys: every published column but the trace's unit (the trip id,
	// or the subject's pseudonym). Required.
	Columns []string
	// Block lists the positions (in Columns) of the columns that place a
	// point, e.g. the cell and the time bucket: a subject whose readings
	// contain a point has a reading in the point's block, so only the raw
	// rows of the sampled traces' blocks are indexed. Required.
	Block []int
	// Traces is the number of published traces sampled; 0 means 2,000.
	Traces int
	// Points is p, the points drawn per trace for the unicity after
	// publication; 0 means 4.
	Points int
	// Diagnose is the number of sampled traces whose linkage is measured
	// again with columns left out (TraceResult.Without, Drivers); 0 means
	// 300, negative none.
	Diagnose int
	// MaxPairs bounds memory: the (point, subject) and (point, trace) pairs
	// and candidate blocks held, about 16 bytes each. Past it, the traces
	// with the highest keyed priority leave the sample (Evicted) and their
	// blocks are freed. 0 means 1<<22 (about 64 MiB).
	MaxPairs int
	// Key draws the sample and the points. Required.
	Key *Key
	// Confidence of the intervals; 0 means 0.95.
	Confidence float64
	// DriverTarget is the linkage the search for driving columns tries to
	// reach (TraceResult.Drivers stops there); 0 means 0.05.
	DriverTarget float64
}

// Traces measures how well published traces can be linked back to the
// subjects of the raw data, by an adversary who holds the raw readings and
// projects them to the published precision (the member who runs the
// pipeline, a leak of its raw data, a vehicle's own app), and how unique
// they are among the published traces. It works in two phases over the
// same rows, in bounded memory:
//
//  1. Offer every row's unit, block and true subject: a keyed uniform
//     sample of units is drawn (the lowest keyed priorities), with the
//     blocks each one touches. Seal then keeps the first Traces of the
//     units that were published.
//  2. Raw every raw row at published precision and Published every
//     published row: the raw rows in the sampled traces' blocks are
//     indexed by point, and so are the published ones; the sampled traces'
//     own points are collected.
//
// Result then counts, for each sampled trace, the subjects whose raw
// readings contain every one of its published points (linked: exactly
// one) and the published traces that contain p points drawn from it.
type Traces struct {
	opts TraceOptions
	key  *Key
	// prfBuf is the scratch of the keyed priorities (admit, per row).
	prfBuf prfBuf
	block  []int // positions of the block columns
	conf   float64

	phase int // 1 offering, 2 indexing, 3 done

	// phase 1
	cands     map[uint64]*cand
	heap      candHeap // max-heap by priority
	candCap   int
	candPairs int
	bar       uint64 // units with this priority or more are not admitted
	evicted1  bool
	lastUnit  uint64
	lastCand  *cand
	rowsSeen  int64

	// phase 2
	traces      []*trace          // the sample, by priority
	byUnit      map[uint64]*trace // the sample by unit
	blocks      map[uint64]*blk
	pairs       int
	evicted     int
	undiagnosed bool // the diagnosis shrank to stay within MaxPairs
	census      bool
	lastBlk     uint64
	lastB       *blk
	blockBuf    []uint64
	pointBuf    []uint64
}

type cand struct {
	unit, prio, truth uint64
	blocks            []uint64
	gone              bool
	idx               int
}

type candHeap []*cand

func (h candHeap) Len() int           { return len(h) }
func (h candHeap) Less(i, j int) bool { return h[i].prio > h[j].prio }
func (h candHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *candHeap) Push(x any) { c := x.(*cand); c.idx = len(*h); *h = append(*h, c) }
func (h *candHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// trace is a sampled published trace.
type trace struct {
	unit, prio, truth uint64
	blocks            []uint64
	points            []bpoint // its published points (block, point), deduplicated in Result
	diag              bool
	cols              []uint64 // diag: per published row, its column keys
}

type bpoint struct{ block, point uint64 }

// blk is one block of phase 2: the raw and published rows in it.
type blk struct {
	refs, diagRefs int
	raw, pub       []pair // (point, subject) and (point, unit)
	rawSorted      int    // raw[:rawSorted] is sorted and deduplicated
	pubSorted      int
	diagRows       []uint64 // diag: per raw row, subject then its column keys
}

type pair struct{ point, id uint64 }

// NewTraces validates opts.
func NewTraces(opts TraceOptions) (*Traces, error) {
	const fn = "linkage.NewTraces"
	if len(opts.Columns) == 0 {
		return nil, fmt.Errorf("%s: Columns is required", fn)
	}
	if len(opts.Block) == 0 {
		return nil, fmt.Errorf("%s: Block is required", fn)
	}
	for _, b := range opts.Block {
		if b < 0 || b >= len(opts.Columns) {
			return nil, fmt.Errorf("%s: Block position %d is outside Columns (%d)", fn, b, len(opts.Columns))
		}
	}
	if opts.Key == nil {
		return nil, fmt.Errorf("%s: Key is required", fn)
	}
	if opts.Traces < 0 || opts.Points < 0 || opts.MaxPairs < 0 {
		return nil, fmt.Errorf("%s: Traces, Points and MaxPairs must be >= 0", fn)
	}
	conf, err := confidence(fn, opts.Confidence)
	if err != nil {
		return nil, err
	}
	if opts.Traces == 0 {
		opts.Traces = 2000
	}
	if opts.Points == 0 {
		opts.Points = 4
	}
	if opts.Diagnose == 0 {
		opts.Diagnose = 300
	}
	if opts.MaxPairs == 0 {
		opts.MaxPairs = 1 << 22
	}
	if opts.DriverTarget < 0 || opts.DriverTarget >= 1 {
		return nil, fmt.Errorf("%s: DriverTarget must be in [0, 1), got %v", fn, opts.DriverTarget)
	}
	if opts.DriverTarget == 0 {
		opts.DriverTarget = 0.05
	}
	t := &Traces{opts: opts, key: opts.Key, block: slices.Clone(opts.Block), conf: conf, phase: 1,
		cands: map[uint64]*cand{}, bar: ^uint64(0)}
	// Units are offered before it is known which are published: hold
	// many more candidates than the sample needs.
	t.candCap = max(16*opts.Traces, 1024)
	return t, nil
}

func confidence(fn string, c float64) (float64, error) {
	if c == 0 {
		return 0.95, nil
	}
	if !(c > 0 && c < 1) {
		return 0, fmt.Errorf("%s: Confidence must be in (0, 1), got %v", fn, c)
	}
	return c, nil
}

// blockKeys computes the block key of every row from the block columns.
func (t *Traces) blockKeys(cols [][]uint64, n int) []uint64 {
	t.blockBuf = slices.Grow(t.blockBuf[:0], n)[:n]
	bc := make([][]uint64, len(t.block))
	for i, b := range t.block {
		bc[i] = cols[b]
	}
	CombineColumns(bc, t.blockBuf)
	return t.blockBuf
}

// Offer takes rows of phase 1: per row its unit (0: the row belongs to no
// trace), its true subject (0: unknown) and the keys of the block columns
// (in the order of TraceOptions.Block).
func (t *Traces) Offer(units, truths []uint64, blockCols [][]uint64) error {
	const fn = "linkage.Traces.Offer"
	if t.phase != 1 {
		return fmt.Errorf("%s: called after Seal", fn)
	}
	n := len(units)
	if len(truths) != n || len(blockCols) != len(t.block) {
		return fmt.Errorf("%s: %d units, %d truths, %d block columns (want %d)", fn, n, len(truths), len(blockCols), len(t.block))
	}
	for _, c := range blockCols {
		if len(c) != n {
			return fmt.Errorf("%s: a block column has %d keys for %d rows", fn, len(c), n)
		}
	}
	t.rowsSeen += int64(n)
	t.blockBuf = slices.Grow(t.blockBuf[:0], n)[:n]
	CombineColumns(blockCols, t.blockBuf)
	for i, u := range units {
		if u == 0 {
			continue
		}
		c := t.lastCand
		if u != t.lastUnit || (c != nil && c.gone) {
			c = t.admit(u, truths[i])
			t.lastUnit, t.lastCand = u, c
		}
		if c == nil {
			continue
		}
		if c.truth != truths[i] {
			c.truth = 0 // two subjects in one trace: the truth is unknown
		}
		b := t.blockBuf[i]
		if k := len(c.blocks); k > 0 && c.blocks[k-1] == b {
			continue
		}
		c.blocks = append(c.blocks, b)
		t.candPairs++
		if len(c.blocks)&63 == 0 { // a long trace: drop repeated blocks
			slices.Sort(c.blocks)
			d := len(c.blocks)
			c.blocks = slices.Compact(c.blocks)
			t.candPairs -= d - len(c.blocks)
		}
	}
	for t.candPairs > t.opts.MaxPairs && len(t.heap) > 1 {
		t.evictCand()
	}
	return nil
}

// admit returns unit's candidate, admitting it when its priority is among
// the lowest candCap seen, or nil. A unit rejected once is never admitted
// later (the bar only falls), so the candidates are exactly the lowest.
func (t *Traces) admit(unit, truth uint64) *cand {
	if c, ok := t.cands[unit]; ok {
		return c
	}
	prio := t.key.prfInto(&t.prfBuf, domTrace, unit)
	if prio >= t.bar {
		return nil
	}
	c := &cand{unit: unit, prio: prio, truth: truth}
	t.cands[unit] = c
	heap.Push(&t.heap, c)
	if len(t.heap) > t.candCap {
		t.evictCand()
		if c.gone {
			return nil
		}
	}
	return c
}

func (t *Traces) evictCand() {
	c := heap.Pop(&t.heap).(*cand)
	c.gone = true
	delete(t.cands, c.unit)
	t.candPairs -= len(c.blocks)
	c.blocks = nil
	t.bar = c.prio
	t.evicted1 = true
}

// Seal ends phase 1: the sample is the Traces candidates with the lowest
// priority for which published reports true (nil: every unit offered is
// published), a uniform sample of the published traces.
func (t *Traces) Seal(published func(unit uint64) bool) error {
	if t.phase != 1 {
		return errors.New("linkage.Traces.Seal: called twice")
	}
	t.phase = 2
	all := make([]*cand, 0, len(t.heap))
	for _, c := range t.heap {
		if published == nil || published(c.unit) {
			all = append(all, c)
		}
	}
	t.heap, t.cands, t.lastCand = nil, nil, nil
	slices.SortFunc(all, func(a, b *cand) int { return cmp.Compare(a.prio, b.prio) })
	t.census = !t.evicted1 && len(all) <= t.opts.Traces
	if len(all) > t.opts.Traces {
		all = all[:t.opts.Traces]
	}
	t.byUnit = make(map[uint64]*trace, len(all))
	t.blocks = map[uint64]*blk{}
	for i, c := range all {
		slices.Sort(c.blocks)
		tr := &trace{unit: c.unit, prio: c.prio, truth: c.truth, blocks: slices.Compact(c.blocks), diag: i < t.opts.Diagnose}
		t.traces = append(t.traces, tr)
		t.byUnit[c.unit] = tr
		for _, b := range tr.blocks {
			bl := t.blocks[b]
			if bl == nil {
				bl = &blk{}
				t.blocks[b] = bl
			}
			bl.refs++
			if tr.diag {
				bl.diagRefs++
			}
		}
	}
	return nil
}

// lookup returns the block of key b when a sampled trace needs it.
func (t *Traces) lookup(b uint64) *blk {
	if b == t.lastBlk && t.lastB != nil {
		return t.lastB
	}
	bl := t.blocks[b]
	t.lastBlk, t.lastB = b, bl
	return bl
}

func (t *Traces) checkCols(fn string, n int, cols [][]uint64) error {
	if t.phase != 2 {
		return fmt.Errorf("%s: call Seal first (and not after Result)", fn)
	}
	if len(cols) != len(t.opts.Columns) {
		return fmt.Errorf("%s: %d columns, want %d", fn, len(cols), len(t.opts.Columns))
	}
	for j, c := range cols {
		if len(c) != n {
			return fmt.Errorf("%s: column %q has %d keys for %d rows", fn, t.opts.Columns[j], len(c), n)
		}
	}
	return nil
}

// Raw takes raw rows at published precision (phase 2): per row its
// subject and the keys of every point column. Rows outside the sampled
// traces' blocks cost a lookup.
func (t *Traces) Raw(subjects []uint64, cols [][]uint64) error {
	n := len(subjects)
	if err := t.checkCols("linkage.Traces.Raw", n, cols); err != nil {
		return err
	}
	blocks := t.blockKeys(cols, n)
	t.pointBuf = slices.Grow(t.pointBuf[:0], n)[:n]
	CombineColumns(cols, t.pointBuf)
	for i, b := range blocks {
		bl := t.lookup(b)
		if bl == nil {
			continue
		}
		p := pair{t.pointBuf[i], subjects[i]}
		if k := len(bl.raw); k > 0 && bl.raw[k-1] == p {
			continue
		}
		bl.raw = append(bl.raw, p)
		t.pairs++
		if bl.diagRefs > 0 {
			bl.diagRows = append(bl.diagRows, subjects[i])
			for _, c := range cols {
				bl.diagRows = append(bl.diagRows, c[i])
			}
			t.pairs += (len(cols) + 1) / 2
		}
		if len(bl.raw) >= 2*max(bl.rawSorted, 512) {
			t.pairs -= compactPairs(&bl.raw, &bl.rawSorted)
		}
	}
	t.bound()
	return nil
}

// Published takes published rows (phase 2): per row its unit (0: in no
// trace) and the keys of every point column.
func (t *Traces) Published(units []uint64, cols [][]uint64) error {
	n := len(units)
	if err := t.checkCols("linkage.Traces.Published", n, cols); err != nil {
		return err
	}
	blocks := t.blockKeys(cols, n)
	t.pointBuf = slices.Grow(t.pointBuf[:0], n)[:n]
	CombineColumns(cols, t.pointBuf)
	var last *trace
	var lastUnit uint64
	for i, u := range units {
		if u == 0 {
			continue
		}
		b, pt := blocks[i], t.pointBuf[i]
		tr := last
		if u != lastUnit {
			tr, lastUnit = t.byUnit[u], u
			last = tr
		}
		if tr != nil {
			bp := bpoint{b, pt}
			if k := len(tr.points); k == 0 || tr.points[k-1] != bp {
				tr.points = append(tr.points, bp)
				t.pairs++
				if tr.diag {
					for _, c := range cols {
						tr.cols = append(tr.cols, c[i])
					}
					t.pairs += len(cols) / 2
				}
			}
		}
		bl := t.lookup(b)
		if bl == nil {
			continue
		}
		p := pair{pt, u}
		if k := len(bl.pub); k > 0 && bl.pub[k-1] == p {
			continue
		}
		bl.pub = append(bl.pub, p)
		t.pairs++
		if len(bl.pub) >= 2*max(bl.pubSorted, 512) {
			t.pairs -= compactPairs(&bl.pub, &bl.pubSorted)
		}
	}
	t.bound()
	return nil
}

// compactPairs sorts and deduplicates *ps, returning how many it removed.
func compactPairs(ps *[]pair, sorted *int) int {
	n := len(*ps)
	*ps = slices.Compact(sortPairs(*ps, *sorted))
	*sorted = len(*ps)
	return n - len(*ps)
}

// sortPairs sorts ps whose first sorted pairs are in order already: it
// sorts the rest and merges the two runs (the indexes append to a sorted
// run and compact when it has doubled, so a full sort would redo the
// sorted half every time).
func sortPairs(ps []pair, sorted int) []pair {
	if sorted <= 0 || sorted > len(ps) {
		slices.SortFunc(ps, cmpPair)
		return ps
	}
	tail := ps[sorted:]
	slices.SortFunc(tail, cmpPair)
	if len(tail) == 0 || cmpPair(ps[sorted-1], tail[0]) <= 0 {
		return ps
	}
	// Merge from the front with a copy of the head: the write position
	// never passes the next unread tail pair.
	head := slices.Clone(ps[:sorted])
	i, j, k := 0, sorted, 0
	for i < len(head) && j < len(ps) {
		if cmpPair(head[i], ps[j]) <= 0 {
			ps[k] = head[i]
			i++
		} else {
			ps[k] = ps[j]
			j++
		}
		k++
	}
	copy(ps[k:], head[i:])
	return ps
}

func cmpPair(a, b pair) int {
	if c := cmp.Compare(a.point, b.point); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// bound keeps the pairs held within MaxPairs: first the column diagnosis
// shrinks (its rows hold every column's key, the largest part), then the
// traces with the highest priority leave the sample, freeing the blocks no
// remaining trace needs.
func (t *Traces) bound() {
	if t.pairs <= t.opts.MaxPairs {
		return
	}
	for _, bl := range t.blocks {
		t.pairs -= compactPairs(&bl.raw, &bl.rawSorted)
		t.pairs -= compactPairs(&bl.pub, &bl.pubSorted)
	}
	for t.pairs > t.opts.MaxPairs*3/4 {
		if t.undiagnose() {
			continue
		}
		if len(t.traces) <= 1 {
			return
		}
		tr := t.traces[len(t.traces)-1]
		t.traces = t.traces[:len(t.traces)-1]
		delete(t.byUnit, tr.unit)
		t.evicted++
		t.census = false
		t.pairs -= len(tr.points)
		for _, b := range tr.blocks {
			bl := t.blocks[b]
			bl.refs--
			if bl.refs == 0 {
				t.pairs -= len(bl.raw) + len(bl.pub)
				delete(t.blocks, b)
			}
		}
		t.lastB = nil
	}
}

// undiagnose halves the diagnosed traces (keeping those of lowest
// priority), freeing the diagnosis rows of blocks no diagnosed trace
// needs; false when none is left.
func (t *Traces) undiagnose() bool {
	var diag []*trace
	for _, tr := range t.traces {
		if tr.diag {
			diag = append(diag, tr)
		}
	}
	if len(diag) == 0 {
		return false
	}
	for _, tr := range diag[len(diag)/2:] {
		tr.diag = false
		t.pairs -= len(tr.cols) / 2
		tr.cols = nil
		for _, b := range tr.blocks {
			bl := t.blocks[b]
			bl.diagRefs--
			if bl.diagRefs == 0 {
				t.pairs -= len(bl.diagRows) / 2
				bl.diagRows = nil
			}
		}
	}
	t.undiagnosed = true
	return true
}

// Result measures linkage and unicity on what phase 2 indexed. It ends the
// measurement.
func (t *Traces) Result() (TraceResult, error) {
	if t.phase != 2 {
		return TraceResult{}, errors.New("linkage.Traces.Result: call Seal and phase 2 first, and Result once")
	}
	t.phase = 3
	res := TraceResult{P: t.opts.Points, Evicted: t.evicted, Census: t.census, TruthKnown: true}
	for _, bl := range t.blocks {
		compactPairs(&bl.raw, &bl.rawSorted)
		compactPairs(&bl.pub, &bl.pubSorted)
	}
	var linked, correct, unique int
	var cur, next []uint64
	var evaluated []*trace
	for _, tr := range t.traces {
		slices.SortFunc(tr.points, func(a, b bpoint) int {
			if c := cmp.Compare(a.block, b.block); c != 0 {
				return c
			}
			return cmp.Compare(a.point, b.point)
		})
		tr.points = slices.Compact(tr.points)
		if len(tr.points) == 0 {
			continue // no published row: not a published trace
		}
		evaluated = append(evaluated, tr)
		if tr.truth == 0 {
			res.TruthKnown = false
		}
		cands := t.containing(tr.points, false, &cur, &next)
		if len(cands) == 1 {
			linked++
			if cands[0] == tr.truth {
				correct++
			}
		}
		// Unicity: p of the trace's own points, drawn with a generator
		// keyed by the trace.
		pick := drawPoints(t.key, tr.unit, tr.points, t.opts.Points)
		if len(tr.points) < t.opts.Points {
			res.Short++
		}
		if units := t.containing(pick, true, &cur, &next); len(units) == 1 {
			unique++
		}
	}
	res.Traces = len(evaluated)
	res.Linkage = proportion(linked, res.Traces, t.conf)
	res.Unicity = proportion(unique, res.Traces, t.conf)
	if res.TruthKnown && res.Traces > 0 {
		c := proportion(correct, res.Traces, t.conf)
		res.Correct = &c
	} else {
		res.TruthKnown = false
	}
	t.diagnose(evaluated, &res)
	t.blocks, t.traces, t.byUnit = nil, nil, nil
	return res, nil
}

// containing returns the ids (subjects for raw, units for pub) whose rows
// hold every one of pts, intersecting from the rarest point. The result
// aliases *cur or *next.
func (t *Traces) containing(pts []bpoint, pub bool, cur, next *[]uint64) []uint64 {
	lists := make([][]pair, 0, len(pts))
	for _, p := range pts {
		bl := t.blocks[p.block]
		if bl == nil {
			return nil
		}
		ps := bl.raw
		if pub {
			ps = bl.pub
		}
		lists = append(lists, idsOf(ps, p.point))
	}
	return intersect(lists, cur, next)
}

// idsOf returns the pairs of point in ps (sorted by point, then id).
func idsOf(ps []pair, point uint64) []pair {
	lo, _ := slices.BinarySearchFunc(ps, point, func(p pair, x uint64) int { return cmp.Compare(p.point, x) })
	hi := lo
	for hi < len(ps) && ps[hi].point == point {
		hi++
	}
	return ps[lo:hi]
}

// intersect returns the ids present in every list (each sorted by id).
func intersect(lists [][]pair, cur, next *[]uint64) []uint64 {
	if len(lists) == 0 {
		return nil
	}
	slices.SortFunc(lists, func(a, b []pair) int { return cmp.Compare(len(a), len(b)) })
	c := (*cur)[:0]
	for _, p := range lists[0] {
		c = append(c, p.id)
	}
	for _, l := range lists[1:] {
		if len(c) == 0 {
			break
		}
		nx := (*next)[:0]
		j := 0
		for _, id := range c {
			for j < len(l) && l[j].id < id {
				j++
			}
			if j < len(l) && l[j].id == id {
				nx = append(nx, id)
			}
		}
		c, *next = nx, c
	}
	*cur = c
	return c
}

// drawPoints draws min(p, len(pts)) distinct points of pts with a
// generator keyed by the unit: the same key and data draw the same points.
func drawPoints(k *Key, unit uint64, pts []bpoint, p int) []bpoint {
	if len(pts) <= p {
		return slices.Clone(pts)
	}
	var seed [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(seed[i*8:], k.prf(domDraw, unit+uint64(i)*0x9e3779b97f4a7c15))
	}
	rng := rand.New(rand.NewChaCha8(seed))
	idx := rng.Perm(len(pts))[:p]
	out := make([]bpoint, p)
	for i, j := range idx {
		out[i] = pts[j]
	}
	return out
}
