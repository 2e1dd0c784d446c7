package kanon

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"slices"
	"sync"
)

// engine evaluates lattice nodes by rolling tables up.
type engine struct {
	hist    *Histogram
	lattice *lattice
	base    *table // the histogram's classes at the bottom node
	// up[c][from][to] maps ids at level from to ids at level to.
	up       [][][][]int32
	hasSens  bool
	sensSize int // sensitive values (ids are 0..sensSize-1)
	parRows  int // rows per worker for parallel roll-ups (tests lower it)
}

func newEngine(h *Histogram) (*engine, error) { return newEngineWith(h, nil, &scratch{}) }

// newEngineWith is newEngine reusing lat (may be nil) when its heights are
// the histogram's; s is scratch for building the base table.
func newEngineWith(h *Histogram, lat *lattice, s *scratch) (*engine, error) {
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
	e := &engine{hist: h, lattice: lat, hasSens: h.sens != nil, parRows: parallelRows}
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
	e.base = &table{node: 0, ids: h.leaves, packed: h.keys, widths: h.keyWidths, counts: h.counts, decoded: true}
	if e.hasSens {
		// The histogram's entries are (quasi-identifiers, sensitive value)
		// combinations: as a table of one-value classes, rolled up to the
		// bottom node, they become the bottom node's classes.
		e.sensSize = h.sens.size(0)
		n := len(h.counts)
		start := make([]int32, n+1)
		for i := range start {
			start[i] = int32(i)
		}
		e.base.start, e.base.sens, e.base.freq = start, h.sensID, h.counts
		e.base = e.rollup(e.base, 0, s).clone()
	}
	return e, nil
}

// scratch holds per-worker buffers.
type scratch struct {
	par     []partial // per-worker state of parallel roll-ups
	keys2   []uint64
	out     table // rollup output, reused; clone it to keep it
	ht      hashTable
	keys    []uint64
	levels  []int
	slevels []int
	widths  []uint
	segs    []keySegment
	repack  bool // packKeys repacks src.packed with segs
	// Merging sensitive frequencies: the new class of each source row, the
	// source rows of each new class (counting sort) and a counter per value.
	classOf []int32
	first   []int32
	order   []int32
	acc     []int64
	sets    []uint64
	multi   []bool
	touched []int32
}

// rollup rolls src up to node and returns the node's classes with their
// sensitive frequencies. The table lives in s until the next roll-up with
// s; clone it to keep it.
func (e *engine) rollup(src *table, node int, s *scratch) *table {
	t := e.rollupCounts(src, node, s)
	e.mergeValues(src, t, s)
	return t
}

// rollupCounts rolls src up to node and returns the node's classes with
// their rows but without sensitive frequencies: a check that fails on
// class sizes alone needs no more. mergeValues adds them.
func (e *engine) rollupCounts(src *table, node int, s *scratch) *table {
	lat := e.lattice
	s.levels = lat.levels(node, s.levels)
	s.slevels = lat.levels(src.node, s.slevels)
	ncol := len(lat.heights)
	n := src.rows()
	// Key layout: the generalised ids of the columns, packed.
	s.widths = resize(s.widths, ncol)
	widths := s.widths
	var total uint
	for c := range ncol {
		widths[c] = uint(bits.Len(uint(e.hist.dims[c].size(s.levels[c]))))
		total += widths[c]
	}
	if total > 64 {
		return e.rollupWide(src, node, s)
	}
	s.keys = resize(s.keys, n)
	keys := s.keys
	out := &s.out
	out.node = node
	out.counts = out.counts[:0]
	if len(out.ids) != ncol {
		out.ids = make([][]int32, ncol)
	}
	out.values = false
	// classOf maps the source rows to their classes (for mergeValues;
	// written without a sensitive column too, which is cheaper than a
	// branch in the grouping loop).
	s.classOf = resize(s.classOf, n)
	classOf := s.classOf
	if !e.hasSens {
		classOf = nil // not needed by rollupParallel
	}
	s.repack = false
	if src.packed != nil {
		s.repack = e.planSegments(src, widths, s)
	}
	workers := min(runtime.GOMAXPROCS(0), maxWorkers, n/e.parRows)
	if workers < 2 {
		e.packKeys(src, keys, 0, n, widths, s)
		s.ht.reset(n, uint64(1)<<total)
		out.counts = s.ht.group(keys, src.counts, out.counts, s.classOf)
	} else {
		keys = e.rollupParallel(src, keys, widths, total, workers, classOf, s)
	}
	m := len(out.counts)
	// The generalised ids are decoded from the keys only when needed
	// (caching, metrics that look at values): most checks need counts only.
	out.packed = keys[:m]
	out.widths = append(out.widths[:0], widths...)
	out.decoded = false
	return out
}

// mergeValues sets the sensitive frequencies of out, the classes
// rollupCounts just rolled up from src with s: each class's are the sum of
// those of the source rows s.classOf maps to it. No hashing per (class,
// value) pair: mergeDense with at most 64 values, mergeSorted with more.
// Without a sensitive column it does nothing.
func (e *engine) mergeValues(src, out *table, s *scratch) {
	if !e.hasSens || out.values {
		return
	}
	out.values = true
	classOf := s.classOf[:src.rows()]
	m := out.rows()
	out.start = resize(out.start, m+1)
	out.start[0] = 0
	if e.sensSize <= 64 {
		e.mergeDense(src, out, classOf, s)
	} else {
		e.mergeSorted(src, out, classOf, s)
	}
}

// mergeDense merges with at most 64 values: one sequential pass over the
// source adds each frequency into a dense counter of its class and value,
// and a bit set per class records the values present (read lowest bit
// first, it lists them in ascending order). Most classes have one source
// row (a roll-up from a node just below merges few): their frequencies
// are copied instead. first[o] is class o's first source row; classes are
// numbered in order of first appearance, so one pass finds them and the
// classes with more rows.
func (e *engine) mergeDense(src, out *table, classOf []int32, s *scratch) {
	m, w := out.rows(), e.sensSize
	sens, freq := out.sens[:0], out.freq[:0]
	s.first = resize(s.first, m)
	s.multi = resize(s.multi, m)
	first, multi := s.first, s.multi
	next := int32(0)
	for r, o := range classOf {
		if o == next {
			first[o], multi[o] = int32(r), false
			next++
		} else {
			multi[o] = true
		}
	}
	s.acc = resize(s.acc, m*w) // zero: emptied as it is read
	s.sets = resize(s.sets, m)
	acc, sets := s.acc, s.sets
	for r, o := range classOf {
		if !multi[o] {
			continue
		}
		lo, hi := src.start[r], src.start[r+1]
		fr := src.freq[lo:hi]
		row := acc[int(o)*w : int(o)*w+w]
		var set uint64
		for j, v := range src.sens[lo:hi] {
			row[v] += fr[j]
			set |= 1 << uint(v)
		}
		sets[o] |= set
	}
	for o := range m {
		if !multi[o] {
			r := first[o]
			lo, hi := src.start[r], src.start[r+1]
			sens = append(sens, src.sens[lo:hi]...)
			freq = append(freq, src.freq[lo:hi]...)
			out.start[o+1] = int32(len(sens))
			continue
		}
		row := acc[o*w : o*w+w]
		for set := sets[o]; set != 0; set &= set - 1 {
			v := bits.TrailingZeros64(set)
			sens = append(sens, int32(v))
			freq = append(freq, row[v])
			row[v] = 0
		}
		sets[o] = 0
		out.start[o+1] = int32(len(sens))
	}
	out.sens, out.freq = sens, freq
}

// mergeSorted merges with more than 64 values: the source rows are listed
// per class by a counting sort, and each class's frequencies summed in one
// counter per value, the values it touched then sorted.
func (e *engine) mergeSorted(src, out *table, classOf []int32, s *scratch) {
	m := out.rows()
	sens, freq := out.sens[:0], out.freq[:0]
	// first[o]..first[o+1]: positions of class o's source rows in order.
	s.first = resize(s.first, m+1)
	first := s.first
	clear(first)
	for _, o := range classOf {
		first[o+1]++
	}
	for o := range m {
		first[o+1] += first[o]
	}
	s.order = resize(s.order, len(classOf))
	order := s.order
	for r, o := range classOf {
		order[first[o]] = int32(r)
		first[o]++
	}
	// first[o] is now the end of class o's rows: shift back.
	copy(first[1:], first[:m])
	first[0] = 0
	s.acc = resize(s.acc, e.sensSize) // zero: emptied as it is read
	acc := s.acc
	for o := range m {
		rows := order[first[o]:first[o+1]]
		if len(rows) == 1 {
			lo, hi := src.start[rows[0]], src.start[rows[0]+1]
			sens = append(sens, src.sens[lo:hi]...)
			freq = append(freq, src.freq[lo:hi]...)
		} else {
			touched := s.touched[:0]
			for _, r := range rows {
				lo, hi := src.start[r], src.start[r+1]
				fr := src.freq[lo:hi]
				for j, v := range src.sens[lo:hi] {
					if acc[v] == 0 {
						touched = append(touched, v)
					}
					acc[v] += fr[j]
				}
			}
			// Ascending ids: every class lists its values in one order
			// whichever source it was rolled up from, so the floating-point
			// sums of the models are the same on every path.
			slices.Sort(touched)
			for _, v := range touched {
				sens = append(sens, v)
				freq = append(freq, acc[v])
				acc[v] = 0
			}
			s.touched = touched
		}
		out.start[o+1] = int32(len(sens))
	}
	out.sens, out.freq = sens, freq
}

// rollupWide is the slow path for keys wider than 64 bits: string keys.
func (e *engine) rollupWide(src *table, node int, s *scratch) *table {
	// Like rollupCounts: s.classOf maps the source rows for mergeValues.
	lat := e.lattice
	ncol := len(lat.heights)
	n := src.rows()
	idx := make(map[string]int32, n)
	buf := make([]byte, 0, 4*ncol)
	out := &table{node: node, ids: make([][]int32, ncol), decoded: true}
	// classOf maps the source rows to their classes (for mergeValues;
	// written without a sensitive column too, which is cheaper than a
	// branch in the grouping loop).
	s.classOf = resize(s.classOf, n)
	classOf := s.classOf
	if !e.hasSens {
		classOf = nil // not needed by rollupParallel
	}
	up := make([][]int32, ncol)
	for c := range ncol {
		up[c] = e.up[c][s.slevels[c]][s.levels[c]]
	}
	for r := range n {
		buf = buf[:0]
		for c := range ncol {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(up[c][src.ids[c][r]]))
		}
		i, ok := idx[string(buf)]
		if !ok {
			i = int32(len(out.counts))
			idx[string(buf)] = i
			out.counts = append(out.counts, 0)
			for c := range ncol {
				out.ids[c] = append(out.ids[c], up[c][src.ids[c][r]])
			}
		}
		out.counts[i] += src.counts[r]
		if classOf != nil {
			classOf[r] = i
		}
	}
	return out
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
func (e *engine) packKeys(src *table, keys []uint64, lo, hi int, widths []uint, s *scratch) {
	if s.repack {
		repackKeys(src.packed[lo:hi], keys[lo:hi], s.segs)
		return
	}
	lvl, slvl := s.levels, s.slevels
	k := keys[lo:hi]
	// One pass per column. A column generalised to a single value adds
	// nothing (its id is 0); a column already at its level needs no
	// lookup; the first column written sets the keys instead of or-ing.
	first := true
	var shift uint
	for c := range widths {
		sh := shift & 63
		shift += widths[c]
		if e.hist.dims[c].size(lvl[c]) == 1 {
			continue
		}
		m := e.up[c][slvl[c]][lvl[c]]
		same := slvl[c] == lvl[c]
		ids := src.ids[c][lo:hi]
		ids = ids[:len(k)]
		switch {
		case first && same:
			for r, id := range ids {
				k[r] = uint64(id) << sh
			}
		case first:
			for r, id := range ids {
				k[r] = uint64(m[id]) << sh
			}
		case same:
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
}

// keySegment is a run of columns a repacking moves together: columns at
// the same level in source and node keep their bits and only shift, so a
// run of them is one mask and shift; a generalised column is a lookup.
type keySegment struct {
	in, out uint   // shift of the segment in the source and the node key
	width   uint   // bits
	mask    uint64 // 1<<width - 1
	up      []int32
}

// planSegments sets s.segs to the segments that turn src's keys into
// keys of the node rolled up to (s.levels, widths), and reports whether
// repacking them is the cheaper way: a segment costs a little more than a
// pass over a column's ids, so when nearly every column is generalised and
// src has its ids decoded (the histogram), the ids are read instead.
func (e *engine) planSegments(src *table, widths []uint, s *scratch) bool {
	lvl, slvl := s.levels, s.slevels
	segs := s.segs[:0]
	var inShift, outShift uint
	cols := 0
	for c := range widths {
		ish, osh := inShift, outShift
		inShift += src.widths[c]
		outShift += widths[c]
		mask := uint64(1)<<src.widths[c] - 1
		switch {
		case e.hist.dims[c].size(lvl[c]) == 1:
			// A single value adds nothing (its id is 0).
			continue
		case slvl[c] == lvl[c]:
			if n := len(segs); n > 0 && segs[n-1].up == nil && segs[n-1].in+segs[n-1].width == ish && segs[n-1].out+segs[n-1].width == osh {
				// Adjacent to the previous kept run in both keys: extend it.
				segs[n-1].width += src.widths[c]
				segs[n-1].mask = uint64(1)<<segs[n-1].width - 1
			} else {
				segs = append(segs, keySegment{in: ish, out: osh, width: src.widths[c], mask: mask})
			}
		default:
			segs = append(segs, keySegment{in: ish, out: osh, width: src.widths[c], mask: mask, up: e.up[c][slvl[c]][lvl[c]]})
		}
		cols++
	}
	s.segs = segs
	return !src.decoded || 4*len(segs) < 3*cols
}

// repackKeys writes into k the node's keys of the source keys in, a pass
// per segment (see keySegment) instead of a pass per column. Rolled up
// from a node below that differs in one column, that is three passes,
// whatever the number of columns.
func repackKeys(in, k []uint64, segs []keySegment) {
	in = in[:len(k)]
	if len(segs) == 0 {
		clear(k)
		return
	}
	for i, g := range segs {
		// Shifts masked to 63 compile to a bare shift (no check for
		// shifts of 64 and more).
		ish, osh, mask, up := g.in&63, g.out&63, g.mask, g.up
		switch {
		case i == 0 && up == nil:
			for r, x := range in {
				k[r] = (x >> ish & mask) << osh
			}
		case i == 0:
			for r, x := range in {
				k[r] = uint64(up[x>>ish&mask]) << osh
			}
		case up == nil:
			for r, x := range in {
				k[r] |= (x >> ish & mask) << osh
			}
		default:
			for r, x := range in {
				k[r] |= uint64(up[x>>ish&mask]) << osh
			}
		}
	}
}

// rollupParallel groups the rows of src by key on several cores and
// returns the classes' keys; out's counts are filled, and classOf (when not
// nil) maps each source row to its class.
func (e *engine) rollupParallel(src *table, keys []uint64, widths []uint, total uint, workers int, classOf []int32, s *scratch) []uint64 {
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
			e.packKeys(src, keys, lo, hi, widths, s)
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
				if classOf != nil {
					classOf[lo+r] = idx // the chunk's class; mapped below
				}
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
	// global[i]: the class of the i-th chunk class over all chunks.
	var global []int32
	if classOf != nil {
		global = make([]int32, sum)
	}
	g := 0
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
			if global != nil {
				global[g+i] = idx
			}
		}
		if global != nil {
			hi := (w + 1) * n / workers
			for r := lo; r < hi; r++ {
				classOf[r] = global[g+int(classOf[r])]
			}
		}
		g += p.m
	}
	return final
}
