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

// pairSlot is one (subject, partition) pair in a bucket's open-addressing
// table: 16 bytes, so that one probe is usually one cache line.
type pairSlot struct {
	key  uint64 // subject<<32 | partition; emptyKey when free
	seen uint32 // rows of this pair seen so far
	blk  uint32 // index of the pair's reservoir block in bucket.vals
}

const emptyKey = ^uint64(0)

// Bucketing. A shard owns the subjects with subject%nShards == its index and
// splits them further into bucketsPerShard buckets, each with its own small
// pair table. Rows are first staged per bucket (an append to one of a few
// hundred buffer tails, which stay in cache) and a bucket's staged rows are
// applied to its table in one go when bucketStage rows have gathered. The
// table of one bucket is small enough to stay in L2 while its rows are
// applied, so the random accesses of hashing hit the cache instead of DRAM:
// this is what makes bounding cost a few ns per row instead of a cache miss.
const (
	bucketsPerShard = 512
	bucketStage     = 2048
)

// bucket holds the pairs of some subjects: staged rows and the pair table.
type bucket struct {
	stKeys []uint64  // staged rows: subject<<32 | partition
	stVals []float64 // staged rows' values, nv per row
	slots  []pairSlot
	mask   uint64
	shift  uint
	n      int
	vals   []float64 // reservoir blocks, k·nv per pair
}

// shard owns its buckets, so shards never share state and run in parallel
// without locks.
//
// Per pair it keeps a reservoir of at most k = L∞ rows (Algorithm R: the
// first k rows fill it, row n > k replaces a uniformly chosen slot with
// probability k/n). After any number of rows, in any order, the reservoir is
// a uniformly random k-subset of the pair's rows. Memory is O(pairs·k·nv)
// plus the bounded staging buffers, independent of the number of rows.
type shard struct {
	buckets []bucket
	shift   uint // log2 of the number of shards (a power of two)
	k       int  // L∞
	nv      int  // value columns
	rng     *rand.ChaCha8
	rows    []int32 // rows of the current batch that belong to this shard
	err     error
	sink    uint64 // keeps the touch loads of apply alive
}

// newShard returns a shard of 1<<shift shards.
func newShard(k, nv int, shift uint) (*shard, error) {
	r, err := newRand()
	if err != nil {
		return nil, err
	}
	return &shard{k: k, nv: nv, rng: r, shift: shift, buckets: make([]bucket, bucketsPerShard)}, nil
}

func (b *bucket) alloc(size int) {
	b.slots = make([]pairSlot, size)
	for i := range b.slots {
		b.slots[i].key = emptyKey
	}
	b.mask = uint64(size - 1)
	b.shift = uint(64 - bitsLen(size))
}

func (b *bucket) grow() {
	old := b.slots
	b.alloc(2 * len(old))
	for _, sl := range old {
		if sl.key == emptyKey {
			continue
		}
		i := (sl.key * fib) >> b.shift
		for b.slots[i].key != emptyKey {
			i = (i + 1) & b.mask
		}
		b.slots[i] = sl
	}
}

// add stages the rows s.rows of a batch: sid and pid are the dense subject
// and partition codes, cols the value columns. A bucket whose stage is full
// is applied to its table at once. firstRow numbers rows in errors.
func (s *shard) add(sid, pid []uint32, cols [][]float64, firstRow int64) {
	nv := s.nv
	for _, r := range s.rows {
		id := sid[r]
		b := &s.buckets[(id>>s.shift)%bucketsPerShard]
		b.stKeys = append(b.stKeys, uint64(id)<<32|uint64(pid[r]))
		for c := 0; c < nv; c++ {
			b.stVals = append(b.stVals, cols[c][r])
		}
		if len(b.stKeys) >= bucketStage {
			if err := s.apply(b); err != nil {
				s.err = fmt.Errorf("row %d: %w", firstRow+int64(r), err)
				return
			}
		}
	}
}

// apply runs the staged rows of b through its pair table and reservoirs.
func (s *shard) apply(b *bucket) error {
	k, nv := s.k, s.nv
	stride := k * nv
	if b.slots == nil {
		b.alloc(64)
	}
	// Touch every staged row's home slot first: independent loads the CPU
	// overlaps, so the table is in cache for the dependent probes below
	// (Go has no prefetch intrinsic; a live accumulator keeps the loads).
	var sink uint64
	for _, key := range b.stKeys {
		sink += b.slots[(key*fib)>>b.shift].key
	}
	s.sink += sink
	for e, key := range b.stKeys {
		i := (key * fib) >> b.shift
		var sl *pairSlot
		for {
			sl = &b.slots[i]
			if sl.key == key {
				break
			}
			if sl.key == emptyKey {
				if 4*(b.n+1) > 3*len(b.slots) {
					b.grow()
					i = (key * fib) >> b.shift
					continue
				}
				sl.key = key
				sl.blk = uint32(b.n)
				b.n++
				if stride > 0 {
					// Slots are written before they are read (only the first
					// min(seen, k) are used), so growing needs no clearing.
					b.vals = slices.Grow(b.vals, stride)[:b.n*stride]
				}
				break
			}
			i = (i + 1) & b.mask
		}
		if sl.seen == math.MaxUint32 {
			return fmt.Errorf("more than %d rows for one (subject, partition) pair", uint32(math.MaxUint32))
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
		dst := int(sl.blk)*stride + pos*nv
		for c := range nv {
			b.vals[dst+c] = b.stVals[e*nv+c]
		}
	}
	b.stKeys = b.stKeys[:0]
	b.stVals = b.stVals[:0]
	return nil
}

// chosenPair is a pair that survived L0 bounding.
type chosenPair struct {
	pid  uint32
	rows int       // min(seen, k): rows kept
	vals []float64 // the kept rows' values, rows × nv
}

// bound applies the L0 bound: for every subject with more than l0 pairs, l0
// of them are kept, chosen uniformly at random (a partial Fisher–Yates
// shuffle over the subject's pairs). visit is called for every kept pair.
// All pairs of a subject live in one bucket.
func (s *shard) bound(l0 int, visit func(p chosenPair), st *Stats) error {
	stride := s.k * s.nv
	var order []int32
	var start []int32
	for bi := range s.buckets {
		b := &s.buckets[bi]
		if len(b.stKeys) > 0 {
			if err := s.apply(b); err != nil {
				return err
			}
		}
		if b.n == 0 {
			continue
		}
		// Group the bucket's pairs by subject: counting sort on the
		// subject's index within the bucket.
		div := uint64(bucketsPerShard) << s.shift
		maxLocal := 0
		for _, sl := range b.slots {
			if sl.key != emptyKey {
				maxLocal = max(maxLocal, int((sl.key>>32)/div))
			}
		}
		start = append(start[:0], make([]int32, maxLocal+2)...)
		for _, sl := range b.slots {
			if sl.key != emptyKey {
				start[int((sl.key>>32)/div)+1]++
			}
		}
		for i := 1; i < len(start); i++ {
			start[i] += start[i-1]
		}
		order = slices.Grow(order[:0], b.n)[:b.n]
		fill := append([]int32(nil), start[:maxLocal+1]...)
		for i, sl := range b.slots {
			if sl.key != emptyKey {
				l := int((sl.key >> 32) / div)
				order[fill[l]] = int32(i)
				fill[l]++
			}
		}
		for l := 0; l <= maxLocal; l++ {
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
					st.RowsDroppedL0 += int64(b.slots[si].seen)
					st.PairsDroppedL0++
				}
				keep = l0
			}
			for _, si := range grp[:keep] {
				sl := b.slots[si]
				rows := int(sl.seen)
				if rows > s.k {
					st.RowsDroppedLInf += int64(rows - s.k)
					rows = s.k
				}
				st.RowsUsed += int64(rows)
				off := int(sl.blk) * stride
				visit(chosenPair{pid: uint32(sl.key), rows: rows, vals: b.vals[off : off+rows*s.nv]})
			}
		}
		b.slots, b.vals, b.stKeys, b.stVals = nil, nil, nil, nil
	}
	return nil
}
