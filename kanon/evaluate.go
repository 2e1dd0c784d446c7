package kanon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Evaluate returns the result of one given transformation (levels in
// quasi-identifier order) under opts: its suppressed rows, classes and the
// value of every metric, whether or not it satisfies the models within the
// suppression limit (Anonymous reports that). It is what Search computes
// for the optimum, for any node — to compare a chosen transformation with
// the optimum, or with another tool's.
func Evaluate(ctx context.Context, h *Histogram, opts Options, levels []int) (*Result, bool, error) {
	const fn = "kanon.Evaluate"
	if h == nil {
		return nil, false, errors.New(fn + ": nil histogram")
	}
	if err := opts.validate(fn, h); err != nil {
		return nil, false, err
	}
	if h.rows == 0 {
		return nil, false, errors.New(fn + ": empty input (no rows)")
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	r := &Result{K: opts.K, QuasiIdentifiers: slices.Clone(h.qi), Levels: slices.Clone(levels), LDiversity: opts.LDiversity, TCloseness: opts.TCloseness}
	s, err := newSearcherFor(h, r)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", fn, err)
	}
	s.opts = opts
	s.maxOutliers = int64(math.Floor(opts.SuppressionLimit * float64(h.rows)))
	node := s.engine.lattice.id(levels)
	t, supp, out := s.classesOf(node)
	lv := s.engine.lattice.levels(node, nil)
	loss, per := s.metrics.value(opts.Metric, lv, t, supp)
	res := s.result(&evaluation{node: node, loss: loss, perColumn: per, outliers: out})
	return res, out <= s.maxOutliers, nil
}

// newSearcherFor rebuilds the search state for an existing result, to
// recompute its classes (Evaluate, Applier, RiskAfter).
func newSearcherFor(h *Histogram, r *Result) (*searcher, error) {
	if h == nil || r == nil {
		return nil, errors.New("nil histogram or result")
	}
	if len(r.Levels) != len(h.dims) {
		return nil, fmt.Errorf("result has %d levels, histogram %d quasi-identifiers", len(r.Levels), len(h.dims))
	}
	for c, q := range h.qi {
		if r.QuasiIdentifiers[c] != q {
			return nil, fmt.Errorf("result quasi-identifier %d is %q, histogram's is %q", c, r.QuasiIdentifiers[c], q)
		}
		if r.Levels[c] < 0 || r.Levels[c] >= h.dims[c].levels {
			return nil, fmt.Errorf("column %q: level %d out of range [0,%d]", q, r.Levels[c], h.dims[c].levels-1)
		}
	}
	e, err := newEngine(h)
	if err != nil {
		return nil, err
	}
	s := &searcher{hist: h, engine: e, metrics: newMetrics(h), scratch: &scratch{}}
	s.checker = newChecker(h, r.K, r.LDiversity, r.TCloseness)
	s.sources.tables = []*table{e.base}
	return s, nil
}

// classesOf rolls the histogram up to node again and returns its classes,
// which of them are suppressed and their rows, in freshly allocated memory.
func (s *searcher) classesOf(node int) (*table, []bool, int64) {
	t := s.engine.rollup(s.source(node), node, s.scratch).clone()
	t.ensureIDs()
	supp := make([]bool, t.rows())
	var out int64
	for i, n := range t.counts {
		if !s.checker.ok(t, i) {
			supp[i] = true
			out += n
		}
	}
	return t, supp, out
}

// result builds the Result for best: its classes are rolled up again, and
// every metric computed for them.
func (s *searcher) result(best *evaluation) *Result {
	h := s.hist
	lv := s.engine.lattice.levels(best.node, nil)
	r := &Result{
		K:                s.opts.K,
		QuasiIdentifiers: slices.Clone(h.qi),
		Transformation:   make(map[string]int, len(h.qi)),
		Levels:           lv,
		Metric:           s.opts.Metric,
		InformationLoss:  make(map[string]float64),
		SuppressionLimit: s.opts.SuppressionLimit,
		Rows:             h.rows,
		SuppressedRows:   best.outliers,
		LDiversity:       s.opts.LDiversity,
		TCloseness:       s.opts.TCloseness,
		LatticeSize:      s.engine.lattice.size,
		NodesChecked:     s.stats.checked,
	}
	for c, q := range h.qi {
		r.Transformation[q] = lv[c]
	}
	t, supp, _ := s.classesOf(best.node)
	for _, sup := range supp {
		if !sup {
			r.Classes++
		}
	}
	for _, m := range metricNames {
		v, _ := s.metrics.value(m, lv, t, supp)
		r.InformationLoss[string(m)] = v
	}
	r.InformationLoss[string(s.opts.Metric)] = best.loss
	if best.perColumn != nil {
		r.PerColumnLoss = make(map[string]float64, len(h.qi))
		for c, q := range h.qi {
			r.PerColumnLoss[q] = best.perColumn[c]
		}
	}
	return r
}
