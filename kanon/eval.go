package kanon

import (
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
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

// table is a histogram rolled up to a node: one row per distinct
// (generalised quasi-identifiers, sensitive value) combination.
type table struct {
	node int
	ids  [][]int32 // ids[c][row] at the node's level of column c (see ensureIDs)
	// A roll-up leaves ids packed in keys; ensureIDs decodes them.
	packed  []uint64
	widths  []uint
	decoded bool
	sens    []int32 // nil without sensitive column
	counts  []int64
}

func (t *table) rows() int { return len(t.counts) }

// classes is the partition of a node's rows into equivalence classes.
type classes struct {
	counts []int64
	rep    []int32 // a table row of each class (for its generalised values)
	// With a sensitive column: the table rows of class i are
	// order[start[i]:start[i+1]], each row one sensitive value and its count.
	start []int32
	order []int32
	t     *table
}

func (cl *classes) n() int { return len(cl.counts) }

// row returns a table row of class i.
func (cl *classes) row(i int) int32 {
	if cl.rep == nil {
		return int32(i)
	}
	return cl.rep[i]
}

// hashTable is an open-addressing map from uint64 keys to int32, reset in
// O(1) by bumping an epoch: the evaluation hot path allocates nothing. Key,
// value and epoch share a slot so a probe touches one cache line. Small key
// spaces use a dense array instead of hashing.
type hashTable struct {
	slots []slot
	cur   uint32
	mask  uint64
	dense bool
}

type slot struct {
	key   uint64
	val   int32
	epoch uint32
}

// denseLimit is the largest key space indexed directly.
const denseLimit = 1 << 16

// reset prepares the table for n keys; keySpace is an upper bound of the
// keys (0 when unknown), used to pick the dense layout.
func (h *hashTable) reset(n int, keySpace uint64) {
	want := 1 << bits.Len(uint(2*n+1))
	want = max(want, 16)
	h.dense = keySpace > 0 && keySpace <= denseLimit && keySpace <= uint64(4*want)
	if h.dense {
		want = max(want, int(keySpace))
	}
	if len(h.slots) < want {
		h.slots = make([]slot, want)
		h.cur = 0
	}
	h.mask = uint64(len(h.slots) - 1)
	if h.dense {
		h.mask = ^uint64(0)
	}
	h.cur++
	if h.cur == 0 {
		clear(h.slots)
		h.cur = 1
	}
}

// getOrPut returns the value stored for k, or stores v and returns v, false.
func (h *hashTable) getOrPut(k uint64, v int32) (int32, bool) {
	if h.dense {
		s := &h.slots[k]
		if s.epoch != h.cur {
			s.epoch, s.val = h.cur, v
			return v, false
		}
		return s.val, true
	}
	i := (k * 0x9E3779B97F4A7C15) >> 20 & h.mask
	for {
		s := &h.slots[i]
		if s.epoch != h.cur {
			s.epoch, s.key, s.val = h.cur, k, v
			return v, false
		}
		if s.key == k {
			return s.val, true
		}
		i = (i + 1) & h.mask
	}
}

// engine evaluates lattice nodes by rolling tables up.
type engine struct {
	h    *Histogram
	lat  *lattice
	base *table
	// up[c][from][to] maps ids at level from to ids at level to.
	up      [][][][]int32
	hasSens bool
	sensBit uint
	parRows int // rows per worker for parallel roll-ups (tests lower it)
}

func newEngine(h *Histogram) (*engine, error) { return newEngineWith(h, nil) }

// newEngineWith is newEngine reusing lat (may be nil) when its heights are
// the histogram's.
func newEngineWith(h *Histogram, lat *lattice) (*engine, error) {
	heights := make([]int, len(h.dims))
	for c, d := range h.dims {
		heights[c] = d.levels
	}
	if lat == nil || !slices.Equal(lat.heights, heights) {
		var err error
		if lat, err = newLattice(heights); err != nil {
			return nil, err
		}
	}
	e := &engine{h: h, lat: lat, hasSens: h.sens != nil, parRows: parallelRows}
	e.base = &table{node: 0, ids: h.leaves, sens: h.sensID, counts: h.counts, decoded: true}
	e.up = make([][][][]int32, len(h.dims))
	for c, d := range h.dims {
		e.up[c] = make([][][]int32, d.levels)
		for from := range d.levels {
			e.up[c][from] = make([][]int32, d.levels)
			for to := from; to < d.levels; to++ {
				e.up[c][from][to] = d.upMap(from, to)
			}
		}
	}
	if h.sens != nil {
		e.sensBit = uint(bits.Len(uint(h.sens.size(0))))
	}
	return e, nil
}

// scratch holds per-worker buffers.
type scratch struct {
	par     []partial // per-worker state of parallel roll-ups
	keys2   []uint64
	out     table // rollup output, reused; clone it to keep it
	ht      hashTable
	cls     hashTable
	keys    []uint64
	levels  []int
	slevels []int
}

// rollup rolls src up to node and returns the node's table and classes.
// It reports ok=false when the generalised key does not fit 64 bits (callers
// then use rollupWide).
func (e *engine) rollup(src *table, node int, s *scratch) (*table, *classes) {
	lat := e.lat
	s.levels = lat.levels(node, s.levels)
	s.slevels = lat.levels(src.node, s.slevels)
	ncol := len(lat.heights)
	n := src.rows()
	// Key layout: generalised ids per column, then the sensitive id.
	widths := make([]uint, ncol)
	var total uint
	for c := range ncol {
		widths[c] = uint(bits.Len(uint(e.h.dims[c].size(s.levels[c]))))
		total += widths[c]
	}
	qiBits := total
	if e.hasSens {
		total += e.sensBit
	}
	if total > 64 {
		return e.rollupWide(src, node, s)
	}
	if cap(s.keys) < n {
		s.keys = make([]uint64, n)
	}
	keys := s.keys[:n]
	out := &s.out
	out.node = node
	out.counts = out.counts[:0]
	if len(out.ids) != ncol {
		out.ids = make([][]int32, ncol)
	}
	workers := min(runtime.GOMAXPROCS(0), maxWorkers, n/e.parRows)
	if workers < 2 {
		e.packKeys(src, keys, 0, n, widths, qiBits, s)
		s.ht.reset(n, uint64(1)<<total)
		for r, k := range keys {
			idx, found := s.ht.getOrPut(k, int32(len(out.counts)))
			if !found {
				out.counts = append(out.counts, 0)
				keys[idx] = k // keys[idx] already consumed: idx <= r
			}
			out.counts[idx] += src.counts[r]
		}
	} else {
		keys = e.rollupParallel(src, keys, widths, qiBits, total, workers, s)
	}
	m := len(out.counts)
	// The generalised ids are decoded from the keys only when needed
	// (caching, metrics that look at values): most checks need counts only.
	out.packed = keys[:m]
	out.widths = append(out.widths[:0], widths...)
	out.decoded = false
	if e.hasSens {
		if cap(out.sens) < m {
			out.sens = make([]int32, m)
		}
		out.sens = out.sens[:m]
		mask := uint64(1)<<e.sensBit - 1
		for i := range m {
			out.sens[i] = int32(keys[i] >> qiBits & mask)
		}
	}
	return out, e.group(out, keys[:m], qiBits, s)
}

// group partitions the rows of t (keys as built by rollup) into classes.
func (e *engine) group(t *table, keys []uint64, qiBits uint, s *scratch) *classes {
	m := t.rows()
	cl := &classes{t: t}
	if !e.hasSens {
		cl.counts = t.counts // rep nil: class i is table row i
		return cl
	}
	mask := uint64(1)<<qiBits - 1
	if qiBits == 64 {
		mask = ^uint64(0)
	}
	s.cls.reset(m, uint64(1)<<qiBits)
	classOf := make([]int32, m)
	for i, k := range keys {
		idx, found := s.cls.getOrPut(k&mask, int32(len(cl.counts)))
		if !found {
			cl.counts = append(cl.counts, 0)
			cl.rep = append(cl.rep, int32(i))
		}
		cl.counts[idx] += t.counts[i]
		classOf[i] = idx
	}
	e.csr(cl, classOf)
	return cl
}

// csr lists the rows of each class contiguously (counting sort).
func (e *engine) csr(cl *classes, classOf []int32) {
	nc := len(cl.counts)
	cl.start = make([]int32, nc+1)
	for _, c := range classOf {
		cl.start[c+1]++
	}
	for i := range nc {
		cl.start[i+1] += cl.start[i]
	}
	pos := make([]int32, nc)
	copy(pos, cl.start[:nc])
	cl.order = make([]int32, len(classOf))
	for r, c := range classOf {
		cl.order[pos[c]] = int32(r)
		pos[c]++
	}
}

// rollupWide is the slow path for keys wider than 64 bits: string keys.
func (e *engine) rollupWide(src *table, node int, s *scratch) (*table, *classes) {
	lat := e.lat
	ncol := len(lat.heights)
	n := src.rows()
	idx := make(map[string]int32, n)
	clsIdx := make(map[string]int32)
	buf := make([]byte, 0, 4*(ncol+1))
	out := &table{node: node, ids: make([][]int32, ncol), decoded: true}
	cl := &classes{t: out}
	var classOf []int32
	for r := range n {
		buf = buf[:0]
		for c := range ncol {
			v := e.up[c][s.slevels[c]][s.levels[c]][src.ids[c][r]]
			buf = append(buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
		qlen := len(buf)
		if e.hasSens {
			v := src.sens[r]
			buf = append(buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
		i, ok := idx[string(buf)]
		if !ok {
			i = int32(len(out.counts))
			idx[string(buf)] = i
			out.counts = append(out.counts, 0)
			for c := range ncol {
				out.ids[c] = append(out.ids[c], e.up[c][s.slevels[c]][s.levels[c]][src.ids[c][r]])
			}
			if e.hasSens {
				out.sens = append(out.sens, src.sens[r])
			}
			ci, ok := clsIdx[string(buf[:qlen])]
			if !ok {
				ci = int32(len(cl.counts))
				clsIdx[string(buf[:qlen])] = ci
				cl.counts = append(cl.counts, 0)
				cl.rep = append(cl.rep, i)
			}
			classOf = append(classOf, ci)
		}
		out.counts[i] += src.counts[r]
		cl.counts[classOf[i]] += src.counts[r]
	}
	if e.hasSens {
		e.csr(cl, classOf)
	} else {
		cl.counts = out.counts
	}
	return out, cl
}

// growTable is a growable open-addressing map from uint64 keys to int32
// values, for the histogram's index (Go's map costs several times more per
// row on this path). Key and value share a slot: one cache line per probe.
type growTable struct {
	slots []gslot
	n     int
	mask  uint64
}

type gslot struct {
	key uint64
	val int32 // -1 = empty
}

func newGrowTable(capHint int) *growTable {
	size := growTableSize(capHint)
	g := &growTable{slots: make([]gslot, size), mask: uint64(size - 1)}
	g.reset()
	return g
}

// growTableSize is the number of slots for capHint entries.
func growTableSize(capHint int) int { return 1 << bits.Len(uint(2*capHint+15)) }

// reset empties the table, keeping its size.
func (g *growTable) reset() {
	for i := range g.slots {
		g.slots[i].val = -1
	}
	g.n = 0
}

func (g *growTable) slot(k uint64) *gslot {
	i := (k * 0x9E3779B97F4A7C15) >> 17 & g.mask
	for {
		s := &g.slots[i]
		if s.val < 0 || s.key == k {
			return s
		}
		i = (i + 1) & g.mask
	}
}

// get returns the value of k and whether it is present.
func (g *growTable) get(k uint64) (int32, bool) {
	s := g.slot(k)
	return s.val, s.val >= 0
}

// getOrPut returns the value of k, or stores v under k and returns v, false.
func (g *growTable) getOrPut(k uint64, v int32) (int32, bool) {
	s := g.slot(k)
	if s.val >= 0 {
		return s.val, true
	}
	if 2*(g.n+1) > len(g.slots) {
		g.put(k, v)
		return v, false
	}
	s.key, s.val = k, v
	g.n++
	return v, false
}

// put stores v under k (k must not be present).
func (g *growTable) put(k uint64, v int32) {
	if 2*(g.n+1) > len(g.slots) {
		old := g.slots
		*g = *newGrowTable(len(old))
		for _, o := range old {
			if o.val >= 0 {
				*g.slot(o.key) = o
				g.n++
			}
		}
	}
	s := g.slot(k)
	s.key, s.val = k, v
	g.n++
}

// ensureIDs decodes the generalised ids of a rolled-up table.
func (t *table) ensureIDs() {
	if t.decoded {
		return
	}
	m := len(t.counts)
	var sh uint
	for c, w := range t.widths {
		col := t.ids[c][:0]
		if cap(col) < m {
			col = make([]int32, m)
		}
		col = col[:m]
		mask := uint64(1)<<w - 1
		for i, k := range t.packed[:m] {
			col[i] = int32(k >> sh & mask)
		}
		t.ids[c] = col
		sh += w
	}
	t.decoded = true
}

// cloneInto copies t into dst, reusing dst's buffers (dst may be nil).
func (t *table) cloneInto(dst *table) *table {
	if dst == nil {
		return t.clone()
	}
	t.ensureIDs()
	dst.node, dst.decoded, dst.packed, dst.widths = t.node, true, nil, nil
	dst.counts = append(dst.counts[:0], t.counts...)
	if len(dst.ids) != len(t.ids) {
		dst.ids = make([][]int32, len(t.ids))
	}
	for i, col := range t.ids {
		dst.ids[i] = append(dst.ids[i][:0], col...)
	}
	if t.sens != nil {
		dst.sens = append(dst.sens[:0], t.sens...)
	} else {
		dst.sens = nil
	}
	return dst
}

// clone copies t out of the scratch buffers.
func (t *table) clone() *table {
	t.ensureIDs()
	c := &table{node: t.node, counts: append([]int64(nil), t.counts...), ids: make([][]int32, len(t.ids)), decoded: true}
	for i, col := range t.ids {
		c.ids[i] = append([]int32(nil), col...)
	}
	if t.sens != nil {
		c.sens = append([]int32(nil), t.sens...)
	}
	return c
}

// regroup builds the classes of a (cloned) table.
func (e *engine) regroup(t *table, s *scratch) *classes {
	cl := &classes{t: t}
	if !e.hasSens {
		cl.counts = t.counts
		return cl
	}
	ncol := len(t.ids)
	widths := make([]uint, ncol)
	var total uint
	for c := range ncol {
		widths[c] = uint(bits.Len(uint(e.h.dims[c].size(e.lat.level(t.node, c)))))
		total += widths[c]
	}
	if total > 64 {
		idx := make(map[string]int32)
		buf := make([]byte, 0, 4*ncol)
		classOf := make([]int32, t.rows())
		for r := range t.rows() {
			buf = buf[:0]
			for c := range ncol {
				v := t.ids[c][r]
				buf = append(buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
			}
			i, ok := idx[string(buf)]
			if !ok {
				i = int32(len(cl.counts))
				idx[string(buf)] = i
				cl.counts = append(cl.counts, 0)
				cl.rep = append(cl.rep, int32(r))
			}
			cl.counts[i] += t.counts[r]
			classOf[r] = i
		}
		e.csr(cl, classOf)
		return cl
	}
	keys := make([]uint64, t.rows())
	var sh uint
	for c := range ncol {
		for r, v := range t.ids[c] {
			keys[r] |= uint64(v) << sh
		}
		sh += widths[c]
	}
	return e.group(t, keys, total, s)
}

// Parallel roll-ups split the source rows into chunks, group each chunk on
// its own core and merge the partial tables. The merge costs as much as the
// partial tables are large, so it only pays for large sources: measured on
// Adult (19,502 entries) one core is as fast in wall time and uses a
// quarter less CPU.
const (
	parallelRows = 32768 // rows per worker below which one core is faster
	maxWorkers   = 8
)

type partial struct {
	ht     hashTable
	counts []int64
	m      int
}

// packKeys writes the generalised key of rows [lo,hi) of src into keys.
func (e *engine) packKeys(src *table, keys []uint64, lo, hi int, widths []uint, qiBits uint, s *scratch) {
	lvl, slvl := s.levels, s.slevels
	k := keys[lo:hi]
	// One pass per column. A column generalised to a single value adds
	// nothing (its id is 0); a column already at its level needs no
	// lookup; the first column written sets the keys instead of or-ing.
	first := true
	var shift uint
	for c := range widths {
		sh := shift
		shift += widths[c]
		if e.h.dims[c].size(lvl[c]) == 1 {
			continue
		}
		ids := src.ids[c][lo:hi]
		ids = ids[:len(k)]
		m := e.up[c][slvl[c]][lvl[c]]
		switch {
		case first && slvl[c] == lvl[c]:
			for r, id := range ids {
				k[r] = uint64(id) << sh
			}
		case first:
			for r, id := range ids {
				k[r] = uint64(m[id]) << sh
			}
		case slvl[c] == lvl[c]:
			for r, id := range ids {
				k[r] |= uint64(id) << sh
			}
		default:
			for r, id := range ids {
				k[r] |= uint64(m[id]) << sh
			}
		}
		first = false
	}
	if first {
		clear(k)
	}
	if e.hasSens {
		for r, v := range src.sens[lo:hi] {
			k[r] |= uint64(v) << qiBits
		}
	}
}

func (e *engine) rollupParallel(src *table, keys []uint64, widths []uint, qiBits, total uint, workers int, s *scratch) []uint64 {
	n := len(keys)
	for len(s.par) < workers {
		s.par = append(s.par, partial{})
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &s.par[w]
			e.packKeys(src, keys, lo, hi, widths, qiBits, s)
			p.ht.reset(hi-lo, uint64(1)<<total)
			p.counts = p.counts[:0]
			k := keys[lo:hi]
			cnt := src.counts[lo:hi]
			for r, key := range k {
				idx, found := p.ht.getOrPut(key, int32(len(p.counts)))
				if !found {
					p.counts = append(p.counts, 0)
					k[idx] = key
				}
				p.counts[idx] += cnt[r]
			}
			p.m = len(p.counts)
		}()
	}
	wg.Wait()
	sum := 0
	for w := range workers {
		sum += s.par[w].m
	}
	if cap(s.keys2) < sum {
		s.keys2 = make([]uint64, sum)
	}
	final := s.keys2[:0]
	out := &s.out
	s.ht.reset(sum, uint64(1)<<total)
	for w := range workers {
		p := &s.par[w]
		lo := w * n / workers
		for i, key := range keys[lo : lo+p.m] {
			idx, found := s.ht.getOrPut(key, int32(len(out.counts)))
			if !found {
				out.counts = append(out.counts, 0)
				final = append(final, key)
			}
			out.counts[idx] += p.counts[i]
		}
	}
	return final
}
