package anonymize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

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
	// policy.yaml:6:14: columns.postcode.generalise: unknown action "generalise" (want one of keep, drop, pseudonymize, dateshift, generalize, coarsen, mask, microaggregate)
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

// Drive a Runner's steps by hand, as an engine that schedules the passes
// itself does (the Beam pipeline runs them on workers): opt-out filter,
// column actions, then the k-anonymity search over the (quasi-identifier
// combination, subject) pairs the engine gathered, and generalisation to
// the levels the search chose. Six vehicles, one of which opted out; the
// five left are 2-anonymous once postcodes lose their last digit (level 1)
// and birth years are grouped by decade (level 2: five-year bands would
// split 1961 from 1967 and 1988 from 1982 and 1984).
func ExampleSteps() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "optout.txt"), []byte("VIN-F\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(`version: 1
subject: vin
opt_out: {file: optout.txt, form: clear, domain: optout}
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  postcode: generalize
  birth_year: generalize
  speed: keep
kanon:
  quasi_identifiers: [postcode, birth_year]
  k: 2
  metric: loss
  hierarchies:
    postcode: {type: mask, max_masked: 5}
    birth_year: {type: interval, width: 5, fan_out: 2, height: 3, origin: 1900, min: 1900, max: 2030}
`), 0o600)
	p, err := anonymize.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	kr, _ := pseudonym.NewKeyring() // pseudonyms are random per keyring: only counts are printed
	defer kr.Destroy()
	mem := memory.NewGoAllocator()
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Mem: mem})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	schema := arrow.NewSchema([]arrow.Field{
		{Name: "vin", Type: arrow.BinaryTypes.String},
		{Name: "postcode", Type: arrow.BinaryTypes.String},
		{Name: "birth_year", Type: arrow.PrimitiveTypes.Int64},
		{Name: "speed", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"VIN-A", "VIN-B", "VIN-C", "VIN-D", "VIN-E", "VIN-F", "VIN-A"}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"80331", "80336", "81541", "81549", "81543", "80331", "80331"}, nil)
	b.Field(2).(*array.Int64Builder).AppendValues([]int64{1961, 1967, 1982, 1988, 1984, 1961, 1961}, nil)
	b.Field(3).(*array.Float64Builder).AppendValues([]float64{50, 60, 70, 80, 90, 100, 55}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	st, err := r.Steps(schema)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	kept, removed, err := st.OptOut(ctx, rec, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kept.Release()
	tr, err := st.Transform(ctx, kept, 0) // no mobility block: the input batch
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Release()
	fmt.Printf("rows %d, opted out %d, kept %d\n", rec.NumRows(), len(removed), tr.NumRows())

	// Gather one combination per (quasi-identifiers, subject) pair; an
	// engine would do this on its workers and shuffle the pairs.
	col := func(rec arrow.RecordBatch, name string) arrow.Array {
		return rec.Column(rec.Schema().FieldIndices(name)[0])
	}
	seen := map[string]bool{}
	var combos []anonymize.KAnonCombo
	for i := range int(tr.NumRows()) {
		var c anonymize.KAnonCombo
		for _, q := range p.KAnon.QuasiIdentifiers {
			v, _ := anonymize.ValueText(col(tr, q), i)
			c.Values = append(c.Values, v)
		}
		c.Subject, _ = anonymize.ValueText(col(tr, "vin"), i)
		if k := fmt.Sprint(c.Values, c.Subject); !seen[k] {
			seen[k] = true
			combos = append(combos, c)
		}
	}
	d, err := st.KAnonSearch(combos)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("pairs:", len(combos), "levels:", d.Transformation, "suppressed classes:", len(d.Suppressed))

	// Generalise to the chosen levels and count subjects per written class.
	classes := map[string]map[string]bool{}
	gen := make([]arrow.Array, len(d.QuasiIdentifiers))
	for j, q := range d.QuasiIdentifiers {
		if gen[j], err = st.Generalize(q, col(tr, q), d.Levels[j], 0); err != nil {
			fmt.Println(err)
			return
		}
		defer gen[j].Release()
	}
	for i := range int(tr.NumRows()) {
		var key []string
		for _, g := range gen {
			v, _ := anonymize.ValueText(g, i)
			key = append(key, v)
		}
		k := strings.Join(key, " ")
		if classes[k] == nil {
			classes[k] = map[string]bool{}
		}
		v, _ := anonymize.ValueText(col(tr, "vin"), i)
		classes[k][v] = true
	}
	names := make([]string, 0, len(classes))
	for k := range classes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("class %s: %d vehicles\n", k, len(classes[k]))
	}
	// Output:
	// rows 7, opted out 1, kept 6
	// pairs: 5 levels: map[birth_year:2 postcode:1] suppressed classes: 0
	// class 8033* 1960-1969: 2 vehicles
	// class 8154* 1980-1989: 3 vehicles
}
