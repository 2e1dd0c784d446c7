package dp_test

import (
	"context"
	"fmt"

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
	fmt.Println("released partitions:", res.PartitionsKept, "of which without data:", res.PartitionsPublicEmpty)
	fmt.Println("columns:", res.Record.Schema().Field(0).Name, res.Record.Schema().Field(1).Name, res.Record.Schema().Field(4).Name)
	fmt.Printf("spent ε=%g δ=%g\n", res.Spent.EpsilonSpent, res.Spent.DeltaSpent)
	fmt.Println("rows in:", res.Stats.RowsIn, "used:", res.Stats.RowsUsed)
	// Output:
	// released partitions: 3 of which without data: 1
	// columns: segment count mean_disc_temp_c
	// spent ε=1 δ=0
	// rows in: 900 used: 900
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
