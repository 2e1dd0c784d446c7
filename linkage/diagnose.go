package linkage

import (
	"cmp"
	"slices"
)

// diagnose measures the linkage of the first Diagnose evaluated traces
// again with columns left out: each non-block column in turn (Without),
// then greedily the column whose removal lowers it most, until it is at
// most DriverTarget (Drivers). The block columns always stay: without them
// a point has no block, and the raw index holds only the sampled blocks.
func (t *Traces) diagnose(evaluated []*trace, res *TraceResult) {
	var diag []*trace
	for _, tr := range evaluated {
		if tr.diag {
			diag = append(diag, tr)
		}
	}
	if len(diag) == 0 {
		return
	}
	ncol := len(t.opts.Columns)
	inBlock := make([]bool, ncol)
	for _, b := range t.block {
		inBlock[b] = true
	}
	keep := make([]bool, ncol)
	for j := range keep {
		keep[j] = true
	}
	d := &diagnosis{t: t, traces: diag, ncol: ncol}
	base := d.linkage(keep)
	res.Diagnosed, res.DiagnosedLinkage = len(diag), base
	for j := range ncol {
		if inBlock[j] {
			continue
		}
		keep[j] = false
		res.Without = append(res.Without, ColumnLinkage{Column: t.opts.Columns[j], Linkage: d.linkage(keep)})
		keep[j] = true
	}
	cur := base
	for cur > t.opts.DriverTarget {
		best, bestL := -1, 2.0
		for j := range ncol {
			if inBlock[j] || !keep[j] {
				continue
			}
			keep[j] = false
			if l := d.linkage(keep); l < bestL {
				best, bestL = j, l
			}
			keep[j] = true
		}
		if best < 0 {
			break
		}
		keep[best] = false
		cur = bestL
		res.Drivers = append(res.Drivers, ColumnLinkage{Column: t.opts.Columns[best], Linkage: bestL})
	}
}

// diagnosis holds the diagnosed traces and recomputes their linkage for a
// subset of the columns.
type diagnosis struct {
	t      *Traces
	traces []*trace
	ncol   int
}

// linkage is the share of the diagnosed traces linked to exactly one
// subject when points are made of the kept columns only.
func (d *diagnosis) linkage(keep []bool) float64 {
	t := d.t
	// Raw pairs of the diagnosed blocks, projected.
	raw := map[uint64][]pair{}
	keys := make([]uint64, 0, d.ncol)
	for b, bl := range t.blocks {
		if bl.diagRefs == 0 {
			continue
		}
		w := d.ncol + 1
		ps := make([]pair, 0, len(bl.diagRows)/w)
		for r := 0; r+w <= len(bl.diagRows); r += w {
			row := bl.diagRows[r : r+w]
			keys = keys[:0]
			for j, k := range row[1:] {
				if keep[j] {
					keys = append(keys, k)
				}
			}
			ps = append(ps, pair{Combine(keys...), row[0]})
		}
		slices.SortFunc(ps, cmpPair)
		raw[b] = slices.Compact(ps)
	}
	blockCols := make([]uint64, len(t.block))
	var linked int
	var cur, next []uint64
	for _, tr := range d.traces {
		var pts []bpoint
		for r := 0; r+d.ncol <= len(tr.cols); r += d.ncol {
			row := tr.cols[r : r+d.ncol]
			for i, b := range t.block {
				blockCols[i] = row[b]
			}
			keys = keys[:0]
			for j, k := range row {
				if keep[j] {
					keys = append(keys, k)
				}
			}
			pts = append(pts, bpoint{Combine(blockCols...), Combine(keys...)})
		}
		slices.SortFunc(pts, func(a, b bpoint) int {
			if c := cmp.Compare(a.block, b.block); c != 0 {
				return c
			}
			return cmp.Compare(a.point, b.point)
		})
		pts = slices.Compact(pts)
		lists := make([][]pair, 0, len(pts))
		missing := false
		for _, p := range pts {
			ps, ok := raw[p.block]
			if !ok {
				missing = true
				break
			}
			lists = append(lists, idsOf(ps, p.point))
		}
		if missing {
			continue
		}
		if c := intersect(lists, &cur, &next); len(c) == 1 {
			linked++
		}
	}
	return float64(linked) / float64(len(d.traces))
}
