package kanon

import (
	"fmt"
	"math"
	"slices"
)

// Metric names an information-loss metric. Each reproduces ARX's definition
// (ARX 3.x, org.deidentifier.arx.metric.v2) with its default parameters
// (generalisation/suppression factor 0.5, attribute weights 1).
type Metric string

// The metrics.
const (
	// MetricEntropy is ARX's monotonic non-uniform entropy
	// (Metric.createEntropyMetric(true)): per column, the sum over all input
	// rows of -log2(freq of the row's generalised value / freq of its
	// original value), frequencies taken over the whole input; columns
	// summed. Suppression does not change it (ARX's monotonic variant treats
	// a suppressed row like the rest of its class), which is what makes it
	// monotone.
	MetricEntropy Metric = "entropy"
	// MetricEntropyNM is ARX's non-monotonic non-uniform entropy
	// (Metric.createEntropyMetric(false)): MetricEntropy plus, per column, the
	// entropy of the generalised values within the suppressed rows.
	MetricEntropyNM Metric = "entropy-nm"
	// MetricDiscernibility is ARX's monotonic discernibility DM*
	// (Metric.createDiscernabilityMetric(true)): the sum of squared class
	// sizes over all classes, suppressed ones included.
	MetricDiscernibility Metric = "discernibility"
	// MetricDiscernibilityNM is ARX's non-monotonic discernibility
	// (Metric.createDiscernabilityMetric(false)): squared sizes of the kept
	// classes plus |D| for every suppressed row.
	MetricDiscernibilityNM Metric = "discernibility-nm"
	// MetricLoss is ARX's Loss (Metric.createLossMetric()): per column, the
	// share of the domain covered by each row's generalised value (1 for a
	// suppressed row), normalised to [0,1]; columns combined by ARX's
	// geometric mean (Π(v+1))^(1/n) - 1.
	MetricLoss Metric = "loss"
	// MetricPrecision is ARX's precision (Metric.createPrecisionMetric()):
	// per column, level/height for kept rows and 1 for suppressed rows,
	// averaged over rows; columns averaged.
	MetricPrecision Metric = "precision"
)

// Metrics lists every metric name.
var metricNames = []Metric{MetricEntropy, MetricEntropyNM, MetricDiscernibility, MetricDiscernibilityNM, MetricLoss, MetricPrecision}

// ParseMetric returns the metric named s.
func ParseMetric(s string) (Metric, error) {
	for _, m := range metricNames {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown metric %q (want entropy, entropy-nm, discernibility, discernibility-nm, loss or precision)", s)
}

// monotone reports whether the metric never decreases along generalisation
// for a fixed suppression behaviour. Without suppression every metric is.
func (m Metric) monotone(maxOutliers int64) bool {
	return m.alwaysMonotone() || maxOutliers == 0
}

// alwaysMonotone reports whether the metric never decreases along
// generalisation whatever is suppressed: its value does not depend on which
// classes are suppressed (ARX's monotonic variants), so the value of any
// node, anonymous or not, bounds the nodes above it.
func (m Metric) alwaysMonotone() bool {
	return m == MetricEntropy || m == MetricDiscernibility
}

// boundIsExact reports whether metrics.bound is the metric's value, so
// nothing checked can tighten it.
func (m Metric) boundIsExact() bool { return m == MetricEntropy }

// metrics holds what the metrics precompute from the histogram.
type metrics struct {
	h       *Histogram
	rows    float64
	entropy [][]float64 // entropy[c][level]: monotonic entropy of column c at level
	// shares[c][level][id]: share of column c's domain covered by id.
	shares [][][]float64
	// shareSum[c][level]: Σ over rows of the share of their value (no suppression).
	shareSum [][]float64
	domain   []float64
	// distinct[c][level]: distinct generalised values of column c present
	// in the data at level, relative to level 0 (ARX's FLASH strategy).
	distinct [][]float64
}

func newMetrics(h *Histogram) *metrics {
	m := &metrics{h: h, rows: float64(h.rows)}
	nc := len(h.dims)
	m.entropy = make([][]float64, nc)
	m.shares = make([][][]float64, nc)
	m.shareSum = make([][]float64, nc)
	m.domain = make([]float64, nc)
	m.distinct = make([][]float64, nc)
	for c, d := range h.dims {
		// Frequencies of leaves and of generalised values, over the input.
		leafCnt := make([]float64, d.size(0))
		for leaf, n := range h.leafCnt[c] {
			leafCnt[leaf] = float64(n)
		}
		m.entropy[c] = make([]float64, d.levels)
		m.shares[c] = make([][]float64, d.levels)
		m.shareSum[c] = make([]float64, d.levels)
		domainLeaves := d.domainLeaves
		if domainLeaves == 0 {
			domainLeaves = d.size(0)
		}
		m.domain[c] = float64(domainLeaves)
		for l := range d.levels {
			gen := d.gen[l]
			genCnt := make([]float64, d.size(l))
			for leaf, cnt := range leafCnt {
				genCnt[gen[leaf]] += cnt
			}
			var ent float64
			for leaf, a := range leafCnt {
				if a != 0 {
					ent += a * math.Log2(a/genCnt[gen[leaf]])
				}
			}
			if ent != 0 {
				ent = -ent
			}
			m.entropy[c][l] = ent
			present, present0 := 0, 0
			for _, n := range genCnt {
				if n > 0 {
					present++
				}
			}
			for _, n := range leafCnt {
				if n > 0 {
					present0++
				}
			}
			m.distinct[c] = append(m.distinct[c], float64(present)/float64(max(present0, 1)))
			share := make([]float64, d.size(l))
			for leaf := range domainLeaves {
				share[gen[leaf]]++
			}
			for i := range share {
				share[i] /= float64(domainLeaves)
			}
			m.shares[c][l] = share
			var s float64
			for leaf, cnt := range leafCnt {
				s += cnt * share[gen[leaf]]
			}
			m.shareSum[c][l] = s
		}
	}
	return m
}

// bound returns a lower bound of the metric at node that needs no data pass
// (exact for MetricEntropy), and whether the bound is informative.
func (m *metrics) bound(metric Metric, levels []int) float64 {
	switch metric {
	case MetricEntropy, MetricEntropyNM:
		var s float64
		for c, l := range levels {
			s += m.entropy[c][l]
		}
		return s
	case MetricLoss:
		vals := make([]float64, len(levels))
		for c, l := range levels {
			vals[c] = m.normLoss(c, m.shareSum[c][l])
		}
		return geoMean(vals)
	case MetricPrecision:
		// The value without suppression, by the same arithmetic as value.
		terms := make([]float64, len(levels))
		for c, l := range levels {
			terms[c] = m.precisionTerm(c, l, 0)
		}
		return canonicalSum(terms) / float64(len(levels))
	case MetricDiscernibility, MetricDiscernibilityNM:
		// At most min(rows, Π generalised domain sizes) classes, and a sum
		// of squares of a fixed total is smallest when the parts are equal:
		// DM* >= rows²/classes. DM (non-monotonic) >= DM*.
		classes := m.rows
		p := 1.0
		for c, l := range levels {
			p *= float64(m.h.dims[c].size(l))
			if p >= classes {
				break
			}
		}
		classes = min(classes, p)
		return m.rows * m.rows / classes
	}
	return 0
}

func (m *metrics) normLoss(c int, agg float64) float64 {
	lo := m.rows / m.domain[c]
	hi := m.rows
	if hi == lo {
		return 0
	}
	v := (agg - lo) / (hi - lo)
	if v < 0 {
		v = 0
	}
	return v
}

func geoMean(vals []float64) float64 {
	r := 1.0
	for _, v := range vals {
		r *= math.Pow(v+1, 1/float64(len(vals)))
	}
	return r - 1
}

// value computes the metric of a node from its classes (the rows of t);
// suppressed[i] tells whether class i is suppressed. perColumn is filled
// for multi-dimensional metrics.
func (m *metrics) value(metric Metric, levels []int, t *table, suppressed []bool) (total float64, perColumn []float64) {
	nc := len(levels)
	if metric == MetricEntropyNM || metric == MetricLoss {
		t.ensureIDs()
	}
	switch metric {
	case MetricEntropy:
		perColumn = make([]float64, nc)
		for c, l := range levels {
			perColumn[c] = m.entropy[c][l]
			total += perColumn[c]
		}
		return total, perColumn
	case MetricEntropyNM:
		perColumn = make([]float64, nc)
		var supp float64
		for i, s := range suppressed {
			if s {
				supp += float64(t.counts[i])
			}
		}
		var cnt []float64
		for c, l := range levels {
			perColumn[c] = m.entropy[c][l]
			if supp == 0 {
				continue
			}
			// The entropy of column c's generalised values within the
			// suppressed rows.
			cnt = resize(cnt, m.h.dims[c].size(l))
			clear(cnt)
			ids := t.ids[c]
			for i, s := range suppressed {
				if s {
					cnt[ids[i]] += float64(t.counts[i])
				}
			}
			var e float64
			for _, v := range cnt {
				if v > 0 {
					e += v * math.Log2(v/supp)
				}
			}
			perColumn[c] -= e
		}
		for _, v := range perColumn {
			total += v
		}
		return total, perColumn
	case MetricDiscernibility:
		for _, n := range t.counts {
			total += float64(n) * float64(n)
		}
		return total, nil
	case MetricDiscernibilityNM:
		for i, n := range t.counts {
			if suppressed[i] {
				total += m.rows * float64(n)
			} else {
				total += float64(n) * float64(n)
			}
		}
		return total, nil
	case MetricLoss:
		perColumn = make([]float64, nc)
		for c, l := range levels {
			share := m.shares[c][l]
			ids := t.ids[c]
			var agg float64
			for i, n := range t.counts {
				if suppressed[i] {
					agg += float64(n)
				} else {
					agg += float64(n) * share[ids[i]]
				}
			}
			perColumn[c] = m.normLoss(c, agg)
		}
		return geoMean(perColumn), perColumn
	case MetricPrecision:
		var supp float64
		for i, s := range suppressed {
			if s {
				supp += float64(t.counts[i])
			}
		}
		perColumn = make([]float64, nc)
		for c, l := range levels {
			perColumn[c] = m.precisionTerm(c, l, supp)
		}
		total = canonicalSum(slices.Clone(perColumn))
		return total / float64(nc), perColumn
	}
	return 0, nil
}

// precisionTerm is column c's share of Precision at level l with supp rows
// suppressed: level/height for kept rows, 1 for suppressed ones.
func (m *metrics) precisionTerm(c, l int, supp float64) float64 {
	v := 0.0
	if h := m.h.dims[c].levels - 1; h > 0 {
		v = float64(l) / float64(h)
	}
	return ((m.rows-supp)*v + supp) / m.rows
}

// canonicalSum adds terms in ascending order (it sorts them): two nodes
// whose per-column terms are the same numbers in another column order get
// the same sum, so an exact tie stays a tie and goes to the lower level,
// instead of to whichever order rounded lower.
func canonicalSum(terms []float64) float64 {
	slices.Sort(terms)
	var s float64
	for _, t := range terms {
		s += t
	}
	return s
}
