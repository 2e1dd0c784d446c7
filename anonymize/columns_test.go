package anonymize

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
)

func TestMapValuesInt64(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{1961, 1964, 1970, 1961}, nil)
	b.AppendNull()
	col := b.NewArray()
	b.Release()
	defer col.Release()
	h, err := kanon.NewIntervalHierarchy(kanon.IntervalHierarchy{Origin: 1900, Width: 5, FanOut: 2, Height: 2, Min: 1900, Max: 2000})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mapValues(mem, "year", col, 0, generalizeFn(h, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	want := []string{"1960-1964", "1960-1964", "1970-1974", "1960-1964"}
	for i, w := range want {
		if got, _ := valueText(out, i); got != w {
			t.Errorf("row %d: %q, want %q", i, got, w)
		}
	}
	if !out.IsNull(4) {
		t.Error("null not kept")
	}
	if d := out.(*array.Dictionary).Dictionary(); d.Len() != 2 {
		t.Errorf("dictionary has %d values, want 2 distinct", d.Len())
	}
	// A value outside the hierarchy names the column and row (the second
	// of a batch after 100 rows: data row 102).
	b2 := array.NewInt64Builder(mem)
	b2.AppendValues([]int64{1961, 2500}, nil)
	bad := b2.NewArray()
	b2.Release()
	defer bad.Release()
	_, err = mapValues(mem, "year", bad, 100, generalizeFn(h, 1))
	if err == nil || !strings.Contains(err.Error(), `row 102, column "year"`) || !errors.Is(err, kanon.ErrValueNotInHierarchy) {
		t.Errorf("error %v", err)
	}
}

// Time coarsening floors to the bucket; a value whose bucket starts before
// the earliest int64 time is an error naming column and row, not a wrap to
// the far future (issue #13).
func TestCoarsenTimeRange(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tsType := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	op := coarsenTimeOp{name: "ts", bucket: time.Hour}
	for _, tc := range []struct {
		name string
		in   []arrow.Timestamp
		want []arrow.Timestamp
		err  string
	}{
		{"floors, negatives too", []arrow.Timestamp{3_600_001, -1, 0}, []arrow.Timestamp{3_600_000, -3_600_000, 0}, ""},
		{"largest", []arrow.Timestamp{math.MaxInt64}, []arrow.Timestamp{math.MaxInt64 - math.MaxInt64%3_600_000}, ""},
		{"first full bucket", []arrow.Timestamp{math.MinInt64 - math.MinInt64%3_600_000}, []arrow.Timestamp{math.MinInt64 - math.MinInt64%3_600_000}, ""},
		{"smallest", []arrow.Timestamp{0, math.MinInt64}, nil, `row 12, column "ts": timestamp -9223372036854775808`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := array.NewTimestampBuilder(mem, tsType)
			b.AppendValues(tc.in, nil)
			col := b.NewArray()
			b.Release()
			defer col.Release()
			out, err := op.apply(context.Background(), mem, col, nil, 10)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			got := out.(*array.Timestamp).TimestampValues()
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("row %d: %d, want %d", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// Grid coarsening takes coordinates only: latitude 999, 1e308 (which
// snapped to +Inf), NaN and ±Inf are errors naming column and row.
func TestCoarsenGridRange(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	op := coarsenGridOp{name: "lat", degrees: 0.01}
	good := []float64{48.137, -180, 180, 0, -0.004}
	b := array.NewFloat64Builder(mem)
	b.AppendValues(good, nil)
	col := b.NewArray()
	b.Release()
	out, err := op.apply(context.Background(), mem, col, nil, 0)
	col.Release()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out.(*array.Float64).Float64Values() {
		if math.Abs(v-good[i]) > 0.01 || math.IsInf(v, 0) {
			t.Errorf("row %d: %v → %v", i, good[i], v)
		}
	}
	out.Release()
	for _, bad := range []float64{999, 1e308, -180.5, math.NaN(), math.Inf(1)} {
		b := array.NewFloat64Builder(mem)
		b.AppendValues([]float64{48.1, bad}, nil)
		col := b.NewArray()
		b.Release()
		_, err := op.apply(context.Background(), mem, col, nil, 41)
		col.Release()
		if err == nil || !strings.Contains(err.Error(), `row 43, column "lat": `) {
			t.Errorf("%v: err %v", bad, err)
		}
	}
}
