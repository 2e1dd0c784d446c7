// Command dprelease releases hourly brake-disc temperature per road cell
// from the synthetic fleet (examples/brakedisc) with differential privacy:
// every vehicle is protected, whatever it did.
//
// Partitions are (cell, time-of-day window): cells are a coarse grid over
// the region (CellDegrees, default 0.1° ≈ 11 × 7 km) and windows are
// WindowHours-hour slots of the day (default 3: 0-3 h, 3-6 h, ...) over the
// whole fortnight, because private partition selection at ε = 0.25 needs a
// few hundred distinct vehicles in a partition — a 2,000-vehicle fleet does
// not put that many into one street segment in one particular hour. Users
// with a published list of segments and hours would pass it as
// dp.Options.Public instead and spend nothing on selection. The output says
// how many partitions were released and how informative they are — and no
// exact count of the input, which would not be private.
//
//	go run ./examples/dprelease [-rows 1000000] [-vehicles 2000] [-cell 0.1] [-window 3] [-epsilon 1]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// Config of the example release.
type Config struct {
	Fleet       brakedisc.Config
	CellDegrees float64 // grid size of a cell in degrees of latitude and longitude
	WindowHours int     // length of a time-of-day window in hours (divides 24)
	Epsilon     float64 // total ε: 0.25 for selection, the rest split over count and mean
	Delta       float64
}

// Cell is the deterministic coarse cell of a position: the south-west
// corner of its grid square, as "lat,lon" with the grid's precision.
func Cell(lat, lon, deg float64) string {
	prec := max(0, int(math.Ceil(-math.Log10(deg))))
	f := func(v float64) string { return strconv.FormatFloat(math.Floor(v/deg)*deg, 'f', prec, 64) }
	return f(lat) + "," + f(lon)
}

var keySchema = arrow.NewSchema([]arrow.Field{
	{Name: "vin", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}},
	{Name: "cell", Type: arrow.BinaryTypes.String},
	{Name: "window_start_hour", Type: arrow.PrimitiveTypes.Int64},
	{Name: "disc_temp_c", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// withKeys derives the partition key columns (cell, hour of day) of a fleet
// batch (cell, start hour of the time-of-day window) and keeps vin and disc_temp_c as they are (zero copy).
func withKeys(mem memory.Allocator, rec arrow.RecordBatch, deg float64, window int, cells map[[2]int64]string) (arrow.RecordBatch, error) {
	get := func(name string) (arrow.Array, error) {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("fleet batch has no column %q", name)
		}
		return rec.Column(idx[0]), nil
	}
	vin, err := get(brakedisc.ColVIN)
	if err != nil {
		return nil, err
	}
	tsCol, err := get(brakedisc.ColTS)
	if err != nil {
		return nil, err
	}
	latCol, err := get(brakedisc.ColLat)
	if err != nil {
		return nil, err
	}
	lonCol, err := get(brakedisc.ColLon)
	if err != nil {
		return nil, err
	}
	temp, err := get(brakedisc.ColDiscTemp)
	if err != nil {
		return nil, err
	}
	ts, ok1 := tsCol.(*array.Timestamp)
	lat, ok2 := latCol.(*array.Float64)
	lon, ok3 := lonCol.(*array.Float64)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("fleet batch: ts, lat, lon have unexpected types")
	}
	unit := ts.DataType().(*arrow.TimestampType).Unit
	cb := array.NewStringBuilder(mem)
	defer cb.Release()
	hb := array.NewInt64Builder(mem)
	defer hb.Release()
	for i := 0; i < int(rec.NumRows()); i++ {
		k := [2]int64{int64(math.Floor(lat.Value(i) / deg)), int64(math.Floor(lon.Value(i) / deg))}
		c, ok := cells[k]
		if !ok {
			c = Cell(lat.Value(i), lon.Value(i), deg)
			cells[k] = c
		}
		cb.Append(c)
		h := ts.Value(i).ToTime(unit).UTC().Hour()
		hb.Append(int64(h - h%window))
	}
	ca, ha := cb.NewArray(), hb.NewArray()
	defer ca.Release()
	defer ha.Release()
	return array.NewRecordBatch(keySchema, []arrow.Array{vin, ca, ha, temp}, rec.NumRows()), nil
}

// Release runs the example and writes a summary and the released rows to w.
func Release(ctx context.Context, cfg Config, mem memory.Allocator, w io.Writer) (*dp.Result, error) {
	if cfg.CellDegrees <= 0 || cfg.WindowHours < 1 || 24%cfg.WindowHours != 0 || cfg.Epsilon <= 0.25 {
		return nil, fmt.Errorf("dprelease: need CellDegrees > 0, WindowHours dividing 24 and Epsilon > 0.25 (0.25 selects partitions)")
	}
	src, err := brakedisc.NewReader(cfg.Fleet, mem)
	if err != nil {
		return nil, err
	}
	defer src.Release()
	opts := dp.Options{
		Subject: "vin",
		GroupBy: []string{"cell", "window_start_hour"},
		Aggregates: []dp.Aggregate{
			// The rest of ε after selection: a third for the count, two
			// thirds for the mean (the noisier statistic). The mean divides
			// by this released count (dp's shared count: its share is at
			// least the ε/2 a mean's own count would get), so its whole
			// share goes to the noisy sum.
			{Kind: dp.Count, Epsilon: (cfg.Epsilon - 0.25) / 3},
			// Bounds from the physics of city driving, not from the data:
			// discs sit near ambient and reach about 150 °C in stop-and-go.
			{Kind: dp.Mean, Column: "disc_temp_c", Lower: -10, Upper: 150, Epsilon: (cfg.Epsilon - 0.25) * 2 / 3},
		},
		// A vehicle is in about 10 (cell, window) partitions over two
		// weeks (median; 20 at the 90th percentile): at most 6 count, with
		// at most 8 readings each.
		MaxPartitions:   6,
		MaxPerPartition: 8,
		Selection:       dp.Budget{Epsilon: 0.25, Delta: cfg.Delta},
		Mem:             mem,
	}
	// Before touching the data: what would a partition of a few hundred
	// vehicles look like after the noise?
	for _, n := range []int64{100, 300, 1000} {
		pr, err := dp.Predict(opts, cfg.Epsilon, cfg.Delta, dp.Assumption{Subjects: n})
		if err != nil {
			return nil, err
		}
		mean := pr.Aggregates[1]
		fmt.Fprintf(w, "plan: %d vehicles in a partition → released with probability %.2f, mean ±%.1f °C\n", n, pr.Selection.KeepProbability, mean.HalfWidth)
	}
	ag, err := dp.NewAggregator(opts)
	if err != nil {
		return nil, err
	}
	defer ag.Close()
	cells := map[[2]int64]string{}
	for src.Next() {
		rec, err := withKeys(mem, src.RecordBatch(), cfg.CellDegrees, cfg.WindowHours, cells)
		if err != nil {
			return nil, err
		}
		err = ag.Add(ctx, rec)
		rec.Release()
		if err != nil {
			return nil, err
		}
	}
	if err := src.Err(); err != nil {
		return nil, err
	}
	p, err := ag.Partial(ctx)
	if err != nil {
		return nil, err
	}
	acct, err := dp.NewAccountant(cfg.Epsilon, cfg.Delta)
	if err != nil {
		return nil, err
	}
	res, err := p.Release(ctx, acct, dp.ReleaseOptions{Mem: mem})
	if err != nil {
		return nil, err
	}
	// Only what the release itself shows: how many rows it has, what it
	// spent, and a verdict computed from its values and intervals. The
	// exact counts in res.Stats (rows, vehicles) and the number of
	// partitions in the data or dropped by selection differ between
	// neighbouring inputs: printing them would void the guarantee.
	v, err := res.Verdict()
	if err != nil {
		res.Release()
		return nil, err
	}
	fmt.Fprintf(w, "released %d partitions (cell × %d-hour window of the day), chosen by private selection\n", res.PartitionsKept, cfg.WindowHours)
	fmt.Fprintf(w, "budget: ε=%g δ=%g spent of ε=%g δ=%g (%s noise)\n", res.Spent.EpsilonSpent, res.Spent.DeltaSpent, res.Spent.EpsilonTotal, res.Spent.DeltaTotal, res.Noise)
	fmt.Fprintf(w, "verdict: %s\n", v.Text)
	rec := res.Record
	cell := rec.Column(0).(*array.String)
	hour := rec.Column(1).(*array.Int64)
	count := rec.Column(2).(*array.Int64)
	mean, lo, hi := rec.Column(5).(*array.Float64), rec.Column(6).(*array.Float64), rec.Column(7).(*array.Float64)
	fmt.Fprintf(w, "%-12s %6s %8s %10s  %s\n", "cell", "window", "count", "mean °C", fmt.Sprintf("%.0f%% interval", 100*res.Confidence))
	for i := 0; i < int(rec.NumRows()); i++ {
		fmt.Fprintf(w, "%-12s %2d-%2dh %8d %10.1f  [%.1f, %.1f]\n", cell.Value(i), hour.Value(i), hour.Value(i)+int64(cfg.WindowHours), count.Value(i), mean.Value(i), lo.Value(i), hi.Value(i))
	}
	return res, nil
}

func main() {
	cfg := Config{Fleet: brakedisc.DefaultConfig(), CellDegrees: 0.1, WindowHours: 3, Epsilon: 1, Delta: 1e-6}
	flag.Int64Var(&cfg.Fleet.Rows, "rows", cfg.Fleet.Rows, "rows of synthetic telemetry")
	flag.IntVar(&cfg.Fleet.Vehicles, "vehicles", cfg.Fleet.Vehicles, "vehicles in the fleet")
	flag.Float64Var(&cfg.CellDegrees, "cell", cfg.CellDegrees, "cell size in degrees")
	flag.IntVar(&cfg.WindowHours, "window", cfg.WindowHours, "time-of-day window in hours (divides 24)")
	flag.Float64Var(&cfg.Epsilon, "epsilon", cfg.Epsilon, "total ε (0.25 of it selects partitions)")
	flag.Parse()
	res, err := Release(context.Background(), cfg, memory.DefaultAllocator, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dprelease:", err)
		os.Exit(2)
	}
	res.Release()
}
