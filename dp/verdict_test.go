package dp

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// resultOf builds a Result by hand: a count and a mean over [0, 100] with
// the given published values and intervals per partition.
func resultOf(t *testing.T, mem memory.Allocator, counts [][3]float64, means [][3]float64) *Result {
	t.Helper()
	aggs := []AggregateSpec{{Kind: Count, Name: "count"}, {Kind: Mean, Column: "temp", Lower: 0, Upper: 100, Name: "mean_temp"}}
	fields := []arrow.Field{{Name: "seg", Type: arrow.BinaryTypes.String}, {Name: "count", Type: arrow.PrimitiveTypes.Int64}}
	for _, n := range []string{"count_ci_low", "count_ci_high", "mean_temp", "mean_temp_ci_low", "mean_temp_ci_high"} {
		fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64})
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i := range counts {
		b.Field(0).(*array.StringBuilder).Append("p" + strconv.Itoa(i))
		b.Field(1).(*array.Int64Builder).Append(int64(counts[i][0]))
		b.Field(2).(*array.Float64Builder).Append(counts[i][1])
		b.Field(3).(*array.Float64Builder).Append(counts[i][2])
		for j := range 3 {
			b.Field(4 + j).(*array.Float64Builder).Append(means[i][j])
		}
	}
	return &Result{Record: b.NewRecordBatch(), Aggregates: aggs}
}

// TestVerdict: narrow intervals are counted per aggregate by the documented
// criteria (count: half-width at most half the value; mean: narrower than
// half the clamp range), means on a clamp bound are counted, and the level
// follows the least informative aggregate.
func TestVerdict(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	narrowCount, wideCount := [3]float64{100, 60, 140}, [3]float64{10, 0, 40}
	narrowMean, wideMean, boundMean := [3]float64{50, 30, 79}, [3]float64{50, 20, 80}, [3]float64{100, 0, 100}
	for _, c := range []struct {
		name                    string
		counts, means           [][3]float64
		level                   VerdictLevel
		countNarrow, meanNarrow int
		atBound                 int
		text                    string
	}{
		{"all narrow", [][3]float64{narrowCount, narrowCount}, [][3]float64{narrowMean, narrowMean}, Informative, 2, 2, 0, "most intervals are narrow"},
		{"means wide", [][3]float64{narrowCount, narrowCount}, [][3]float64{wideMean, boundMean}, Uninformative, 2, 0, 1, "most intervals span the value range: this release carries little information at this fleet size — coarser partitions or more subjects needed"},
		{"counts decide", [][3]float64{wideCount, narrowCount, narrowCount}, [][3]float64{narrowMean, narrowMean, narrowMean}, Mixed, 2, 3, 0, "count: 2 of 3 intervals narrow"},
		{"no partitions", nil, nil, NoIntervals, 0, 0, 0, "no intervals to judge"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := resultOf(t, mem, c.counts, c.means)
			defer res.Release()
			v, err := res.Verdict()
			if err != nil {
				t.Fatal(err)
			}
			if v.Level != c.level || !strings.Contains(v.Text, c.text) {
				t.Errorf("verdict %s %q, want %s containing %q", v.Level, v.Text, c.level, c.text)
			}
			if len(v.Aggregates) != 2 || v.Aggregates[0].Narrow != c.countNarrow || v.Aggregates[1].Narrow != c.meanNarrow || v.Aggregates[1].AtBound != c.atBound {
				t.Errorf("aggregates %+v, want narrow %d and %d, %d at a bound", v.Aggregates, c.countNarrow, c.meanNarrow, c.atBound)
			}
		})
	}
	res := resultOf(t, mem, nil, nil)
	res.Release()
	if _, err := res.Verdict(); err == nil {
		t.Error("Verdict on a released record succeeded")
	}
}

// TestVerdictOfReleases: with real noise (Laplace, ε = 1, L0 = L∞ = 1), a
// mean over partitions of 3 subjects is uninformative and over 3,000
// subjects informative. The 95 % half-width of the mean is about
// 3·50/(ε/2·n) (its sum's noise over n rows), 100 at n = 3 and 0.1 at
// n = 3,000; a narrow interval at n = 3 (width < 50) needs a count and sum
// noise far in their tails, so a wrong verdict has probability far below
// 1e-6 per partition.
func TestVerdictOfReleases(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, c := range []struct {
		subjects int
		level    VerdictLevel
	}{{3, Uninformative}, {3000, Informative}} {
		var keys []string
		var rows []row
		for k := range 5 {
			key := "p" + strconv.Itoa(k)
			keys = append(keys, key)
			for s := range c.subjects {
				rows = append(rows, row{subj: key + strconv.Itoa(s), key: key, v: float64(s % 100)})
			}
		}
		opts := predictOpts(Laplace, []Aggregate{{Kind: Mean, Column: "temp", Lower: 0, Upper: 100}}, keys...)
		opts.MaxPartitions, opts.MaxPerPartition = 1, 1
		p := partialOf(t, mem, opts, rows, 1024)
		acct, _ := NewAccountant(1, 0)
		res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		v, err := res.Verdict()
		res.Release()
		if err != nil || v.Level != c.level {
			t.Errorf("%d subjects: verdict %+v (%v), want %s", c.subjects, v, err, c.level)
		}
	}
}
