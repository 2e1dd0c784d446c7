package arrowio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/arrowio"
)

// Create writes batches to a temporary file and renames it into place on
// Commit; Open streams the batches back.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "arrowio-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "speeds.parquet")

	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "make", Type: arrow.BinaryTypes.String},
		{Name: "speed_kmh", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"BMW", "VW", "BMW"}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{48.5, 120, 0}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	sink, err := arrowio.Create(path, schema, arrowio.CreateOptions{Mem: mem})
	if err != nil {
		log.Fatal(err)
	}
	if err := sink.Write(rec); err != nil {
		log.Fatal(err) // the temporary file is already gone
	}
	if err := sink.Commit(); err != nil {
		log.Fatal(err)
	}

	src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{Mem: mem})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for src.Next() {
		batch := src.RecordBatch()
		// String columns come back dictionary-encoded.
		fmt.Println(batch.Schema().Field(0).Type, batch.NumRows())
	}
	if err := src.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// dictionary<values=utf8, indices=int32, ordered=false> 3
}

// Open reports malformed CSV with the file, row and column.
func ExampleOpen_csvError() {
	dir, err := os.MkdirTemp("", "arrowio-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "owners.csv")
	if err := os.WriteFile(path, []byte("birth_year,sex\n1970,F\n19x1,M\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{CSV: arrowio.CSVOptions{InferRows: 1}})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for src.Next() {
	}
	var ce *arrowio.CSVError
	if errors.As(src.Err(), &ce) {
		fmt.Println(filepath.Base(ce.File), "row", ce.Row, "column", ce.Column)
	}
	// Output:
	// owners.csv row 2 column birth_year
}

// Open with "-" reads an Arrow IPC stream from OpenOptions.Stdin (Create
// with "-" writes one to CreateOptions.Stdout), so commands can be piped.
func ExampleOpen() {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "pad_wear_mm", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{11.2, 9.8}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	var pipe bytes.Buffer
	sink, err := arrowio.Create("-", schema, arrowio.CreateOptions{Mem: mem, Stdout: &pipe})
	if err != nil {
		log.Fatal(err)
	}
	if err := sink.Write(rec); err != nil {
		log.Fatal(err)
	}
	if err := sink.Commit(); err != nil {
		log.Fatal(err)
	}

	src, err := arrowio.Open(context.Background(), "-", arrowio.OpenOptions{Mem: mem, Stdin: &pipe})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for src.Next() {
		fmt.Println(src.RecordBatch().Column(0))
	}
	// Output:
	// [11.2 9.8]
}

// CreateFile claims outputs before any work (a missing folder fails here,
// and so does a second writer of the same output); CommitAll puts them in
// place together or not at all.
func ExampleCommitAll() {
	dir, err := os.MkdirTemp("", "arrowio-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := arrowio.CreateFile(filepath.Join(dir, "no", "report.json")); err != nil {
		fmt.Println("refused: missing folder")
	}
	data, err := arrowio.CreateFile(filepath.Join(dir, "data.csv"))
	if err != nil {
		log.Fatal(err)
	}
	defer data.Abort() // a no-op once committed
	report, err := arrowio.CreateFile(filepath.Join(dir, "report.json"))
	if err != nil {
		log.Fatal(err)
	}
	defer report.Abort()
	fmt.Fprintln(data, "make,speed_kmh\nBMW,48.5")
	fmt.Fprintln(report, `{"rows": 1}`)
	if err := arrowio.CommitAll(context.Background(), data, report); err != nil {
		log.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fmt.Println(e.Name())
	}
	// Output:
	// refused: missing folder
	// data.csv
	// report.json
}

// CSV inference keeps a postcode with a leading zero as text (and warns);
// CSVOptions.Types declares some columns, here the postcode as text and the
// time at microseconds, and leaves the rest to inference.
func ExampleParseCSVTypes() {
	dir, err := os.MkdirTemp("", "arrowio-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "owners.csv")
	data := "postcode,ts,n\n01067,2026-03-02T10:00:00.000001Z,1\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		log.Fatal(err)
	}
	types, err := arrowio.ParseCSVTypes("postcode=string,ts=timestamp_us")
	if err != nil {
		log.Fatal(err)
	}
	src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{CSV: arrowio.CSVOptions{Types: types}})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for src.Next() {
		rec := src.RecordBatch()
		fmt.Println(rec.Column(0), rec.Schema().Field(1).Type, rec.Schema().Field(2).Type)
	}
	// Output:
	// ["01067"] timestamp[us, tz=UTC] int64
}
