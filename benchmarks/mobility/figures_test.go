package mobilitybench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// demoPolicy is the mobility part of the demo policy (see mobility/doc.go).
func demoPolicy(tmp string, mem memory.Allocator) mobility.ProtectOptions {
	return mobility.ProtectOptions{
		Subject: "vin", Time: "ts", Lat: "lat", Lon: "lon",
		Gap: 10 * time.Minute, TrimMetres: 1000, TrimDuration: 2 * time.Minute,
		Endpoints:  mobility.EndpointsDetach,
		Resolution: 6, Cell: "cell", Bucket: time.Hour, K: 5,
		Scope: mobility.ScopeTrip, TripID: "trip", TraceK: 5,
		TempDir: tmp, Mem: mem,
	}
}

// Figures are the three numbers.
type Figures struct {
	Rows          int64
	Before, After mobility.UnicityResult
	Utility       mobility.MeanComparison
	Protect       mobility.ProtectStats
	Elapsed       time.Duration
}

// project keeps the columns the figures need, so 10 M rows fit in memory.
var keepCols = []string{"vin", "ts", "lat", "lon", "disc_temp_c"}

// loadFleet generates cfg and keeps the projected batches in memory.
func loadFleet(tb testing.TB, cfg brakedisc.Config, mem memory.Allocator) (*arrow.Schema, []arrow.RecordBatch) {
	tb.Helper()
	rd, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		tb.Fatal(err)
	}
	defer rd.Release()
	var idx []int
	var fields []arrow.Field
	for _, name := range keepCols {
		i := rd.Schema().FieldIndices(name)
		if len(i) != 1 {
			tb.Fatalf("generator schema lacks %q", name)
		}
		idx = append(idx, i[0])
		fields = append(fields, rd.Schema().Field(i[0]))
	}
	schema := arrow.NewSchema(fields, nil)
	var out []arrow.RecordBatch
	for rd.Next() {
		rec := rd.RecordBatch()
		cols := make([]arrow.Array, len(idx))
		for j, i := range idx {
			cols[j] = rec.Column(i)
		}
		out = append(out, array.NewRecordBatch(schema, cols, rec.NumRows()))
	}
	if err := rd.Err(); err != nil {
		tb.Fatal(err)
	}
	return schema, out
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// computeFigures measures unicity at 4 points before and after the policy and
// the hourly mean disc temperature per cell with >= 20 vehicles.
func computeFigures(tb testing.TB, schema *arrow.Schema, raw []arrow.RecordBatch, opts mobility.ProtectOptions) Figures {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	var f Figures
	before, err := mobility.NewUnicityIndex(schema, mobility.UnicityColumns{Subject: "vin", Space: []string{"lat", "lon"}, Time: "ts"})
	if err != nil {
		tb.Fatal(err)
	}
	rawMeans, err := mobility.NewCellMeans(schema, mobility.CellMeanOptions{Subject: "vin", Value: "disc_temp_c", Time: "ts", Bucket: time.Hour, Lat: "lat", Lon: "lon", Resolution: opts.Resolution})
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range raw {
		if err := before.Add(ctx, r); err != nil {
			tb.Fatal(err)
		}
		if err := rawMeans.Add(ctx, r); err != nil {
			tb.Fatal(err)
		}
		f.Rows += r.NumRows()
	}
	if f.Before, err = before.Estimate(mobility.UnicityOptions{P: 4, Seed: 1}); err != nil {
		tb.Fatal(err)
	}

	src, err := array.NewRecordReader(schema, raw)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Release()
	subject := opts.TripID
	if opts.Scope == mobility.ScopeSubject {
		subject = opts.Subject // the (pseudonymised) vehicle stays the unit
	}
	var after *mobility.UnicityIndex
	var relMeans *mobility.CellMeans
	f.Protect, err = mobility.Protect(ctx, src, opts, func(rec arrow.RecordBatch) error {
		if after == nil {
			if after, err = mobility.NewUnicityIndex(rec.Schema(), mobility.UnicityColumns{Subject: subject, Space: []string{opts.Cell}, Time: "ts", SkipNullSubjects: true}); err != nil {
				return err
			}
			if relMeans, err = mobility.NewCellMeans(rec.Schema(), mobility.CellMeanOptions{Subject: subject, Value: "disc_temp_c", Time: "ts", Bucket: time.Hour, Cell: opts.Cell}); err != nil {
				return err
			}
		}
		if err := after.Add(ctx, rec); err != nil {
			return err
		}
		return relMeans.Add(ctx, rec)
	})
	if err != nil {
		tb.Fatal(err)
	}
	if after == nil {
		tb.Fatal("the policy released nothing")
	}
	if f.After, err = after.Estimate(mobility.UnicityOptions{P: 4, Seed: 1}); err != nil {
		tb.Fatal(err)
	}
	f.Utility = mobility.CompareMeans(rawMeans, relMeans, 20, 0.10)
	f.Elapsed = time.Since(start)
	return f
}

func logFigures(tb testing.TB, f Figures) {
	tb.Helper()
	tb.Logf("rows %d; protect: out %d trimmed %d suppressed %d, trips %d (%d emptied by trimming), cell-hours %d (%d suppressed)",
		f.Protect.RowsIn, f.Protect.RowsOut, f.Protect.RowsTrimmed, f.Protect.RowsSuppressed,
		f.Protect.Trips.Trips, f.Protect.Trips.TripsEmpty, f.Protect.Cells.Groups, f.Protect.Cells.GroupsSuppressed)
	tb.Logf("traces: %d trips released, %d published (trace shared by >= TraceK vehicles), %d rows of rarer trips detached", f.Protect.Traces.Trips, f.Protect.Traces.Published, f.Protect.Traces.RowsDetached)
	tb.Logf("unicity p=4 before: %.4f [%.4f, %.4f] over %d of %d vehicles (%d short)", f.Before.Unicity, f.Before.Lower, f.Before.Upper, f.Before.Sampled, f.Before.Subjects, f.Before.Short)
	tb.Logf("unicity p=4 after:  %.4f [%.4f, %.4f] over %d trips (%d with < 4 points, whole trace used; %d detached endpoint rows in no trace)", f.After.Unicity, f.After.Lower, f.After.Upper, f.After.Sampled, f.After.Short, f.After.Unlinked)
	tb.Logf("utility: %d raw cell-hours with >= 20 vehicles, %d released, %d within 10%%; max rel. err %.4f, mean %.4f",
		f.Utility.Groups, f.Utility.Released, f.Utility.Within, f.Utility.MaxRelErr, f.Utility.MeanRelErr)
	tb.Logf("elapsed %v", f.Elapsed)
}

// TestPolicyAblation shows what each step of the demo policy contributes
// (and what the alternatives cost), on the demo fleet. It takes a few
// minutes, so it runs only with MOBILITY_ABLATION=1 (see RESULTS.md).
func TestPolicyAblation(t *testing.T) {
	if os.Getenv("MOBILITY_ABLATION") == "" {
		t.Skip("set MOBILITY_ABLATION=1 to run the policy ablation (minutes)")
	}
	mem := memory.NewGoAllocator()
	schema, raw := loadFleet(t, brakedisc.DefaultConfig(), mem)
	defer release(raw)
	type variant struct {
		name string
		mod  func(*mobility.ProtectOptions)
	}
	for _, v := range []variant{
		{"demo policy", func(*mobility.ProtectOptions) {}},
		{"no TraceK", func(o *mobility.ProtectOptions) { o.TraceK = 0 }},
		{"no TraceK, endpoints dropped", func(o *mobility.ProtectOptions) { o.TraceK, o.Endpoints = 0, mobility.EndpointsDrop }},
		{"endpoints dropped", func(o *mobility.ProtectOptions) { o.Endpoints = mobility.EndpointsDrop }},
		{"res 7, no TraceK", func(o *mobility.ProtectOptions) { o.Resolution, o.TraceK = 7, 0 }},
		{"res 7", func(o *mobility.ProtectOptions) { o.Resolution = 7 }},
		{"res 5, K 10, no TraceK", func(o *mobility.ProtectOptions) { o.Resolution, o.K, o.TraceK = 5, 10, 0 }},
		{"TraceK 2", func(o *mobility.ProtectOptions) { o.TraceK = 2 }},
		{"stable vehicle pseudonym (ScopeSubject), endpoints dropped", func(o *mobility.ProtectOptions) {
			o.Scope, o.TraceK, o.Endpoints = mobility.ScopeSubject, 0, mobility.EndpointsDrop
		}},
		{"stable vehicle pseudonym, res 5, K 10, endpoints dropped", func(o *mobility.ProtectOptions) {
			o.Scope, o.TraceK, o.Endpoints, o.Resolution, o.K = mobility.ScopeSubject, 0, mobility.EndpointsDrop, 5, 10
		}},
	} {
		o := demoPolicy(t.TempDir(), mem)
		v.mod(&o)
		f := computeFigures(t, schema, raw, o)
		t.Logf("| %s | %d | %.4f [%.4f, %.4f] | %d / %d | %d / %d | %.4f |", v.name, o.Resolution,
			f.After.Unicity, f.After.Lower, f.After.Upper, f.Protect.Traces.Published, f.After.Subjects,
			f.Utility.Within, f.Utility.Groups, f.Utility.MaxRelErr)
	}
}

// TestDemoFigures proves the numbers on the demo fleet (DefaultConfig:
// 1 M rows, 2,000 vehicles, 14 days). Skipped with -short.
func TestDemoFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("demo-fleet figures take ~20 s; run without -short")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema, raw := loadFleet(t, brakedisc.DefaultConfig(), mem)
	defer release(raw)
	f := computeFigures(t, schema, raw, demoPolicy(t.TempDir(), mem))
	logFigures(t, f)
	if f.Before.Unicity < 0.90 {
		t.Errorf("raw unicity at 4 points = %.4f, want >= 0.90", f.Before.Unicity)
	}
	if f.After.Unicity > 0.05 {
		t.Errorf("unicity at 4 points after the policy = %.4f, want <= 0.05", f.After.Unicity)
	}
	if f.Utility.Groups == 0 || f.Utility.Within != f.Utility.Groups {
		t.Errorf("utility: %d of %d cell-hours with >= 20 vehicles within 10%% (max rel. err %.4f)", f.Utility.Within, f.Utility.Groups, f.Utility.MaxRelErr)
	}
}
