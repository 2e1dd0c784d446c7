package dp

import (
	crand "crypto/rand"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// uintN returns a uniform integer in [0, n) without modulo bias (Lemire's
// multiply-and-reject method, as math/rand/v2 uses).
func uintN(r *rand.ChaCha8, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// newRand returns a ChaCha8 generator seeded from crypto/rand. ChaCha8 is a
// cryptographically strong stream: which rows and partitions survive
// contribution bounding cannot be predicted from the data or the code.
func newRand() (*rand.ChaCha8, error) {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("dp: seeding the sampler from crypto/rand: %w", err)
	}
	return rand.NewChaCha8(seed), nil
}

// pairSlot is one (subject, partition) pair in a shard's open-addressing
// table: 16 bytes, so that one probe is usually one cache line.
type pairSlot struct {
	key  uint64 // subject<<32 | partition; emptyKey when free
	seen uint32 // rows of this pair seen so far
	blk  uint32 // index of the pair's reservoir block in shard.vals
}

const emptyKey = ^uint64(0)

// shard owns the pairs of the subjects with subject%nShards == its index,
// so shards never share state and run in parallel without locks.
//
// Per pair it keeps a reservoir of at most k = L∞ rows (Algorithm R: the
// first k rows fill it, row n > k replaces a uniformly chosen slot with
// probability k/n). After any number of rows, in any order, the reservoir is
// a uniformly random k-subset of the pair's rows. Memory is O(pairs·k·nv),
// independent of the number of rows.
type shard struct {
	slots []pairSlot
	mask  uint64
	shift uint
	n     int
	k     int // L∞
	nv    int // value columns
	vals  []float64
	rng   *rand.ChaCha8
	rows  []int32 // rows of the current batch that belong to this shard
	err   error
}

func newShard(k, nv int) (*shard, error) {
	r, err := newRand()
	if err != nil {
		return nil, err
	}
	s := &shard{k: k, nv: nv, rng: r}
	s.alloc(1 << 12)
	return s, nil
}

func (s *shard) alloc(size int) {
	s.slots = make([]pairSlot, size)
	for i := range s.slots {
		s.slots[i].key = emptyKey
	}
	s.mask = uint64(size - 1)
	s.shift = uint(64 - bitsLen(size))
}

func (s *shard) grow() {
	old := s.slots
	s.alloc(2 * len(old))
	for _, sl := range old {
		if sl.key == emptyKey {
			continue
		}
		i := (sl.key * fib) >> s.shift
		for s.slots[i].key != emptyKey {
			i = (i + 1) & s.mask
		}
		s.slots[i] = sl
	}
}

// add feeds the rows s.rows of a batch: sid and pid are the dense subject and
// partition codes, cols the value columns. firstRow numbers rows in errors.
func (s *shard) add(sid, pid []uint32, cols [][]float64, firstRow int64) {
	k, nv := s.k, s.nv
	stride := k * nv
	for _, r := range s.rows {
		key := uint64(sid[r])<<32 | uint64(pid[r])
		i := (key * fib) >> s.shift
		var sl *pairSlot
		for {
			sl = &s.slots[i]
			if sl.key == key {
				break
			}
			if sl.key == emptyKey {
				if 4*(s.n+1) > 3*len(s.slots) {
					s.grow()
					i = (key * fib) >> s.shift
					continue
				}
				sl.key = key
				sl.blk = uint32(s.n)
				s.n++
				if stride > 0 {
					// Slots are written before they are read (only the first
					// min(seen, k) are used), so growing needs no clearing.
					s.vals = slices.Grow(s.vals, stride)[:s.n*stride]
				}
				break
			}
			i = (i + 1) & s.mask
		}
		if sl.seen == math.MaxUint32 {
			s.err = fmt.Errorf("row %d: more than %d rows for one (subject, partition) pair", firstRow+int64(r), uint32(math.MaxUint32))
			return
		}
		sl.seen++
		if nv == 0 {
			continue
		}
		var pos int
		if int(sl.seen) <= k {
			pos = int(sl.seen) - 1
		} else {
			j := uintN(s.rng, uint64(sl.seen))
			if j >= uint64(k) {
				continue
			}
			pos = int(j)
		}
		base := int(sl.blk)*stride + pos*nv
		for c := 0; c < nv; c++ {
			s.vals[base+c] = cols[c][r]
		}
	}
}

// chosenPair is a pair that survived L0 bounding.
type chosenPair struct {
	pid  uint32
	rows int // min(seen, k): rows kept
	blk  uint32
	seen uint32
}

// bound applies the L0 bound: for every subject with more than l0 pairs, l0
// of them are kept, chosen uniformly at random (a partial Fisher–Yates
// shuffle over the subject's pairs). visit is called for every kept pair.
// nSubjects is the number of subject codes; shards own codes
// shardIndex, shardIndex+nShards, ...
func (s *shard) bound(l0 int, nSubjects, shardIndex, nShards int, visit func(p chosenPair), st *Stats) {
	local := (nSubjects-shardIndex+nShards-1)/nShards + 1
	start := make([]int32, local+1)
	for _, sl := range s.slots {
		if sl.key != emptyKey {
			start[int(sl.key>>32)/nShards+1]++
		}
	}
	for i := 1; i <= local; i++ {
		start[i] += start[i-1]
	}
	order := make([]int32, s.n)
	fill := append([]int32(nil), start[:local]...)
	for i, sl := range s.slots {
		if sl.key != emptyKey {
			l := int(sl.key>>32) / nShards
			order[fill[l]] = int32(i)
			fill[l]++
		}
	}
	for l := 0; l < local; l++ {
		grp := order[start[l]:start[l+1]]
		if len(grp) == 0 {
			continue
		}
		st.Subjects++
		keep := len(grp)
		if keep > l0 {
			for i := 0; i < l0; i++ {
				j := i + int(uintN(s.rng, uint64(len(grp)-i)))
				grp[i], grp[j] = grp[j], grp[i]
			}
			for _, si := range grp[l0:] {
				st.RowsDroppedL0 += int64(s.slots[si].seen)
				st.PairsDroppedL0++
			}
			keep = l0
		}
		for _, si := range grp[:keep] {
			sl := s.slots[si]
			rows := int(sl.seen)
			if rows > s.k {
				st.RowsDroppedLInf += int64(rows - s.k)
				rows = s.k
			}
			st.RowsUsed += int64(rows)
			visit(chosenPair{pid: uint32(sl.key), rows: rows, blk: sl.blk, seen: sl.seen})
		}
	}
}
