package kanon

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// LVariant selects the l-diversity definition.
type LVariant string

// The l-diversity variants, as ARX defines them.
const (
	// LDistinct: a class holds at least L distinct sensitive values.
	LDistinct LVariant = "distinct"
	// LEntropy: the Shannon entropy of the class's sensitive values is at
	// least log(L). The base of the logarithm cancels (ARX uses log2 on both
	// sides).
	LEntropy LVariant = "entropy"
	// LRecursive: recursive (c,l)-diversity: with frequencies r1 >= r2 >= …,
	// r1 < C·(r_L + r_{L+1} + …), and at least L distinct values.
	LRecursive LVariant = "recursive"
)

// LDiversity is the l-diversity requirement on a sensitive column.
type LDiversity struct {
	Sensitive string   // sensitive column. Required.
	L         float64  // >= 1; distinct and recursive round it down to an integer (as ARX does)
	Variant   LVariant // Required.
	C         float64  // recursive only: > 0
}

// TDistance selects the earth mover's distance ground metric.
type TDistance string

// The t-closeness distances, as ARX defines them.
const (
	// TEqual: every two values are at distance 1 (EMD = half the L1 distance).
	TEqual TDistance = "equal"
	// TOrdered: values are ordered (numerically when all parse as numbers,
	// else lexically); EMD = Σ|cumulative difference| / (m-1).
	TOrdered TDistance = "ordered"
)

// TCloseness is the t-closeness requirement on a sensitive column: each
// class's distribution of sensitive values is within T of the distribution in
// the whole input.
type TCloseness struct {
	Sensitive string    // Required.
	T         float64   // in [0,1]
	Distance  TDistance // Required.
}

func (l *LDiversity) validate(fn string) error {
	if l.Sensitive == "" {
		return fmt.Errorf("%s: LDiversity.Sensitive must name a column", fn)
	}
	if !(l.L >= 1) || math.IsInf(l.L, 0) {
		return fmt.Errorf("%s: LDiversity.L must be >= 1", fn)
	}
	switch l.Variant {
	case LDistinct, LEntropy:
	case LRecursive:
		if !(l.C > 0) || math.IsInf(l.C, 0) {
			return fmt.Errorf("%s: LDiversity.C must be > 0 for recursive (c,l)-diversity", fn)
		}
	default:
		return fmt.Errorf("%s: LDiversity.Variant %q is not distinct, entropy or recursive", fn, l.Variant)
	}
	return nil
}

func (t *TCloseness) validate(fn string) error {
	if t.Sensitive == "" {
		return fmt.Errorf("%s: TCloseness.Sensitive must name a column", fn)
	}
	if !(t.T >= 0 && t.T <= 1) {
		return fmt.Errorf("%s: TCloseness.T must be in [0,1]", fn)
	}
	if t.Distance != TEqual && t.Distance != TOrdered {
		return fmt.Errorf("%s: TCloseness.Distance %q is not equal or ordered", fn, t.Distance)
	}
	return nil
}

// checker decides per class whether it satisfies the privacy models.
type checker struct {
	k    int64
	l    *LDiversity
	t    *TCloseness
	logL float64
	q    []float64 // global distribution of sensitive ids
	rank []int32   // ordered t-closeness: rank of each sensitive id
	pbuf []float64
	fbuf []int64
}

func newChecker(h *Histogram, k int, l *LDiversity, t *TCloseness) *checker {
	c := &checker{k: int64(k), l: l, t: t}
	if l != nil {
		c.logL = math.Log2(l.L)
	}
	if t != nil && h.sens != nil {
		m := h.sens.size(0)
		c.q = make([]float64, m)
		for e, s := range h.sensID {
			c.q[s] += float64(h.counts[e])
		}
		for i := range c.q {
			c.q[i] /= float64(h.rows)
		}
		c.rank = sensitiveRanks(h.sens.values[0])
		c.pbuf = make([]float64, m)
	}
	return c
}

// sensitiveRanks orders the sensitive values: numerically when every value
// parses as a number, else lexically.
func sensitiveRanks(vals []string) []int32 {
	idx := make([]int, len(vals))
	nums := make([]float64, len(vals))
	numeric := true
	for i, v := range vals {
		idx[i] = i
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			numeric = false
		}
		nums[i] = f
	}
	slices.SortFunc(idx, func(a, b int) int {
		if numeric {
			if c := cmp.Compare(nums[a], nums[b]); c != 0 {
				return c
			}
		}
		return cmp.Compare(vals[a], vals[b])
	})
	rank := make([]int32, len(vals))
	for r, i := range idx {
		rank[i] = int32(r)
	}
	return rank
}

// ok reports whether class i of cl satisfies every model.
func (c *checker) ok(cl *classes, i int) bool {
	if cl.counts[i] < c.k {
		return false
	}
	if c.l == nil && c.t == nil {
		return true
	}
	rows := cl.order[cl.start[i]:cl.start[i+1]]
	if c.l != nil && !c.lOK(cl, rows, cl.counts[i]) {
		return false
	}
	if c.t != nil && !c.tOK(cl, rows, cl.counts[i]) {
		return false
	}
	return true
}

func (c *checker) lOK(cl *classes, rows []int32, n int64) bool {
	// Table rows of a class are distinct (class, sensitive value) pairs.
	switch c.l.Variant {
	case LDistinct:
		return len(rows) >= int(c.l.L)
	case LEntropy:
		var ent float64
		total := float64(n)
		for _, r := range rows {
			p := float64(cl.t.counts[r]) / total
			ent -= p * math.Log2(p)
		}
		return ent >= c.logL
	case LRecursive:
		l := int(c.l.L)
		if len(rows) < l {
			return false
		}
		c.fbuf = c.fbuf[:0]
		for _, r := range rows {
			c.fbuf = append(c.fbuf, cl.t.counts[r])
		}
		slices.Sort(c.fbuf)
		var tail float64
		for i := len(c.fbuf) - l; i >= 0; i-- {
			tail += float64(c.fbuf[i])
		}
		return float64(c.fbuf[len(c.fbuf)-1]) < c.l.C*tail
	}
	return false
}

func (c *checker) tOK(cl *classes, rows []int32, n int64) bool {
	return c.emd(cl, rows, n) <= c.t.T
}

// emd is the earth mover's distance between the class's sensitive
// distribution and the global one.
func (c *checker) emd(cl *classes, rows []int32, n int64) float64 {
	p := c.pbuf
	clear(p)
	total := float64(n)
	for _, r := range rows {
		p[cl.t.sens[r]] += float64(cl.t.counts[r]) / total
	}
	m := len(c.q)
	switch c.t.Distance {
	case TEqual:
		var d float64
		for i := range m {
			d += math.Abs(p[i] - c.q[i])
		}
		return d / 2
	default:
		if m <= 1 {
			return 0
		}
		diff := make([]float64, m)
		for i := range m {
			diff[c.rank[i]] = p[i] - c.q[i]
		}
		var cum, d float64
		for i := range m {
			cum += diff[i]
			d += math.Abs(cum)
		}
		return d / float64(m-1)
	}
}

// minTCloseSize is the smallest class size that can satisfy equal-distance
// t-closeness: a class of c rows holds at most c values, so its distance to
// the overall distribution q is at least 1 - (sum of the c largest q). Rows
// in smaller classes always fail. 0 without equal-distance t-closeness.
func (c *checker) minTCloseSize() int64 {
	if c.t == nil || c.t.Distance != TEqual || len(c.q) == 0 {
		return 0
	}
	q := slices.Clone(c.q)
	slices.Sort(q)
	slices.Reverse(q)
	var sum float64
	for i, v := range q {
		sum += v
		// A small tolerance keeps the bound safe against rounding: it may
		// only make the bound weaker.
		if 1-sum <= c.t.T+1e-9 {
			return int64(i + 1)
		}
	}
	return int64(len(q))
}
