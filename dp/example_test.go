package dp_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tarnkappe/tarnkappe/dp"
)

// telemetry returns a small batch: vehicle, road segment, disc temperature.
func telemetry() arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "vin", Type: arrow.BinaryTypes.String},
		{Name: "segment", Type: arrow.BinaryTypes.String},
		{Name: "disc_temp_c", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for v := range 300 {
		for j := range 3 {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("VIN%05d", v))
			b.Field(1).(*array.StringBuilder).Append([]string{"A9-north", "A9-south"}[(v+j)%2])
			b.Field(2).(*array.Float64Builder).Append(float64(40 + (v*7+j)%60))
		}
	}
	return b.NewRecordBatch()
}

// Release per-segment counts and mean disc temperatures over a public list
// of segments, with every vehicle protected.
func Example() {
	ctx := context.Background()
	segments, _ := dp.NewPartitionList("segment")
	for _, s := range []string{"A9-north", "A9-south", "A99-ring"} {
		segments.Add(s)
	}
	ag, err := dp.NewAggregator(dp.Options{
		Subject: "vin",
		GroupBy: []string{"segment"},
		Aggregates: []dp.Aggregate{
			{Kind: dp.Count},
			{Kind: dp.Mean, Column: "disc_temp_c", Lower: 0, Upper: 150},
		},
		MaxPartitions:   2,
		MaxPerPartition: 2,
		Public:          segments,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ag.Close()
	rec := telemetry()
	defer rec.Release()
	if err := ag.Add(ctx, rec); err != nil {
		fmt.Println(err)
		return
	}
	partial, err := ag.Partial(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	acct, _ := dp.NewAccountant(1, 0)
	res, err := partial.Release(ctx, acct, dp.ReleaseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Release()
	// What may be published: the record (one row per public segment) and
	// the budget spent. res.Stats, PartitionsDropped and
	// PartitionsPublicEmpty are exact figures for the operator's own
	// accounting: printed next to the release they would undo ε.
	fmt.Println("released partitions:", res.PartitionsKept)
	fmt.Println("columns:", res.Record.Schema().Field(0).Name, res.Record.Schema().Field(1).Name, res.Record.Schema().Field(4).Name)
	fmt.Printf("spent ε=%g δ=%g\n", res.Spent.EpsilonSpent, res.Spent.DeltaSpent)
	// Output:
	// released partitions: 3
	// columns: segment count mean_disc_temp_c
	// spent ε=1 δ=0
}

// Partials of disjoint vehicles merge, e.g. in a distributed combiner, and
// survive serialisation; noise is drawn once, at Release.
func ExamplePartial_Merge() {
	ctx := context.Background()
	opts := dp.Options{
		Subject: "vin", GroupBy: []string{"segment"},
		Aggregates:    []dp.Aggregate{{Kind: dp.Count}},
		MaxPartitions: 2, MaxPerPartition: 3,
		Selection: dp.Budget{Epsilon: 0.5, Delta: 1e-6},
	}
	rec := telemetry()
	defer rec.Release()
	var parts []*dp.Partial
	for _, rows := range [][2]int64{{0, 450}, {450, 450}} { // vehicles 0-149 and 150-299
		ag, _ := dp.NewAggregator(opts)
		half := rec.NewSlice(rows[0], rows[0]+rows[1])
		ag.Add(ctx, half)
		half.Release()
		p, _ := ag.Partial(ctx)
		blob, _ := p.MarshalBinary() // ship to the combiner
		var q dp.Partial
		q.UnmarshalBinary(blob)
		parts = append(parts, &q)
	}
	if err := parts[0].Merge(parts[1]); err != nil {
		fmt.Println(err)
		return
	}
	// Inside the combiner, before noise: exact figures, never published.
	fmt.Println("partitions before noise:", len(parts[0].Partitions), "rows used:", parts[0].Stats.RowsUsed)
	acct, _ := dp.NewAccountant(1, 1e-6)
	res, err := parts[0].Release(ctx, acct, dp.ReleaseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Release()
	fmt.Println("kept + dropped:", res.PartitionsKept+res.PartitionsDropped)
	// Output:
	// partitions before noise: 2 rows used: 900
	// kept + dropped: 2
}

// A mean or variance released beside a Count divides by the Count's
// released value instead of drawing a noisy count of its own, when the
// Count's declared share is at least what its own count would get (ε/2 of
// a mean's share, ε/3 of a variance's). Result says which did. The noisy
// values differ from run to run and are not printed.
func ExampleResult_sharedCount() {
	ctx := context.Background()
	segments, _ := dp.NewPartitionList("segment")
	segments.Add("A9-north")
	segments.Add("A9-south")
	rec := telemetry()
	defer rec.Release()
	for _, countEps := range []float64{0.3, 0.1} {
		ag, err := dp.NewAggregator(dp.Options{
			Subject: "vin",
			GroupBy: []string{"segment"},
			Aggregates: []dp.Aggregate{
				{Kind: dp.Count, Epsilon: countEps},
				{Kind: dp.Mean, Column: "disc_temp_c", Lower: 0, Upper: 150, Epsilon: 0.4},     // own count would get 0.2
				{Kind: dp.Variance, Column: "disc_temp_c", Lower: 0, Upper: 150, Epsilon: 0.2}, // own count would get 0.2/3
			},
			MaxPartitions:   2,
			MaxPerPartition: 2,
			Public:          segments,
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := ag.Add(ctx, rec); err != nil {
			fmt.Println(err)
			return
		}
		partial, err := ag.Partial(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		acct, _ := dp.NewAccountant(1, 0)
		res, err := partial.Release(ctx, acct, dp.ReleaseOptions{})
		ag.Close()
		if err != nil {
			fmt.Println(err)
			return
		}
		var cols []string
		for _, f := range res.Record.Schema().Fields() {
			cols = append(cols, f.Name)
		}
		fmt.Printf("count ε=%g: %d partitions, spent ε=%.1f of %g\n", countEps, res.PartitionsKept, res.Spent.EpsilonSpent, res.Spent.EpsilonTotal)
		fmt.Printf("  divided by %q: %q\n", res.Denominator, res.DividedByCount)
		fmt.Println("  columns:", strings.Join(cols, " "))
		res.Release()
	}
	// Output:
	// count ε=0.3: 2 partitions, spent ε=0.9 of 1
	//   divided by "count": ["mean_disc_temp_c" "variance_disc_temp_c"]
	//   columns: segment count count_ci_low count_ci_high mean_disc_temp_c mean_disc_temp_c_ci_low mean_disc_temp_c_ci_high variance_disc_temp_c
	// count ε=0.1: 2 partitions, spent ε=0.7 of 1
	//   divided by "count": ["variance_disc_temp_c"]
	//   columns: segment count count_ci_low count_ci_high mean_disc_temp_c mean_disc_temp_c_ci_low mean_disc_temp_c_ci_high variance_disc_temp_c
}
