package kanon

import (
	"cmp"
	"math"
	"slices"
)

// candidate is a node with the keys it is visited in order of.
type candidate struct {
	id       int
	bound    float64 // data-free lower bound of the loss
	level    int     // Σ levels: the lattice level
	prec     float64 // Σ level/height: ARX's second FLASH criterion
	distinct float64 // Σ distinct(level)/distinct(0): ARX's third, larger first
	rank     int     // position in visiting order
}

// candidates returns the nodes of the lattice not yet tagged
// non-anonymous, in visiting order (see sortCandidates), and records their
// bounds in s.bounds. (With a large k the one-column proofs tag most of the
// lattice before the search starts: on Adult with k=100, all but 351 of
// 12,960 nodes.)
func (s *searcher) candidates() []candidate {
	lat := s.engine.lattice
	b := s.bufs
	cands := resize(b.cands, lat.size)[:0]
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
	lv := make([]int, 0, len(lat.heights))
	for id := range lat.size {
		if s.tags[id] == tagNotAnon {
			continue
		}
		lv = lat.levels(id, lv)
		c := candidate{id: id, bound: s.metrics.bound(s.opts.Metric, lv)}
		for col, l := range lv {
			c.level += l
			c.prec += precOf[col][l]
			c.distinct += s.metrics.distinct[col][l]
		}
		cands = append(cands, c)
	}
	b.cands = cands
	n := len(cands)
	b.sorted = resize(b.sorted, n)
	b.keys = resize(b.keys, n)
	b.keyTmp = resize(b.keyTmp, n)
	cands = sortCandidates(cands, b.sorted, b.keys, b.keyTmp)
	s.bounds = resize(b.bounds, lat.size)
	b.bounds = s.bounds
	for i := range cands {
		cands[i].rank = i
		s.bounds[cands[i].id] = cands[i].bound
	}
	return cands
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
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && keys[j]>>candIndexBits == keys[i]>>candIndexBits {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(out[i:j], compareCandidates)
		}
		i = j
	}
	return out
}

// compareCandidates orders candidates by (bound, level, prec, distinct
// descending, id).
func compareCandidates(a, b candidate) int {
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
