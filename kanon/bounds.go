package kanon

import (
	"runtime"
	"sync"
)

// kBounds proves nodes non-anonymous without rolling the histogram up: the
// classes of a node refine the partition by any one or two of its columns,
// so rows whose value (or pair of values) occurs fewer than k times are in
// classes smaller than k. If there are more such rows than may be
// suppressed, the node — and every node below it — fails k-anonymity.
type kBounds struct {
	e      *engine
	k      int64
	single [][]int64 // single[c][l]: rows in values of column c at level l with count < k
	pairs  map[[2]int]*pairJoint
	memo   map[[4]int]int64
}

type pairJoint struct {
	a, b   []int32 // leaf ids
	counts []int64
}

// precomputePairs builds every pair joint up front, one goroutine per core:
// without suppression nearly all are needed.
func (kb *kBounds) precomputePairs() {
	d := len(kb.e.h.dims)
	var pairs [][2]int
	for a := range d {
		for b := a + 1; b < d; b++ {
			pairs = append(pairs, [2]int{a, b})
		}
	}
	out := make([]*pairJoint, len(pairs))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(pairs)))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(pairs); i += workers {
				out[i] = kb.joint(pairs[i][0], pairs[i][1])
			}
		}()
	}
	wg.Wait()
	for i, p := range pairs {
		kb.pairs[p] = out[i]
	}
}

func newKBounds(e *engine, k int64) *kBounds {
	kb := &kBounds{e: e, k: k, pairs: make(map[[2]int]*pairJoint), memo: make(map[[4]int]int64)}
	h := e.h
	kb.single = make([][]int64, len(h.dims))
	for c, d := range h.dims {
		leafCnt := make([]int64, d.size(0))
		for i, leaf := range h.leaves[c] {
			leafCnt[leaf] += h.counts[i]
		}
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

// fails reports whether the node provably has more than maxOutliers rows in
// classes smaller than k. usePairs enables the (lazily built) pair joints.
func (kb *kBounds) fails(levels []int, maxOutliers int64, usePairs bool) bool {
	for c, l := range levels {
		if kb.single[c][l] > maxOutliers {
			return true
		}
	}
	if !usePairs {
		return false
	}
	for a := range levels {
		for b := a + 1; b < len(levels); b++ {
			if kb.pair(a, b, levels[a], levels[b]) > maxOutliers {
				return true
			}
		}
	}
	return false
}

func (kb *kBounds) pair(a, b, la, lb int) int64 {
	key := [4]int{a, b, la, lb}
	if v, ok := kb.memo[key]; ok {
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
	pj := kb.pairs[[2]int{a, b}]
	if pj == nil {
		pj = kb.joint(a, b)
		kb.pairs[[2]int{a, b}] = pj
	}
	ga, gb := da.gen[la], db.gen[lb]
	wb := db.size(lb)
	var out int64
	if n := da.size(la) * wb; n <= 1<<20 {
		cnt := make([]int64, n)
		for i, c := range pj.counts {
			cnt[int(ga[pj.a[i]])*wb+int(gb[pj.b[i]])] += c
		}
		for _, c := range cnt {
			if c < kb.k {
				out += c
			}
		}
	} else {
		cnt := make(map[uint64]int64, len(pj.counts))
		for i, c := range pj.counts {
			cnt[uint64(ga[pj.a[i]])*uint64(wb)+uint64(gb[pj.b[i]])] += c
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

// joint counts the rows of each pair of leaves of columns a and b.
func (kb *kBounds) joint(a, b int) *pairJoint {
	h := kb.e.h
	pj := &pairJoint{}
	sa, sb := h.dims[a].size(0), h.dims[b].size(0)
	if n := sa * sb; n <= 1<<22 {
		cnt := make([]int64, n)
		for i, c := range h.counts {
			cnt[int(h.leaves[a][i])*sb+int(h.leaves[b][i])] += c
		}
		for i, c := range cnt {
			if c != 0 {
				pj.a = append(pj.a, int32(i/sb))
				pj.b = append(pj.b, int32(i%sb))
				pj.counts = append(pj.counts, c)
			}
		}
		return pj
	}
	idx := make(map[uint64]int32)
	for i, n := range h.counts {
		x, y := h.leaves[a][i], h.leaves[b][i]
		k := uint64(uint32(x))<<32 | uint64(uint32(y))
		j, ok := idx[k]
		if !ok {
			j = int32(len(pj.counts))
			idx[k] = j
			pj.a = append(pj.a, x)
			pj.b = append(pj.b, y)
			pj.counts = append(pj.counts, 0)
		}
		pj.counts[j] += n
	}
	return pj
}
