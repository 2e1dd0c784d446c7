package anonymize

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// orderRow is one row of the synthetic input of the OutputOrder tests:
// its published bucket and cell, and what the order must not reveal (the
// reading's raw time, its vehicle, its input position).
type orderRow struct {
	bucket int64 // µs; -1: null
	cell   string
	note   string
	raw    int64 // µs
	veh    int64
}

var orderSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "cell", Type: stringDict, Nullable: true},
	{Name: "note", Type: stringDict},
	{Name: "level", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.PrimitiveTypes.Int64}},
	{Name: "raw", Type: arrow.PrimitiveTypes.Int64},
	{Name: "veh", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// orderFleet makes readings of vehicles in trip order, as pass 2 hands
// them on: each vehicle's trip of readings every 30 s is contiguous, trips
// start in time order. Bucket sizes differ a lot, so that a small budget
// makes ranges of several buckets and splits the largest.
func orderFleet(rng *rand.Rand, nulls bool) []orderRow {
	const hour = int64(3600e6)
	var rows []orderRow
	cells := []string{"8a1", "8a2", "8a3", "8b1", "8b2"}
	for trip := range 400 {
		veh := int64(rng.IntN(60))
		start := int64(trip) * 25e6 * int64(1+trip/300*10) // the last trips pile into few hours
		n := 10 + rng.IntN(40)
		for k := range n {
			raw := start + int64(k)*30e6 + rng.Int64N(1e6)
			r := orderRow{bucket: raw / hour * hour, cell: cells[(int(veh)+k/10)%len(cells)], note: fmt.Sprintf("n%d", veh%7), raw: raw, veh: veh}
			if nulls && trip%50 == 0 {
				r.bucket = -1
			}
			if nulls && k == 3 {
				r.cell = ""
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// orderBatches builds batches of rows; every batch's note dictionary holds
// values no row uses (as a filtered batch's dictionary does), which must
// not reach the output.
func orderBatches(t *testing.T, mem memory.Allocator, rows []orderRow, size int) []arrow.RecordBatch {
	t.Helper()
	var out []arrow.RecordBatch
	for lo := 0; lo < len(rows); lo += size {
		b := array.NewRecordBuilder(mem, orderSchema)
		note := b.Field(2).(*array.BinaryDictionaryBuilder)
		batch := slices.Clone(rows[lo:min(lo+size, len(rows))])
		// A row cut off below, whose note stays in the dictionary.
		extra := batch[len(batch)-1]
		extra.note = "suppressed-value"
		for _, r := range append(batch, extra) {
			if r.bucket < 0 {
				b.Field(0).AppendNull()
			} else {
				b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(r.bucket))
			}
			if r.cell == "" {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.BinaryDictionaryBuilder).AppendString(r.cell)
			}
			note.AppendString(r.note)
			b.Field(3).(*array.Int64DictionaryBuilder).Append(r.veh % 3)
			b.Field(4).(*array.Int64Builder).Append(r.raw)
			b.Field(5).(*array.Int64Builder).Append(r.veh)
		}
		rec := b.NewRecordBatch()
		b.Release()
		sliced := rec.NewSlice(0, rec.NumRows()-1)
		rec.Release()
		out = append(out, sliced)
	}
	return out
}

// runOrder feeds rows through an OutputOrder and returns what it wrote.
func runOrder(t *testing.T, mem memory.Allocator, rows []orderRow, timeName string, budget int64, batchRows int) *memSink {
	t.Helper()
	counts, err := newOrderCounts(orderSchema, timeName)
	if err != nil {
		t.Fatal(err)
	}
	recs := orderBatches(t, mem, rows, 700)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, r := range recs {
		if err := counts.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	o, err := newOutputOrder(mem, orderSchema, timeName, counts, t.TempDir(), budget)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.batchRows = batchRows
	ctx := context.Background()
	for _, r := range recs {
		if err := o.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	out := &memSink{}
	t.Cleanup(out.release)
	n, err := o.WriteTo(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(rows)) || out.rows() != n {
		t.Fatalf("wrote %d rows (sink %d), added %d", n, out.rows(), len(rows))
	}
	return out
}

// readOrder reads the written rows back.
func readOrder(t *testing.T, out *memSink) []orderRow {
	t.Helper()
	var rows []orderRow
	for _, rec := range out.recs {
		ts := rec.Column(0).(*array.Timestamp)
		for i := range int(rec.NumRows()) {
			r := orderRow{bucket: -1, raw: rec.Column(4).(*array.Int64).Value(i), veh: rec.Column(5).(*array.Int64).Value(i)}
			if ts.IsValid(i) {
				r.bucket = int64(ts.Value(i))
			}
			r.cell, _ = textOrNull(rec.Column(1), i)
			r.note, _ = textOrNull(rec.Column(2), i)
			rows = append(rows, r)
		}
	}
	return rows
}

// TestOutputOrder: rows arrive in trip order, so their position in the
// input gives away their raw time within the bucket and puts a vehicle's
// readings next to each other. Written through the output order they are
// sorted by bucket and random within: the position within a bucket is
// uncorrelated with the raw time (pooled, and in every bucket of 100 rows
// or more), and a vehicle's readings are neighbours no more often than a
// random order within each bucket would make them. The input order fails both tests (the control), so the
// tests can fail. Budgets small enough to make ranges of several buckets
// and to split the largest bucket, batches of 1,000 rows.
func TestOutputOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int64
		nulls  bool
	}{
		{"one partition", 1 << 20, false},
		{"ranges and split buckets", 900, false},
		{"null buckets and cells", 900, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			t.Cleanup(func() { mem.AssertSize(t, 0) }) // after the sink's release
			rng := rand.New(rand.NewPCG(7, 11))
			in := orderFleet(rng, tc.nulls)
			out := runOrder(t, mem, in, "ts", tc.budget, 1000)
			got := readOrder(t, out)
			checkSameRows(t, in, got)
			checkBatches(t, out, 1000)
			checkSorted(t, got)
			checkGlobalDict(t, out, 1)
			checkGlobalDict(t, out, 2)
			checkFirstSeenDict(t, out, 3)

			const z = 6 // two-sided false rejection 2e-9 per test under the null
			rho, n := spearmanWithin(bucketsOf(got), rawOf(got))
			if lim := z / math.Sqrt(float64(n)); math.Abs(rho) > lim {
				t.Errorf("Spearman(position, raw time) within buckets = %.4f over %d rows, want |ρ| < %.4f", rho, n, lim)
			}
			if rho, _ := spearmanWithin(bucketsOf(in), rawOf(in)); rho < 0.5 {
				t.Errorf("control: the input order should give away the raw time (ρ = %.3f)", rho)
			}
			a, mean, sd := adjacencyTest(got, 40, rng)
			if math.Abs(float64(a)-mean) > z*sd {
				t.Errorf("a vehicle's readings adjacent %d times; a random order within the bucket gives %.1f ± %.1f", a, mean, sd)
			}
			checkEachGroup(t, bucketsOf(got), rawOf(got), 100, z)
			if ac, mean, sd := adjacencyTest(in, 40, rng); float64(ac) < mean+z*sd {
				t.Errorf("control: the input order should put a vehicle's readings together (%d vs %.1f ± %.1f)", ac, mean, sd)
			}
		})
	}
}

// TestOutputOrderShuffle: without a time bucket (and a cell) the output is
// a random permutation of the rows: its position says nothing about the
// input position.
func TestOutputOrderShuffle(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	rng := rand.New(rand.NewPCG(3, 5))
	in := orderFleet(rng, false)
	out := runOrder(t, mem, in, "", 700, outputBatchRows)
	got := readOrder(t, out)
	checkSameRows(t, in, got)
	all := make([]int64, len(got)) // one group
	rho, n := spearmanWithin(all, rawOf(got))
	if lim := 6 / math.Sqrt(float64(n)); math.Abs(rho) > lim {
		t.Errorf("Spearman(position, raw time) = %.4f, want |ρ| < %.4f", rho, lim)
	}
}

func checkSameRows(t *testing.T, in, got []orderRow) {
	t.Helper()
	key := func(r orderRow) string { return fmt.Sprint(r.bucket, r.cell, r.note, r.raw, r.veh) }
	want := map[string]int{}
	for _, r := range in {
		want[key(r)]++
	}
	for _, r := range got {
		want[key(r)]--
	}
	for k, n := range want {
		if n != 0 {
			t.Fatalf("row %s: %d more in the input than in the output", k, n)
		}
	}
}

// checkBatches: every batch has size rows but the last.
func checkBatches(t *testing.T, out *memSink, size int64) {
	t.Helper()
	for i, rec := range out.recs {
		if n := rec.NumRows(); n != size && !(i == len(out.recs)-1 && n > 0 && n < size) {
			t.Errorf("batch %d of %d has %d rows, want %d", i, len(out.recs), n, size)
		}
	}
}

// checkSorted: buckets never go back (the null bucket, -1, first).
func checkSorted(t *testing.T, got []orderRow) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if a, b := got[i-1], got[i]; b.bucket < a.bucket {
			t.Fatalf("row %d: bucket %d after %d", i, b.bucket, a.bucket)
		}
	}
}

// checkGlobalDict: every batch shares one dictionary for column c, the
// sorted set of the values written (no value of a suppressed row).
func checkGlobalDict(t *testing.T, out *memSink, c int) {
	t.Helper()
	used := map[string]bool{}
	for _, rec := range out.recs {
		for i := range int(rec.NumRows()) {
			if v, ok := textOrNull(rec.Column(c), i); ok {
				used[v] = true
			}
		}
	}
	want := make([]string, 0, len(used))
	for v := range used {
		want = append(want, v)
	}
	slices.Sort(want)
	first := out.recs[0].Column(c).(*array.Dictionary).Dictionary()
	for i, rec := range out.recs {
		d := rec.Column(c).(*array.Dictionary).Dictionary()
		if d.Data() != first.Data() {
			t.Errorf("column %d, batch %d: a dictionary of its own", c, i)
		}
	}
	var have []string
	for j := range first.Len() {
		have = append(have, first.(*array.String).Value(j))
	}
	if !slices.Equal(have, want) {
		t.Errorf("column %d: dictionary %q, want the sorted written values %q", c, have, want)
	}
}

// checkFirstSeenDict: column c's dictionary (not strings: no global one)
// holds, per batch, the values its rows use in the order they first do.
func checkFirstSeenDict(t *testing.T, out *memSink, c int) {
	t.Helper()
	for b, rec := range out.recs {
		d := rec.Column(c).(*array.Dictionary)
		next := 0
		for i := range d.Len() {
			switch j := d.GetValueIndex(i); {
			case j == next:
				next++
			case j > next:
				t.Fatalf("column %d, batch %d, row %d: index %d before %d was used", c, b, i, j, next)
			}
		}
		if next != d.Dictionary().Len() {
			t.Errorf("column %d, batch %d: dictionary of %d values, rows use %d", c, b, d.Dictionary().Len(), next)
		}
	}
}

func bucketsOf(rows []orderRow) []int64 {
	g := make([]int64, len(rows))
	for i, r := range rows {
		g[i] = r.bucket
	}
	return g
}

func rawOf(rows []orderRow) []float64 {
	x := make([]float64, len(rows))
	for i, r := range rows {
		x[i] = float64(r.raw)
	}
	return x
}

// adjacencyTest counts neighbouring rows of one vehicle, and the mean and
// standard deviation of that count over draws orders sorted by bucket and
// random within.
func adjacencyTest(rows []orderRow, draws int, rng *rand.Rand) (a int, mean, sd float64) {
	veh := make([]int64, len(rows))
	group := bucketsOf(rows)
	for i, r := range rows {
		veh[i] = r.veh
	}
	a = adjacency(veh)
	mean, sd = adjacencyNull(group, veh, draws, rng)
	return a, mean, sd
}

// spearmanWithin is the Spearman correlation between a row's position and
// x, both ranked within the row's group (ties in x get their mean rank),
// pooled over the groups of 3 or more rows; n is the rows pooled. Under a
// random order within groups it is about normal with standard deviation
// 1/sqrt(n).
func spearmanWithin(group []int64, x []float64) (rho float64, n int) {
	members := map[int64][]int{}
	var order []int64
	for i, g := range group {
		if _, ok := members[g]; !ok {
			order = append(order, g)
		}
		members[g] = append(members[g], i)
	}
	var sxy, sxx, syy float64
	for _, g := range order {
		idx := members[g]
		m := len(idx)
		if m < 3 {
			continue
		}
		n += m
		ranks := midRanks(idx, x)
		c := float64(m-1) / 2
		for k := range idx {
			dx, dy := float64(k)-c, ranks[k]-c
			sxy += dx * dy
			sxx += dx * dx
			syy += dy * dy
		}
	}
	if sxx == 0 || syy == 0 {
		return 0, n
	}
	return sxy / math.Sqrt(sxx*syy), n
}

// midRanks ranks x[idx[k]] from 0 (ties: their mean rank).
func midRanks(idx []int, x []float64) []float64 {
	by := slices.Clone(idx)
	slices.SortStableFunc(by, func(a, b int) int { return cmp.Compare(x[a], x[b]) })
	pos := map[int]int{}
	for k, i := range idx {
		pos[i] = k
	}
	r := make([]float64, len(idx))
	for lo := 0; lo < len(by); {
		hi := lo + 1
		for hi < len(by) && x[by[hi]] == x[by[lo]] {
			hi++
		}
		mid := float64(lo+hi-1) / 2
		for k := lo; k < hi; k++ {
			r[pos[by[k]]] = mid
		}
		lo = hi
	}
	return r
}

// adjacency counts neighbouring positions with the same id (ids < 0, no
// vehicle or trip known, never match).
func adjacency(id []int64) int {
	a := 0
	for i := 1; i < len(id); i++ {
		if id[i] >= 0 && id[i] == id[i-1] {
			a++
		}
	}
	return a
}

// adjacencyNull is the mean and standard deviation of adjacency(id) over
// draws orders that sort the rows by group and put each group's rows in a
// random order.
func adjacencyNull(group []int64, id []int64, draws int, rng *rand.Rand) (mean, sd float64) {
	idx := make([]int, len(id))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(group[a], group[b]) })
	sorted, sg := make([]int64, len(id)), make([]int64, len(id))
	for k, i := range idx {
		sorted[k], sg[k] = id[i], group[i]
	}
	perm := make([]int64, len(id))
	var sum, sum2 float64
	for range draws {
		copy(perm, sorted)
		for lo := 0; lo < len(perm); {
			hi := lo + 1
			for hi < len(perm) && sg[hi] == sg[lo] {
				hi++
			}
			run := perm[lo:hi]
			rng.Shuffle(len(run), func(i, j int) { run[i], run[j] = run[j], run[i] })
			lo = hi
		}
		a := float64(adjacency(perm))
		sum += a
		sum2 += a * a
	}
	mean = sum / float64(draws)
	return mean, math.Sqrt(max(sum2/float64(draws)-mean*mean, 0))
}

// textOrNull is row i of a as text, or "" and false when it is null.
func textOrNull(a arrow.Array, i int) (string, bool) {
	if a.IsNull(i) {
		return "", false
	}
	v, err := valueText(a, i)
	return v, err == nil
}
