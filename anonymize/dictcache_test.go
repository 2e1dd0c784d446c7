package anonymize

import (
	"context"
	"maps"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// TestDictionaryReuse: batches that share a dictionary (as Parquet row-group
// batches do) reuse per-dictionary results, and the results are the same as
// computing each value afresh; a different dictionary is not mistaken for it.
func TestDictionaryReuse(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: dt}, {Name: "postcode", Type: dt}}, nil)
	mk := func(vins, pcs []string) arrow.RecordBatch {
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		for i := range vins {
			b.Field(0).(*array.BinaryDictionaryBuilder).AppendString(vins[i])
			b.Field(1).(*array.BinaryDictionaryBuilder).AppendString(pcs[i])
		}
		return b.NewRecordBatch()
	}
	whole := mk([]string{"A", "B", "C", "A", "B", "C"}, []string{"80331", "80333", "81234", "80331", "80333", "81234"})
	// Two slices share the dictionary; a third batch has different values
	// under the same dictionary positions.
	recs := []arrow.RecordBatch{whole.NewSlice(0, 3), whole.NewSlice(3, 6), mk([]string{"C", "B", "A"}, []string{"81234", "80333", "80331"}), mk([]string{"X", "Y", "Z"}, []string{"10115", "10117", "10119"})}
	whole.Release()
	rdr, _ := array.NewRecordReader(schema, recs)
	for _, r := range recs {
		r.Release()
	}
	defer rdr.Release()
	p := writePolicy(t, `version: 1
subject: vin
opt_out: {file: optout.txt, form: clear, domain: optout}
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  postcode: {mask: {keep_prefix: 2}}
`, "Y")
	kr := newKeyring(t)
	h, _ := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "vin"})
	defer h.Destroy()
	out := &memSink{}
	defer out.release()
	r, err := NewRunner(Options{Policy: p, Keyring: kr, Mem: mem, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), rdr, sinkFor(out))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows.Filtered != 1 || rep.Rows.Out != 11 {
		t.Fatalf("rows %+v", rep.Rows)
	}
	// The output order is random (no time bucket): compare the rows as a
	// multiset.
	want := map[[2]string]int{}
	for i, v := range []string{"A", "B", "C", "A", "B", "C", "C", "B", "A", "X", "Z"} {
		want[[2]string{h.Pseudonym([]byte(v)), []string{"80***", "80***", "81***", "80***", "80***", "81***", "81***", "80***", "80***", "10***", "10***"}[i]}]++
	}
	got := map[[2]string]int{}
	for _, rec := range out.recs {
		for i := range int(rec.NumRows()) {
			v, _ := valueText(rec.Column(0), i)
			pc, _ := valueText(rec.Column(1), i)
			got[[2]string{v, pc}]++
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("rows (pseudonym, postcode): got %v, want %v", got, want)
	}
}
