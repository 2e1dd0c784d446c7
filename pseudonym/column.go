package pseudonym

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ColumnOptions configures the column functions (HMAC.Column,
// Reversible.Column, FF1.Column, DateShift.Column).
type ColumnOptions struct {
	// Mem allocates every output buffer. Required.
	Mem memory.Allocator
	// Name is the column name, used in error messages only. Optional.
	Name string
	// Workers bounds the goroutines one call uses; 0 means GOMAXPROCS.
	// Columns shorter than 32768 rows run on the calling goroutine.
	Workers int
}

const (
	// minChunk is the fewest rows worth a goroutine.
	minChunk = 16 << 10
	// maxMemo bounds the per-goroutine memo of repeated values (entries).
	// Past it new values are still transformed, just not remembered, so a
	// column of all-distinct values costs bounded memory.
	maxMemo = 1 << 18
	// cancelEvery is how many rows a worker does between context checks.
	cancelEvery = 1 << 16
)

// valueTransform is one pseudonymization method as the column engine sees it.
type valueTransform interface {
	// fn names the method in errors ("pseudonym.HMAC.Column").
	fn() string
	// outLen is the output length for an n-byte input.
	outLen(n int) int
	// newWorker returns per-goroutine state.
	newWorker() (valueWorker, error)
	// int64OK reports whether int64 columns (as decimal text) are accepted.
	int64OK() bool
}

type valueWorker interface {
	// put writes the transform of src into dst (len outLen(len(src))).
	put(dst, src []byte) error
	destroy()
}

// --- adapters -------------------------------------------------------------

type hmacTransform struct{ h *HMAC }

func (t hmacTransform) fn() string     { return "pseudonym.HMAC.Column" }
func (t hmacTransform) outLen(int) int { return t.h.outLen }
func (t hmacTransform) int64OK() bool  { return true }
func (t hmacTransform) newWorker() (valueWorker, error) {
	if t.h.destroyed.Load() {
		return nil, ErrDestroyed
	}
	return hmacWorker{t.h.newHasher()}, nil
}

type hmacWorker struct{ s *Hasher }

func (w hmacWorker) put(dst, src []byte) error { w.s.put(dst, src); return nil }
func (w hmacWorker) destroy()                  { w.s.Destroy() }

type sivTransform struct{ r *Reversible }

func (t sivTransform) fn() string       { return "pseudonym.Reversible.Column" }
func (t sivTransform) outLen(n int) int { return t.r.sealedLen(n) }
func (t sivTransform) int64OK() bool    { return true }
func (t sivTransform) newWorker() (valueWorker, error) {
	if t.r.seal == nil {
		return nil, ErrDestroyed
	}
	return sivColWorker{t.r.newWorker()}, nil
}

type sivColWorker struct{ w *sivWorker }

func (w sivColWorker) put(dst, src []byte) error { w.w.put(dst, src); return nil }
func (w sivColWorker) destroy()                  { zero(w.w.buf[:cap(w.w.buf)]) }

type ff1Transform struct {
	f       *FF1
	encrypt bool
}

func (t ff1Transform) fn() string {
	if t.encrypt {
		return "pseudonym.FF1.Column"
	}
	return "pseudonym.FF1.DecryptColumn"
}
func (t ff1Transform) outLen(n int) int { return n }
func (t ff1Transform) int64OK() bool    { return false }
func (t ff1Transform) newWorker() (valueWorker, error) {
	w, err := t.f.newWorker()
	if err != nil {
		return nil, err
	}
	return ff1ColWorker{w, t.encrypt}, nil
}

type ff1ColWorker struct {
	w       *ff1Worker
	encrypt bool
}

func (w ff1ColWorker) put(dst, src []byte) error { return w.w.crypt(dst, src, w.encrypt) }
func (w ff1ColWorker) destroy()                  { zero(w.w.buf[:cap(w.w.buf)]) }

// Column returns a column of pseudonyms for arr, which may be string,
// large_string, binary, large_binary, int64 (pseudonymized as decimal text,
// so 42 and "42" agree) or a dictionary of those. String-like columns keep
// their type; int64 becomes string. A dictionary column keeps its indices
// (shared, not copied) and gets a new dictionary of pseudonyms. Nulls stay
// null. The caller releases the result.
func (h *HMAC) Column(ctx context.Context, arr arrow.Array, opts ColumnOptions) (arrow.Array, error) {
	return transformColumn(ctx, hmacTransform{h}, arr, opts)
}

// Column returns a column of reversible pseudonyms for arr; types and nulls
// as for HMAC.Column.
func (r *Reversible) Column(ctx context.Context, arr arrow.Array, opts ColumnOptions) (arrow.Array, error) {
	return transformColumn(ctx, sivTransform{r}, arr, opts)
}

// Column returns the FF1 encryption of a VIN column: string, large_string,
// binary, large_binary or a dictionary of those. A value outside
// VINAlphabet is an error naming the column, row and character position.
func (f *FF1) Column(ctx context.Context, arr arrow.Array, opts ColumnOptions) (arrow.Array, error) {
	return transformColumn(ctx, ff1Transform{f, true}, arr, opts)
}

// DecryptColumn inverts Column.
func (f *FF1) DecryptColumn(ctx context.Context, arr arrow.Array, opts ColumnOptions) (arrow.Array, error) {
	return transformColumn(ctx, ff1Transform{f, false}, arr, opts)
}

// ColumnError is the error of a column function at a row. Row is the 0-based
// index in the array (-1 when the error is not about one row). It never
// holds the value.
type ColumnError struct {
	Func   string
	Column string
	Row    int
	Err    error
}

func (e *ColumnError) Error() string {
	s := e.Func + ": "
	if e.Column != "" {
		s += "column " + strconv.Quote(e.Column) + ": "
	}
	if e.Row >= 0 {
		s += "row " + strconv.Itoa(e.Row) + ": "
	}
	return s + e.Err.Error()
}

func (e *ColumnError) Unwrap() error { return e.Err }

// ErrUnsupportedType: a column function got a column type it cannot handle.
var ErrUnsupportedType = errors.New("unsupported column type")

func transformColumn(ctx context.Context, t valueTransform, arr arrow.Array, opts ColumnOptions) (arrow.Array, error) {
	cerr := func(row int, err error) error { return &ColumnError{t.fn(), opts.Name, row, err} }
	if opts.Mem == nil {
		return nil, cerr(-1, errors.New("ColumnOptions.Mem is required"))
	}
	if opts.Workers < 0 {
		return nil, cerr(-1, errors.New("ColumnOptions.Workers must be >= 0"))
	}
	if arr == nil {
		return nil, cerr(-1, errors.New("array is nil"))
	}
	if ctx == nil {
		ctx = context.Background()
	}
	switch a := arr.(type) {
	case *array.String:
		return plainColumn(ctx, t, opts, a, a.ValueOffsets(), dataBytes(a.Data()), arrow.BinaryTypes.String, cerr)
	case *array.LargeString:
		return plainColumn(ctx, t, opts, a, a.ValueOffsets(), dataBytes(a.Data()), arrow.BinaryTypes.LargeString, cerr)
	case *array.Binary:
		return plainColumn(ctx, t, opts, a, a.ValueOffsets(), dataBytes(a.Data()), arrow.BinaryTypes.Binary, cerr)
	case *array.LargeBinary:
		return plainColumn(ctx, t, opts, a, a.ValueOffsets(), dataBytes(a.Data()), arrow.BinaryTypes.LargeBinary, cerr)
	case *array.Int64:
		if !t.int64OK() {
			break
		}
		return int64Column(ctx, t, opts, a, cerr)
	case *array.Dictionary:
		return dictColumn(ctx, t, opts, a, cerr)
	}
	return nil, cerr(-1, fmt.Errorf("%w %s (want string, large_string, binary, large_binary%s or a dictionary of those)",
		ErrUnsupportedType, arr.DataType(), map[bool]string{true: ", int64"}[t.int64OK()]))
}

func dataBytes(d arrow.ArrayData) []byte {
	if b := d.Buffers()[2]; b != nil {
		return b.Bytes()
	}
	return nil
}

type offsetT interface{ ~int32 | ~int64 }

func castSlice[T any](b []byte) []T {
	var z T
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/int(unsafe.Sizeof(z)))
}

// validityOf copies arr's validity bitmap into a new buffer from mem (nil
// when arr has no nulls): the input bitmap may start at a bit offset.
func validityOf(mem memory.Allocator, arr arrow.Array) *memory.Buffer {
	if arr.NullN() == 0 {
		return nil
	}
	n := arr.Len()
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(n))))
	src := arr.NullBitmapBytes()
	if src == nil {
		clear(buf.Bytes())
		return buf
	}
	bitutil.CopyBitmap(src, arr.Data().Offset(), n, buf.Bytes(), 0)
	return buf
}

// schedule hands out ranges ("grains") of rows in increasing order to the
// goroutines of one column. Pulling grains instead of splitting the column
// in fixed halves keeps all cores busy when the machine is shared and one
// thread gets less CPU than another.
type schedule struct {
	n, grain, workers int
	next              atomic.Int64
}

func newSchedule(n, workers int) *schedule {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n/minChunk))
	grain := n
	if workers > 1 {
		grain = max(minChunk, (n+8*workers-1)/(8*workers))
	}
	return &schedule{n: n, grain: max(grain, 1), workers: workers}
}

// take returns the next grain, or false when none is left or an error was
// found at a row before it.
func (s *schedule) take(re *rowErr) (lo, hi int, ok bool) {
	g := s.next.Add(1) - 1
	lo = int(g) * s.grain
	if lo >= s.n || g > int64(s.n) || re.before(lo) {
		return 0, 0, false
	}
	return lo, min(lo+s.grain, s.n), true
}

// rowErr records the lowest-row error across workers. Grains are taken in
// increasing order, so every grain before the failing one is finished (or
// fails lower) and the reported row is the first bad row of the column.
type rowErr struct {
	mu     sync.Mutex
	row    int
	err    error
	minRow atomic.Int64 // lowest failing row so far; MaxInt64 while none
}

func newRowErr() *rowErr {
	r := &rowErr{}
	r.minRow.Store(math.MaxInt64)
	return r
}

func (r *rowErr) set(row int, err error) {
	r.mu.Lock()
	if r.err == nil || row < r.row {
		r.row, r.err = row, err
		r.minRow.Store(int64(row))
	}
	r.mu.Unlock()
}

// before reports whether an error was found at a row before row.
func (r *rowErr) before(row int) bool { return r.minRow.Load() < int64(row) }

// memoTable remembers the outputs of repeated inputs. Keys and outputs are
// copied into compact arenas, so a hit touches a small working set (table
// plus arenas, a few MB for 50k values) instead of the first occurrence's
// place in the column-sized input and output buffers.
type memoTable struct {
	m     map[string]string
	arena memoArena
}

func newMemoTable() *memoTable { return &memoTable{m: make(map[string]string)} }

func (t *memoTable) put(v, out []byte) {
	if len(t.m) < maxMemo {
		t.m[t.arena.keep(v)] = t.arena.keep(out)
	}
}

// memoArena hands out strings backed by large chunks. A chunk is never
// appended past its capacity, so strings already handed out never move;
// full chunks stay alive through the strings that view them.
type memoArena struct {
	buf    []byte
	chunks [][]byte
}

func (a *memoArena) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(64<<10, len(b)))
		a.chunks = append(a.chunks, a.buf)
	}
	k := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[k], len(b))
}

// wipe zeroes the arena when a column is done: a table from values to
// pseudonyms should not linger in freed memory. Strings from keep must not
// be used afterwards.
func (a *memoArena) wipe() {
	for _, c := range a.chunks {
		clear(c[:cap(c)])
	}
	a.chunks, a.buf = nil, nil
}

// plainColumn transforms a string-like column in two passes: output offsets
// from the input lengths (the output length depends only on the input
// length), then values in parallel ranges that each memoize repeated inputs,
// so a column with few distinct values costs a hash per distinct value plus
// a map lookup and a copy per row.
func plainColumn[I offsetT](ctx context.Context, t valueTransform, opts ColumnOptions, arr arrow.Array,
	offs []I, data []byte, outType arrow.DataType, cerr func(int, error) error) (arrow.Array, error) {
	if _, ok := any(offs).([]int32); ok {
		return plainColumnOut[I, int32](ctx, t, opts, arr, offs, data, outType, cerr, true)
	}
	return plainColumnOut[I, int64](ctx, t, opts, arr, offs, data, outType, cerr, true)
}

func plainColumnOut[I, O offsetT](ctx context.Context, t valueTransform, opts ColumnOptions, arr arrow.Array,
	offs []I, data []byte, outType arrow.DataType, cerr func(int, error) error, memo bool) (arrow.Array, error) {
	inLen := func(i int) int { return int(offs[i+1] - offs[i]) }
	return fillColumn[O](ctx, t, opts, arr, outType, cerr, inLen, func(w valueWorker) (rowFunc, func()) {
		if !memo {
			return func(i int, dst []byte) error { return w.put(dst, data[offs[i]:offs[i+1]]) }, func() {}
		}
		seen := newMemoTable()
		return func(i int, dst []byte) error {
			v := data[offs[i]:offs[i+1]]
			if p, ok := seen.m[string(v)]; ok {
				copy(dst, p)
				return nil
			}
			if err := w.put(dst, v); err != nil {
				return err
			}
			seen.put(v, dst)
			return nil
		}, seen.arena.wipe
	})
}

// int64Column pseudonymizes int64 values as their decimal text into a
// string column, memoizing repeated values.
func int64Column(ctx context.Context, t valueTransform, opts ColumnOptions, arr *array.Int64,
	cerr func(int, error) error) (arrow.Array, error) {
	vals := arr.Int64Values()
	var tmp [24]byte
	inLen := func(i int) int { return len(strconv.AppendInt(tmp[:0], vals[i], 10)) }
	return fillColumn[int32](ctx, t, opts, arr, arrow.BinaryTypes.String, cerr, inLen, func(w valueWorker) (rowFunc, func()) {
		seen := make(map[int64]string)
		arena := new(memoArena)
		var buf [24]byte
		return func(i int, dst []byte) error {
			if p, ok := seen[vals[i]]; ok {
				copy(dst, p)
				return nil
			}
			if err := w.put(dst, strconv.AppendInt(buf[:0], vals[i], 10)); err != nil {
				return err
			}
			if len(seen) < maxMemo {
				seen[vals[i]] = arena.keep(dst)
			}
			return nil
		}, arena.wipe
	})
}

// rowFunc writes the output of the valid row i into dst, which has the
// length the transform's outLen gave for the row.
type rowFunc func(i int, dst []byte) error

// fillColumn is the engine of the non-dictionary column functions, in two
// passes: output offsets from the input lengths (inLen; the output length
// depends only on the input length), then the values in parallel grains of
// rows. Each goroutine gets its own worker and, from perWorker, the row
// function over it (which may memoize repeated inputs) and what to wipe
// when done. Nulls stay null and are not transformed. On an error the
// output written so far is zeroed and the first failing row is reported.
func fillColumn[O offsetT](ctx context.Context, t valueTransform, opts ColumnOptions, arr arrow.Array,
	outType arrow.DataType, cerr func(int, error) error, inLen func(i int) int,
	perWorker func(w valueWorker) (rowFunc, func())) (arrow.Array, error) {
	n := arr.Len()
	mem := opts.Mem
	valid := validityOf(mem, arr)
	var bits []byte
	if valid != nil {
		bits = valid.Bytes()
	}
	offBuf := memory.NewResizableBuffer(mem)
	offBuf.Resize((n + 1) * int(unsafe.Sizeof(O(0))))
	oo := castSlice[O](offBuf.Bytes())
	release := func() {
		if valid != nil {
			valid.Release()
		}
		offBuf.Release()
	}
	var total int64
	maxTotal := int64(math.MaxInt32)
	if unsafe.Sizeof(O(0)) == 8 {
		maxTotal = math.MaxInt64
	}
	oo[0] = 0
	for i := range n {
		if bits == nil || bitutil.BitIsSet(bits, i) {
			total += int64(t.outLen(inLen(i)))
			if total > maxTotal {
				release()
				return nil, cerr(i, fmt.Errorf("output exceeds the %d-byte limit of %s; split the batch", maxTotal, outType))
			}
		}
		oo[i+1] = O(total)
	}
	dataBuf := memory.NewResizableBuffer(mem)
	dataBuf.Resize(int(total))
	out := dataBuf.Bytes()

	re := newRowErr()
	sc := newSchedule(n, opts.Workers)
	var wg sync.WaitGroup
	for range sc.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := t.newWorker()
			if err != nil {
				re.set(-1, err)
				return
			}
			defer w.destroy()
			row, wipe := perWorker(w)
			defer wipe()
			for {
				lo, hi, ok := sc.take(re)
				if !ok {
					return
				}
				for i := lo; i < hi; i++ {
					if (i-lo)%cancelEvery == 0 {
						if re.before(lo) {
							return
						}
						if err := ctx.Err(); err != nil {
							re.set(i, err)
							return
						}
					}
					if bits != nil && !bitutil.BitIsSet(bits, i) {
						continue
					}
					if err := row(i, out[oo[i]:oo[i+1]]); err != nil {
						re.set(i, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if re.err != nil {
		zero(out)
		dataBuf.Release()
		release()
		return nil, cerr(re.row, re.err)
	}
	res := array.NewData(outType, n, []*memory.Buffer{valid, offBuf, dataBuf}, nil, arr.NullN(), 0)
	release()
	dataBuf.Release()
	defer res.Release()
	return array.MakeFromData(res), nil
}

// dictColumn transforms the dictionary only and keeps the indices: a column
// of 10M rows over 50k distinct values costs 50k transforms.
func dictColumn(ctx context.Context, t valueTransform, opts ColumnOptions, arr *array.Dictionary,
	cerr func(int, error) error) (arrow.Array, error) {
	dt := arr.DataType().(*arrow.DictionaryType)
	dict := arr.Dictionary() // no reference added: not released here
	var (
		nd  arrow.Array
		err error
	)
	// The dictionary's own errors are at dictionary entries; map them to
	// the first row that uses the entry.
	inner := func(entry int, e error) error {
		row := -1
		for i := 0; i < arr.Len(); i++ {
			if arr.IsValid(i) && arr.GetValueIndex(i) == entry {
				row = i
				break
			}
		}
		if row < 0 {
			return cerr(-1, fmt.Errorf("dictionary entry %d (used by no row): %w", entry, e))
		}
		return cerr(row, e)
	}
	switch d := dict.(type) {
	case *array.String:
		nd, err = plainColumnOut[int32, int32](ctx, t, opts, d, d.ValueOffsets(), dataBytes(d.Data()), arrow.BinaryTypes.String, inner, false)
	case *array.LargeString:
		nd, err = plainColumnOut[int64, int64](ctx, t, opts, d, d.ValueOffsets(), dataBytes(d.Data()), arrow.BinaryTypes.LargeString, inner, false)
	case *array.Binary:
		nd, err = plainColumnOut[int32, int32](ctx, t, opts, d, d.ValueOffsets(), dataBytes(d.Data()), arrow.BinaryTypes.Binary, inner, false)
	case *array.LargeBinary:
		nd, err = plainColumnOut[int64, int64](ctx, t, opts, d, d.ValueOffsets(), dataBytes(d.Data()), arrow.BinaryTypes.LargeBinary, inner, false)
	case *array.Int64:
		if !t.int64OK() {
			return nil, cerr(-1, fmt.Errorf("%w %s", ErrUnsupportedType, dt))
		}
		nd, err = int64Column(ctx, t, opts, d, inner)
	default:
		return nil, cerr(-1, fmt.Errorf("%w %s (want a dictionary of string, large_string, binary, large_binary%s)",
			ErrUnsupportedType, dt, map[bool]string{true: " or int64"}[t.int64OK()]))
	}
	if err != nil {
		return nil, err
	}
	defer nd.Release()
	// Pseudonyms do not keep the order of the values, so an ordered
	// dictionary becomes unordered; index and value types are kept (int64
	// values become string).
	ndt := &arrow.DictionaryType{IndexType: dt.IndexType, ValueType: nd.DataType(), Ordered: false}
	return array.NewDictionaryArray(ndt, arr.Indices(), nd), nil
}
