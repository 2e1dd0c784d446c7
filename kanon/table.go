package kanon

// table is a histogram rolled up to a node: one row per distinct
// (generalised quasi-identifiers, sensitive value) combination.
type table struct {
	node int
	ids  [][]int32 // ids[c][row] at the node's level of column c (see ensureIDs)
	// A roll-up leaves ids packed in keys; ensureIDs decodes them.
	packed  []uint64
	widths  []uint
	decoded bool
	sens    []int32 // nil without sensitive column
	counts  []int64
}

func (t *table) rows() int { return len(t.counts) }

// classes is the partition of a node's rows into equivalence classes.
type classes struct {
	counts []int64
	rep    []int32 // a table row of each class (for its generalised values)
	// With a sensitive column: the table rows of class i are
	// order[start[i]:start[i+1]], each row one sensitive value and its count.
	start []int32
	order []int32
	t     *table
}

func (cl *classes) n() int { return len(cl.counts) }

// row returns a table row of class i.
func (cl *classes) row(i int) int32 {
	if cl.rep == nil {
		return int32(i)
	}
	return cl.rep[i]
}

// ensureIDs decodes the generalised ids of a rolled-up table.
func (t *table) ensureIDs() {
	if t.decoded {
		return
	}
	m := len(t.counts)
	var sh uint
	for c, w := range t.widths {
		col := t.ids[c][:0]
		if cap(col) < m {
			col = make([]int32, m)
		}
		col = col[:m]
		mask := uint64(1)<<w - 1
		for i, k := range t.packed[:m] {
			col[i] = int32(k >> sh & mask)
		}
		t.ids[c] = col
		sh += w
	}
	t.decoded = true
}

// cloneInto copies t into dst, reusing dst's buffers (dst may be nil).
func (t *table) cloneInto(dst *table) *table {
	if dst == nil {
		return t.clone()
	}
	t.ensureIDs()
	dst.node, dst.decoded, dst.packed, dst.widths = t.node, true, nil, nil
	dst.counts = append(dst.counts[:0], t.counts...)
	if len(dst.ids) != len(t.ids) {
		dst.ids = make([][]int32, len(t.ids))
	}
	for i, col := range t.ids {
		dst.ids[i] = append(dst.ids[i][:0], col...)
	}
	if t.sens != nil {
		dst.sens = append(dst.sens[:0], t.sens...)
	} else {
		dst.sens = nil
	}
	return dst
}

// clone copies t out of the scratch buffers.
func (t *table) clone() *table {
	t.ensureIDs()
	c := &table{node: t.node, counts: append([]int64(nil), t.counts...), ids: make([][]int32, len(t.ids)), decoded: true}
	for i, col := range t.ids {
		c.ids[i] = append([]int32(nil), col...)
	}
	if t.sens != nil {
		c.sens = append([]int32(nil), t.sens...)
	}
	return c
}
