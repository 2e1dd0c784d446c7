package brakedisc_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// NewReader streams the fleet batch by batch; rows of different vehicles
// arrive interleaved in time order.
func ExampleNewReader() {
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.BatchSize = 100, 10_000, 4096

	rr, err := brakedisc.NewReader(cfg, memory.NewGoAllocator())
	if err != nil {
		log.Fatal(err)
	}
	defer rr.Release()
	var rows int64
	var vinOK = true
	for rr.Next() {
		rec := rr.RecordBatch()
		rows += rec.NumRows()
		vins := rec.Column(0).(*array.Dictionary)
		dict := vins.Dictionary().(*array.String)
		for i := 0; i < vins.Len(); i++ {
			vinOK = vinOK && pseudonym.ValidVINCheckDigit(dict.Value(vins.GetValueIndex(i)))
		}
	}
	if err := rr.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(rows, "rows;", "columns:", rr.Schema().NumFields(), "; VIN check digits valid:", vinOK)
	// Output:
	// 10000 rows; columns: 14 ; VIN check digits valid: true
}

// WriteFile writes the fleet to Parquet (or .arrow, .csv); the file
// appears only when complete.
func ExampleWriteFile() {
	dir, err := os.MkdirTemp("", "brakedisc")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows = 50, 5_000
	path := filepath.Join(dir, "fleet.parquet")
	if err := brakedisc.WriteFile(context.Background(), path, cfg, nil); err != nil {
		log.Fatal(err)
	}
	_, err = os.Stat(path)
	fmt.Println("written:", err == nil)
	// Output:
	// written: true
}
