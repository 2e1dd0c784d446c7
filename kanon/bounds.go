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
	// source returns a rolled-up table at or below (la, lb) on columns a
	// and b; nil means the histogram itself.
	source func(a, b, la, lb int) *table
}

func newKBounds(e *engine, k int64) *kBounds {
	kb := &kBounds{e: e, k: k}
	d := len(e.h.dims)
	for _, dim := range e.h.dims {
		kb.maxH = max(kb.maxH, dim.levels)
	}
	kb.memo = make([]int64, d*d*kb.maxH*kb.maxH)
	for i := range kb.memo {
		kb.memo[i] = -1
	}
	h := e.h
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
	lat := kb.e.lat
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
	key := ((a*len(kb.e.h.dims)+b)*kb.maxH+la)*kb.maxH + lb
	if v := kb.memo[key]; v >= 0 {
		return v
	}
	// A column at its top level has one value: the pair bound is the single.
	da, db := kb.e.h.dims[a], kb.e.h.dims[b]
	if da.size(la) == 1 {
		kb.memo[key] = kb.single[b][lb]
		return kb.memo[key]
	}
	if db.size(lb) == 1 {
		kb.memo[key] = kb.single[a][la]
		return kb.memo[key]
	}
	// Count the pairs of generalised values from the smallest rolled-up
	// table that is at or below (la, lb) on a and b (its other columns do
	// not matter).
	src := kb.e.base
	if kb.source != nil {
		src = kb.source(a, b, la, lb)
	}
	lat := kb.e.lat
	pa, pb := lat.level(src.node, a), lat.level(src.node, b)
	src.ensureIDs()
	ma, mb := kb.e.up[a][pa][la], kb.e.up[b][pb][lb]
	wb := db.size(lb)
	var out int64
	if n := da.size(la) * wb; n <= 1<<20 {
		cnt := make([]int64, n)
		ia, ib := src.ids[a], src.ids[b]
		for i, c := range src.counts {
			cnt[int(ma[ia[i]])*wb+int(mb[ib[i]])] += c
		}
		for _, c := range cnt {
			if c < kb.k {
				out += c
			}
		}
	} else {
		cnt := make(map[uint64]int64)
		for i, c := range src.counts {
			cnt[uint64(ma[src.ids[a][i]])*uint64(wb)+uint64(mb[src.ids[b][i]])] += c
		}
		for _, c := range cnt {
			if c < kb.k {
				out += c
			}
		}
	}
	kb.memo[key] = out
	return out
}
