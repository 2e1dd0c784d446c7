package anonymize

import (
	"cmp"
	"context"
	"fmt"
	"math/bits"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// maxOrderBuckets bounds the distinct time buckets OrderCounts keeps (a
// map entry each). Past it the time column is no bucket at all (a
// timestamp coarsened to seconds over years, say) and the output order
// falls back to a keyed shuffle of all rows.
const maxOrderBuckets = 1 << 18

// OrderCounts counts rows per published time bucket, so that the output
// order step ([OutputOrder]) can cut the rows into partitions that each fit
// its memory budget before it sees them. The counts only size partitions:
// an upper bound (the rows before suppression, as Run counts them in pass
// 1) is as good as the exact count, and the order of the rows does not
// depend on them (output_order.go).
type OrderCounts struct {
	col     int   // the time column, -1 without one
	rows    int64 // every row counted
	nulls   int64 // rows with a null time
	buckets map[int64]int64
	over    bool // more than maxOrderBuckets distinct buckets: counts dropped
}

// OrderBucket is the row count of one published time bucket (Time, in the
// time column's unit) or, with Null, of the rows that have no bucket.
type OrderBucket struct {
	Null bool
	Time int64
	Rows int64
}

// newOrderCounts counts rec batches of schema by their column timeName
// (a timestamp); "" counts rows only.
func newOrderCounts(schema *arrow.Schema, timeName string) (*OrderCounts, error) {
	c := &OrderCounts{col: -1, buckets: map[int64]int64{}}
	if timeName == "" {
		return c, nil
	}
	idx := schema.FieldIndices(timeName)
	if len(idx) == 0 {
		return nil, fmt.Errorf("output order: time column %q is not in the schema", timeName)
	}
	if t := schema.Field(idx[0]).Type; t.ID() != arrow.TIMESTAMP {
		return nil, fmt.Errorf("output order: time column %q has type %s; want a timestamp", timeName, t)
	}
	c.col = idx[0]
	return c, nil
}

// Add counts the rows of rec, a batch of the schema the counts were made
// for (Steps.NewOrderCounts: the written schema).
func (c *OrderCounts) Add(rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	c.rows += int64(n)
	if c.col < 0 || c.over {
		return nil
	}
	ts, ok := rec.Column(c.col).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("output order: time column %q is %s, not a timestamp", rec.ColumnName(c.col), rec.Column(c.col).DataType())
	}
	vals := ts.TimestampValues()
	nulls := ts.NullN() > 0
	// Rows come in runs of one bucket (trips, time-ordered input): one map
	// update per run.
	for i := 0; i < n; {
		if nulls && ts.IsNull(i) {
			c.nulls++
			i++
			continue
		}
		v, j := vals[i], i+1
		for j < n && vals[j] == v && (!nulls || ts.IsValid(j)) {
			j++
		}
		c.add(int64(v), int64(j-i))
		i = j
	}
	return nil
}

func (c *OrderCounts) add(v, n int64) {
	if c.over {
		return
	}
	c.buckets[v] += n
	if len(c.buckets) > maxOrderBuckets {
		c.over, c.buckets = true, nil
	}
}

// Buckets lists the counts in bucket order (the rows without a bucket
// first), for engines that count on several workers (merge them with
// AddBucket). Without a time column, or past maxOrderBuckets distinct
// buckets, it is one count of rows without a bucket.
func (c *OrderCounts) Buckets() []OrderBucket {
	if c.col < 0 || c.over {
		return []OrderBucket{{Null: true, Rows: c.rows}}
	}
	vals := make([]OrderBucket, 0, len(c.buckets))
	for v, n := range c.buckets {
		vals = append(vals, OrderBucket{Time: v, Rows: n})
	}
	slices.SortFunc(vals, func(a, b OrderBucket) int { return cmp.Compare(a.Time, b.Time) })
	if c.nulls > 0 {
		return append([]OrderBucket{{Null: true, Rows: c.nulls}}, vals...)
	}
	return vals
}

// keyed reports whether the rows are ordered by their time bucket: there
// is a time column, and it has at most maxOrderBuckets distinct values.
func (c *OrderCounts) keyed() bool { return c.col >= 0 && !c.over }

// AddBucket adds the count of one bucket (from another worker's Buckets).
func (c *OrderCounts) AddBucket(b OrderBucket) {
	c.rows += b.Rows
	switch {
	case c.col < 0 || c.over:
	case b.Null:
		c.nulls += b.Rows
	default:
		c.add(b.Time, b.Rows)
	}
}

// orderRange is a range of consecutive time buckets whose rows go to the
// same partition files: one file for ranges that fit the budget together,
// 2^k files (drawn at random per row) for a single bucket that does not.
type orderRange struct {
	null  bool  // the rows without a bucket (first); the only range without a time column
	lo    int64 // first bucket of the range (not null)
	files int   // partition files (a power of two; > 1 only for a single bucket)
	first int   // index of its first file
}

// orderPlan maps rows to partition files (route) and says how the files
// are read back (groups).
type orderPlan struct {
	ranges []orderRange // the null range first, then by lo
	files  int
}

// planOrder cuts the counted buckets into ranges of at most budget rows
// (greedily, in bucket order); a bucket with more rows gets a range of its
// own, split at random into the fewest power-of-two files of at most budget
// rows each. It doubles the budget until at most maxFiles files are
// needed, so that open files stay bounded on huge inputs (the price is
// memory per partition).
func planOrder(c *OrderCounts, budget int64, maxFiles int) orderPlan {
	for {
		pl := planOrderOnce(c, budget)
		if pl.files <= maxFiles {
			return pl
		}
		budget *= 2
	}
}

func planOrderOnce(c *OrderCounts, budget int64) orderPlan {
	var pl orderPlan
	single := func(r orderRange, rows int64) {
		r.files = splitFiles(rows, budget)
		r.first = pl.files
		pl.files += r.files
		pl.ranges = append(pl.ranges, r)
	}
	bs := c.Buckets()
	if len(bs) > 0 && bs[0].Null {
		single(orderRange{null: true}, bs[0].Rows)
		bs = bs[1:]
	}
	open := false // the last range takes more buckets
	var openRows int64
	for _, b := range bs {
		if b.Rows > budget {
			open = false
			single(orderRange{lo: b.Time}, b.Rows)
			continue
		}
		if open && openRows+b.Rows <= budget {
			openRows += b.Rows
			continue
		}
		single(orderRange{lo: b.Time}, b.Rows)
		open, openRows = true, b.Rows
	}
	if len(pl.ranges) == 0 {
		single(orderRange{null: true}, 0)
	}
	return pl
}

// splitFiles is the number of files a single bucket of rows is split
// into: the smallest power of two with at most budget rows per file.
func splitFiles(rows, budget int64) int {
	if rows <= budget {
		return 1
	}
	return 1 << bits.Len64(uint64((rows-1)/budget))
}

// rangeOf is the range of a row's bucket. A bucket below every range's
// first (which the counts did not see) goes to the first range of values.
func (pl *orderPlan) rangeOf(null bool, v int64) int {
	start := 0
	if len(pl.ranges) > 0 && pl.ranges[0].null {
		if null || len(pl.ranges) == 1 {
			return 0
		}
		start = 1
	}
	rs := pl.ranges[start:]
	// The last range whose lo <= v.
	i, _ := slices.BinarySearchFunc(rs, v, func(r orderRange, v int64) int {
		if r.lo <= v {
			return -1
		}
		return 1
	})
	return start + max(i-1, 0)
}

// orderCount is the measure that counts pass 1's rows per published time
// bucket for the output order (pass 1's rows are a superset of the written
// ones: an upper bound per bucket, which is all the partitions need).
type orderCount struct {
	noHooks
	c *OrderCounts
}

func (o *orderCount) pass1(_ context.Context, rec arrow.RecordBatch, _ int64) error {
	return o.c.Add(rec)
}
