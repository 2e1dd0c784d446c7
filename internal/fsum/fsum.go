package fsum

import (
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"math/bits"
)

// Sum is an exact sum of float64 values. The zero value is an empty sum.
type Sum struct {
	// The sum is (hi, lo) × 2^b: a signed 128-bit integer in two's
	// complement, b the lowest exponent added so far. Once it does not fit,
	// wide holds it (hi and lo are then 0).
	hi   int64
	lo   uint64
	b    int16
	set  bool  // a finite value was added (b is meaningful)
	spec uint8 // non-finite values added: specNaN | specPosInf | specNegInf
	wide *big.Int
}

const (
	specNaN = 1 << iota
	specPosInf
	specNegInf
)

// Add adds x.
func (s *Sum) Add(x float64) {
	u := math.Float64bits(x)
	exp := int(u>>52) & 0x7ff
	if exp == 0x7ff {
		s.special(x)
		return
	}
	m, e := u&(1<<52-1), -1074
	if exp != 0 {
		m |= 1 << 52
		e = exp - 1075
	}
	if m == 0 {
		return
	}
	tz := bits.TrailingZeros64(m)
	m >>= tz
	e += tz
	if s.wide == nil && (!s.set || e < int(s.b)) && s.rebase(e) {
		// The first value, or a lower exponent: the sum is now × 2^e.
	}
	if d := uint(e - int(s.b)); s.wide == nil && s.set && d <= 126-53 {
		// The fast path: ±m × 2^d has at most 126 bits, the sum at most
		// 124 (fromBig, below): no wrap-around, and add128 sees overflow
		// past 124 bits in the top bits.
		lo, hi := m<<d, int64(m>>(64-d))
		if d >= 64 {
			lo, hi = 0, int64(m<<(d-64))
		}
		sign := int64(u) >> 63 // 0, or -1: negate (two's complement)
		var c uint64
		lo, c = bits.Add64(lo^uint64(sign), uint64(sign&1), 0)
		hi = hi ^ sign + int64(c)
		if h, l, ok := add128(s.hi, s.lo, hi, lo); ok {
			s.hi, s.lo = h, l
			return
		}
	}
	s.addSlow(m, u>>63 != 0, e)
}

// rebase makes e the sum's exponent (the first value's, or one lower than
// the sum's) when the integer still fits; false leaves it to addSlow.
func (s *Sum) rebase(e int) bool {
	if !s.set {
		s.set, s.b, s.hi, s.lo = true, int16(e), 0, 0
		return true
	}
	d := uint(int(s.b) - e)
	hi, lo := s.hi, s.lo
	if hi < 0 {
		hi, lo = neg128(hi, lo)
	}
	n := uint(128 - bits.LeadingZeros64(uint64(hi)))
	if hi == 0 {
		n = uint(64 - bits.LeadingZeros64(lo))
	}
	if n+d > 122 {
		return false
	}
	if d >= 64 {
		s.hi, s.lo = int64(s.lo<<(d-64)), 0
	} else if d > 0 {
		s.hi, s.lo = s.hi<<d|int64(s.lo>>(64-d)), s.lo<<d
	}
	s.b = int16(e)
	return true
}

// special counts a NaN or an infinity.
func (s *Sum) special(x float64) {
	switch {
	case math.IsNaN(x):
		s.spec |= specNaN
	case x > 0:
		s.spec |= specPosInf
	default:
		s.spec |= specNegInf
	}
}

// addSlow adds ±m × 2^e when the 128-bit path cannot: the first value, a
// lower exponent (the sum is rebased), or a sum that does not fit.
func (s *Sum) addSlow(m uint64, neg bool, e int) {
	v := new(big.Int).SetUint64(m)
	if neg {
		v.Neg(v)
	}
	s.addBig(v, e)
}

// addBig adds v × 2^e.
func (s *Sum) addBig(v *big.Int, e int) {
	if !s.set {
		s.set, s.b = true, int16(e)
		s.fromBig(v)
		return
	}
	cur := s.big()
	if e < int(s.b) {
		cur.Lsh(cur, uint(int(s.b)-e))
		s.b = int16(e)
	} else {
		v = new(big.Int).Lsh(v, uint(e-int(s.b)))
	}
	cur.Add(cur, v)
	s.fromBig(cur)
}

// big returns the sum's integer (a fresh copy).
func (s *Sum) big() *big.Int {
	if s.wide != nil {
		return new(big.Int).Set(s.wide)
	}
	hi, lo, neg := s.hi, s.lo, s.hi < 0
	if neg {
		hi, lo = neg128(hi, lo)
	}
	v := new(big.Int).SetUint64(uint64(hi))
	v.Lsh(v, 64)
	v.Or(v, new(big.Int).SetUint64(lo))
	if neg {
		v.Neg(v)
	}
	return v
}

// fromBig stores v, in 128 bits when it fits in 124 (room for the fast
// path's additions to detect overflow).
func (s *Sum) fromBig(v *big.Int) {
	if v.BitLen() <= 124 {
		a := new(big.Int).Abs(v)
		lo := a.Uint64()
		hi := new(big.Int).Rsh(a, 64).Uint64()
		h, l := int64(hi), lo
		if v.Sign() < 0 {
			h, l = neg128(h, l)
		}
		s.hi, s.lo, s.wide = h, l, nil
		return
	}
	s.hi, s.lo, s.wide = 0, 0, v
}

func neg128(hi int64, lo uint64) (int64, uint64) {
	lo = ^lo + 1
	h := ^hi
	if lo == 0 {
		h++
	}
	return h, lo
}

// add128 adds two signed 128-bit integers, a of at most 124 bits of
// magnitude and b of at most 126 (so the sum cannot wrap around); ok is
// false when the sum has more than 124.
func add128(ah int64, al uint64, bh int64, bl uint64) (int64, uint64, bool) {
	l, c := bits.Add64(al, bl, 0)
	h := ah + bh + int64(c)
	if top := h >> 59; top != 0 && top != -1 {
		return 0, 0, false
	}
	return h, l, true
}

// Merge adds every value o holds.
func (s *Sum) Merge(o *Sum) {
	s.spec |= o.spec
	if !o.set {
		return
	}
	s.addBig(o.big(), int(o.b))
}

// Value is the sum, rounded once to the nearest float64 (ties to even).
func (s *Sum) Value() float64 {
	switch {
	case s.spec&specNaN != 0 || s.spec&(specPosInf|specNegInf) == specPosInf|specNegInf:
		return math.NaN()
	case s.spec&specPosInf != 0:
		return math.Inf(1)
	case s.spec&specNegInf != 0:
		return math.Inf(-1)
	case !s.set:
		return 0
	}
	if s.wide == nil {
		if v, ok := s.value128(); ok {
			return v
		}
	}
	f := new(big.Float).SetInt(s.big()) // exact: the precision is the integer's
	f.SetMantExp(f, int(s.b))
	v, _ := f.Float64()
	return v
}

// value128 rounds a 128-bit sum without math/big: the top 64 bits with
// the bits below folded into a sticky bit round to 53 exactly as the
// whole would (ties to even), and the power of two is exact while the
// result is a normal float64; false otherwise.
func (s *Sum) value128() (float64, bool) {
	hi, lo, neg := s.hi, s.lo, s.hi < 0
	if neg {
		hi, lo = neg128(hi, lo)
	}
	v, e := lo, int(s.b)
	if hi != 0 {
		n := uint(64 - bits.LeadingZeros64(uint64(hi))) // bits of hi
		v = uint64(hi)<<(64-n) | lo>>n
		if lo&(1<<n-1) != 0 {
			v |= 1
		}
		e += int(n)
	}
	f := math.Ldexp(float64(v), e)
	if a := math.Abs(f); (a < 0x1p-1022 && a != 0) || math.IsInf(f, 0) {
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}

// Mean is the sum divided by n: the rounded sum divided by n (rounded
// once more). NaN for n = 0.
func (s *Sum) Mean(n int64) float64 {
	if n == 0 {
		return math.NaN()
	}
	return s.Value() / float64(n)
}

// AppendBinary appends the sum's state to b, for AddBinary on another
// worker.
func (s *Sum) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, s.spec)
	if !s.set {
		return append(b, 0), nil
	}
	v := s.big()
	sign := byte(1)
	if v.Sign() < 0 {
		sign = 2
	}
	b = append(b, sign)
	b = binary.AppendVarint(b, int64(s.b))
	mag := v.Abs(v).Bytes()
	b = binary.AppendUvarint(b, uint64(len(mag)))
	return append(b, mag...), nil
}

// AddBinary adds the sum whose state AppendBinary wrote at the start of b
// and returns the bytes after it. Corrupt bytes are an error.
func (s *Sum) AddBinary(b []byte) ([]byte, error) {
	corrupt := errors.New("fsum: corrupt state")
	if len(b) < 2 || b[0] > 7 || b[1] > 2 {
		return nil, corrupt
	}
	spec, sign := b[0], b[1]
	b = b[2:]
	if sign == 0 {
		s.spec |= spec
		return b, nil
	}
	e, k := binary.Varint(b)
	if k <= 0 || e < -1074 || e > 971 {
		return nil, corrupt
	}
	b = b[k:]
	n, k := binary.Uvarint(b)
	// A finite sum of fewer than 2^64 values has under 2,200 bits.
	if k <= 0 || n > 300 || n > uint64(len(b)-k) {
		return nil, corrupt
	}
	v := new(big.Int).SetBytes(b[k : k+int(n)])
	if sign == 2 {
		v.Neg(v)
	}
	s.spec |= spec
	if v.Sign() != 0 {
		s.addBig(v, int(e))
	}
	return b[k+int(n):], nil
}
