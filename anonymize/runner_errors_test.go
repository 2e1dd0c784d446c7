package anonymize

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/pseudonym"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// runFleet runs policy over the test fleet with batches modified by mod.
func runFleet(t *testing.T, policy string, mod func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch) (*Report, *memSink, error) {
	return runFleetOpt(t, policy, mod, newKeyring(t), vinOf(1))
}

func runFleetOpt(t *testing.T, policy string, mod func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch, kr *pseudonym.Keyring, optout ...string) (*Report, *memSink, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 30, trips: 2, readings: 10, batch: 100})
	if mod != nil {
		recs = mod(mem, recs)
	}
	if len(recs) > 0 {
		schema = recs[0].Schema()
	}
	rdr, err := array.NewRecordReader(schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	defer rdr.Release()
	p := writePolicy(t, policy, optout...)
	out, rel := &memSink{}, &memSink{}
	t.Cleanup(out.release)
	t.Cleanup(rel.release)
	r, err := NewRunner(Options{Policy: p, Keyring: kr, Mem: mem, Workers: 2, Release: sinkFor(rel), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), rdr, sinkFor(out))
	return rep, out, err
}

const simplePolicy = `version: 1
subject: vin
opt_out: {file: optout.txt, form: clear, domain: optout}
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  ts: {dateshift: {domain: shift, max_days: 30}}
  lat: {coarsen: {degrees: 0.05}}
  lon: {coarsen: {degrees: 0.05}}
  disc_temp_c: keep
  postcode: {mask: {keep_prefix: 2}}
  owner_birth_year: {generalize: {hierarchy: {type: interval, width: 10, fan_out: 2, height: 2, min: 1900, max: 2030}, level: 1}}
  owner_sex: drop
`

func TestRunSinglePass(t *testing.T) {
	rep, out, err := runFleet(t, simplePolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Rows.Check(); err != nil {
		t.Fatal(err)
	}
	if rep.Rows.In != 600 || rep.Rows.Out != 580 || rep.Rows.Filtered != 20 {
		t.Errorf("rows %+v, want 600 in, 20 opted out", rep.Rows)
	}
	if rep.KAnon != nil || rep.DP != nil || rep.Mobility != nil {
		t.Error("absent stages have report blocks")
	}
	for _, rec := range out.recs {
		pc := rec.Column(rec.Schema().FieldIndices("postcode")[0])
		by := rec.Column(rec.Schema().FieldIndices("owner_birth_year")[0])
		for i := range int(rec.NumRows()) {
			if v, _ := valueText(pc, i); !strings.HasPrefix(v, "80") || !strings.HasSuffix(v, "***") {
				t.Fatalf("postcode %q not masked", v)
			}
			if v, _ := valueText(by, i); !strings.Contains(v, "-") {
				t.Fatalf("birth year %q not generalised", v)
			}
		}
	}
	if out.schema.HasField("owner_sex") {
		t.Error("dropped column written")
	}
}

// TestOptOutPseudonymForm: a list of pseudonyms matches the subjects whose
// pseudonym it names, and a clear VIN in such a list matches nothing.
func TestOptOutPseudonymForm(t *testing.T) {
	kr := newKeyring(t)
	h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "vin"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Destroy()
	pol := strings.Replace(simplePolicy, "form: clear", "form: pseudonym", 1)
	rep, _, err := runFleetOpt(t, pol, nil, kr, h.Pseudonym([]byte(vinOf(2))), vinOf(3))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows.FilteredBy["opt_out"] != 20 || rep.OptOut.Subjects != 1 || rep.OptOut.Listed != 2 {
		t.Errorf("rows %+v opt-out %+v: want one vehicle's 20 rows removed", rep.Rows, rep.OptOut)
	}
}

func TestRunErrorsAbort(t *testing.T) {
	tests := []struct {
		name string
		mod  func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch
		want string
	}{
		{"empty input", func(_ memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
			for _, r := range recs[1:] {
				r.Release()
			}
			s := recs[0].NewSlice(0, 0)
			recs[0].Release()
			return []arrow.RecordBatch{s}
		}, "no rows"},
		{"unnamed column", func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
			return addColumn(mem, recs, "mileage")
		}, `input column "mileage" is not named by the policy`},
		{"null subject in a later batch", func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
			return nullSubject(mem, recs, 3, 7)
		}, `anonymize: row 308, column "vin": null subject`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, err := runFleet(t, simplePolicy, tt.mod)
			if err == nil {
				t.Fatal("run succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if out.committed {
				t.Error("sink committed after an error")
			}
			if out.schema != nil && !out.aborted {
				t.Error("sink not aborted after an error")
			}
		})
	}
}

// TestKeysNeverInReport checks that no key byte sequence reaches the report.
func TestKeysNeverInReport(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 10, trips: 1, readings: 5, batch: 100})
	rdr, _ := array.NewRecordReader(schema, recs)
	for _, r := range recs {
		r.Release()
	}
	defer rdr.Release()
	kr := newKeyring(t)
	raw, err := kr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Keys []struct{ Key string } `json:"keys"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || len(file.Keys) == 0 {
		t.Fatalf("keyring encoding: %v", err)
	}
	out := &memSink{}
	defer out.release()
	r, err := NewRunner(Options{Policy: writePolicy(t, simplePolicy), Keyring: kr, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), rdr, sinkFor(out))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.WriteJSON(&sb)
	rep.WriteHTML(&sb)
	for _, k := range file.Keys {
		if strings.Contains(sb.String(), k.Key) {
			t.Fatal("report contains key material")
		}
	}
	if !strings.Contains(sb.String(), kr.ActiveKeyID()) {
		t.Error("report lacks the key id")
	}
}

func addColumn(mem memory.Allocator, recs []arrow.RecordBatch, name string) []arrow.RecordBatch {
	out := make([]arrow.RecordBatch, len(recs))
	for i, r := range recs {
		b := array.NewInt64Builder(mem)
		for range r.NumRows() {
			b.Append(1)
		}
		col := b.NewArray()
		b.Release()
		fields := append(r.Schema().Fields(), arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64})
		cols := append(append([]arrow.Array{}, r.Columns()...), col)
		out[i] = array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, r.NumRows())
		col.Release()
		r.Release()
	}
	return out
}

// nullSubject replaces the vin column of batch bi by a plain string column
// with a null at row ri.
func nullSubject(mem memory.Allocator, recs []arrow.RecordBatch, bi, ri int) []arrow.RecordBatch {
	r := recs[bi]
	vin := r.Column(0).(*array.Dictionary)
	b := array.NewDictionaryBuilder(mem, vin.DataType().(*arrow.DictionaryType)).(*array.BinaryDictionaryBuilder)
	for i := range vin.Len() {
		if i == ri {
			b.AppendNull()
			continue
		}
		v, _ := valueText(vin, i)
		b.AppendString(v)
	}
	col := b.NewArray()
	b.Release()
	cols := append([]arrow.Array{col}, r.Columns()[1:]...)
	recs[bi] = array.NewRecordBatch(r.Schema(), cols, r.NumRows())
	col.Release()
	r.Release()
	return recs
}

// kanonPolicy is testPolicy's kanon block without mobility and release:
// pass 1 counts the combinations of the input rows the opt-out keeps.
const kanonPolicy = `version: 1
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
`

// TestRunErrorFormat pins the format of errors about data (package rowerr:
// `row N, column "x": …`, rows counted from 1 as data rows) and of the
// layers' prefixes: the Runner adds "anonymize: " once, each stage what it
// was doing, and no package's name comes twice. The bad value sits at data
// row 351 (batch 4, the 51st row), after rows of the opted-out vehicle in
// the batches before and in its own: the row must be the input's, not a
// count after the opt-out.
func TestRunErrorFormat(t *testing.T) {
	const bi, ri, row = 3, 50, 351
	tests := []struct {
		name   string
		policy string
		mod    func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch
		want   string // the whole message
		row    int64  // the rowerr.Error's row (0: none)
		column string
		is     error // a sentinel errors.Is must reach, if any
	}{
		{"null subject", simplePolicy,
			func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
				return nullSubject(mem, recs, bi, ri)
			},
			`anonymize: row 351, column "vin": null subject`, row, "vin", nil},
		{"bad coarsen value", simplePolicy,
			func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
				return setFloat(mem, recs, 2, bi, ri, math.NaN())
			},
			`anonymize: row 351, column "lat": NaN is not a coordinate in degrees (want -180 to 180)`, row, "lat", nil},
		{"null quasi-identifier", kanonPolicy,
			func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
				return nullColumn(mem, recs, 5, bi, ri)
			},
			`anonymize: row 351, column "postcode": null value in a quasi-identifier or subject`, row, "postcode", nil},
		// The search checks the values it counted before kanon's histogram
		// does (which would name a row of the histogram, no data row).
		{"value outside the hierarchy", kanonPolicy,
			func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
				return setInt(mem, recs, 6, bi, ri, 2500)
			},
			`anonymize: column "owner_birth_year": "2500" (interval hierarchy covers numbers in [1900,2030]): value not in hierarchy`, 0, "owner_birth_year", kanon.ErrValueNotInHierarchy},
		{"coordinate out of range", testPolicy,
			func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
				return setFloat(mem, recs, 2, bi, ri, 95)
			},
			`anonymize: trips: mobility.Segmenter.Push: row 351, column "lat": latitude 95 out of range [-90, 90]`, row, "lat", nil},
		// Trips regroup the rows: a trip's row has no data row number.
		{"null quasi-identifier in a trip", testPolicy,
			func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
				return nullColumn(mem, recs, 5, bi, ri)
			},
			`anonymize: column "postcode": null value in a quasi-identifier or subject (in a trip's row: trips regroup the input, so there is no data row number)`, 0, "postcode", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, err := runFleet(t, tt.policy, tt.mod)
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
			var re *rowerr.Error
			if !errors.As(err, &re) || re.Row != tt.row || re.Column != tt.column {
				t.Errorf("errors.As finds %+v, want row %d, column %q", re, tt.row, tt.column)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) is false", tt.is)
			}
			for _, twice := range []string{"anonymize: anonymize", "kanon: kanon", "mobility: mobility"} {
				if strings.Contains(err.Error(), twice) {
					t.Errorf("%q in %q", twice, err)
				}
			}
			if out.committed {
				t.Error("output committed after an error")
			}
		})
	}
}

// TestPolicyErrorChain: a hierarchy file the policy names is malformed;
// NewRunner's *PolicyError names the policy key and keeps the cause, so
// errors.Is reaches kanon's sentinel.
func TestPolicyErrorChain(t *testing.T) {
	pol := strings.Replace(kanonPolicy, "postcode: {type: mask, max_masked: 4}", "postcode: {type: table, file: postcode.csv}", 1)
	p := writePolicy(t, pol)
	// Two rows of different depth.
	if err := os.WriteFile(p.Resolve("postcode.csv"), []byte("80331;8033*;*\n80333;*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t)})
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Path != "kanon.hierarchies.postcode.file" {
		t.Fatalf("error %v (%T): want a *PolicyError at kanon.hierarchies.postcode.file", err, err)
	}
	if !errors.Is(err, kanon.ErrBadHierarchy) {
		t.Errorf("errors.Is(%q, kanon.ErrBadHierarchy) is false", err)
	}
}

// setFloat sets the float64 column ci of batch bi at row ri to v.
func setFloat(mem memory.Allocator, recs []arrow.RecordBatch, ci, bi, ri int, v float64) []arrow.RecordBatch {
	r := recs[bi]
	c := r.Column(ci).(*array.Float64)
	b := array.NewFloat64Builder(mem)
	for i, x := range c.Float64Values() {
		if i == ri {
			x = v
		}
		b.Append(x)
	}
	return replaceColumn(recs, bi, ci, b)
}

// setInt sets the int64 column ci of batch bi at row ri to v.
func setInt(mem memory.Allocator, recs []arrow.RecordBatch, ci, bi, ri int, v int64) []arrow.RecordBatch {
	r := recs[bi]
	c := r.Column(ci).(*array.Int64)
	b := array.NewInt64Builder(mem)
	for i, x := range c.Int64Values() {
		if i == ri {
			x = v
		}
		b.Append(x)
	}
	return replaceColumn(recs, bi, ci, b)
}

// replaceColumn replaces column ci of batch bi by what b holds.
func replaceColumn(recs []arrow.RecordBatch, bi, ci int, b array.Builder) []arrow.RecordBatch {
	r := recs[bi]
	col := b.NewArray()
	b.Release()
	cols := append([]arrow.Array(nil), r.Columns()...)
	cols[ci] = col
	recs[bi] = array.NewRecordBatch(r.Schema(), cols, r.NumRows())
	col.Release()
	r.Release()
	return recs
}
