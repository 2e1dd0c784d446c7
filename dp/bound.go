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

// uintN32 returns a uniform integer in [0, n) for 0 < n < 2^32, using half
// of a 64-bit ChaCha8 output (the other half is kept for the next draw):
// Lemire's method on 32 bits, without modulo bias.
func (s *shard) uintN32(n uint32) uint32 {
	for {
		var x uint32
		if s.half {
			x, s.half = uint32(s.spare>>32), false
		} else {
			s.spare = s.rng.Uint64()
			x, s.half = uint32(s.spare), true
		}
		m := uint64(x) * uint64(n)
		if uint32(m) >= n || uint32(m) >= -n%n {
			return uint32(m >> 32)
		}
	}
}

// uintN16 returns a uniform integer in [0, n) for 0 < n < 2^16 from a
// quarter of a 64-bit ChaCha8 output (Lemire's method on 16 bits, without
// modulo bias): most pairs have fewer than 2^16 rows, and the reservoir
// draws once per row.
func (s *shard) uintN16(n uint16) uint16 {
	for {
		if s.lanes == 0 {
			s.spare16, s.lanes = s.rng.Uint64(), 4
		}
		x := uint16(s.spare16)
		s.spare16 >>= 16
		s.lanes--
		m := uint32(x) * uint32(n)
		if uint16(m) >= n || uint16(m) >= -n%n {
			return uint16(m >> 16)
		}
	}
}

// newRand returns a ChaCha8 generator seeded from crypto/rand. ChaCha8 is a
// cryptographically strong stream: which rows and partitions survive
// contribution bounding cannot be predicted from the data or the code.
func newRand() (*rand.ChaCha8, error) {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("seeding the sampler from crypto/rand: %w", err)
	}
	return rand.NewChaCha8(seed), nil
}

// Bucketing. A shard owns the subjects with subject%nShards == its index and
// splits them further into bucketsPerShard buckets, each with its own pair
// state. Rows are first staged per bucket (see add) and a bucket's staged
// rows are applied to its state in one go when its stage is full. The state
// of one bucket is small (about 70 KB in BenchmarkDPAggregate: ~1,200 pairs
// of 48 bytes plus the index), so it is read into the cache in one
// sequential sweep before the rows are applied, and the random accesses of
// hashing then hit the cache instead of DRAM.
const (
	bucketsPerShard = 512
	bucketStage     = 4096 // rows per bucket in the big stage
	wcRows          = 64   // rows per bucket in the small buffers
)

// bucket holds the pairs of some subjects.
//
// Pairs are dense records numbered from 1 in insertion order (record 0 is
// scratch for apply), stride = 2 + k·nv words each: the key (subject<<32 |
// partition, plus 1), the number of rows seen, then the reservoir (k rows
// of nv values, as float64 bits). An open-addressing index (at most half
// full) maps a key to its record number: 4 bytes per slot, so that free
// slots cost little and records have no empty slots between them — the
// bucket's state is its records plus growth slack plus a small index, which
// is what apply sweeps into the cache and what the process pays page faults
// for.
type bucket struct {
	recs  []uint64
	index []uint32 // record number; 0 when free
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
	stride    int  // words per record: 2 + k·nv
	kn        int  // reservoir words per pair: k·nv
	rng       *rand.ChaCha8
	rows      []int32 // rows of the current batch that belong to this shard
	err       error
	initPairs int    // most pairs any bucket holds so far
	staged    int64  // rows staged so far
	sink      uint64 // keeps the sweep loads of apply alive
	spare     uint64 // the unused half of the last ChaCha8 output
	half      bool   // whether spare's high half is unused
	spare16   uint64 // unused 16-bit lanes of a ChaCha8 output, low first
	lanes     int    // how many

	// Staged rows, 1+nv words each: subject<<32 | partition, plus 1, then
	// the values' float64 bits. Bucket bi's newest rows are in its small
	// buffer wc[bi·wcRows·(1+nv):][:wfill[bi]], older ones in its region of
	// the big stage, stage[bi·capw:][:fill[bi]] (nil until the input is big).
	wc    []uint64
	wfill []int32
	stage []uint64
	fill  []int32
	capw  int // words per bucket region of the big stage
}

// newShard returns a shard of 1<<shift shards.
func newShard(k, nv int, shift uint) (*shard, error) {
	r, err := newRand()
	if err != nil {
		return nil, err
	}
	s := &shard{k: k, nv: nv, rng: r, shift: shift, buckets: make([]bucket, bucketsPerShard)}
	s.setLayout()
	return s, nil
}

func (s *shard) setLayout() {
	s.kn = s.k * s.nv
	s.stride = 2 + s.kn
}

// indexFor sizes b's index for pairs records at most half full.
func (b *bucket) indexFor(pairs int) {
	slots := 64
	for slots < 2*pairs {
		slots *= 2
	}
	b.index = make([]uint32, slots)
	b.mask = uint64(slots - 1)
	b.shift = uint(64 - bitsLen(slots))
}

// reindex grows the index and re-inserts every record: fourfold while it
// is small (up to 1,024 slots), then twofold. Buckets fill in step (subjects
// spread evenly over them), so every bucket goes through the whole chain
// of sizes; skipping every other small size saves re-inserting ≈ 0.7 of
// the final pairs per bucket, and the small sizes cost little memory.
func (b *bucket) reindex(stride int) {
	if len(b.index) < 1024 {
		b.indexFor(2 * len(b.index))
	} else {
		b.indexFor(len(b.index))
	}
	for r := 1; r <= b.n; r++ {
		i := (b.recs[r*stride] * fib) >> b.shift
		for b.index[i] != 0 {
			i = (i + 1) & b.mask
		}
		b.index[i] = uint32(r)
	}
}

// add stages the rows s.rows of a batch: sid and pid are the dense subject
// and partition codes, cols the value columns.
//
// Staging is two-level. A row is written to its bucket's small buffer
// (wcRows rows; all of them together stay in the L2 cache); a full buffer is
// copied in one burst to the bucket's region of the big stage, and a full
// region is applied to the bucket's table. Writing rows one by one straight
// into a stage far bigger than the caches costs a cache miss per line
// written, scattered over 512 regions; copying 1 KiB bursts lets the
// hardware stream them (8.2 -> 6.1 cpu-ns/row for the scatter alone, in
// isolation). Until the input is big there is no big stage: a full buffer
// is applied directly.
func (s *shard) add(sid, pid []uint32, cols [][]float64) {
	s.growStage(len(s.rows))
	nv := s.nv
	w := 1 + nv
	wcw := wcRows * w
	wc, wfill := s.wc, s.wfill
	if nv == 1 {
		// The common case (one value column), without the column loop.
		vals := cols[0]
		for _, r := range s.rows {
			id := sid[r]
			bi := (id >> s.shift) % bucketsPerShard
			m := int(wfill[bi])
			at := int(bi)*wcw + m
			st := wc[at : at+2]
			st[0] = uint64(id)<<32 | uint64(pid[r]) + 1
			st[1] = math.Float64bits(vals[r])
			m += 2
			if m == wcw {
				s.flush(bi)
				m = 0
			}
			wfill[bi] = int32(m)
		}
		return
	}
	for _, r := range s.rows {
		id := sid[r]
		bi := (id >> s.shift) % bucketsPerShard
		m := int(wfill[bi])
		at := int(bi)*wcw + m
		st := wc[at : at+w]
		st[0] = uint64(id)<<32 | uint64(pid[r]) + 1
		for c := range nv {
			st[1+c] = math.Float64bits(cols[c][r])
		}
		m += w
		if m == wcw {
			s.flush(bi)
			m = 0
		}
		wfill[bi] = int32(m)
	}
}

// flush moves bucket bi's full small buffer to its stage region, and
// applies the region when it is full (or the buffer itself, without a big
// stage).
func (s *shard) flush(bi uint32) {
	wcw := wcRows * (1 + s.nv)
	buf := s.wc[int(bi)*wcw : int(bi)*wcw+wcw]
	if s.stage == nil {
		s.apply(&s.buckets[bi], buf)
		return
	}
	capw := s.capw
	n := int(s.fill[bi])
	copy(s.stage[int(bi)*capw+n:int(bi)*capw+n+wcw], buf)
	n += wcw
	if n == capw {
		s.apply(&s.buckets[bi], s.stage[int(bi)*capw:int(bi)*capw+n])
		n = 0
	}
	s.fill[bi] = int32(n)
}

// growStage sets up staging: the small buffers at once (wcRows rows per
// bucket, so that small inputs stay small), the big stage (bucketStage rows
// per bucket, one allocation) once the shard has staged bigStage rows.
func (s *shard) growStage(more int) {
	const bigStage = 1 << 17
	w := 1 + s.nv
	if s.wc == nil {
		s.wc = make([]uint64, int(bucketsPerShard)*wcRows*w)
		s.wfill = make([]int32, bucketsPerShard)
	}
	s.staged += int64(more)
	if s.staged <= bigStage || s.stage != nil {
		return
	}
	s.capw = bucketStage * w
	s.stage = make([]uint64, int(bucketsPerShard)*s.capw)
	s.fill = make([]int32, bucketsPerShard)
}

// growRecs makes room for more records in b: twice as many, or as many as
// the fullest bucket holds plus 1/8 if that is more (subjects spread evenly
// over buckets, so buckets end up with about the same number of pairs).
// Doubling keeps the garbage of growth below the final size.
func (s *shard) growRecs(b *bucket) {
	pairs := max(2*cap(b.recs)/s.stride, s.initPairs+s.initPairs/8, 32)
	recs := make([]uint64, len(b.recs), pairs*s.stride)
	copy(recs, b.recs)
	b.recs = recs
}

// apply runs the staged rows st of b through its pair records and reservoirs.
func (s *shard) apply(b *bucket, st []uint64) {
	k, nv, stride := s.k, s.nv, s.stride
	w := 1 + nv
	if b.index == nil {
		// Subjects spread evenly over buckets, so a new bucket starts at
		// the size the first buckets grew to instead of growing again.
		pairs := max(32, s.initPairs+s.initPairs/8)
		b.indexFor(pairs)
		// Record 0 is scratch: replacement writes that the reservoir
		// rejects go there, so that the update needs no branch.
		b.recs = make([]uint64, stride, (pairs+1)*stride)
	} else {
		// Read the records and the index once, sequentially, before the
		// random accesses of hashing: the hardware prefetcher streams them
		// into the cache at memory bandwidth, where touching each staged
		// row's record would wait for one DRAM round trip per line (a full
		// stage touches most records anyway). (Go has no prefetch
		// intrinsic; a live accumulator keeps the loads.)
		var sink uint64
		for o := 0; o < len(b.recs); o += 8 {
			sink += b.recs[o]
		}
		for o := 0; o < len(b.index); o += 16 {
			sink += uint64(b.index[o])
		}
		s.sink += sink
	}
	for o := 0; o+w <= len(st); o += w {
		key := st[o]
		i := (key * fib) >> b.shift
		var base int
		for {
			e := b.index[i]
			if e == 0 {
				if 2*(b.n+1) > len(b.index) {
					b.reindex(stride)
					i = (key * fib) >> b.shift
					continue
				}
				b.n++
				b.index[i] = uint32(b.n)
				base = len(b.recs)
				if base+stride > cap(b.recs) {
					s.growRecs(b)
				}
				b.recs = b.recs[:base+stride]
				b.recs[base] = key
				b.recs[base+1] = 0
				break
			}
			base = int(e) * stride
			if b.recs[base] == key {
				break
			}
			i = (i + 1) & b.mask
		}
		seen := b.recs[base+1] + 1
		b.recs[base+1] = seen
		if nv == 0 {
			continue
		}
		// Algorithm R without unpredictable branches: row seen ≤ k goes
		// to slot seen-1, row seen > k to a uniform slot in [0, seen),
		// which is a reservoir slot with probability k/seen and the
		// scratch record otherwise. The draw is made for every row.
		var j uint64
		switch {
		case seen < 1<<16:
			j = uint64(s.uintN16(uint16(seen)))
		case seen < 1<<32:
			j = uint64(s.uintN32(uint32(seen)))
		default:
			j = uintN(s.rng, seen)
		}
		if seen <= uint64(k) {
			j = seen - 1
		}
		dst := base + 2 + int(j)*nv
		if j >= uint64(k) {
			dst = 2
		}
		if nv == 1 {
			b.recs[dst] = st[o+1]
			continue
		}
		for c := range nv {
			b.recs[dst+c] = st[o+1+c]
		}
	}
	s.initPairs = max(s.initPairs, b.n)
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
		if s.wc != nil {
			// The rows still staged: the big stage's region, then the
			// small buffer's (which fit after them: a region holds whole
			// buffers and is never full between calls).
			wcw := wcRows * (1 + s.nv)
			m := int(s.wfill[bi])
			buf := s.wc[bi*wcw : bi*wcw+m]
			if s.stage != nil {
				n := int(s.fill[bi])
				copy(s.stage[bi*s.capw+n:], buf)
				buf = s.stage[bi*s.capw : bi*s.capw+n+m]
				s.fill[bi] = 0
			}
			if len(buf) > 0 {
				s.apply(b, buf)
			}
			s.wfill[bi] = 0
		}
		if b.n == 0 {
			continue
		}
		// Group the bucket's pairs by subject: one pass over the records
		// collects their offsets, then a counting sort on the subject's
		// index within the bucket.
		div := uint64(bucketsPerShard) << s.shift
		occ, loc = occ[:0], loc[:0]
		maxLocal := 0
		for o := stride; o < len(b.recs); o += stride {
			l := int(((b.recs[o] - 1) >> 32) / div)
			occ = append(occ, int32(o))
			loc = append(loc, int32(l))
			maxLocal = max(maxLocal, l)
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
					j := i + int(s.uintN32(uint32(len(grp)-i)))
					grp[i], grp[j] = grp[j], grp[i]
				}
				for _, o := range grp[l0:] {
					st.RowsDroppedL0 += int64(b.recs[o+1])
					st.PairsDroppedL0++
				}
				keep = l0
			}
			for _, o := range grp[:keep] {
				rows := int64(b.recs[o+1])
				if rows > int64(s.k) {
					st.RowsDroppedLInf += rows - int64(s.k)
					rows = int64(s.k)
				}
				st.RowsUsed += rows
				v := vals[:int(rows)*s.nv]
				for c := range v {
					v[c] = math.Float64frombits(b.recs[int(o)+2+c])
				}
				visit(chosenPair{pid: uint32(b.recs[o] - 1), rows: int(rows), vals: v})
			}
		}
		*b = bucket{}
	}
	return nil
}
