package anonymize

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
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
		}, `row 308, column "vin": null subject`},
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
