package kanon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// MondrianOptions configures Mondrian.
type MondrianOptions struct {
	// QuasiIdentifiers are numeric columns (integer or floating point).
	// Required.
	QuasiIdentifiers []string
	// K: every partition holds at least K rows. Required, >= 2.
	K int
}

// errNotFinite is the error about a Mondrian quasi-identifier value that is
// not a finite number, located by row and column (rowerr).
var errNotFinite = errors.New("null or not a finite number")

// MondrianResult is a strict multidimensional partitioning of the
// quasi-identifier space (LeFevre et al. 2006): every partition holds at
// least k rows, and its rows are released with each quasi-identifier
// replaced by the partition's range on it ("lo-hi", or the value when the
// partition has one). It is local recoding: the same value may fall into
// different ranges in different partitions, which loses less than
// full-domain generalisation when numeric values are skewed.
type MondrianResult struct {
	qi     []string
	k      int
	points map[string]int // point key → partition
	labels [][]string     // labels[partition][column]
	sizes  []int64
	rows   int64
	// applied counts the rows Apply was given, so that errors count rows
	// across batches.
	applied int64
}

// Partitions returns the number of partitions.
func (m *MondrianResult) Partitions() int { return len(m.sizes) }

// MinPartitionSize returns the smallest partition's row count.
func (m *MondrianResult) MinPartitionSize() int64 {
	if len(m.sizes) == 0 {
		return 0
	}
	return slices.Min(m.sizes)
}

type mpoint struct {
	v []float64
	n int64
}

// Mondrian reads rdr once, keeping one entry per distinct combination of
// quasi-identifier values (memory bounded by distinct combinations, not
// rows), and partitions them: it splits the partition's widest dimension
// (range relative to the whole data) at the weighted median, when both
// halves keep at least k rows, until no split is allowed. Nulls and NaN are
// errors naming column and row; fewer than k rows is ErrNoSolution.
func Mondrian(ctx context.Context, rdr array.RecordReader, opts MondrianOptions) (*MondrianResult, error) {
	const fn = "kanon.Mondrian"
	if len(opts.QuasiIdentifiers) == 0 {
		return nil, fmt.Errorf("%s: QuasiIdentifiers must name at least one column", fn)
	}
	if opts.K < 2 {
		return nil, fmt.Errorf("%s: K must be >= 2 (got %d)", fn, opts.K)
	}
	d := len(opts.QuasiIdentifiers)
	index := map[string]int{}
	var pts []mpoint
	var rows int64
	vals := make([]float64, d)
	for rdr.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := rdr.RecordBatch()
		cols := make([]func(int) (float64, bool), d)
		for c, name := range opts.QuasiIdentifiers {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				return nil, rowerr.Atf(0, name, "not in input (or not unique)")
			}
			get, err := numericGetter(rec.Column(idx[0]))
			if err != nil {
				return nil, rowerr.At(0, name, err)
			}
			cols[c] = get
		}
		for r := range int(rec.NumRows()) {
			for c, get := range cols {
				v, ok := get(r)
				if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, rowerr.At(rowerr.Row(rows, r), opts.QuasiIdentifiers[c], errNotFinite)
				}
				vals[c] = v
			}
			key := pointKey(vals)
			i, ok := index[key]
			if !ok {
				i = len(pts)
				index[key] = i
				pts = append(pts, mpoint{v: slices.Clone(vals)})
			}
			pts[i].n++
		}
		rows += rec.NumRows()
	}
	if err := rdr.Err(); err != nil {
		return nil, fmt.Errorf("reading input: %w", err)
	}
	if rows < int64(opts.K) {
		return nil, fmt.Errorf("%d rows < k=%d: %w", rows, opts.K, ErrNoSolution)
	}
	lo, hi := make([]float64, d), make([]float64, d)
	for c := range d {
		lo[c], hi[c] = math.Inf(1), math.Inf(-1)
		for _, p := range pts {
			lo[c], hi[c] = min(lo[c], p.v[c]), max(hi[c], p.v[c])
		}
	}
	m := &MondrianResult{qi: slices.Clone(opts.QuasiIdentifiers), k: opts.K, points: map[string]int{}, rows: rows}
	all := make([]int, len(pts))
	for i := range all {
		all[i] = i
	}
	// Iterative partitioning (a stack, not recursion: depth is unbounded
	// for skewed data).
	stack := [][]int{all}
	for len(stack) > 0 {
		part := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		left, right := m.split(pts, part, lo, hi)
		if left != nil {
			stack = append(stack, left, right)
			continue
		}
		m.leaf(pts, part)
	}
	return m, nil
}

// split cuts part on its widest allowable dimension at the weighted median,
// or returns nil when no cut leaves k rows on both sides.
func (m *MondrianResult) split(pts []mpoint, part []int, glo, ghi []float64) ([]int, []int) {
	d := len(glo)
	type dimSpan struct {
		c    int
		span float64
	}
	spans := make([]dimSpan, 0, d)
	for c := range d {
		plo, phi := math.Inf(1), math.Inf(-1)
		for _, i := range part {
			plo, phi = min(plo, pts[i].v[c]), max(phi, pts[i].v[c])
		}
		if phi > plo && ghi[c] > glo[c] {
			spans = append(spans, dimSpan{c, (phi - plo) / (ghi[c] - glo[c])})
		}
	}
	slices.SortStableFunc(spans, func(a, b dimSpan) int { return cmp.Compare(b.span, a.span) })
	var total int64
	for _, i := range part {
		total += pts[i].n
	}
	k := int64(m.k)
	for _, sp := range spans {
		c := sp.c
		sorted := slices.Clone(part)
		slices.SortFunc(sorted, func(a, b int) int { return cmp.Compare(pts[a].v[c], pts[b].v[c]) })
		// Candidate cuts lie between distinct values; take the allowable
		// one closest to the weighted median.
		best, bestDist := -1, int64(math.MaxInt64)
		var cum int64
		for j := 0; j+1 < len(sorted); j++ {
			cum += pts[sorted[j]].n
			if pts[sorted[j]].v[c] == pts[sorted[j+1]].v[c] {
				continue
			}
			if cum < k || total-cum < k {
				continue
			}
			dist := cum*2 - total
			if dist < 0 {
				dist = -dist
			}
			if dist < bestDist {
				best, bestDist = j, dist
			}
		}
		if best >= 0 {
			return sorted[:best+1], sorted[best+1:]
		}
	}
	return nil, nil
}

func (m *MondrianResult) leaf(pts []mpoint, part []int) {
	d := len(m.qi)
	id := len(m.sizes)
	labels := make([]string, d)
	for c := range d {
		plo, phi := math.Inf(1), math.Inf(-1)
		for _, i := range part {
			plo, phi = min(plo, pts[i].v[c]), max(phi, pts[i].v[c])
		}
		if plo == phi {
			labels[c] = strconv.FormatFloat(plo, 'g', -1, 64)
		} else {
			labels[c] = strconv.FormatFloat(plo, 'g', -1, 64) + "-" + strconv.FormatFloat(phi, 'g', -1, 64)
		}
	}
	var n int64
	for _, i := range part {
		m.points[pointKey(pts[i].v)] = id
		n += pts[i].n
	}
	m.labels = append(m.labels, labels)
	m.sizes = append(m.sizes, n)
}

func pointKey(v []float64) string {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		u := math.Float64bits(x)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24), byte(u>>32), byte(u>>40), byte(u>>48), byte(u>>56))
	}
	return string(b)
}

func numericGetter(a arrow.Array) (func(int) (float64, bool), error) {
	valid := func(i int) bool { return a.IsValid(i) }
	switch v := a.(type) {
	case *array.Int64:
		return func(i int) (float64, bool) { return float64(v.Value(i)), valid(i) }, nil
	case *array.Int32:
		return func(i int) (float64, bool) { return float64(v.Value(i)), valid(i) }, nil
	case *array.Int16:
		return func(i int) (float64, bool) { return float64(v.Value(i)), valid(i) }, nil
	case *array.Int8:
		return func(i int) (float64, bool) { return float64(v.Value(i)), valid(i) }, nil
	case *array.Uint32:
		return func(i int) (float64, bool) { return float64(v.Value(i)), valid(i) }, nil
	case *array.Float64:
		return func(i int) (float64, bool) { return v.Value(i), valid(i) }, nil
	case *array.Float32:
		return func(i int) (float64, bool) { return float64(v.Value(i)), valid(i) }, nil
	case *array.String:
		return func(i int) (float64, bool) {
			f, err := strconv.ParseFloat(v.Value(i), 64)
			return f, valid(i) && err == nil
		}, nil
	}
	return nil, fmt.Errorf("type %s is not numeric", a.DataType())
}

// Apply replaces the quasi-identifiers of batch by their partition's ranges
// (dictionary<int32, utf8> columns). Every row must come from the data
// Mondrian partitioned; the caller releases the result. Errors name the row
// counted across the batches given to Apply, so batches go in input order
// from one goroutine.
func (m *MondrianResult) Apply(ctx context.Context, batch arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	base := m.applied
	m.applied += batch.NumRows()
	d := len(m.qi)
	n := int(batch.NumRows())
	sc := batch.Schema()
	getters := make([]func(int) (float64, bool), d)
	pos := make([]int, d)
	for c, name := range m.qi {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			return nil, rowerr.Atf(0, name, "not in input (or not unique)")
		}
		g, err := numericGetter(batch.Column(idx[0]))
		if err != nil {
			return nil, rowerr.At(0, name, err)
		}
		getters[c], pos[c] = g, idx[0]
	}
	part := make([]int, n)
	vals := make([]float64, d)
	for r := range n {
		for c, g := range getters {
			v, ok := g(r)
			if !ok {
				return nil, rowerr.At(rowerr.Row(base, r), m.qi[c], errNotFinite)
			}
			vals[c] = v
		}
		p, ok := m.points[pointKey(vals)]
		if !ok {
			return nil, fmt.Errorf("row %d: not in the partitioned data (the input changed)", rowerr.Row(base, r))
		}
		part[r] = p
	}
	cols := make([]arrow.Array, batch.NumCols())
	for i := range cols {
		cols[i] = batch.Column(i)
		cols[i].Retain()
	}
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	fields := slices.Clone(sc.Fields())
	for c := range d {
		// Dictionary: the labels of the partitions, in partition order.
		sb := array.NewStringBuilder(mem)
		for _, l := range m.labels {
			sb.Append(l[c])
		}
		dict := sb.NewArray()
		sb.Release()
		ib := array.NewInt32Builder(mem)
		for _, p := range part {
			ib.Append(int32(p))
		}
		idx := ib.NewArray()
		ib.Release()
		arr := array.NewDictionaryArray(genDictType, idx, dict)
		idx.Release()
		dict.Release()
		cols[pos[c]].Release()
		cols[pos[c]] = arr
		fields[pos[c]] = arrow.Field{Name: m.qi[c], Type: genDictType}
	}
	md := sc.Metadata()
	return array.NewRecordBatch(arrow.NewSchema(fields, &md), cols, int64(n)), nil
}
