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

// Slots store key+1, so that a zeroed slot (fresh memory, no
// initialisation pass) is free: keys are < 2^64-1 (subject codes < 2^32-1).
const emptyKey = 0

// Bucketing. A shard owns the subjects with subject%nShards == its index and
// splits them further into bucketsPerShard buckets, each with its own small
// pair table. Rows are first staged per bucket (an append to one of a few
// hundred buffer tails, which stay in cache) and a bucket's staged rows are
// applied to its table in one go when bucketStage rows have gathered. The
// table of one bucket is small, so while its rows are applied the random
// accesses of hashing mostly hit the cache instead of DRAM.
const (
	bucketsPerShard = 512
	bucketStage     = 4096
)

// bucket holds the pairs of some subjects: staged rows and the pair table.
//
// The table is open addressing over flat words, one slot per pair: the key
// (subject<<32 | partition, plus 1; 0 when free), the number of rows seen,
// then the reservoir (k rows of nv values, as float64 bits) when it is small
// (k·nv <= maxInline: key, count and reservoir share one or two cache lines,
// so a row costs one miss at most), else the index of the pair's reservoir
// in the bucket's arena.
type bucket struct {
	// Staged rows, 1+nv words each: subject<<32 | partition, plus 1, then
	// the values' float64 bits. One buffer, so that staging a row writes
	// to one tail (one cache line) per bucket, not two.
	st    []uint64
	words []uint64
	arena []uint64 // reservoirs when they are not inline, kn words per pair
	mask  uint64
	shift uint
	n     int // pairs
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
	buckets   []bucket
	shift     uint // log2 of the number of shards (a power of two)
	k         int  // L∞
	nv        int  // value columns
	stride    int  // words per slot: 2 + k·nv inline, 3 with an arena
	kn        int  // reservoir words per pair: k·nv
	inline    bool // reservoir inside the slot (small k·nv) or in the arena
	rng       *rand.ChaCha8
	rows      []int32 // rows of the current batch that belong to this shard
	err       error
	initSlots int    // size the largest bucket table has grown to
	notPublic int64  // rows skipped because their partition is not listed
	staged    int64  // rows staged so far
	sink      uint64 // keeps the touch loads of apply alive
}

// newShard returns a shard of 1<<shift shards.
func newShard(k, nv int, shift uint) (*shard, error) {
	r, err := newRand()
	if err != nil {
		return nil, err
	}
	s := &shard{k: k, nv: nv, kn: k * nv, rng: r, shift: shift, buckets: make([]bucket, bucketsPerShard)}
	s.setLayout()
	return s, nil
}

// maxInline is the largest reservoir (k·nv words) kept inside the slot.
// Larger reservoirs live in a per-bucket arena, so that empty slots (the
// table is at most 3/4 full) do not each carry k·nv unused words.
const maxInline = 8

func (s *shard) setLayout() {
	s.kn = s.k * s.nv
	s.inline = s.kn <= maxInline
	if s.inline {
		s.stride = 2 + s.kn
	} else {
		s.stride = 3
	}
}

func (b *bucket) alloc(slots, stride int) {
	b.words = make([]uint64, slots*stride)
	b.mask = uint64(slots - 1)
	b.shift = uint(64 - bitsLen(slots))
}

func (b *bucket) grow(stride int) {
	old := b.words
	b.alloc(2*len(old)/stride, stride)
	for o := 0; o < len(old); o += stride {
		key := old[o]
		if key == emptyKey {
			continue
		}
		i := (key * fib) >> b.shift
		for b.words[int(i)*stride] != emptyKey {
			i = (i + 1) & b.mask
		}
		dst := b.words[int(i)*stride : int(i+1)*stride]
		for w := range dst {
			dst[w] = old[o+w]
		}
	}
}

// add stages the rows s.rows of a batch: sid and pid are the dense subject
// and partition codes, cols the value columns. A bucket whose stage is full
// is applied to its table at once.
func (s *shard) add(sid, pid []uint32, cols [][]float64) {
	nv := s.nv
	w := 1 + nv
	full := bucketStage * w
	s.staged += int64(len(s.rows))
	for _, r := range s.rows {
		id := sid[r]
		b := &s.buckets[(id>>s.shift)%bucketsPerShard]
		n := len(b.st)
		if n+w > cap(b.st) {
			s.growStage(b)
		}
		st := b.st[:n+w]
		st[n] = uint64(id)<<32 | uint64(pid[r]) + 1
		for c := range nv {
			st[n+1+c] = math.Float64bits(cols[c][r])
		}
		b.st = st
		if n+w >= full {
			s.apply(b)
		}
	}
}

// route sets s.rows to the rows of this shard (subject & mask == me),
// branch-free, skipping (and counting) rows of partitions a public list does
// not name.
func (s *shard) route(me, mask uint32, sid, pid []uint32, pub []bool) {
	if cap(s.rows) < len(sid) {
		s.rows = make([]int32, len(sid))
	}
	rows := s.rows[:len(sid)]
	cnt := 0
	if pub == nil {
		for i, id := range sid {
			rows[cnt] = int32(i)
			cnt += int((((id ^ me) & mask) - 1) >> 31)
		}
	} else {
		for i, id := range sid {
			own := int((((id ^ me) & mask) - 1) >> 31)
			listed := 0
			if pub[pid[i]] {
				listed = 1
			}
			rows[cnt] = int32(i)
			cnt += own & listed
			s.notPublic += int64(own &^ listed)
		}
	}
	s.rows = rows[:cnt]
}

// growStage makes room in b's staging buffers. Staging starts small, so
// that small inputs stay small; once the shard has staged bigStage rows the
// input is big and buffers jump straight to bucketStage (one allocation
// instead of a chain of doublings across every bucket).
func (s *shard) growStage(b *bucket) {
	const bigStage = 1 << 17
	w := 1 + s.nv
	c := min(bucketStage, max(256, 2*cap(b.st)/w))
	if s.staged > bigStage {
		c = bucketStage
	}
	st := make([]uint64, len(b.st), c*w)
	copy(st, b.st)
	b.st = st
}

// apply runs the staged rows of b through its pair table and reservoirs.
func (s *shard) apply(b *bucket) {
	k, nv, stride, kn, inline := s.k, s.nv, s.stride, s.kn, s.inline
	w := 1 + nv
	fresh := b.words == nil
	if fresh {
		// Subjects spread evenly over buckets, so a new bucket starts at
		// the size the first buckets grew to instead of growing again.
		b.alloc(max(256, s.initSlots), stride)
	}
	// Touch every staged row's home slot first: independent loads the CPU
	// overlaps, so the table is in cache for the dependent probes below
	// (Go has no prefetch intrinsic; a live accumulator keeps the loads).
	// Not on a fresh table: its pages are not mapped yet, and reading them
	// would map the zero page only for the first write to fault again.
	if !fresh {
		var sink uint64
		for o := 0; o < len(b.st); o += w {
			sink += b.words[int((b.st[o]*fib)>>b.shift)*stride]
		}
		s.sink += sink
	}
	for o := 0; o < len(b.st); o += w {
		key := b.st[o]
		i := (key * fib) >> b.shift
		var base int
		for {
			base = int(i) * stride
			kk := b.words[base]
			if kk == key {
				break
			}
			if kk == emptyKey {
				if 4*(b.n+1) > 3*(int(b.mask)+1) {
					b.grow(stride)
					i = (key * fib) >> b.shift
					continue
				}
				b.words[base] = key
				if !inline {
					b.words[base+2] = uint64(len(b.arena) / kn)
					b.arena = slices.Grow(b.arena, kn)[:len(b.arena)+kn]
				}
				b.n++
				break
			}
			i = (i + 1) & b.mask
		}
		seen := b.words[base+1] + 1
		b.words[base+1] = seen
		if nv == 0 {
			continue
		}
		var pos int
		if seen <= uint64(k) {
			pos = int(seen) - 1
		} else {
			j := uintN(s.rng, seen)
			if j >= uint64(k) {
				continue
			}
			pos = int(j)
		}
		tgt, dst := b.words, base+2+pos*nv
		if !inline {
			tgt, dst = b.arena, int(b.words[base+2])*kn+pos*nv
		}
		for c := range nv {
			tgt[dst+c] = b.st[o+1+c]
		}
	}
	b.st = b.st[:0]
	if slots := len(b.words) / stride; slots > s.initSlots {
		s.initSlots = slots
	}
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
	stride := s.stride
	var order, start, occ, loc, fill []int32
	vals := make([]float64, s.k*s.nv)
	for bi := range s.buckets {
		b := &s.buckets[bi]
		if len(b.st) > 0 {
			s.apply(b)
		}
		if b.n == 0 {
			continue
		}
		// Group the bucket's pairs by subject: one pass over the table
		// collects the occupied slots, then a counting sort on the
		// subject's index within the bucket.
		div := uint64(bucketsPerShard) << s.shift
		occ, loc = occ[:0], loc[:0]
		maxLocal := 0
		for o := 0; o < len(b.words); o += stride {
			if key := b.words[o]; key != emptyKey {
				l := int(((key - 1) >> 32) / div)
				occ = append(occ, int32(o))
				loc = append(loc, int32(l))
				maxLocal = max(maxLocal, l)
			}
		}
		start = append(start[:0], make([]int32, maxLocal+2)...)
		for _, l := range loc {
			start[l+1]++
		}
		for i := 1; i < len(start); i++ {
			start[i] += start[i-1]
		}
		order = slices.Grow(order[:0], len(occ))[:len(occ)]
		fill = append(fill[:0], start[:maxLocal+1]...)
		for i, l := range loc {
			order[fill[l]] = occ[i]
			fill[l]++
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
				for _, o := range grp[l0:] {
					st.RowsDroppedL0 += int64(b.words[o+1])
					st.PairsDroppedL0++
				}
				keep = l0
			}
			for _, o := range grp[:keep] {
				rows := int64(b.words[o+1])
				if rows > int64(s.k) {
					st.RowsDroppedLInf += rows - int64(s.k)
					rows = int64(s.k)
				}
				st.RowsUsed += rows
				v := vals[:int(rows)*s.nv]
				src, off := b.words, int(o)+2
				if !s.inline {
					src, off = b.arena, int(b.words[o+2])*s.kn
				}
				for c := range v {
					v[c] = math.Float64frombits(src[off+c])
				}
				visit(chosenPair{pid: uint32(b.words[o] - 1), rows: int(rows), vals: v})
			}
		}
		*b = bucket{}
	}
	return nil
}
