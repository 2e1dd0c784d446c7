package anonymize

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// memSink collects batches in memory for tests.
type memSink struct {
	schema    *arrow.Schema
	recs      []arrow.RecordBatch
	committed bool
	aborted   bool
}

func (s *memSink) Write(rec arrow.RecordBatch) error {
	rec.Retain()
	s.recs = append(s.recs, rec)
	return nil
}
func (s *memSink) Commit() error { s.committed = true; return nil }
func (s *memSink) Abort() error  { s.aborted = true; s.release(); return nil }
func (s *memSink) release() {
	for _, r := range s.recs {
		r.Release()
	}
	s.recs = nil
}
func (s *memSink) rows() int64 {
	var n int64
	for _, r := range s.recs {
		n += r.NumRows()
	}
	return n
}

func sinkFor(s *memSink) CreateFunc {
	return func(schema *arrow.Schema) (Sink, error) { s.schema = schema; return s, nil }
}

var _ Sink = (*memSink)(nil)

// fleet builds a small interleaved fleet: vehicles × trips × readings, with
// owner attributes constant per vehicle.
type fleetSpec struct {
	vehicles, trips, readings int
	batch                     int
}

func vinOf(v int) string { return fmt.Sprintf("WVWZZZ1KZ%08d", v) }

func buildFleet(t testing.TB, mem memory.Allocator, fs fleetSpec) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	dict := func() *arrow.DictionaryType {
		return &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "vin", Type: dict()},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "lat", Type: arrow.PrimitiveTypes.Float64},
		{Name: "lon", Type: arrow.PrimitiveTypes.Float64},
		{Name: "disc_temp_c", Type: arrow.PrimitiveTypes.Float64},
		{Name: "postcode", Type: dict()},
		{Name: "owner_birth_year", Type: arrow.PrimitiveTypes.Int64},
		{Name: "owner_sex", Type: dict()},
	}, nil)
	start := time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	var recs []arrow.RecordBatch
	n := 0
	// Interleave vehicles in time: trip j of every vehicle starts at hour
	// 3j, one reading a minute.
	for j := range fs.trips {
		for r := range fs.readings {
			for v := range fs.vehicles {
				ts := start.Add(time.Duration(3*j)*time.Hour + time.Duration(r)*time.Minute + time.Duration(v)*time.Millisecond)
				b.Field(0).(*array.BinaryDictionaryBuilder).AppendString(vinOf(v))
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMilli()))
				b.Field(2).(*array.Float64Builder).Append(48.1 + 0.01*float64(v%7) + 0.002*float64(r))
				b.Field(3).(*array.Float64Builder).Append(11.5 + 0.01*float64(v%5) + 0.002*float64(r))
				b.Field(4).(*array.Float64Builder).Append(100 + float64(r))
				b.Field(5).(*array.BinaryDictionaryBuilder).AppendString(fmt.Sprintf("80%03d", 300+v%40))
				b.Field(6).(*array.Int64Builder).Append(int64(1950 + v%50))
				b.Field(7).(*array.BinaryDictionaryBuilder).AppendString([]string{"F", "M"}[v%2])
				n++
				if n%fs.batch == 0 {
					recs = append(recs, b.NewRecordBatch())
				}
			}
		}
	}
	if n%fs.batch != 0 {
		recs = append(recs, b.NewRecordBatch())
	}
	return schema, recs
}

const testPolicy = `version: 1
subject: vin
opt_out: {file: optout.txt, form: clear, domain: optout}
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  ts: {coarsen: {time: 1h}}
  lat: drop
  lon: drop
  disc_temp_c: keep
  postcode: generalize
  owner_birth_year: generalize
  owner_sex: generalize
kanon:
  quasi_identifiers: [postcode, owner_birth_year, owner_sex]
  k: 5
  suppression: 0.1
  metric: loss
  hierarchies:
    postcode: {type: mask, max_masked: 4}
    owner_birth_year: {type: interval, width: 5, fan_out: 2, height: 3, origin: 1900, min: 1900, max: 2030}
    owner_sex: {type: mask, max_masked: 1}
mobility:
  time: ts
  lat: lat
  lon: lon
  trip_gap: 30m
  trim_metres: 200
  cell_resolution: 7
  cell_column: cell
  k: 3
  scope: subject
release:
  by: [cell, ts]
  epsilon: 1
  delta: 1e-6
  max_partitions: 10
  max_per_partition: 5
  count: true
  aggregates:
    - {column: disc_temp_c, kind: mean, lower: 0, upper: 500}
`

func writePolicy(t *testing.T, src string, optout ...string) *Policy {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), []byte("# opted out\n"+strings.Join(optout, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newKeyring(t *testing.T) *pseudonym.Keyring {
	t.Helper()
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kr.Destroy)
	return kr
}

func TestRunFullPolicy(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 60, trips: 4, readings: 20, batch: 500})
	rdr, err := array.NewRecordReader(schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	defer rdr.Release()
	p := writePolicy(t, testPolicy, vinOf(3), vinOf(7), "NOT-IN-DATA")
	kr := newKeyring(t)
	out, rel := &memSink{}, &memSink{}
	defer out.release()
	defer rel.release()
	r, err := NewRunner(Options{Policy: p, Keyring: kr, Mem: mem, Workers: 3, Release: sinkFor(rel), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), rdr, sinkFor(out))
	if err != nil {
		t.Fatal(err)
	}
	if !out.committed || !rel.committed {
		t.Fatal("sinks not committed")
	}
	// Row accounting.
	if err := rep.Rows.Check(); err != nil {
		t.Fatal(err)
	}
	if rep.Rows.In != 60*4*20 {
		t.Errorf("rows.in = %d, want %d", rep.Rows.In, 60*4*20)
	}
	if got := rep.Rows.FilteredBy["opt_out"]; got != 2*4*20 {
		t.Errorf("opt-out filtered %d rows, want %d", got, 2*4*20)
	}
	if rep.OptOut.Listed != 3 || rep.OptOut.Subjects != 2 {
		t.Errorf("opt-out report %+v, want 3 listed, 2 seen", rep.OptOut)
	}
	if rep.Rows.FilteredBy["trip_trim"] == 0 {
		t.Error("trip trimming removed nothing")
	}
	if out.rows() != rep.Rows.Out {
		t.Errorf("sink got %d rows, report says %d", out.rows(), rep.Rows.Out)
	}
	// Output: no clear VIN, no lat/lon, QIs generalised, k per subject holds.
	if out.schema.HasField("lat") || out.schema.HasField("lon") || !out.schema.HasField("cell") {
		t.Errorf("output schema %v", out.schema)
	}
	classes := map[string]map[string]bool{}
	for _, rec := range out.recs {
		vin := rec.Column(rec.Schema().FieldIndices("vin")[0])
		pc := rec.Column(rec.Schema().FieldIndices("postcode")[0])
		by := rec.Column(rec.Schema().FieldIndices("owner_birth_year")[0])
		sx := rec.Column(rec.Schema().FieldIndices("owner_sex")[0])
		for i := range int(rec.NumRows()) {
			v, _ := valueText(vin, i)
			if strings.HasPrefix(v, "WVW") {
				t.Fatalf("clear VIN %q in the output", v)
			}
			a, _ := valueText(pc, i)
			b, _ := valueText(by, i)
			c, _ := valueText(sx, i)
			key := a + "|" + b + "|" + c
			if classes[key] == nil {
				classes[key] = map[string]bool{}
			}
			classes[key][v] = true
		}
	}
	for key, subj := range classes {
		if len(subj) < 5 {
			t.Errorf("class %q has %d vehicles < k=5", key, len(subj))
		}
	}
	if rep.KAnon == nil || !rep.KAnon.Verified || rep.KAnon.K != 5 {
		t.Errorf("kanon report %+v", rep.KAnon)
	}
	if rep.DP == nil || rep.DP.EpsilonSpent <= 0 || rep.DP.EpsilonSpent > 1+1e-9 {
		t.Errorf("dp report %+v", rep.DP)
	}
	if rep.Risk == nil || rep.Risk.Before.Unicity == nil || rep.Risk.After.Prosecutor == nil || *rep.Risk.After.Prosecutor > 1.0/5+1e-9 {
		t.Errorf("risk report %+v", rep.Risk)
	}
	if len(rep.Keys) != 2 || rep.Keys["vin"] != kr.ActiveKeyID() {
		t.Errorf("keys %v", rep.Keys)
	}
	if len(rel.recs) != 1 {
		t.Errorf("release has %d batches", len(rel.recs))
	}
	// The report never contains the opted-out VINs or any clear VIN.
	var sb strings.Builder
	if err := rep.WriteJSON(&sb); err != nil {
		t.Fatal(err)
	}
	t.Log(sb.String())
	if strings.Contains(sb.String(), "WVW") {
		t.Error("report contains a clear VIN")
	}
	_ = math.Abs
}

// TestRunTripScope: under scope trip the vehicle is replaced by random trip
// ids, trimmed endpoints are detached (null trip id) instead of dropped, and
// trips whose trace fewer than trace_k vehicles share lose their id.
func TestRunTripScope(t *testing.T) {
	pol := strings.NewReplacer(
		"  vin: {pseudonymize: {method: hmac, domain: vin}}", "  vin: drop",
		"  scope: subject", "  scope: trip\n  trip_id_column: trip\n  endpoints: detach\n  trace_k: 2",
	).Replace(testPolicy)
	rep, out, err := runFleet(t, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Rows.Check(); err != nil {
		t.Fatal(err)
	}
	if rep.Rows.FilteredBy["trip_trim"] != 0 {
		t.Errorf("detached endpoints were dropped: %+v", rep.Rows)
	}
	if out.schema.HasField("vin") || !out.schema.HasField("trip") {
		t.Fatalf("output schema %v", out.schema)
	}
	if rep.Mobility.TraceK != 2 || rep.Mobility.RowsDetached == 0 {
		t.Errorf("mobility report %+v", rep.Mobility)
	}
	nulls := 0
	for _, rec := range out.recs {
		nulls += rec.Column(rec.Schema().FieldIndices("trip")[0]).NullN()
	}
	if nulls == 0 {
		t.Error("no detached rows in the output")
	}
	if rep.Risk.After.Unicity == nil || rep.KAnon == nil || !rep.KAnon.Verified {
		t.Errorf("risk %+v kanon %+v", rep.Risk, rep.KAnon)
	}
}
