package linkage

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// keysOf keys every value of a column.
func keysOf(t *testing.T, k *Keyer, a arrow.Array) []uint64 {
	t.Helper()
	dst := make([]uint64, a.Len())
	if err := k.Column("c", a, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestKeyerByValue: the same value keys alike in every physical form a
// published file may come back in, and different values differ.
func TestKeyerByValue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	k := NewKeyer(7)

	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"a", "b", ""}, []bool{true, true, false})
	plain := sb.NewArray()
	sb.Release()
	defer plain.Release()
	db := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	db.AppendString("a")
	db.AppendString("b")
	db.AppendNull()
	dict := db.NewArray()
	db.Release()
	defer dict.Release()

	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{50, -3, 0}, nil)
	ints := ib.NewArray()
	ib.Release()
	defer ints.Release()
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{50, -3, -0.0}, nil)
	floats := fb.NewArray()
	fb.Release()
	defer floats.Release()

	ms := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond})
	ms.AppendValues([]arrow.Timestamp{1_000, 3_600_000}, nil)
	tsMS := ms.NewArray()
	ms.Release()
	defer tsMS.Release()
	us := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	us.AppendValues([]arrow.Timestamp{1_000_000, 3_600_000_000}, nil)
	tsUS := us.NewArray()
	us.Release()
	defer tsUS.Release()

	bb := array.NewBooleanBuilder(mem)
	bb.AppendValues([]bool{true, false}, nil)
	bools := bb.NewArray()
	bb.Release()
	defer bools.Release()
	i8 := array.NewInt8Builder(mem)
	i8.AppendValues([]int8{1, 0}, nil)
	flags := i8.NewArray()
	i8.Release()
	defer flags.Release()

	for _, tc := range []struct {
		name string
		a, b arrow.Array
	}{
		{"string and dictionary", plain, dict},
		{"int64 and float64", ints, floats},
		{"timestamp ms and us", tsMS, tsUS},
		{"bool and int8 flag", bools, flags},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := keysOf(t, k, tc.a), keysOf(t, k, tc.b)
			for i := range x {
				if x[i] != y[i] {
					t.Errorf("row %d: keys differ", i)
				}
				if x[i] == 0 {
					t.Errorf("row %d: key 0", i)
				}
			}
			if x[0] == x[1] {
				t.Error("two values share a key")
			}
		})
	}
	if keysOf(t, k, plain)[2] != k.Null() || keysOf(t, k, dict)[2] != k.Null() {
		t.Error("a null does not key as Null")
	}
	if keysOf(t, NewKeyer(8), plain)[0] == keysOf(t, k, plain)[0] {
		t.Error("the seed does not change the keys")
	}
}

// TestPrfIntoAllocates nothing: the keyed priority of a subject or trace is
// drawn per row.
func TestPrfIntoAllocatesNothing(t *testing.T) {
	k, err := NewKey(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	var buf prfBuf
	x := uint64(1)
	if n := testing.AllocsPerRun(100, func() { x = k.prfInto(&buf, domSubject, x) }); n != 0 {
		t.Errorf("prfInto: %v allocations per call", n)
	}
	if k.prf(domSubject, 42) != k.prfInto(&buf, domSubject, 42) {
		t.Error("prf and prfInto differ")
	}
}

// TestSortPairs: a sorted run followed by any pairs sorts like a full
// sort, whatever the split.
func TestSortPairs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 7, 100, 1000} {
		for _, sorted := range []int{0, 1, n / 3, n / 2, n - 1, n} {
			if sorted < 0 || sorted > n {
				continue
			}
			ps := make([]pair, n)
			for i := range ps {
				ps[i] = pair{rnd.Uint64N(20), rnd.Uint64N(5)}
			}
			slices.SortFunc(ps[:sorted], cmpPair)
			want := slices.Clone(ps)
			slices.SortFunc(want, cmpPair)
			if got := sortPairs(ps, sorted); !slices.Equal(got, want) {
				t.Fatalf("n %d, sorted %d: %v, want %v", n, sorted, got, want)
			}
		}
	}
}
