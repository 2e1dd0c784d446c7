package kanon

import (
	"math/bits"
	"runtime"
	"slices"
	"sync"
)

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
