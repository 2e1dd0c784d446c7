package anonymize

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/kanon"
)

// divPolicy publishes the owner attributes of a brake-disc fleet, k-anonymous
// per vehicle, with the owner's sex and the make beside them; %s is the l/t
// block (or nothing). Both are sensitive columns in these tests: attributes
// of the vehicle (one value per subject), as the Runner requires per subject.
const divPolicy = `version: 1
subject: vin
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  ts: drop
  lat: drop
  lon: drop
  speed_kmh: drop
  brake_pressure_bar: drop
  disc_temp_c: keep
  pad_wear_mm: drop
  make: keep
  model: drop
  model_year: generalize
  postcode: generalize
  owner_birth_year: generalize
  owner_sex: keep
kanon:
  quasi_identifiers: [model_year, postcode, owner_birth_year]
  k: 4
  suppression: 0.2
  metric: loss
%s  hierarchies:
    model_year: {type: interval, width: 5, fan_out: 2, height: 3, origin: 2000, min: 1990, max: 2030}
    postcode: {type: mask, max_masked: 4}
    owner_birth_year: {type: interval, width: 5, fan_out: 2, height: 3, origin: 1900, min: 1900, max: 2026}
`

var divQI = []string{"model_year", "postcode", "owner_birth_year"}

// runDiv runs policy over a brake-disc fleet of the given size. The
// allocator is checked for leaks whatever the outcome.
func runDiv(t *testing.T, policy string, vehicles int, rows int64, mod func(*brakedisc.Config)) (*Report, *memSink, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.BatchSize = vehicles, rows, 4096
	if mod != nil {
		mod(&cfg)
	}
	src, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	p := writePolicy(t, policy)
	out := &memSink{}
	t.Cleanup(out.release)
	r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem, Workers: 2, TempDir: t.TempDir()})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), src, sinkFor(out))
	if err == nil && rep.Rows.In != rep.Rows.Out+rep.Rows.Suppressed+rep.Rows.Filtered {
		t.Errorf("rows %+v do not add up", rep.Rows)
	}
	return rep, out, err
}

// members reduces written rows to one row per distinct (class, vehicle
// pseudonym): the members a per-subject model counts, with their make. The
// test's own reduction, by the text of the values; it shares no code with
// the Runner.
func members(t *testing.T, out *memSink, sens string) arrow.RecordBatch {
	t.Helper()
	fields := make([]arrow.Field, 0, len(divQI)+1)
	for _, q := range append(append([]string(nil), divQI...), sens) {
		fields = append(fields, arrow.Field{Name: q, Type: arrow.BinaryTypes.String})
	}
	b := array.NewRecordBuilder(memory.NewGoAllocator(), arrow.NewSchema(fields, nil))
	defer b.Release()
	seen := map[string]string{}
	for _, rec := range out.recs {
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				t.Fatalf("output has no column %q", name)
			}
			return rec.Column(idx[0])
		}
		vin, mk := col("vin"), col(sens)
		qi := make([]arrow.Array, len(divQI))
		for j, q := range divQI {
			qi[j] = col(q)
		}
		for i := range int(rec.NumRows()) {
			vals := make([]string, len(divQI))
			for j := range qi {
				vals[j] = qi[j].ValueStr(i)
			}
			key := strings.Join(vals, "\x1f") + "\x1e" + vin.ValueStr(i)
			m := mk.ValueStr(i)
			if prev, ok := seen[key]; ok {
				if prev != m {
					t.Fatalf("a vehicle has two values of %s in the output", sens)
				}
				continue
			}
			seen[key] = m
			for j, v := range vals {
				b.Field(j).(*array.StringBuilder).Append(v)
			}
			b.Field(len(divQI)).(*array.StringBuilder).Append(m)
		}
	}
	return b.NewRecordBatch()
}

// verifyMembers runs kanon.Verify over the members of the written rows.
func verifyMembers(t *testing.T, out *memSink, opts kanon.VerifyOptions) *kanon.VerifyReport {
	t.Helper()
	sens := ""
	if opts.LDiversity != nil {
		sens = opts.LDiversity.Sensitive
	} else {
		sens = opts.TCloseness.Sensitive
	}
	rec := members(t, out, sens)
	defer rec.Release()
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	opts.QuasiIdentifiers = divQI
	rep, err := kanon.Verify(context.Background(), rdr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRunnerLDiversityTCloseness: with k alone, the Runner writes classes
// whose vehicles all share one make (or whose makes are far from the
// fleet's); with an l or t block it generalises or suppresses further, and
// the written members pass kanon.Verify for the model. The same check
// fails on the k-only output, so it can fail.
func TestRunnerLDiversityTCloseness(t *testing.T) {
	const vehicles, rows = 200, 4000
	_, base, err := runDiv(t, fmt.Sprintf(divPolicy, ""), vehicles, rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := fleetMakes(t, vehicles, rows)
	cases := []struct {
		name  string
		block string
		l     *kanon.LDiversity
		t     *kanon.TCloseness
	}{
		{"distinct", "  l: {sensitive: owner_sex, l: 2, variant: distinct}\n", &kanon.LDiversity{Sensitive: "owner_sex", L: 2, Variant: kanon.LDistinct}, nil},
		{"entropy", "  l: {sensitive: make, l: 4, variant: entropy}\n", &kanon.LDiversity{Sensitive: "make", L: 4, Variant: kanon.LEntropy}, nil},
		{"recursive", "  l: {sensitive: owner_sex, l: 2, variant: recursive, c: 2}\n", &kanon.LDiversity{Sensitive: "owner_sex", L: 2, Variant: kanon.LRecursive, C: 2}, nil},
		{"distinct-make", "  l: {sensitive: make, l: 5, variant: distinct}\n", &kanon.LDiversity{Sensitive: "make", L: 5, Variant: kanon.LDistinct}, nil},
		{"t-equal", "  t: {sensitive: make, t: 0.3, distance: equal}\n", nil, &kanon.TCloseness{Sensitive: "make", T: 0.3, Distance: kanon.TEqual}},
		{"t-ordered", "  t: {sensitive: make, t: 0.2, distance: ordered}\n", nil, &kanon.TCloseness{Sensitive: "make", T: 0.2, Distance: kanon.TOrdered}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// t-closeness against the fleet's distribution of makes over
			// vehicles: what the search counted (no row is removed before
			// it in this policy, and each vehicle has one combination).
			opts := kanon.VerifyOptions{K: 4, LDiversity: c.l, TCloseness: c.t, MaxReported: 1}
			if c.t != nil {
				opts.Reference = ref
			}
			if got := verifyMembers(t, base, opts); got.OK() {
				t.Fatalf("k alone already satisfies %s: the test shows nothing", c.name)
			}
			rep, out, err := runDiv(t, fmt.Sprintf(divPolicy, c.block), vehicles, rows, nil)
			if err != nil {
				t.Fatal(err)
			}
			k := rep.KAnon
			if k == nil || !k.Verified || k.SensitiveCounted != "subjects" {
				t.Fatalf("kanon report %+v", k)
			}
			if (c.l != nil) != (k.LDiversity != nil) || (c.t != nil) != (k.TCloseness != nil) {
				t.Errorf("report l %+v t %+v", k.LDiversity, k.TCloseness)
			}
			if vr := verifyMembers(t, out, opts); !vr.OK() {
				t.Errorf("output fails %s: %d of %d classes, e.g. %+v", c.name, vr.Violations, vr.Classes, vr.Examples)
			}
			t.Logf("%s: transformation %v, %d classes, %d suppressed (%d for l/t), %d rows suppressed",
				c.name, k.Transformation, k.Classes, k.SuppressedClasses, k.DiversitySuppressedClasses, rep.Rows.Suppressed)
		})
	}
}

// fleetMakes counts vehicles per make in the raw fleet.
func fleetMakes(t *testing.T, vehicles int, rows int64) map[string]int64 {
	t.Helper()
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.BatchSize = vehicles, rows, 4096
	src, err := brakedisc.NewReader(cfg, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	seen := map[string]string{}
	for src.Next() {
		rec := src.RecordBatch()
		vin := rec.Column(rec.Schema().FieldIndices("vin")[0])
		mk := rec.Column(rec.Schema().FieldIndices("make")[0])
		for i := range int(rec.NumRows()) {
			seen[vin.ValueStr(i)] = mk.ValueStr(i)
		}
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	d := map[string]int64{}
	for _, m := range seen {
		d[m]++
	}
	return d
}

// TestDemoPolicyWithL: the example policy (mobility, cell-hour k, the settle
// fixed point) with an l block over the make. Distinct l-diversity counts
// values, so the written rows (which carry no vehicle id) can be checked
// row-wise with kanon.Verify.
func TestDemoPolicyWithL(t *testing.T) {
	policy := strings.Replace(string(brakedisc.DemoPolicy()), "  k: 10\n", "  k: 10\n  l: {sensitive: make, l: 3, variant: distinct}\n", 1)
	rep, out := runExamplePolicy(t, []byte(policy), 300, 30_000)
	if l := rep.KAnon.LDiversity; l == nil || l.Sensitive != "make" || l.L != 3 {
		t.Fatalf("report l %+v", l)
	}
	var recs []arrow.RecordBatch
	recs = append(recs, out.recs...)
	rdr, err := array.NewRecordReader(out.schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	vr, err := kanon.Verify(context.Background(), rdr, kanon.VerifyOptions{QuasiIdentifiers: []string{"model_year", "postcode", "owner_birth_year", "owner_sex"},
		K: 2, LDiversity: &kanon.LDiversity{Sensitive: "make", L: 3, Variant: kanon.LDistinct}})
	if err != nil {
		t.Fatal(err)
	}
	if !vr.OK() {
		t.Errorf("written rows fail distinct 3-diversity of make: %+v", vr.Examples)
	}
	t.Logf("transformation %v, %d classes, %d suppressed (%d for l), settle rounds in report %+v", rep.KAnon.Transformation, rep.KAnon.Classes,
		rep.KAnon.SuppressedClasses, rep.KAnon.DiversitySuppressedClasses, rep.Rows)
}
