package kanon

// kBounds proves nodes non-anonymous without rolling the histogram up: the
// classes of a node refine the partition by any one or two of its columns,
// so rows whose value (or pair of values) occurs fewer than k times are in
// classes smaller than k. If there are more such rows than may be
// suppressed, the node — and every node below it — fails k-anonymity.
type kBounds struct {
	e      *engine
	k      int64
	single [][]int64 // single[c][l]: rows in values of column c at level l with count < k
	memo   []int64   // by memoIndex; -1 = not computed
	maxH   int
	// lastA, lastB is the pair that last proved a node non-anonymous: it is
	// tried first, as consecutive candidates tend to fail on the same pair.
	lastA, lastB int
	joints       []*pairJoint // by a*d+b, built on first use
	noJoint      []bool       // joint tried and not worth keeping
	buf          []int64      // counters, reused
	// source returns a rolled-up table at or below (la, lb) on columns a
	// and b; nil means the histogram itself.
	source func(a, b, la, lb int) *table
}

func newKBounds(e *engine, k int64) *kBounds {
	kb := &kBounds{e: e, k: k}
	d := len(e.hist.dims)
	for _, dim := range e.hist.dims {
		kb.maxH = max(kb.maxH, dim.levels)
	}
	kb.memo = make([]int64, d*d*kb.maxH*kb.maxH)
	for i := range kb.memo {
		kb.memo[i] = -1
	}
	h := e.hist
	kb.single = make([][]int64, len(h.dims))
	for c, d := range h.dims {
		leafCnt := h.leafCnt[c]
		kb.single[c] = make([]int64, d.levels)
		for l := range d.levels {
			cnt := make([]int64, d.size(l))
			for leaf, n := range leafCnt {
				cnt[d.gen[l][leaf]] += n
			}
			var out int64
			for _, n := range cnt {
				if n < k {
					out += n
				}
			}
			kb.single[c][l] = out
		}
	}
	return kb
}

// tagSingles sets tagNotAnon on every node the one-column bounds prove
// non-anonymous (a column below the first level at which its rare values fit
// the suppression limit), in one pass over the lattice: with a large k most
// of the lattice fails this way, and one byte comparison per column is far
// cheaper than a proof and a tagDown per candidate. The tags are the ones
// provablyFails would set when the search meets those nodes.
func (kb *kBounds) tagSingles(tags []uint8, maxOutliers int64) {
	lat := kb.e.lattice
	d := len(lat.heights)
	minL := make([]uint8, d)
	some := false
	for c := range d {
		l := 0
		for l < lat.heights[c] && kb.single[c][l] > maxOutliers {
			l++
		}
		minL[c] = uint8(l)
		some = some || l > 0
	}
	if !some {
		return
	}
	for id := range lat.size {
		for c, v := range lat.lv[id*d : id*d+d] {
			if v < minL[c] {
				tags[id] = tagNotAnon
				break
			}
		}
	}
}

// fails reports whether the node provably has more than maxOutliers rows in
// classes smaller than k. usePairs enables the (lazily built) pair joints.
func (kb *kBounds) fails(levels []int, maxOutliers int64, usePairs bool) bool {
	for c, l := range levels {
		if kb.single[c][l] > maxOutliers {
			return true
		}
	}
	if !usePairs || len(levels) < 2 {
		return false
	}
	if a, b := kb.lastA, kb.lastB; a != b && kb.pair(a, b, levels[a], levels[b]) > maxOutliers {
		return true
	}
	for a := range levels {
		for b := a + 1; b < len(levels); b++ {
			if kb.pair(a, b, levels[a], levels[b]) > maxOutliers {
				kb.lastA, kb.lastB = a, b
				return true
			}
		}
	}
	return false
}

func (kb *kBounds) pair(a, b, la, lb int) int64 {
	key := ((a*len(kb.e.hist.dims)+b)*kb.maxH+la)*kb.maxH + lb
	if v := kb.memo[key]; v >= 0 {
		return v
	}
	// A column at its top level has one value: the pair bound is the single.
	da, db := kb.e.hist.dims[a], kb.e.hist.dims[b]
	if da.size(la) == 1 {
		kb.memo[key] = kb.single[b][lb]
		return kb.memo[key]
	}
	if db.size(lb) == 1 {
		kb.memo[key] = kb.single[a][la]
		return kb.memo[key]
	}
	// Count the pairs of generalised values from the smallest source: the
	// pair's level-0 joint, or a rolled-up table that is at or below
	// (la, lb) on a and b (its other columns do not matter).
	src := kb.e.base
	if kb.source != nil {
		src = kb.source(a, b, la, lb)
	}
	var out int64
	if j := kb.joint(a, b); j != nil && len(j.counts) < src.rows() {
		out = kb.countSmall(j.ia, j.ib, j.counts, kb.e.up[a][0][la], kb.e.up[b][0][lb], da.size(la), db.size(lb))
	} else {
		lat := kb.e.lattice
		src.ensureIDs()
		pa, pb := lat.level(src.node, a), lat.level(src.node, b)
		out = kb.countSmall(src.ids[a], src.ids[b], src.counts, kb.e.up[a][pa][la], kb.e.up[b][pb][lb], da.size(la), db.size(lb))
	}
	kb.memo[key] = out
	return out
}

// pairJoint is the joint distribution of two columns at level 0: the
// distinct (id a, id b) pairs with their rows. Much smaller than the
// histogram for most pairs, it makes every later pair bound of the two
// columns a pass over a few hundred entries instead of the histogram.
type pairJoint struct {
	ia, ib []int32
	counts []int64
}

// maxJointCells bounds the dense counter array a joint is built with.
const maxJointCells = 1 << 16

// joint returns the level-0 joint of columns a < b, building it on first
// use; nil when it would not be much smaller than the histogram or the
// columns have too many value pairs to count densely.
func (kb *kBounds) joint(a, b int) *pairJoint {
	d := len(kb.e.hist.dims)
	if kb.joints == nil {
		kb.joints = make([]*pairJoint, d*d)
		kb.noJoint = make([]bool, d*d)
	}
	key := a*d + b
	if j := kb.joints[key]; j != nil || kb.noJoint[key] {
		return j
	}
	kb.noJoint[key] = true
	da, db := kb.e.hist.dims[a], kb.e.hist.dims[b]
	na, nb := da.size(0), db.size(0)
	if na*nb > maxJointCells {
		return nil
	}
	src := kb.e.base
	if kb.source != nil {
		src = kb.source(a, b, 0, 0)
	}
	src.ensureIDs()
	kb.buf = resize(kb.buf, na*nb)
	cnt := kb.buf
	clear(cnt)
	ia, ib := src.ids[a], src.ids[b]
	for i, c := range src.counts {
		cnt[int(ia[i])*nb+int(ib[i])] += c
	}
	j := &pairJoint{}
	for x, c := range cnt {
		if c != 0 {
			j.ia = append(j.ia, int32(x/nb))
			j.ib = append(j.ib, int32(x%nb))
			j.counts = append(j.counts, c)
		}
	}
	if 2*len(j.counts) > src.rows() {
		return nil
	}
	kb.joints[key], kb.noJoint[key] = j, false
	return j
}

// countSmall returns the rows whose (ma[ia], mb[ib]) pair of generalised
// values (na and wb values) has fewer than k rows.
func (kb *kBounds) countSmall(ia, ib []int32, counts []int64, ma, mb []int32, na, wb int) int64 {
	var out int64
	if n := na * wb; n <= 1<<20 {
		kb.buf = resize(kb.buf, n)
		cnt := kb.buf
		clear(cnt)
		for i, c := range counts {
			cnt[int(ma[ia[i]])*wb+int(mb[ib[i]])] += c
		}
		for _, c := range cnt {
			if c < kb.k {
				out += c
			}
		}
		return out
	}
	cnt := make(map[uint64]int64)
	for i, c := range counts {
		cnt[uint64(ma[ia[i]])*uint64(wb)+uint64(mb[ib[i]])] += c
	}
	for _, c := range cnt {
		if c < kb.k {
			out += c
		}
	}
	return out
}
