package anonymize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// A policy error names the file, line and column of the offending key.
func ExampleParsePolicy() {
	_, err := anonymize.ParsePolicy("policy.yaml", []byte(`version: 1
subject: vin
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  speed: {keep: }
  postcode: {generalise: {level: 1}}
`))
	fmt.Println(err)
	// Output:
	// policy.yaml:6:14: columns.postcode.generalise: unknown action "generalise" (want one of keep, drop, pseudonymize, dateshift, generalize, coarsen, mask)
}

// sliceSink collects the output in memory.
type sliceSink struct{ rows int64 }

func (s *sliceSink) Write(rec arrow.RecordBatch) error { s.rows += rec.NumRows(); return nil }
func (s *sliceSink) Commit() error                     { return nil }
func (s *sliceSink) Abort() error                      { return nil }

// Run a policy over an array.RecordReader: here three readings of two
// vehicles, one of which opted out.
func ExampleRunner_Run() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "optout.txt"), []byte("VIN-B\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(`version: 1
subject: vin
opt_out: {file: optout.txt, form: clear, domain: optout}
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  speed: keep
`), 0o600)
	p, err := anonymize.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	kr, _ := pseudonym.NewKeyring()
	defer kr.Destroy()

	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: arrow.BinaryTypes.String}, {Name: "speed", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"VIN-A", "VIN-B", "VIN-A"}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{50, 60, 70}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	rdr, _ := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	defer rdr.Release()

	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Mem: mem})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	out := &sliceSink{}
	rep, err := r.Run(context.Background(), rdr, func(*arrow.Schema) (anonymize.Sink, error) { return out, nil })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("in %d, out %d, filtered %d (opt-out %d)\n", rep.Rows.In, rep.Rows.Out, rep.Rows.Filtered, rep.OptOut.Rows)
	fmt.Println("vin:", rep.Columns["vin"])
	// Output:
	// in 3, out 2, filtered 1 (opt-out 1)
	// vin: pseudonymize
}
