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

// checker decides per class whether it satisfies the privacy models. The
// formulas are ARX's (criteria.EntropyLDiversity, RecursiveCLDiversity,
// EqualDistanceTCloseness, OrderedDistanceTCloseness), so that decisions
// at a boundary round the same way.
type checker struct {
	k     int64
	l     *LDiversity
	t     *TCloseness
	needL int       // values a class needs for distinct and recursive l (ceil(l) for entropy)
	lnL   float64   // entropy l: ln(l)
	xlnx  []float64 // entropy l: x·ln(x) for small x
	q     []float64 // global distribution of sensitive ids
	rank  []int32   // ordered t-closeness: rank of each sensitive id
	order []int32   // ordered t-closeness: sensitive id of each rank
	pbuf  []float64
	fbuf  []int64
}

// xlnxTable bounds the table of x·ln(x) entropy l-diversity looks up.
const xlnxTable = 4096

func newChecker(h *Histogram, k int, l *LDiversity, t *TCloseness) *checker {
	c := &checker{k: int64(k), l: l, t: t}
	if l != nil {
		c.needL = int(l.L)
		if l.Variant == LEntropy {
			c.needL = int(math.Ceil(l.L))
			c.lnL = math.Log(l.L)
			c.xlnx = make([]float64, min(int64(xlnxTable), h.rows+1))
			for x := 1; x < len(c.xlnx); x++ {
				c.xlnx[x] = float64(x) * math.Log(float64(x))
			}
		}
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
		c.order = make([]int32, m)
		for v, r := range c.rank {
			c.order[r] = int32(v)
		}
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

// ok reports whether class i of t satisfies every model.
func (c *checker) ok(t *table, i int) bool {
	n := t.counts[i]
	if n < c.k {
		return false
	}
	if c.l == nil && c.t == nil {
		return true
	}
	sens, freq := t.frequencies(i)
	if c.l != nil && !c.lOK(freq, n) {
		return false
	}
	if c.t != nil && !c.tOK(sens, freq, n) {
		return false
	}
	return true
}

// lOK decides l-diversity on a class's frequencies (n rows).
func (c *checker) lOK(freq []int64, n int64) bool {
	if len(freq) < c.needL {
		return false
	}
	switch c.l.Variant {
	case LDistinct:
		return true
	case LEntropy:
		// H = ln(n) - Σ f·ln(f)/n >= ln(l), as ARX: Σ f·ln(f) <= n·(ln(n) - ln(l)).
		bound := float64(n) * (math.Log(float64(n)) - c.lnL)
		var sum float64
		for _, f := range freq {
			if f < int64(len(c.xlnx)) {
				sum += c.xlnx[f]
			} else {
				sum += float64(f) * math.Log(float64(f))
			}
			if bound < sum {
				return false
			}
		}
		return true
	case LRecursive:
		// r1 < c·(r_l + … + r_m), frequencies in descending order.
		l := int(c.l.L)
		c.fbuf = append(c.fbuf[:0], freq...)
		slices.Sort(c.fbuf)
		var tail float64
		for i := len(c.fbuf) - l; i >= 0; i-- {
			tail += float64(c.fbuf[i])
		}
		return float64(c.fbuf[len(c.fbuf)-1]) < c.l.C*tail
	}
	return false
}

func (c *checker) tOK(sens []int32, freq []int64, n int64) bool {
	total := float64(n)
	switch c.t.Distance {
	case TEqual:
		// ½ Σ_all |p_i - q_i| = ½ (1 + Σ_present (|q_i - p_i| - q_i)): only
		// the values present in the class are visited.
		val := 1.0
		for j, v := range sens {
			q := c.q[v]
			val += math.Abs(q-float64(freq[j])/total) - q
		}
		return val/2 <= c.t.T
	default:
		m := len(c.q)
		if m <= 1 {
			return true
		}
		p := c.pbuf
		for j, v := range sens {
			p[v] = float64(freq[j]) / total
		}
		// Σ |cumulative difference| over the ordered values <= t·(m-1).
		threshold := c.t.T * float64(m-1)
		var cum, d float64
		ok := true
		for _, v := range c.order {
			cum += p[v] - c.q[v]
			d += math.Abs(cum)
			if d > threshold {
				ok = false
				break
			}
		}
		for _, v := range sens {
			p[v] = 0
		}
		return ok
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
