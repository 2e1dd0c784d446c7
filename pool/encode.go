package pool

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"

	"github.com/tarnkappe/tarnkappe/dp"
)

// The fixed-point encoding.
//
// A member's bounded state per partition (dp.PartitionState) is turned into
// non-negative integers, one per slot: slot 0 is the partition's bounded row
// count; every other slot is, for one (column, lower, upper) of the value
// aggregates, U = Σ(v − lo) over the partition's bounded rows, in units of
// q = 2^e (e chosen per slot so that one row spans about 2^ResolutionBits
// units; lo and hi are the declared bounds rounded outwards to the grid).
// U is never negative, so Prio3's SumVec can prove every entry lies in
// [0, 2^bits) with bits fixed by the public MaxRows: a member cannot submit
// a value that wraps around the field.
//
// The aggregators turn slots into released quantities by a linear map on
// their shares, exact in integers (no party sees a total):
//
//	count  T = rows
//	sum    T = U + lo·rows            (= Σv in units)
//	mean   T = U + (lo − mid)·rows    (= Σ(v − mid) in units; mean = T·q/count + mid)
//
// Rounding U to the grid moves it by at most one unit per member and
// partition, so one subject changes T by at most L∞·max|bound| + 1 units at
// each of the M members it may appear at: that is the sensitivity the noise
// is calibrated to.

// slot is one encoded quantity per partition.
type slot struct {
	column       string  // "" for the row count
	lower, upper float64 // declared bounds
	exp          int     // unit q = 2^exp
	lo, hi       int64   // bounds on the grid, in units
}

func (s *slot) unit() float64 { return math.Ldexp(1, s.exp) }

// released is one aggregate of the release.
type released struct {
	kind         string // count, sum, mean
	name         string
	lower, upper float64 // declared bounds (sum, mean)
	slot         int     // value slot (0 for count)
	coef         int64   // T = X[slot] + coef·X[0] (value aggregates)
	mid          int64   // mean: the midpoint on the grid, in units
	unit         float64 // q of the slot (1 for count)
	l0, lInf     int64   // sensitivity of T: L0 partitions, lInf units each
	eps, delta   float64 // this aggregate's share of the release
}

// plan is everything derived from a configuration: partition order, the
// encoding and the released quantities.
type plan struct {
	rows     [][]string     // partition values, in the configuration's order
	keys     []string       // canonical partition keys (package dp's text)
	index    map[string]int // key → partition index
	slots    []slot
	aggs     []released
	bits     uint // every measurement entry is in [0, 2^bits)
	length   uint // measurement length: partitions × slots
	chunk    uint // SumVec chunk length
	outLen   int  // released vector length: partitions × aggregates
	vdafCtx  []byte
	noiseGau bool
	alpha    float64
}

// canonicalKey is a partition's key as package dp spells it in a Partial
// (each value as <length>:<text>). Contribute checks that a member's partial
// lists exactly these keys, so a change in dp's spelling fails closed.
func canonicalKey(vals []string) string {
	var b strings.Builder
	for _, v := range vals {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

func newPlan(c *Config, rows [][]string) (*plan, error) {
	r := &c.Release
	p := &plan{rows: rows, index: make(map[string]int, len(rows)), noiseGau: r.Noise == noiseGaussian, alpha: 1 - r.Confidence}
	for i, row := range rows {
		k := canonicalKey(row)
		p.keys = append(p.keys, k)
		p.index[k] = i
	}
	p.slots = []slot{{}}
	m := r.MaxMembersPerSubject
	share := float64(len(r.Aggregates))
	for i, a := range r.Aggregates {
		path := fmt.Sprintf("release.aggregates[%d]", i)
		ra := released{kind: a.Kind, name: aggregateName(a), lower: a.Lower, upper: a.Upper, unit: 1, l0: r.MaxPartitions,
			eps: r.Epsilon / share, delta: r.Delta / share}
		if a.Kind == "count" {
			ra.lInf = m * r.MaxPerPartition
			p.aggs = append(p.aggs, ra)
			continue
		}
		si := slices.IndexFunc(p.slots, func(s slot) bool { return s.column == a.Column && s.lower == a.Lower && s.upper == a.Upper })
		if si < 0 {
			s, err := newSlot(a, r.ResolutionBits)
			if err != nil {
				return nil, c.errf(path, "%v", err)
			}
			p.slots = append(p.slots, s)
			si = len(p.slots) - 1
		}
		s := &p.slots[si]
		ra.slot, ra.unit = si, s.unit()
		var maxAbs int64
		switch a.Kind {
		case "sum":
			ra.coef = s.lo
			maxAbs = max(abs64(s.lo), abs64(s.hi))
		case "mean":
			ra.mid = floorDiv2(s.lo + s.hi)
			ra.coef = s.lo - ra.mid
			maxAbs = max(s.hi-ra.mid, ra.mid-s.lo)
		}
		// One subject moves T by at most L∞·maxAbs units plus one unit of
		// rounding, at each of the M members it may appear at.
		per, ok := mulCheck(r.MaxPerPartition, maxAbs)
		if ok {
			per, ok = mulCheck(per+1, m)
		}
		if _, ok2 := mulCheck(per, r.MaxPartitions); !ok || !ok2 {
			return nil, c.errf(path, "the sensitivity overflows 64 bits; use a coarser resolution_bits or smaller bounds")
		}
		ra.lInf = per
		p.aggs = append(p.aggs, ra)
	}
	// Bit width: the largest entry a member may submit.
	var maxEntry uint64 = uint64(r.MaxRows)
	for _, s := range p.slots[1:] {
		hi, lo := bits.Mul64(uint64(r.MaxRows), uint64(s.hi-s.lo))
		if hi != 0 || lo >= 1<<63 {
			return nil, c.errf("release.max_rows", "max_rows × the value range in units overflows 63 bits; lower max_rows or resolution_bits")
		}
		maxEntry = max(maxEntry, lo)
	}
	p.bits = uint(bits.Len64(maxEntry))
	n := uint64(len(rows)) * uint64(len(p.slots))
	if n > 1<<26 {
		return nil, c.errf("release.partitions.file", "%d partitions × %d slots is more than the %d entries a report may hold", len(rows), len(p.slots), 1<<26)
	}
	p.length = uint(n)
	p.chunk = max(1, uint(math.Round(math.Sqrt(float64(p.length)*float64(p.bits)))))
	p.outLen = len(rows) * len(p.aggs)
	if err := p.checkWrap(len(c.Members)); err != nil {
		return nil, c.errf("release", "%v", err)
	}
	h := c.hash
	p.vdafCtx = append([]byte("tarnkappe-pool/v1 "), h[:]...)
	return p, nil
}

// newSlot places a value aggregate's bounds on a power-of-two grid with
// about 2^res units between them.
func newSlot(a AggregateSpec, res int) (slot, error) {
	s := slot{column: a.Column, lower: a.Lower, upper: a.Upper}
	s.exp = int(math.Ceil(math.Log2((a.Upper - a.Lower) / math.Ldexp(1, res))))
	q := math.Ldexp(1, s.exp)
	lo, hi := math.Floor(a.Lower/q), math.Ceil(a.Upper/q)
	if math.Abs(lo) > 1<<50 || math.Abs(hi) > 1<<50 {
		return s, fmt.Errorf("bounds [%v, %v] need more than 50 bits at resolution 2^%d", a.Lower, a.Upper, s.exp)
	}
	s.lo, s.hi = int64(lo), int64(hi)
	return s, nil
}

// checkWrap fails closed unless every released value — the members' largest
// possible totals plus two int64 noise draws — stays inside half the field,
// where the signed decoding of a field element is unambiguous.
func (p *plan) checkWrap(members int) error {
	order := new(big.Int).SetBytes(fp128.Fp{}.Order())
	half := new(big.Int).Rsh(order, 1)
	maxEntry := new(big.Int).Lsh(big.NewInt(int64(members)), p.bits) // > members·(2^bits − 1)
	noise := new(big.Int).Lsh(big.NewInt(1), 64)                     // > |n0| + |n1|
	for _, a := range p.aggs {
		t := new(big.Int).Mul(maxEntry, big.NewInt(1+abs64(a.coef)))
		t.Add(t, noise)
		if t.Cmp(half) >= 0 {
			return fmt.Errorf("aggregate %s: totals plus noise may reach 2^%d, beyond half the field (2^127): lower max_rows or resolution_bits", a.name, t.BitLen())
		}
	}
	return nil
}

// measurement encodes a member's partial as the SumVec measurement
// (partition-major: partition i's slots at i·len(slots)). It fails when the
// partial does not come from the pool's release spec or exceeds MaxRows.
func (c *Config) measurement(part *dp.Partial) ([]uint64, error) {
	p, r := c.plan, &c.Release
	s := &part.Spec
	switch {
	case s.Subject != r.Subject:
		return nil, fmt.Errorf("the partial's subject is %q, the pool's %q", s.Subject, r.Subject)
	case !slices.Equal(s.GroupBy, r.By):
		return nil, fmt.Errorf("the partial groups by %q, the pool by %q", s.GroupBy, r.By)
	case s.MaxPartitions != r.MaxPartitions || s.MaxPerPartition != r.MaxPerPartition:
		return nil, fmt.Errorf("the partial bounds L0=%d, L∞=%d; the pool needs L0=%d, L∞=%d", s.MaxPartitions, s.MaxPerPartition, r.MaxPartitions, r.MaxPerPartition)
	case !s.Public:
		return nil, errors.New("the partial's partitions were not public: bound with the pool's public partitions")
	}
	if !slices.Equal(s.PublicKeys, sortedCopy(p.keys)) {
		return nil, fmt.Errorf("the partial's %d public partitions are not the pool's %d", len(s.PublicKeys), len(p.keys))
	}
	// For every value slot: the partial's aggregate holding Σ over its
	// clamped values, and how to get Σv from it.
	type source struct {
		agg int
		mid float64 // Σv = Sums[agg] + mid·rows (dp stores means normalised)
	}
	src := make([]source, len(p.slots))
	for si := 1; si < len(p.slots); si++ {
		sl := &p.slots[si]
		src[si].agg = slices.IndexFunc(s.Aggregates, func(a dp.AggregateSpec) bool {
			return (a.Kind == dp.Sum || a.Kind == dp.Mean) && a.Column == sl.column && a.Lower == sl.lower && a.Upper == sl.upper
		})
		if src[si].agg < 0 {
			return nil, fmt.Errorf("the partial has no sum or mean of %q clamped to [%v, %v]", sl.column, sl.lower, sl.upper)
		}
		if a := s.Aggregates[src[si].agg]; a.Kind == dp.Mean {
			src[si].mid = a.Lower + (a.Upper-a.Lower)/2
		}
	}
	meas := make([]uint64, p.length)
	ns := len(p.slots)
	for key, ps := range part.Partitions {
		i, ok := p.index[key]
		if !ok {
			return nil, fmt.Errorf("the partial has partition %q outside the pool's domain", key)
		}
		if ps.Rows < 0 || ps.Rows > r.MaxRows {
			return nil, fmt.Errorf("partition %s has %d bounded rows, more than release.max_rows=%d", strings.Join(p.rows[i], ","), ps.Rows, r.MaxRows)
		}
		meas[i*ns] = uint64(ps.Rows)
		rows := float64(ps.Rows)
		for si := 1; si < ns; si++ {
			sl := &p.slots[si]
			sum := ps.Sums[src[si].agg] + src[si].mid*rows
			// U = Σ(v − lo) in units, rounded; clamped to what rows
			// bounded values can give (float rounding of the sums only).
			u := math.Round((sum - float64(sl.lo)*sl.unit()) / sl.unit())
			if math.IsNaN(u) {
				return nil, fmt.Errorf("partition %s: sum of %q is not a number", strings.Join(p.rows[i], ","), sl.column)
			}
			u = math.Min(math.Max(u, 0), rows*float64(sl.hi-sl.lo))
			meas[i*ns+si] = uint64(u)
		}
	}
	return meas, nil
}

// project maps an aggregate share (partitions × slots, field elements) to
// the released quantities (partitions × aggregates) by the linear map above.
func (p *plan) project(share fp128.Vec) fp128.Vec {
	ns, na := len(p.slots), len(p.aggs)
	out := make(fp128.Vec, p.outLen)
	coefs := make([]fp128.Fp, na)
	for j, a := range p.aggs {
		coefs[j] = fieldFromInt(a.coef)
	}
	var t fp128.Fp
	for i := range p.rows {
		rows := &share[i*ns]
		for j, a := range p.aggs {
			o := &out[i*na+j]
			if a.kind == "count" {
				*o = *rows
				continue
			}
			t.Mul(&coefs[j], rows)
			o.Add(&share[i*ns+a.slot], &t)
		}
	}
	return out
}

// fieldFromInt is x as a field element (negative x as p − |x|).
func fieldFromInt(x int64) fp128.Fp {
	var f fp128.Fp
	_ = f.SetUint64(uint64(abs64(x))) // SetUint64 never fails for Fp128
	if x < 0 {
		var z fp128.Fp
		z.Sub(&z, &f)
		return z
	}
	return f
}

// errOutOfRange is returned when a field element decodes to no plausible
// signed value: the shares do not belong together (or were tampered with).
var errOutOfRange = errors.New("released value outside the range any valid shares produce")

// intFromField decodes a field element as a signed integer: x if x < 2^63,
// −(p − x) if p − x < 2^63, otherwise errOutOfRange.
func intFromField(f *fp128.Fp) (int64, error) {
	if v, err := f.GetUint64(); err == nil && v <= math.MaxInt64 {
		return int64(v), nil
	}
	var n fp128.Fp
	n.Sub(&n, f)
	if v, err := n.GetUint64(); err == nil && v <= math.MaxInt64 {
		return -int64(v), nil
	}
	return 0, errOutOfRange
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// floorDiv2 is ⌊x/2⌋ for negative x too.
func floorDiv2(x int64) int64 { return x >> 1 }

// mulCheck multiplies non-negative a and b, reporting overflow of int64.
func mulCheck(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
