package dp_test

import (
	"fmt"

	"github.com/tarnkappe/tarnkappe/dp"
)

// Before spending any budget, predict how precise a release would be for
// partitions of a few sizes: here a count and a mean disc temperature per
// segment, every vehicle in at most 2 segments with at most 2 readings.
func ExamplePredict() {
	segments, _ := dp.NewPartitionList("segment")
	segments.Add("A9-north")
	opts := dp.Options{
		Subject: "vin",
		GroupBy: []string{"segment"},
		Aggregates: []dp.Aggregate{
			{Kind: dp.Count},
			{Kind: dp.Mean, Column: "disc_temp_c", Lower: 0, Upper: 150},
		},
		MaxPartitions:   2,
		MaxPerPartition: 2,
		Public:          segments,
	}
	for _, vehicles := range []int64{10, 100, 1000} {
		pr, err := dp.Predict(opts, 1, 0, dp.Assumption{Subjects: vehicles})
		if err != nil {
			fmt.Println(err)
			return
		}
		count, mean := pr.Aggregates[0], pr.Aggregates[1]
		fmt.Printf("%d vehicles: count ±%.0f, mean ±%.1f °C (narrow: %v)\n", vehicles, count.HalfWidth, mean.HalfWidth, mean.Narrow)
	}
	// Output:
	// 10 vehicles: count ±22, mean ±75.0 °C (narrow: false)
	// 100 vehicles: count ±24, mean ±11.7 °C (narrow: true)
	// 1000 vehicles: count ±24, mean ±0.9 °C (narrow: true)
}
