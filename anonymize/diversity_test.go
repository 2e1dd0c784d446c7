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

// TestDemoPolicyWithL: the policy with owner columns beside trips
// (mobility, cell-hour k, the settle fixed point) with an l block over the
// make. Distinct l-diversity counts
// values, so the written rows (which carry no vehicle id) can be checked
// row-wise with kanon.Verify.
func TestDemoPolicyWithL(t *testing.T) {
	policy := strings.Replace(string(brakedisc.AttributesPolicy()), "  k: 10\n", "  k: 10\n  l: {sensitive: make, l: 3, variant: distinct}\n", 1)
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

// TestDiversityPolicyErrors: bad l/t blocks fail at parse time, naming the
// key and the column.
func TestDiversityPolicyErrors(t *testing.T) {
	withBlock := func(block string) string { return fmt.Sprintf(divPolicy, block) }
	tests := []struct {
		name, src, wantKey, wantMsg string
	}{
		{"l missing sensitive", withBlock("  l: {l: 2, variant: distinct}\n"), "kanon.l.sensitive", "missing sensitive column"},
		{"l unknown column", withBlock("  l: {sensitive: colour, l: 2, variant: distinct}\n"), "kanon.l.sensitive", `"colour" must be named under columns`},
		{"l on a quasi-identifier", withBlock("  l: {sensitive: postcode, l: 2, variant: distinct}\n"), "kanon.l.sensitive", `"postcode" must be named under columns and not be a quasi-identifier`},
		{"l on the subject", withBlock("  l: {sensitive: vin, l: 2, variant: distinct}\n"), "kanon.l.sensitive", `"vin" is the subject`},
		{"l on a dropped column", withBlock("  l: {sensitive: model, l: 2, variant: distinct}\n"), "kanon.l.sensitive", `"model" is dropped`},
		{"l below 2", withBlock("  l: {sensitive: make, l: 1, variant: distinct}\n"), "kanon.l.l", "l must be >= 2"},
		{"l bad variant", withBlock("  l: {sensitive: make, l: 2, variant: shannon}\n"), "kanon.l.variant", `variant "shannon"`},
		{"l recursive without c", withBlock("  l: {sensitive: make, l: 2, variant: recursive}\n"), "kanon.l.c", "needs c > 0"},
		{"t missing sensitive", withBlock("  t: {t: 0.2, distance: equal}\n"), "kanon.t.sensitive", "missing sensitive column"},
		{"t on a quasi-identifier", withBlock("  t: {sensitive: model_year, t: 0.2, distance: equal}\n"), "kanon.t.sensitive", "not be a quasi-identifier"},
		{"t out of range", withBlock("  t: {sensitive: make, t: 1.5, distance: equal}\n"), "kanon.t.t", "t must be in (0, 1)"},
		{"t bad distance", withBlock("  t: {sensitive: make, t: 0.2, distance: hierarchical}\n"), "kanon.t.distance", `distance "hierarchical"`},
		{"l and t on different columns", withBlock("  l: {sensitive: make, l: 2, variant: distinct}\n  t: {sensitive: owner_sex, t: 0.2, distance: equal}\n"), "kanon.t.sensitive", `"owner_sex" differs from kanon.l's "make"`},
		{"t ordered on pseudonyms", strings.Replace(withBlock("  t: {sensitive: make, t: 0.2, distance: ordered}\n"), "make: keep", "make: {pseudonymize: {method: hmac, domain: make}}", 1), "kanon.t.distance", "no order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("ParsePolicy succeeded, want error")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantKey) || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q: want %q and %q", msg, tt.wantKey, tt.wantMsg)
			}
		})
	}
	// A pseudonymised sensitive column keeps values apart: equal-distance
	// t and l are accepted on it.
	ok := strings.Replace(withBlock("  l: {sensitive: make, l: 2, variant: distinct}\n  t: {sensitive: make, t: 0.4, distance: equal}\n"),
		"make: keep", "make: {pseudonymize: {method: hmac, domain: make}}", 1)
	if _, err := ParsePolicy("p.yaml", []byte(ok)); err != nil {
		t.Errorf("l and equal t on a pseudonymised column: %v", err)
	}
}

// fleetLPolicy runs l-diversity of owner_sex over the test fleet of
// runFleet (owner attributes constant per vehicle).
const fleetLPolicy = `version: 1
subject: vin
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  ts: drop
  lat: drop
  lon: drop
  disc_temp_c: keep
  postcode: generalize
  owner_birth_year: generalize
  owner_sex: keep
kanon:
  quasi_identifiers: [postcode, owner_birth_year]
  k: 3
  suppression: 0.5
  metric: loss
  l: {sensitive: owner_sex, l: 2, variant: distinct}
  hierarchies:
    postcode: {type: mask, max_masked: 5}
    owner_birth_year: {type: interval, width: 10, fan_out: 2, height: 3, min: 1900, max: 2030}
`

// TestDiversityRunErrors: data the models cannot judge fails the run with
// an error naming the column and the row, and commits nothing.
func TestDiversityRunErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T) (*memSink, error)
		want []string
	}{
		// A per-reading value is not an attribute of the vehicle: counting
		// each vehicle once needs one value per vehicle.
		{"per-reading sensitive", func(t *testing.T) (*memSink, error) {
			_, out, err := runDiv(t, fmt.Sprintf(divPolicy, "  l: {sensitive: disc_temp_c, l: 2, variant: distinct}\n"), 50, 2000, nil)
			return out, err
		}, []string{`kanon: row `, `column "disc_temp_c": the subject of this row has another value`, "one value per subject"}},
		{"null sensitive in a later batch", func(t *testing.T) (*memSink, error) {
			_, out, err := runFleet(t, fleetLPolicy, func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
				return nullColumn(mem, recs, 7, 2, 5)
			})
			return out, err
		}, []string{`row 206, column "owner_sex": null value in the sensitive column`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.run(t)
			if err == nil {
				t.Fatal("run succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want %q", err, w)
				}
			}
			if out != nil && out.committed {
				t.Error("output committed after the error")
			}
		})
	}
	// The same policy without the null runs and is verified.
	rep, _, err := runFleet(t, fleetLPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.KAnon.Verified || rep.KAnon.LDiversity == nil {
		t.Errorf("kanon report %+v", rep.KAnon)
	}
}

// nullColumn replaces the string dictionary column ci of batch bi by a copy
// with row ri null.
func nullColumn(mem memory.Allocator, recs []arrow.RecordBatch, ci, bi, ri int) []arrow.RecordBatch {
	r := recs[bi]
	c := r.Column(ci).(*array.Dictionary)
	b := array.NewDictionaryBuilder(mem, c.DataType().(*arrow.DictionaryType)).(*array.BinaryDictionaryBuilder)
	for i := range c.Len() {
		if i == ri {
			b.AppendNull()
			continue
		}
		v, _ := valueText(c, i)
		b.AppendString(v)
	}
	col := b.NewArray()
	b.Release()
	cols := append([]arrow.Array(nil), r.Columns()...)
	cols[ci] = col
	recs[bi] = array.NewRecordBatch(r.Schema(), cols, r.NumRows())
	col.Release()
	r.Release()
	return recs
}

// TestDiversitySettleRound: the decision a settle round makes on the rows
// that survived cell-hour suppression: classes that still have k members
// but lost their diversity (or moved away from the searched distribution)
// are suppressed; classes already suppressed are not counted again.
func TestDiversitySettleRound(t *testing.T) {
	type row struct{ q, subj, s string }
	tests := []struct {
		name       string
		l          *kanon.LDiversity
		tc         *kanon.TCloseness
		ref        map[string]int64
		rows       []row
		suppressed []string // before the round
		want       []string // suppressed after (class keys without the trailing \x00)
		wantErr    string
	}{
		{"distinct", &kanon.LDiversity{Sensitive: "s", L: 2, Variant: kanon.LDistinct}, nil, nil,
			// a: two vehicles, both A (and one of them twice); b: A and B.
			[]row{{"a", "v1", "A"}, {"a", "v1", "A"}, {"a", "v2", "A"}, {"b", "v3", "A"}, {"b", "v4", "B"}},
			nil, []string{"a"}, ""},
		{"already suppressed", &kanon.LDiversity{Sensitive: "s", L: 2, Variant: kanon.LDistinct}, nil, nil,
			[]row{{"a", "v1", "A"}, {"a", "v2", "A"}, {"b", "v3", "A"}, {"b", "v4", "B"}},
			[]string{"a"}, []string{"a"}, ""},
		{"t against the searched distribution", nil, &kanon.TCloseness{Sensitive: "s", T: 0.3, Distance: kanon.TEqual},
			map[string]int64{"A": 1, "B": 1},
			// a: A, A (distance 0.5; 0.25 from the rows' own distribution,
			// which would pass); b: A, B (0).
			[]row{{"a", "v1", "A"}, {"a", "v2", "A"}, {"b", "v3", "A"}, {"b", "v4", "B"}},
			nil, []string{"a"}, ""},
		{"two values of one vehicle in a class", &kanon.LDiversity{Sensitive: "s", L: 2, Variant: kanon.LDistinct}, nil, nil,
			[]row{{"a", "v1", "A"}, {"a", "v1", "B"}},
			nil, nil, `row 2, column "s": the subject of this row has another value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			a := &kanonAcc{pol: &KAnonPolicy{K: 2}, qi: []string{"q"}, qiIdx: []int{0}, subjIdx: 1, perSubject: true}
			kr := &kanonResult{a: a, hier: []kanon.Hierarchy{kanon.MaskHierarchy{MaxMasked: 1}}, levels: []int{0},
				suppressed: map[string]bool{}, alloc: mem}
			for _, c := range tt.suppressed {
				kr.suppressed[c+"\x00"] = true
			}
			d := &divAcc{k: 2, col: "s", idx: 2, perSubject: true, l: tt.l, t: tt.tc, ref: tt.ref, vals: newInterner()}
			// As pass 1 and the settle round see the rows: ids from the row
			// keys, each subject's value checked once (recordSubject), the
			// members counted by their generalised class (the mask
			// hierarchy at level 0 keeps q).
			c := d.keyCollector(kr)
			subjects := newInterner()
			var err error
			for i, r := range tt.rows {
				s, v := subjects.id(r.subj), d.vals.id(r.s)
				if err = d.recordSubject(s, v, int64(i+1)); err != nil {
					break
				}
				c.addMember(r.q+"\x00", s, v)
			}
			var added int
			if err == nil {
				added, err = c.decide()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for cls := range kr.suppressed {
				got = append(got, strings.TrimSuffix(cls, "\x00"))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("suppressed %v, want %v", got, tt.want)
			}
			if added != len(tt.want)-len(tt.suppressed) || d.extra != added {
				t.Errorf("added %d (extra %d), want %d", added, d.extra, len(tt.want)-len(tt.suppressed))
			}
		})
	}
}

// TestRunnerDiversityRows: with per_subject false every row is a member
// (ARX's model), so the written rows themselves must pass kanon.Verify, with
// t-closeness against the rows' distribution in the input.
func TestRunnerDiversityRows(t *testing.T) {
	const vehicles, rows = 200, 4000
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.BatchSize = vehicles, rows, 4096
	src, err := brakedisc.NewReader(cfg, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	ref := map[string]int64{}
	for src.Next() {
		rec := src.RecordBatch()
		mk := rec.Column(rec.Schema().FieldIndices("make")[0])
		for i := range int(rec.NumRows()) {
			ref[mk.ValueStr(i)]++
		}
	}
	src.Release()
	tests := []struct {
		name  string
		block string
		opts  kanon.VerifyOptions
	}{
		{"entropy", "  per_subject: false\n  l: {sensitive: make, l: 4, variant: entropy}\n",
			kanon.VerifyOptions{LDiversity: &kanon.LDiversity{Sensitive: "make", L: 4, Variant: kanon.LEntropy}}},
		{"t-ordered", "  per_subject: false\n  t: {sensitive: make, t: 0.15, distance: ordered}\n",
			kanon.VerifyOptions{TCloseness: &kanon.TCloseness{Sensitive: "make", T: 0.15, Distance: kanon.TOrdered}, Reference: ref}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, out, err := runDiv(t, fmt.Sprintf(divPolicy, tt.block), vehicles, rows, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k := rep.KAnon; !k.Verified || k.PerSubject || k.SensitiveCounted != "rows" {
				t.Fatalf("kanon report %+v", k)
			}
			rdr, err := array.NewRecordReader(out.schema, out.recs)
			if err != nil {
				t.Fatal(err)
			}
			defer rdr.Release()
			o := tt.opts
			o.QuasiIdentifiers, o.K = divQI, 4
			vr, err := kanon.Verify(context.Background(), rdr, o)
			if err != nil {
				t.Fatal(err)
			}
			if !vr.OK() {
				t.Errorf("written rows fail %s: %d of %d classes, e.g. %+v", tt.name, vr.Violations, vr.Classes, vr.Examples)
			}
			t.Logf("%s: transformation %v, %d classes, %d suppressed (%d for l/t)", tt.name, rep.KAnon.Transformation, rep.KAnon.Classes,
				rep.KAnon.SuppressedClasses, rep.KAnon.DiversitySuppressedClasses)
		})
	}
}

// TestDiversitySubjectInTwoClasses: a vehicle whose postcode changes half
// way is a member of two raw combinations (the search counts it twice, the
// Runner's decision and check once per class); the run still writes only
// members that pass l, counted per (class, vehicle).
func TestDiversitySubjectInTwoClasses(t *testing.T) {
	rep, out, err := runFleet(t, fleetLPolicy, func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
		// Batches 3-5 hold the second trip; vehicles 0-9 move there.
		for bi := 3; bi < len(recs); bi++ {
			recs = mapColumn(mem, recs, 5, bi, func(ri int, v string) string {
				if (bi*100+ri)%30 < 10 {
					return "80999"
				}
				return v
			})
		}
		return recs
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.KAnon.Verified {
		t.Fatalf("kanon report %+v", rep.KAnon)
	}
	// Members per (class, vehicle), checked by the test's own grouping.
	seen := map[string]map[string]bool{} // class → sexes
	vehicles := map[string]map[string]bool{}
	for _, rec := range out.recs {
		pc := rec.Column(rec.Schema().FieldIndices("postcode")[0])
		by := rec.Column(rec.Schema().FieldIndices("owner_birth_year")[0])
		sx := rec.Column(rec.Schema().FieldIndices("owner_sex")[0])
		vin := rec.Column(rec.Schema().FieldIndices("vin")[0])
		for i := range int(rec.NumRows()) {
			cls := pc.ValueStr(i) + "|" + by.ValueStr(i)
			if seen[cls] == nil {
				seen[cls], vehicles[cls] = map[string]bool{}, map[string]bool{}
			}
			seen[cls][sx.ValueStr(i)] = true
			vehicles[cls][vin.ValueStr(i)] = true
		}
	}
	for cls, s := range seen {
		if len(s) < 2 || len(vehicles[cls]) < 3 {
			t.Errorf("class %s: %d sexes, %d vehicles", cls, len(s), len(vehicles[cls]))
		}
	}
	t.Logf("%d classes, transformation %v, %d suppressed rows", len(seen), rep.KAnon.Transformation, rep.Rows.Suppressed)
}

// mapColumn replaces the string dictionary column ci of batch bi by fn of
// its values.
func mapColumn(mem memory.Allocator, recs []arrow.RecordBatch, ci, bi int, fn func(ri int, v string) string) []arrow.RecordBatch {
	r := recs[bi]
	c := r.Column(ci).(*array.Dictionary)
	b := array.NewDictionaryBuilder(mem, c.DataType().(*arrow.DictionaryType)).(*array.BinaryDictionaryBuilder)
	for i := range c.Len() {
		v, _ := valueText(c, i)
		b.AppendString(fn(i, v))
	}
	col := b.NewArray()
	b.Release()
	cols := append([]arrow.Array(nil), r.Columns()...)
	cols[ci] = col
	recs[bi] = array.NewRecordBatch(r.Schema(), cols, r.NumRows())
	col.Release()
	r.Release()
	return recs
}
