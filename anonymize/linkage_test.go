package anonymize

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// extraColumn adds one column to the fleet, computed from a row's VIN.
type extraColumn struct {
	name  string
	value func(vin string) string
}

// runFleetWith runs policy over a small generated fleet, with extra string
// columns, and returns the report, the data sink and the error.
func runFleetWith(t *testing.T, policy string, cfg brakedisc.Config, extra ...extraColumn) (*Report, *memSink, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	rd, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	fields := rd.Schema().Fields()
	for _, e := range extra {
		fields = append(fields, arrow.Field{Name: e.name, Type: arrow.BinaryTypes.String})
	}
	schema := arrow.NewSchema(fields, nil)
	var recs []arrow.RecordBatch
	for rd.Next() {
		rec := rd.RecordBatch()
		cols := append([]arrow.Array(nil), rec.Columns()...)
		vin := rec.Column(rec.Schema().FieldIndices("vin")[0])
		var owned []arrow.Array
		for _, e := range extra {
			b := array.NewStringBuilder(mem)
			for i := range int(rec.NumRows()) {
				b.Append(e.value(vin.ValueStr(i)))
			}
			a := b.NewArray()
			b.Release()
			owned = append(owned, a)
			cols = append(cols, a)
		}
		recs = append(recs, array.NewRecordBatch(schema, cols, rec.NumRows()))
		for _, a := range owned {
			a.Release()
		}
	}
	src, err := array.NewRecordReader(schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	defer src.Release()
	p := writePolicy(t, policy)
	out, rel := &memSink{}, &memSink{}
	t.Cleanup(out.release)
	t.Cleanup(rel.release)
	r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem, Workers: 2, Release: sinkFor(rel), TempDir: t.TempDir(),
		Measure: MeasureOptions{Key: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), src, sinkFor(out))
	return rep, out, err
}

func smallFleet() brakedisc.Config {
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.Days, cfg.BatchSize = 300, 30_000, 3, 8192
	return cfg
}

// TestMaxLinkageFailsClosed: the policy before issue #12 with max_linkage
// fails — nothing is committed — and the error names the columns that
// drive the linkage; the example policy passes on the same fleet.
func TestMaxLinkageFailsClosed(t *testing.T) {
	pol := strings.Replace(string(brakedisc.AttributesPolicy()), "  unicity_points: 4\n", "  unicity_points: 4\n  max_linkage: 0.05\n", 1)
	rep, out, err := runFleetWith(t, pol, smallFleet())
	if err == nil {
		t.Fatalf("ran: linkage %v", *rep.Risk.After.Linkage)
	}
	for _, want := range []string{"mobility.max_linkage", "linked to exactly one subject", "speed_kmh", "columns that drive it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if out.committed || !out.aborted {
		t.Errorf("the output was committed %v, aborted %v", out.committed, out.aborted)
	}
	rep, out, err = runFleetWith(t, string(brakedisc.DemoPolicy()), smallFleet())
	if err != nil {
		t.Fatal(err)
	}
	if !out.committed || *rep.Risk.After.Linkage > 0.05 || rep.Risk.Method.MaxLinkage != 0.05 {
		t.Errorf("example policy: committed %v, linkage %v, method %+v", out.committed, *rep.Risk.After.Linkage, rep.Risk.Method)
	}
}

// TestRelinkLint is the data part of the lint against re-linking: under
// scope trip a published column that maps one to one to vehicles fails the
// run before anything is written, unless the policy lists it; columns
// shared between vehicles, or masked until they are, pass.
func TestRelinkLint(t *testing.T) {
	plate := extraColumn{"plate", func(vin string) string { return "M-" + vin[11:] }}
	colour := extraColumn{"colour", func(vin string) string { return []string{"red", "blue", "black", "white"}[int(vin[16])%4] }}
	for _, tc := range []struct {
		name    string
		columns string // added under columns:
		extra   []extraColumn
		edit    [2]string // replaced in the policy
		wantErr string
	}{
		{"a licence plate kept", "  plate: keep\n", []extraColumn{plate}, [2]string{}, `column "plate" identifies the subject`},
		{"a VIN copy pseudonymised", "  vin2: {pseudonymize: {method: hmac, domain: vin2}}\n", []extraColumn{{"vin2", func(v string) string { return v }}}, [2]string{}, `column "vin2" identifies the subject`},
		{"a plate masked to its district", "  plate: {mask: {keep_prefix: 2, keep_suffix: 0}}\n", []extraColumn{plate}, [2]string{}, ""},
		{"a colour shared by many", "  colour: keep\n", []extraColumn{colour}, [2]string{}, ""},
		{"a plate the policy lists (and no max_linkage)", "  plate: keep\n", []extraColumn{plate}, [2]string{"  max_linkage: 0.05\n", "  subject_columns: [plate]\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := strings.Replace(string(brakedisc.DemoPolicy()), "  owner_sex: drop\n", "  owner_sex: drop\n"+tc.columns, 1)
			if tc.edit[0] != "" {
				pol = strings.Replace(pol, tc.edit[0], tc.edit[1], 1)
			}
			rep, out, err := runFleetWith(t, pol, smallFleet(), tc.extra...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "mobility.subject_columns") {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if out.committed || out.rows() != 0 {
					t.Errorf("%d rows written before the lint failed", out.rows())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit[0] != "" {
				// Listed: the run publishes it, and the linkage measure
				// shows what it does.
				if l := *rep.Risk.After.Linkage; l < 0.9 {
					t.Errorf("linkage %v with a plate on every row, want ~1", l)
				}
				if d := rep.Risk.Method.LinkageDrivers; len(d) == 0 || d[0].Column != "plate" {
					t.Errorf("drivers %+v, want plate first", d)
				}
			}
		})
	}
}

// TestMicroaggregate: every written row of a (cell, hour) carries the mean
// of the column over that group's readings — the exact sum (math/big)
// rounded once, divided by the count, bit for bit, so that any order of
// the rows gives the same value (package beam's workers add them in
// another) —, the utility figure is exact, and the output column is
// float64.
func TestMicroaggregate(t *testing.T) {
	cfg := smallFleet()
	rep, out, err := runFleetWith(t, string(brakedisc.DemoPolicy()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The raw group means (every reading: the example policy detaches trip
	// ends rather than dropping them, and the opt-out list is empty).
	type group struct{ cell, hour string }
	sum, n := map[group]*big.Float{}, map[group]int{}
	raw, err := brakedisc.NewReader(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Release()
	for raw.Next() {
		rec := raw.RecordBatch()
		col := func(s string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(s)[0]) }
		lat, lon, ts, v := col("lat").(*array.Float64), col("lon").(*array.Float64), col("ts").(*array.Timestamp), col("speed_kmh").(*array.Float64)
		for i := range int(rec.NumRows()) {
			c, err := mobility.CellOf(lat.Value(i), lon.Value(i), 6)
			if err != nil {
				t.Fatal(err)
			}
			h := arrayOfHour(ts, i)
			g := group{c, text(t, h, 0)}
			h.Release()
			if sum[g] == nil {
				sum[g] = new(big.Float).SetPrec(2048)
			}
			sum[g].Add(sum[g], new(big.Float).SetFloat64(v.Value(i)))
			n[g]++
		}
	}
	checked := 0
	for _, rec := range out.recs {
		if f, _ := rec.Schema().FieldsByName("speed_kmh"); f[0].Type.ID() != arrow.FLOAT64 {
			t.Fatalf("speed_kmh written as %s", f[0].Type)
		}
		cell, ts, v := rec.Column(rec.Schema().FieldIndices("cell")[0]), rec.Column(rec.Schema().FieldIndices("ts")[0]), rec.Column(rec.Schema().FieldIndices("speed_kmh")[0]).(*array.Float64)
		for i := range int(rec.NumRows()) {
			g := group{text(t, cell, i), text(t, ts, i)}
			s, _ := sum[g].Float64()
			want := s / float64(n[g])
			if v.Value(i) != want {
				t.Fatalf("row in %v: %v, want the group mean %v", g, v.Value(i), want)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no row written")
	}
	if u := rep.Mobility.Utility; u.Groups > 0 && u.MaxRelErr > 1e-9 {
		t.Errorf("utility max relative error %v with the column microaggregated, want 0", u.MaxRelErr)
	}
}

// arrayOfHour returns a one-row timestamp array holding row i of ts
// floored to the hour (as the policy coarsens it).
func arrayOfHour(ts *array.Timestamp, i int) arrow.Array {
	b := array.NewTimestampBuilder(memory.DefaultAllocator, ts.DataType().(*arrow.TimestampType))
	defer b.Release()
	b.Append(ts.Value(i) / 3_600_000 * 3_600_000)
	return b.NewArray()
}
