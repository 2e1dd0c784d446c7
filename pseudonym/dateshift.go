package pseudonym

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

const maxShiftDays = 3650

// DateShiftOptions configures NewDateShift.
type DateShiftOptions struct {
	// Domain names what the shift is for. Required.
	Domain string
	// KeyID selects the master key; "" means the active key.
	KeyID string
	// MaxDays bounds the shift: offsets lie in [-MaxDays, +MaxDays] days.
	// Required: 1 to 3650. (A zero default would mean no shift at all.)
	MaxDays int
	// Granularity of the offset: 0 or 24h for whole days (time of day and
	// weekday-in-week patterns kept up to the day shift), time.Second for
	// offsets in seconds (hides time of day too). Must divide 24h and be at
	// least one second.
	Granularity time.Duration
}

// DateShift shifts all timestamps of a subject by the same secret offset
// derived from HMAC-SHA256(domain key, subject): intervals within a subject
// (trip lengths, time between events, order) are kept exactly, while
// absolute dates no longer line up with outside records. Offsets are
// uniform over the 2*steps+1 values of [-MaxDays, +MaxDays] (bias below
// 2^-40 from the 64-bit reduction).
//
// Different subjects get independent offsets, so intervals between
// subjects are not kept. A DateShift is safe for concurrent use.
type DateShift struct {
	redacted
	h       *HMAC
	keyID   string
	domain  string
	steps   uint64 // offsets are (k - half) * gran for k in [0, steps)
	half    int64
	gran    time.Duration
	maxDays int
}

// NewDateShift derives the date-shift key for opts.Domain.
func NewDateShift(kr *Keyring, opts DateShiftOptions) (*DateShift, error) {
	const fn = "pseudonym.NewDateShift"
	if kr == nil {
		return nil, errors.New(fn + ": keyring is nil")
	}
	if opts.MaxDays < 1 || opts.MaxDays > maxShiftDays {
		return nil, fmt.Errorf("%s: MaxDays must be 1 to %d, got %d", fn, maxShiftDays, opts.MaxDays)
	}
	g := opts.Granularity
	if g == 0 {
		g = 24 * time.Hour
	}
	if g < time.Second || (24*time.Hour)%g != 0 {
		return nil, fmt.Errorf("%s: Granularity must divide 24h and be at least 1s, got %s", fn, opts.Granularity)
	}
	id, key, err := kr.deriveKey(fn, purposeDateShift, opts.Domain, opts.KeyID, 32)
	if err != nil {
		return nil, err
	}
	defer zero(key)
	h, err := newHMACRaw(key, 8, Hex)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	half := int64(opts.MaxDays) * int64(24*time.Hour/g)
	return &DateShift{h: h, keyID: id, domain: opts.Domain, steps: uint64(2*half + 1), half: half, gran: g, maxDays: opts.MaxDays}, nil
}

// KeyID returns the id of the master key in use.
func (d *DateShift) KeyID() string { return d.keyID }

// Domain returns the domain.
func (d *DateShift) Domain() string { return d.domain }

// Destroy zeroes the key state.
func (d *DateShift) Destroy() { d.h.Destroy() }

func (d *DateShift) offset(s *Hasher, subject []byte) time.Duration {
	s.sum(subject)
	u := binary.BigEndian.Uint64(s.mac[:8])
	k, _ := bits.Mul64(u, d.steps) // uniform in [0, steps) up to steps/2^64
	return time.Duration(int64(k)-d.half) * d.gran
}

// Offset returns the subject's offset.
func (d *DateShift) Offset(subject []byte) time.Duration {
	s := d.h.newHasher()
	defer s.Destroy()
	return d.offset(s, subject)
}

// Shift returns t moved by the subject's offset.
func (d *DateShift) Shift(subject []byte, t time.Time) time.Time {
	return t.Add(d.Offset(subject))
}

// Column shifts a timestamp column (any unit, any time zone) by the offset
// of each row's subject. subjects is string, large_string, binary, int64
// (as decimal text) or a dictionary of those, of the same length. A null
// timestamp stays null; a valid timestamp with a null subject is an error
// (it cannot be shifted consistently), as is a result outside int64.
func (d *DateShift) Column(ctx context.Context, ts, subjects arrow.Array, opts ColumnOptions) (arrow.Array, error) {
	const fn = "pseudonym.DateShift.Column"
	cerr := func(row int, err error) error { return &ColumnError{fn, opts.Name, row, err} }
	if opts.Mem == nil {
		return nil, cerr(-1, errors.New("ColumnOptions.Mem is required"))
	}
	if ts == nil || subjects == nil {
		return nil, cerr(-1, errors.New("array is nil"))
	}
	if ctx == nil {
		ctx = context.Background()
	}
	tsa, ok := ts.(*array.Timestamp)
	if !ok {
		return nil, cerr(-1, fmt.Errorf("%w %s (want a timestamp)", ErrUnsupportedType, ts.DataType()))
	}
	if subjects.Len() != ts.Len() {
		return nil, cerr(-1, fmt.Errorf("subject column has %d rows, timestamps %d", subjects.Len(), ts.Len()))
	}
	if d.h.destroyed.Load() {
		return nil, cerr(-1, ErrDestroyed)
	}
	unit := tsa.DataType().(*arrow.TimestampType).Unit
	perUnit := int64(unit.Multiplier()) // nanoseconds per unit
	n := ts.Len()

	// One offset per distinct subject, in units of the column.
	s := d.h.newHasher()
	defer s.Destroy()
	offsetOf := func(v []byte) int64 { return int64(d.offset(s, v)) / perUnit }
	var subjectOffset func(i int) (int64, bool)
	switch a := subjects.(type) {
	case *array.Dictionary:
		dict := a.Dictionary()
		offs := make([]int64, dict.Len())
		got := make([]bool, dict.Len())
		val, err := valueGetter(dict)
		if err != nil {
			return nil, cerr(-1, err)
		}
		subjectOffset = func(i int) (int64, bool) {
			if a.IsNull(i) {
				return 0, false
			}
			k := a.GetValueIndex(i)
			if dict.IsNull(k) {
				return 0, false
			}
			if !got[k] {
				offs[k], got[k] = offsetOf(val(k)), true
			}
			return offs[k], true
		}
	default:
		val, err := valueGetter(subjects)
		if err != nil {
			return nil, cerr(-1, err)
		}
		memo := map[string]int64{}
		subjectOffset = func(i int) (int64, bool) {
			if subjects.IsNull(i) {
				return 0, false
			}
			v := val(i)
			if o, ok := memo[string(v)]; ok {
				return o, true
			}
			o := offsetOf(v)
			if len(memo) < maxMemo {
				memo[string(v)] = o
			}
			return o, true
		}
	}

	b := array.NewTimestampBuilder(opts.Mem, tsa.DataType().(*arrow.TimestampType))
	defer b.Release()
	b.Reserve(n)
	vals := tsa.TimestampValues()
	for i := range n {
		if i%cancelEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, cerr(i, err)
			}
		}
		if tsa.IsNull(i) {
			b.UnsafeAppendBoolToBitmap(false)
			continue
		}
		o, ok := subjectOffset(i)
		if !ok {
			return nil, cerr(i, errors.New("subject is null but the timestamp is not"))
		}
		v := int64(vals[i])
		if (o > 0 && v > math.MaxInt64-o) || (o < 0 && v < math.MinInt64-o) {
			return nil, cerr(i, errors.New("shifted timestamp overflows int64"))
		}
		b.UnsafeAppend(arrow.Timestamp(v + o))
	}
	return b.NewArray(), nil
}

// valueGetter returns the bytes of row i of a string-like or int64 array.
func valueGetter(a arrow.Array) (func(i int) []byte, error) {
	switch a := a.(type) {
	case *array.String:
		return func(i int) []byte { return strBytes(a.Value(i)) }, nil
	case *array.LargeString:
		return func(i int) []byte { return strBytes(a.Value(i)) }, nil
	case *array.Binary:
		return a.Value, nil
	case *array.LargeBinary:
		return a.Value, nil
	case *array.Int64:
		var buf [24]byte
		return func(i int) []byte { return strconv.AppendInt(buf[:0], a.Value(i), 10) }, nil
	}
	return nil, fmt.Errorf("subject column: %w %s (want string, large_string, binary, int64 or a dictionary of those)", ErrUnsupportedType, a.DataType())
}

// strBytes views s as bytes without copying; callers only read it.
func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
