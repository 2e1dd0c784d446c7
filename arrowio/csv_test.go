package arrowio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// readCSV opens data as a CSV file and reads it to the end, returning the
// schema, the rows as text, the warnings and the error.
func readCSV(t *testing.T, mem memory.Allocator, data string, co CSVOptions) (*arrow.Schema, []string, []string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := Open(context.Background(), p, OpenOptions{Mem: mem, CSV: co, BatchSize: 2})
	if err != nil {
		return nil, nil, nil, err
	}
	defer src.Close()
	var rows []string
	for src.Next() {
		rows = append(rows, rowStrings(src.RecordBatch())...)
	}
	return src.Schema(), rows, src.Warnings(), src.Err()
}

func TestNumberForm(t *testing.T) {
	for _, tc := range []struct {
		v              string
		isInt, isFloat bool
	}{
		{"0", true, true}, {"7", true, true}, {"-12", true, true}, {"9223372036854775807", true, true},
		{"0.5", false, true}, {"-1.5e3", false, true}, {"2E-7", false, true}, {".5", false, true}, {"5.", false, true},
		{"01067", false, false}, {"007", false, false}, {"-01", false, false}, {"00.5", false, false},
		{"+49", false, false}, {"-0", false, true}, {"9223372036854775808", false, false},
		{"12345678901234567890", false, false}, {"1e400", false, false}, {"NaN", false, true},
		{"inf", false, true}, {"-Infinity", false, true}, {"+Inf", false, true}, {"-NaN", false, false}, {"++Inf", false, false},
		{"0x1p4", false, false}, {"1_000", false, false}, {"", false, false},
		{"-", false, false}, {".", false, false}, {"1e", false, false}, {"1.2.3", false, false}, {" 1", false, false},
	} {
		isInt, isFloat := numberForm(tc.v)
		if isInt != tc.isInt || isFloat != tc.isFloat {
			t.Errorf("numberForm(%q) = %v, %v; want %v, %v", tc.v, isInt, isFloat, tc.isInt, tc.isFloat)
		}
	}
}

// A postcode with a leading zero is never read as a number (issue #13):
// inside the inference prefix it makes the column text, with a warning;
// after the prefix, in a column inferred as numbers, it is an error naming
// row, column and value.
func TestCSVLeadingZeros(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	sc, rows, warns, err := readCSV(t, mem, "postcode,n\n10115,1\n01067,2\n", CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Field(0).Type.ID() != arrow.STRING || sc.Field(1).Type.ID() != arrow.INT64 {
		t.Errorf("schema %s", sc)
	}
	if strings.Join(rows, ";") != "10115|1;01067|2" {
		t.Errorf("rows %q", rows)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `column "postcode"`) || !strings.Contains(warns[0], `row 2 has "01067"`) || !strings.Contains(warns[0], "leading zeros") {
		t.Errorf("warnings %q", warns)
	}

	_, _, _, err = readCSV(t, mem, "postcode\n10115\n80331\n99084\n01067\n", CSVOptions{InferRows: 2})
	var ce *CSVError
	if !errors.As(err, &ce) || ce.Row != 4 || ce.Column != "postcode" || !strings.Contains(err.Error(), `"01067"`) || !strings.Contains(err.Error(), "leading zeros") {
		t.Fatalf("after the prefix: got %v", err)
	}
	if !strings.Contains(err.Error(), `row 4, column "postcode": `) {
		t.Errorf("error %q does not use the row/column format", err)
	}
}

// Values strconv would accept but change (long ids, '+', NaN, hex) are
// errors after the prefix too, in float columns as in integer ones.
func TestCSVStrictNumbersAfterPrefix(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, tc := range []struct{ data, value string }{
		{"id\n1\n2\n12345678901234567890\n", "12345678901234567890"},
		{"x\n1.5\n2\n+3\n", "+3"},
		{"x\n1.5\n2\n0x1p4\n", "0x1p4"},
		{"x\n1.5\n2\n1e999\n", "1e999"},
	} {
		_, _, _, err := readCSV(t, mem, tc.data, CSVOptions{InferRows: 2})
		var ce *CSVError
		if !errors.As(err, &ce) || ce.Row != 3 || !strings.Contains(err.Error(), tc.value) {
			t.Errorf("%q: got %v", tc.data, err)
		}
	}
	// Nulls stay nulls through the conversion.
	sc, rows, _, err := readCSV(t, mem, "a,b\n1,0.5\nNA,NA\n3,2\n", CSVOptions{NullValues: []string{"NA"}})
	if err != nil || sc.Field(0).Type.ID() != arrow.INT64 || sc.Field(1).Type.ID() != arrow.FLOAT64 || strings.Join(rows, ";") != "1|0.5;(null)|(null);3|2" {
		t.Errorf("nulls: schema %s rows %q err %v", sc, rows, err)
	}
}

// CSVOptions.Types declares some columns; the rest are inferred.
func TestCSVTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	data := "postcode,n,ts\n10115,1,2026-03-02T10:00:00Z\n80331,2,2026-03-02T10:00:01.5Z\n"
	types, err := ParseCSVTypes("postcode=string,ts=timestamp_us")
	if err != nil {
		t.Fatal(err)
	}
	sc, rows, warns, err := readCSV(t, mem, data, CSVOptions{Types: types})
	if err != nil {
		t.Fatal(err)
	}
	want := "schema:\n  fields: 3\n    - postcode: type=utf8\n    - n: type=int64\n    - ts: type=timestamp[us, tz=UTC]"
	if sc.String() != want {
		t.Errorf("schema\n%s\nwant\n%s", sc, want)
	}
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "10115|1|") || len(warns) != 0 {
		t.Errorf("rows %q warnings %q", rows, warns)
	}
	// A declared number is parsed as declared; a bad one names row and column.
	_, _, _, err = readCSV(t, mem, "lat\n48.1\n4x.2\n", CSVOptions{Types: map[string]arrow.DataType{"lat": arrow.PrimitiveTypes.Float64}})
	var ce *CSVError
	if !errors.As(err, &ce) || ce.Row != 2 || ce.Column != "lat" {
		t.Errorf("declared float: got %v", err)
	}
	for name, co := range map[string]CSVOptions{
		"unknown column":   {Types: map[string]arrow.DataType{"nope": arrow.BinaryTypes.String}},
		"schema and types": {Types: types, Schema: arrow.NewSchema([]arrow.Field{{Name: "postcode", Type: arrow.BinaryTypes.String}}, nil)},
		"unsupported type": {Types: map[string]arrow.DataType{"n": arrow.ListOf(arrow.PrimitiveTypes.Int64)}},
	} {
		if _, _, _, err := readCSV(t, mem, data, co); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "unknown column" && !strings.Contains(err.Error(), `column "nope"`) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A bad value in a numeric column inside the inference prefix makes the
// column text; the warning names the row and the value, so the type error
// a later stage reports can be traced (issue #13).
func TestCSVWarningNamesRowAndValue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, _, warns, err := readCSV(t, mem, "lat,name\n48.1,a\n48.2,b\n4B.3,c\n", CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `column "lat"`) || !strings.Contains(warns[0], `row 3 has "4B.3"`) {
		t.Errorf("warnings %q", warns)
	}
	// OpenOptions.Warn hears it at Open, before the first batch.
	p := filepath.Join(t.TempDir(), "lat.csv")
	os.WriteFile(p, []byte("lat\n48.1\n4B.3\n"), 0o600)
	var heard []string
	src, err := Open(context.Background(), p, OpenOptions{Mem: mem, Warn: func(w string) { heard = append(heard, w) }})
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	if len(heard) != 1 || !strings.Contains(heard[0], `row 2 has "4B.3"`) {
		t.Errorf("Warn heard %q", heard)
	}
}

func TestParseCSVTypes(t *testing.T) {
	got, err := ParseCSVTypes("postcode=string,ts=timestamp,n=int64,x=float64,ok=bool,d=date")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got["postcode"].ID() != arrow.STRING || got["ts"].(*arrow.TimestampType).Unit != arrow.Millisecond || got["d"].ID() != arrow.DATE32 {
		t.Errorf("got %v", got)
	}
	for _, bad := range []string{
		"", ",", "a", "a=", "=string", "a=string,", "a=string,,b=int64", "a=strin", "a=string,a=int64",
		"a =string", "a= string", " a=string", "a=string=x", "a=STRING", "a=string;b=int64",
	} {
		if m, err := ParseCSVTypes(bad); err == nil {
			t.Errorf("ParseCSVTypes(%q) = %v, want an error", bad, m)
		}
	}
}
