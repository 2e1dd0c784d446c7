package pseudonym

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// vinOf returns a VIN-shaped test value for i.
func vinOf(i int) string { return fmt.Sprintf("WVWZZZ1JZXW%06d", i) }

// buildColumn makes an array of the given kind from vals (nil = null).
func buildColumn(t testing.TB, mem memory.Allocator, kind string, vals []*string) arrow.Array {
	t.Helper()
	var b array.Builder
	switch kind {
	case "string":
		b = array.NewStringBuilder(mem)
	case "large_string":
		b = array.NewLargeStringBuilder(mem)
	case "binary":
		b = array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	case "large_binary":
		b = array.NewBinaryBuilder(mem, arrow.BinaryTypes.LargeBinary)
	case "int64":
		b = array.NewInt64Builder(mem)
	case "dict32":
		b = array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String})
	case "dict8":
		b = array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String})
	case "dict_int64":
		b = array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.PrimitiveTypes.Int64})
	default:
		t.Fatalf("unknown kind %s", kind)
	}
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
			continue
		}
		switch bb := b.(type) {
		case *array.StringBuilder:
			bb.Append(*v)
		case *array.LargeStringBuilder:
			bb.Append(*v)
		case *array.BinaryBuilder:
			bb.AppendString(*v)
		case *array.Int64Builder:
			n, _ := strconv.ParseInt(*v, 10, 64)
			bb.Append(n)
		case *array.BinaryDictionaryBuilder:
			if err := bb.AppendString(*v); err != nil {
				t.Fatal(err)
			}
		case *array.Int64DictionaryBuilder:
			n, _ := strconv.ParseInt(*v, 10, 64)
			if err := bb.Append(n); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.NewArray()
}

// valueAt reads row i of a string-like or dictionary result as a string.
func valueAt(a arrow.Array, i int) string {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.LargeBinary:
		return string(a.Value(i))
	case *array.Dictionary:
		return valueAt(a.Dictionary(), a.GetValueIndex(i))
	}
	panic(fmt.Sprintf("valueAt: %T", a))
}

func ptrs(vals ...string) []*string {
	out := make([]*string, len(vals))
	for i := range vals {
		if vals[i] != "<null>" {
			out[i] = &vals[i]
		}
	}
	return out
}

func TestColumnTypesAndNulls(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	h, _ := NewHMAC(kr, HMACOptions{Domain: "pool/vin"})
	r, _ := NewReversible(kr, ReversibleOptions{Domain: "pool/vin"})
	f, _ := NewFF1(kr, FF1Options{Domain: "pool/vin"})
	vins := ptrs(vinOf(1), "<null>", vinOf(2), vinOf(1), "<null>", vinOf(3), vinOf(2))
	ints := ptrs("42", "<null>", "-7", "42", "0")
	ctx := context.Background()
	type method struct {
		name string
		col  func(arrow.Array, ColumnOptions) (arrow.Array, error)
		want func(string) string
		ints bool
	}
	methods := []method{
		{"hmac", func(a arrow.Array, o ColumnOptions) (arrow.Array, error) { return h.Column(ctx, a, o) },
			func(v string) string { return h.Pseudonym([]byte(v)) }, true},
		{"siv", func(a arrow.Array, o ColumnOptions) (arrow.Array, error) { return r.Column(ctx, a, o) },
			func(v string) string { s, _ := r.Seal([]byte(v)); return s }, true},
		{"ff1", func(a arrow.Array, o ColumnOptions) (arrow.Array, error) { return f.Column(ctx, a, o) },
			func(v string) string { s, _ := f.Encrypt(v); return s }, false},
	}
	for _, m := range methods {
		for _, kind := range []string{"string", "large_string", "binary", "large_binary", "int64", "dict32", "dict8", "dict_int64"} {
			t.Run(m.name+"/"+kind, func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				vals := vins
				isInt := kind == "int64" || kind == "dict_int64"
				if isInt {
					vals = ints
				}
				in := buildColumn(t, mem, kind, vals)
				defer in.Release()
				out, err := m.col(in, ColumnOptions{Mem: mem, Name: "vin"})
				if isInt && !m.ints {
					if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), `column "vin"`) {
						t.Fatalf("FF1 over %s: %v, want ErrUnsupportedType naming the column", kind, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer out.Release()
				if out.Len() != in.Len() || out.NullN() != in.NullN() {
					t.Fatalf("len %d nulls %d, want %d %d", out.Len(), out.NullN(), in.Len(), in.NullN())
				}
				for i, v := range vals {
					if v == nil {
						if !out.IsNull(i) {
							t.Errorf("row %d: null became %q", i, valueAt(out, i))
						}
						continue
					}
					if got, want := valueAt(out, i), m.want(*v); got != want {
						t.Errorf("row %d: %q, want %q", i, got, want)
					}
				}
				switch {
				case strings.HasPrefix(kind, "dict"):
					dt := out.DataType().(*arrow.DictionaryType)
					it := in.DataType().(*arrow.DictionaryType)
					if !arrow.TypeEqual(dt.IndexType, it.IndexType) {
						t.Errorf("index type %s, want %s", dt.IndexType, it.IndexType)
					}
					if !isInt && !arrow.TypeEqual(dt.ValueType, it.ValueType) {
						t.Errorf("value type %s, want %s", dt.ValueType, it.ValueType)
					}
					// Indices are shared, not copied.
					if out.Data().Buffers()[1] != in.Data().Buffers()[1] {
						t.Error("dictionary indices were copied")
					}
				case kind == "int64":
					if !arrow.TypeEqual(out.DataType(), arrow.BinaryTypes.String) {
						t.Errorf("int64 column became %s, want string", out.DataType())
					}
				default:
					if !arrow.TypeEqual(out.DataType(), in.DataType()) {
						t.Errorf("type %s, want %s", out.DataType(), in.DataType())
					}
				}
			})
		}
	}
	// Reveal the reversible column row by row.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	in := buildColumn(t, mem, "string", vins)
	defer in.Release()
	out, err := r.Column(ctx, in, ColumnOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	for i, v := range vins {
		if v != nil {
			if got, err := r.Reveal(valueAt(out, i)); err != nil || string(got) != *v {
				t.Errorf("row %d reveals %q, %v", i, got, err)
			}
		}
	}
}

// Sliced arrays (non-zero offset) and the parallel path give the same
// result as one worker on an unsliced copy.
func TestColumnParallelAndSliced(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	h, _ := NewHMAC(kr, HMACOptions{Domain: "pool/vin"})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n = 100_000
	vals := make([]*string, n)
	for i := range vals {
		if i%97 != 5 {
			s := vinOf(i % 3001)
			vals[i] = &s
		}
	}
	in := buildColumn(t, mem, "string", vals)
	defer in.Release()
	ctx := context.Background()
	par, err := h.Column(ctx, in, ColumnOptions{Mem: mem, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer par.Release()
	seq, err := h.Column(ctx, in, ColumnOptions{Mem: mem, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Release()
	if !array.Equal(par, seq) {
		t.Fatal("parallel and sequential results differ")
	}
	for _, i := range []int{0, 5, 102, n - 1} {
		if vals[i] == nil {
			if !par.IsNull(i) {
				t.Errorf("row %d not null", i)
			}
		} else if valueAt(par, i) != h.Pseudonym([]byte(*vals[i])) {
			t.Errorf("row %d wrong", i)
		}
	}
	sl := array.NewSlice(in, 33, 70_033)
	defer sl.Release()
	out, err := h.Column(ctx, sl, ColumnOptions{Mem: mem, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	want := array.NewSlice(seq, 33, 70_033)
	defer want.Release()
	if !array.Equal(out, want) {
		t.Fatal("sliced input gives a different result")
	}
}

func TestColumnErrors(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	secrets := secretsOf(kr)
	h, _ := NewHMAC(kr, HMACOptions{Domain: "pool/vin"})
	f, _ := NewFF1(kr, FF1Options{Domain: "pool/vin"})
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	bad := "WVWZZZ1JZXW0000O1" // letter O is not in the VIN alphabet
	vals := ptrs(vinOf(1), vinOf(2), "<null>", vinOf(3), vinOf(4), bad, vinOf(5))
	for _, kind := range []string{"string", "dict32"} {
		in := buildColumn(t, mem, kind, vals)
		out, err := f.Column(ctx, in, ColumnOptions{Mem: mem, Name: "vin"})
		in.Release()
		if out != nil {
			out.Release()
		}
		var ce *ColumnError
		if !errors.As(err, &ce) || ce.Row != 5 || !errors.Is(err, ErrFF1Alphabet) {
			t.Fatalf("%s: %v, want ColumnError at row 5 wrapping ErrFF1Alphabet", kind, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, `column "vin": row 5: position 16`) || strings.Contains(msg, bad) {
			t.Errorf("%s: message %q should name column, row and position but not the VIN", kind, msg)
		}
		assertNoSecrets(t, "error", msg, secrets)
	}
	// Parallel path: the lowest failing row is reported.
	many := make([]*string, 80_000)
	for i := range many {
		s := vinOf(i)
		if i == 41_000 || i == 70_000 {
			s = "bad"
		}
		many[i] = &s
	}
	in := buildColumn(t, mem, "string", many)
	_, err := f.Column(ctx, in, ColumnOptions{Mem: mem, Workers: 4})
	var ce *ColumnError
	if !errors.As(err, &ce) || ce.Row != 41_000 {
		t.Errorf("parallel error: %v, want row 41000", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Column(cctx, in, ColumnOptions{Mem: mem}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	in.Release()

	fb := array.NewFloat64Builder(mem)
	fb.Append(1.5)
	fa := fb.NewArray()
	fb.Release()
	defer fa.Release()
	_, err = h.Column(ctx, fa, ColumnOptions{Mem: mem, Name: "speed_kmh"})
	if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), "float64") || !strings.Contains(err.Error(), `column "speed_kmh"`) {
		t.Errorf("float64 column: %v", err)
	}
	if _, err := h.Column(ctx, fa, ColumnOptions{}); err == nil || !strings.Contains(err.Error(), "Mem is required") {
		t.Errorf("missing Mem: %v", err)
	}
	h.Destroy()
	sa := buildColumn(t, mem, "string", ptrs("x"))
	defer sa.Release()
	if _, err := h.Column(ctx, sa, ColumnOptions{Mem: mem}); !errors.Is(err, ErrDestroyed) {
		t.Errorf("destroyed HMAC: %v", err)
	}
}

func TestEmptyColumn(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	h, _ := NewHMAC(kr, HMACOptions{Domain: "d"})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, kind := range []string{"string", "int64", "dict32"} {
		in := buildColumn(t, mem, kind, nil)
		out, err := h.Column(context.Background(), in, ColumnOptions{Mem: mem})
		if err != nil || out.Len() != 0 {
			t.Errorf("%s: %v", kind, err)
		}
		out.Release()
		in.Release()
	}
}

func TestDateShiftColumn(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	d, _ := NewDateShift(kr, DateShiftOptions{Domain: "pool/ts", MaxDays: 14})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	subj := []string{"A", "B", "A", "C", "B", "A", "C"}
	tsType := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	tb := array.NewTimestampBuilder(mem, tsType)
	for i := range subj {
		if i == 3 {
			tb.AppendNull()
			continue
		}
		tb.Append(arrow.Timestamp(base.Add(time.Duration(i) * 37 * time.Minute).UnixMilli()))
	}
	ts := tb.NewArray().(*array.Timestamp)
	tb.Release()
	defer ts.Release()
	for _, kind := range []string{"string", "dict32"} {
		sa := buildColumn(t, mem, kind, ptrs(subj...))
		out, err := d.Column(ctx, ts, sa, ColumnOptions{Mem: mem, Name: "ts"})
		sa.Release()
		if err != nil {
			t.Fatal(err)
		}
		o := out.(*array.Timestamp)
		if !arrow.TypeEqual(o.DataType(), tsType) || !o.IsNull(3) || o.NullN() != 1 {
			t.Errorf("%s: type %s, nulls %d", kind, o.DataType(), o.NullN())
		}
		for i := range subj {
			if i == 3 {
				continue
			}
			want := int64(ts.Value(i)) + d.Offset([]byte(subj[i])).Milliseconds()
			if int64(o.Value(i)) != want {
				t.Errorf("%s row %d: %d, want %d", kind, i, o.Value(i), want)
			}
		}
		// Intervals within subject A (rows 0, 2, 5) are kept.
		if o.Value(5)-o.Value(0) != ts.Value(5)-ts.Value(0) || o.Value(2)-o.Value(0) != ts.Value(2)-ts.Value(0) {
			t.Errorf("%s: intervals within a subject changed", kind)
		}
		out.Release()
	}
	// A valid timestamp with a null subject is an error naming the row.
	sa := buildColumn(t, mem, "string", ptrs("A", "B", "<null>", "C", "B", "A", "C"))
	defer sa.Release()
	_, err := d.Column(ctx, ts, sa, ColumnOptions{Mem: mem, Name: "ts"})
	var ce *ColumnError
	if !errors.As(err, &ce) || ce.Row != 2 {
		t.Errorf("null subject: %v, want row 2", err)
	}
	short := array.NewSlice(sa, 0, 3)
	defer short.Release()
	if _, err := d.Column(ctx, ts, short, ColumnOptions{Mem: mem}); err == nil {
		t.Error("length mismatch accepted")
	}
	if _, err := d.Column(ctx, sa, sa, ColumnOptions{Mem: mem}); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("string as timestamps: %v", err)
	}
	// Overflow near the int64 limit.
	ob := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond})
	ob.Append(arrow.Timestamp(1<<63 - 1))
	ob.Append(arrow.Timestamp(-1 << 63))
	oa := ob.NewArray()
	ob.Release()
	defer oa.Release()
	two := buildColumn(t, mem, "string", ptrs("A", "A"))
	defer two.Release()
	if _, err := d.Column(ctx, oa, two, ColumnOptions{Mem: mem}); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("overflow: %v", err)
	}
}
