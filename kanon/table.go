package kanon

// table is the histogram rolled up to a node: one row per equivalence class
// (distinct combination of generalised quasi-identifier values) with its
// rows and, with a sensitive column, the class's frequency of each
// sensitive value. Keeping the frequencies per class — rather than a row
// per (class, sensitive value) pair — is what ARX does too: a roll-up
// hashes each class once and merges its frequencies into its new class,
// and l-diversity and t-closeness are decided on those frequencies
// directly, with no second grouping.
type table struct {
	node int
	// The classes' generalised ids, packed into one key per class (widths[c]
	// bits for column c, column 0 lowest) when they fit 64 bits: a roll-up
	// reads one word per class, and a cached table holds one. ids[c][i] is
	// the id of column c in class i, decoded from the keys when needed
	// (ensureIDs); a table without keys (the histogram, wide keys) has ids
	// only.
	packed  []uint64
	widths  []uint
	ids     [][]int32
	decoded bool    // ids are valid
	counts  []int64 // rows per class
	values  bool
	// values: the sensitive frequencies below are set (always false
	// without a sensitive column). With a sensitive column, class i has the
	// values
	// sens[start[i]:start[i+1]], in ascending id order, with the
	// frequencies freq[start[i]:start[i+1]] (each > 0). nil without.
	start []int32
	sens  []int32
	freq  []int64
}

func (t *table) rows() int { return len(t.counts) }

// frequencies returns the sensitive ids and frequencies of class i.
func (t *table) frequencies(i int) ([]int32, []int64) {
	lo, hi := t.start[i], t.start[i+1]
	return t.sens[lo:hi], t.freq[lo:hi]
}

// ensureIDs decodes the generalised ids of a rolled-up table.
func (t *table) ensureIDs() {
	if t.decoded {
		return
	}
	m := len(t.counts)
	var shift uint
	for c, w := range t.widths {
		col := t.ids[c][:0]
		if cap(col) < m {
			col = make([]int32, m)
		}
		col = col[:m]
		mask, sh := uint64(1)<<w-1, shift&63
		for i, k := range t.packed[:m] {
			col[i] = int32(k >> sh & mask)
		}
		t.ids[c] = col
		shift += w
	}
	t.decoded = true
}

// cloneInto copies t into dst, reusing dst's buffers (dst may be nil): the
// keys when t has them (ids are decoded again if ever needed), else the
// ids.
func (t *table) cloneInto(dst *table) *table {
	if dst == nil {
		dst = &table{}
	}
	dst.node = t.node
	dst.counts = append(dst.counts[:0], t.counts...)
	if t.packed != nil {
		dst.packed = append(dst.packed[:0], t.packed...)
		dst.widths = append(dst.widths[:0], t.widths...)
		dst.decoded = false
		if len(dst.ids) != len(t.ids) {
			dst.ids = make([][]int32, len(t.ids))
		}
	} else {
		dst.packed, dst.widths, dst.decoded = nil, nil, true
		if len(dst.ids) != len(t.ids) {
			dst.ids = make([][]int32, len(t.ids))
		}
		for i, col := range t.ids {
			dst.ids[i] = append(dst.ids[i][:0], col...)
		}
	}
	dst.values = t.values
	if t.values {
		dst.start = append(dst.start[:0], t.start...)
		dst.sens = append(dst.sens[:0], t.sens...)
		dst.freq = append(dst.freq[:0], t.freq...)
	} else {
		dst.start, dst.sens, dst.freq = nil, nil, nil
	}
	return dst
}

// clone copies t out of the scratch buffers.
func (t *table) clone() *table { return t.cloneInto(nil) }
