package anonymize

import (
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// countsOf makes OrderCounts from bucket counts (value → rows; -1: null).
func countsOf(t *testing.T, keyed bool, buckets map[int64]int64) *OrderCounts {
	t.Helper()
	name := ""
	if keyed {
		name = "ts"
	}
	c, err := newOrderCounts(orderSchema, name)
	if err != nil {
		t.Fatal(err)
	}
	for v, n := range buckets {
		c.AddBucket(OrderBucket{Null: v < 0, Time: v, Rows: n})
	}
	return c
}

func TestPlanOrder(t *testing.T) {
	type rg struct {
		null  bool
		lo    int64
		files int
	}
	for _, tc := range []struct {
		name     string
		keyed    bool
		buckets  map[int64]int64
		budget   int64
		maxFiles int
		want     []rg
	}{
		{"no time column: one random range", false, map[int64]int64{-1: 3500}, 1000, 512, []rg{{null: true, files: 4}}},
		{"no rows", true, nil, 1000, 512, []rg{{null: true, files: 1}}},
		{"small buckets share a range", true, map[int64]int64{10: 300, 20: 300, 30: 300, 40: 300}, 1000, 512,
			[]rg{{lo: 10, files: 1}, {lo: 40, files: 1}}},
		{"a large bucket alone, split in a power of two", true, map[int64]int64{10: 300, 20: 2500, 30: 300}, 1000, 512,
			[]rg{{lo: 10, files: 1}, {lo: 20, files: 4}, {lo: 30, files: 1}}},
		{"exactly the budget is one file", true, map[int64]int64{10: 1000, 20: 2000}, 1000, 512,
			[]rg{{lo: 10, files: 1}, {lo: 20, files: 2}}},
		{"nulls first", true, map[int64]int64{-1: 10, 5: 10}, 1000, 512, []rg{{null: true, files: 1}, {lo: 5, files: 1}}},
		{"too many files: the budget doubles", true, map[int64]int64{10: 700, 20: 700, 30: 700, 40: 700}, 500, 3,
			[]rg{{lo: 10, files: 1}, {lo: 30, files: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := planOrder(countsOf(t, tc.keyed, tc.buckets), tc.budget, tc.maxFiles)
			var got []rg
			files := 0
			for _, r := range pl.ranges {
				got = append(got, rg{r.null, r.lo, r.files})
				if r.first != files {
					t.Errorf("range %+v starts at file %d, want %d", r, r.first, files)
				}
				files += r.files
			}
			if !slices.Equal(got, tc.want) || files != pl.files {
				t.Errorf("ranges %+v (%d files), want %+v", got, pl.files, tc.want)
			}
		})
	}
}

func TestOrderPlanRangeOf(t *testing.T) {
	pl := planOrder(countsOf(t, true, map[int64]int64{-1: 5, 10: 800, 20: 800, 30: 800}), 1000, 512)
	for _, tc := range []struct {
		null bool
		v    int64
		want int
	}{
		{true, 0, 0}, {false, 10, 1}, {false, 15, 1}, {false, 20, 2}, {false, 30, 3}, {false, 99, 3},
		{false, 5, 1}, // below every bucket counted: the first range of values
	} {
		if got := pl.rangeOf(tc.null, tc.v); got != tc.want {
			t.Errorf("rangeOf(%v, %d) = %d, want %d", tc.null, tc.v, got, tc.want)
		}
	}
}

// TestOrderCounts: counted from batches, listed in bucket order, merged
// across workers; past maxOrderBuckets one bucket holds every row.
func TestOrderCounts(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := orderBatches(t, mem, []orderRow{{bucket: 20}, {bucket: 20}, {bucket: -1}, {bucket: 10}, {bucket: 20}}, 2)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	a, _ := newOrderCounts(orderSchema, "ts")
	for _, r := range recs {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	want := []OrderBucket{{Null: true, Rows: 1}, {Time: 10, Rows: 1}, {Time: 20, Rows: 3}}
	if got := a.Buckets(); !slices.Equal(got, want) {
		t.Errorf("Buckets() = %+v, want %+v", got, want)
	}
	b, _ := newOrderCounts(orderSchema, "ts")
	for _, x := range a.Buckets() {
		b.AddBucket(x)
		b.AddBucket(x)
	}
	if got := b.Buckets(); got[2].Rows != 6 || b.rows != 10 {
		t.Errorf("merged twice: %+v, %d rows", got, b.rows)
	}
	for v := range int64(maxOrderBuckets + 1) {
		b.AddBucket(OrderBucket{Time: 100 + v, Rows: 1})
	}
	if b.keyed() || !slices.Equal(b.Buckets(), []OrderBucket{{Null: true, Rows: b.rows}}) {
		t.Errorf("past %d buckets: keyed %v, %+v", maxOrderBuckets, b.keyed(), b.Buckets()[:1])
	}
	none, _ := newOrderCounts(orderSchema, "")
	none.Add(recs[0])
	if none.keyed() || !slices.Equal(none.Buckets(), []OrderBucket{{Null: true, Rows: 2}}) {
		t.Errorf("without a time column: %+v", none.Buckets())
	}
	if _, err := newOrderCounts(orderSchema, "raw"); err == nil {
		t.Error("an int64 column is no time bucket")
	}
}
