package kanon

import (
	"math/bits"
)

// hashTable is an open-addressing map from uint64 keys to int32, reset in
// O(1) by bumping an epoch: the evaluation hot path allocates nothing. Key,
// value and epoch share a slot so a probe touches one cache line. Small key
// spaces use a dense array instead of hashing.
type hashTable struct {
	slots []slot
	cur   uint32
	mask  uint64
	shift uint // 64 - log2(slots in use): the hash is the product's top bits
	dense bool
}

// fibonacci is 2^64 divided by the golden ratio: multiplied by a key, its
// top bits mix all of the key's bits (Knuth's multiplicative hashing). The
// top bits, not middle ones: a middle slice of the product ignores the
// key's high bits, and keys that differ only in their last columns would
// all collide.
const fibonacci = 0x9E3779B97F4A7C15

type slot struct {
	key   uint64
	val   int32
	epoch uint32
}

// denseLimit is the largest key space indexed directly.
const denseLimit = 1 << 16

// reset prepares the table for n keys; keySpace is an upper bound of the
// keys (0 when unknown), used to pick the dense layout.
func (h *hashTable) reset(n int, keySpace uint64) {
	want := 1 << bits.Len(uint(2*n+1))
	want = max(want, 16)
	h.dense = keySpace > 0 && keySpace <= denseLimit && keySpace <= uint64(4*want)
	if h.dense {
		want = max(want, int(keySpace))
	}
	if len(h.slots) < want {
		h.slots = make([]slot, want)
		h.cur = 0
	}
	// Probe only the slots this use needs, however large an earlier use
	// made the table: a few keys spread over a megabyte of slots would
	// miss the cache on every probe. Slots past the prefix keep older
	// epochs, so a later, larger use still sees them empty.
	h.mask = uint64(want - 1)
	h.shift = uint(64 - bits.TrailingZeros(uint(want)))
	if h.dense {
		h.mask = ^uint64(0)
	}
	h.cur++
	if h.cur == 0 {
		clear(h.slots)
		h.cur = 1
	}
}

// getOrPut returns the value stored for k, or stores v and returns v, false.
func (h *hashTable) getOrPut(k uint64, v int32) (int32, bool) {
	if h.dense {
		s := &h.slots[k]
		if s.epoch != h.cur {
			s.epoch, s.val = h.cur, v
			return v, false
		}
		return s.val, true
	}
	i := (k * fibonacci) >> (h.shift & 63)
	for {
		s := &h.slots[i]
		if s.epoch != h.cur {
			s.epoch, s.key, s.val = h.cur, k, v
			return v, false
		}
		if s.key == k {
			return s.val, true
		}
		i = (i + 1) & h.mask
	}
}

// group is getOrPut over all keys, with the table's state in locals (the
// roll-up's innermost loop): each key gets a class, the index of the first
// occurrence of its value among the distinct values; the distinct values
// move to the front of keys (keys[c] is class c's key afterwards),
// weights[r] is added to counts[class], and classOf[r] is key r's class.
// It returns counts, reusing its buffer. The table must have been reset for
// len(keys) keys. (No append in the loop: a call there made the compiler
// keep the loop's variables on the stack.)
func (h *hashTable) group(keys []uint64, weights, counts []int64, classOf []int32) []int64 {
	n := len(keys)
	if cap(counts) < n {
		counts = make([]int64, n)
	}
	counts = counts[:n]
	weights, classOf = weights[:n], classOf[:n]
	slots, cur := h.slots, h.cur
	m := int32(0)
	if h.dense {
		for r, k := range keys {
			sl := &slots[k]
			idx := sl.val
			if sl.epoch != cur {
				idx = m
				m++
				sl.epoch, sl.val = cur, idx
				keys[idx] = k // keys[idx] already consumed: idx <= r
				counts[idx] = 0
			}
			counts[idx] += weights[r]
			classOf[r] = idx
		}
		return counts[:m]
	}
	mask, shift := h.mask, h.shift&63
	for r, k := range keys {
		i := (k * fibonacci) >> shift
		var idx int32
		for {
			sl := &slots[i&mask]
			if sl.epoch != cur {
				idx = m
				m++
				sl.epoch, sl.key, sl.val = cur, k, idx
				keys[idx] = k
				counts[idx] = 0
				break
			}
			if sl.key == k {
				idx = sl.val
				break
			}
			i++
		}
		counts[idx] += weights[r]
		classOf[r] = idx
	}
	return counts[:m]
}

// growTable is a growable open-addressing map from uint64 keys to int32
// values, for the histogram's index (Go's map costs several times more per
// row on this path). Key and value share a slot: one cache line per probe.
type growTable struct {
	slots []gslot
	n     int
	mask  uint64
	shift uint // 64 - log2(len(slots)); see fibonacci
}

type gslot struct {
	key uint64
	val int32 // -1 = empty
}

func newGrowTable(capHint int) *growTable {
	size := growTableSize(capHint)
	g := &growTable{slots: make([]gslot, size), mask: uint64(size - 1), shift: uint(64 - bits.TrailingZeros(uint(size)))}
	g.reset()
	return g
}

// growTableSize is the number of slots for capHint entries.
func growTableSize(capHint int) int { return 1 << bits.Len(uint(2*capHint+15)) }

// reset empties the table, keeping its size.
func (g *growTable) reset() {
	for i := range g.slots {
		g.slots[i].val = -1
	}
	g.n = 0
}

func (g *growTable) slot(k uint64) *gslot {
	i := (k * fibonacci) >> (g.shift & 63)
	for {
		s := &g.slots[i]
		if s.val < 0 || s.key == k {
			return s
		}
		i = (i + 1) & g.mask
	}
}

// get returns the value of k and whether it is present.
func (g *growTable) get(k uint64) (int32, bool) {
	s := g.slot(k)
	return s.val, s.val >= 0
}

// getOrPut returns the value of k, or stores v under k and returns v, false.
func (g *growTable) getOrPut(k uint64, v int32) (int32, bool) {
	s := g.slot(k)
	if s.val >= 0 {
		return s.val, true
	}
	if 2*(g.n+1) > len(g.slots) {
		g.put(k, v)
		return v, false
	}
	s.key, s.val = k, v
	g.n++
	return v, false
}

// put stores v under k (k must not be present).
func (g *growTable) put(k uint64, v int32) {
	if 2*(g.n+1) > len(g.slots) {
		old := g.slots
		*g = *newGrowTable(len(old))
		for _, o := range old {
			if o.val >= 0 {
				*g.slot(o.key) = o
				g.n++
			}
		}
	}
	s := g.slot(k)
	s.key, s.val = k, v
	g.n++
}
