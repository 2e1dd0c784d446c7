package arrowio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
)

var testDictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

func testSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "vin", Type: testDictType},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "speed", Type: arrow.PrimitiveTypes.Float64},
		{Name: "year", Type: arrow.PrimitiveTypes.Int64},
		{Name: "note", Type: arrow.BinaryTypes.String},
	}, nil)
}

// testBatch builds batch b of n rows. Each batch has its own dictionary (a
// different subset and order), as batches from a real pipeline do.
func testBatch(t testing.TB, mem memory.Allocator, b, n int) arrow.RecordBatch {
	t.Helper()
	sc := testSchema()
	dictB := array.NewStringBuilder(mem)
	defer dictB.Release()
	nd := 3 + b%4
	for i := 0; i < nd; i++ {
		dictB.Append(fmt.Sprintf("VIN%02d", (i*7+b*3)%11))
	}
	dict := dictB.NewArray()
	defer dict.Release()
	idxB := array.NewInt32Builder(mem)
	defer idxB.Release()
	tsB := array.NewTimestampBuilder(mem, sc.Field(1).Type.(*arrow.TimestampType))
	defer tsB.Release()
	spB := array.NewFloat64Builder(mem)
	defer spB.Release()
	yB := array.NewInt64Builder(mem)
	defer yB.Release()
	noteB := array.NewStringBuilder(mem)
	defer noteB.Release()
	for i := 0; i < n; i++ {
		r := b*n + i
		idxB.Append(int32(r % nd))
		tsB.Append(arrow.Timestamp(1772445600000 + int64(r)*30000))
		spB.Append(float64(r%130) + 0.25)
		yB.Append(int64(2000 + r%25))
		noteB.Append(fmt.Sprintf("n,\"%d\"", r%5)) // commas and quotes exercise CSV quoting
	}
	idx := idxB.NewArray()
	defer idx.Release()
	vin := array.NewDictionaryArray(testDictType, idx, dict)
	defer vin.Release()
	ts, sp, y, note := tsB.NewArray(), spB.NewArray(), yB.NewArray(), noteB.NewArray()
	defer ts.Release()
	defer sp.Release()
	defer y.Release()
	defer note.Release()
	return array.NewRecordBatch(sc, []arrow.Array{vin, ts, sp, y, note}, int64(n))
}

// rowStrings renders every row as text (dictionary columns by value) so
// files of different formats can be compared.
func rowStrings(rec arrow.RecordBatch) []string {
	out := make([]string, rec.NumRows())
	for i := range out {
		var sb strings.Builder
		for c, col := range rec.Columns() {
			if c > 0 {
				sb.WriteByte('|')
			}
			switch a := col.(type) {
			case *array.Dictionary:
				sb.WriteString(a.Dictionary().ValueStr(a.GetValueIndex(i)))
			case *array.Timestamp:
				fmt.Fprint(&sb, int64(a.Value(i)))
			default:
				sb.WriteString(a.ValueStr(i))
			}
		}
		out[i] = sb.String()
	}
	return out
}

func writeFile(t *testing.T, mem memory.Allocator, path string, batches, n int) []string {
	t.Helper()
	sk, err := Create(path, testSchema(), CreateOptions{Mem: mem, Parquet: ParquetOptions{RowGroupRows: 250}})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for b := 0; b < batches; b++ {
		rec := testBatch(t, mem, b, n)
		want = append(want, rowStrings(rec)...)
		if err := sk.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := sk.Commit(); err != nil {
		t.Fatal(err)
	}
	if sk.Rows() != int64(batches*n) {
		t.Fatalf("Rows() = %d, want %d", sk.Rows(), batches*n)
	}
	return want
}

func readAll(t *testing.T, mem memory.Allocator, path string, opts OpenOptions) (*arrow.Schema, []string) {
	t.Helper()
	opts.Mem = mem
	src, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	for src.Next() {
		rec := src.RecordBatch()
		if opts.BatchSize > 0 && rec.NumRows() > int64(opts.BatchSize) {
			t.Errorf("batch of %d rows exceeds BatchSize %d", rec.NumRows(), opts.BatchSize)
		}
		got = append(got, rowStrings(rec)...)
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return src.Schema(), got
}

func TestRoundTrip(t *testing.T) {
	for _, ext := range []string{".parquet", ".arrow", ".ipc", ".csv"} {
		t.Run(ext, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			path := filepath.Join(dir, "data"+ext)
			want := writeFile(t, mem, path, 5, 200)
			sc, got := readAll(t, mem, path, OpenOptions{BatchSize: 128})
			if len(got) != len(want) {
				t.Fatalf("read %d rows, wrote %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("row %d: got %q, want %q", i, got[i], want[i])
				}
			}
			// Dictionary columns stay dictionaries (Parquet: every string
			// column comes back dictionary-encoded); CSV has none.
			switch ext {
			case ".csv":
				if sc.Field(0).Type.ID() != arrow.STRING || sc.Field(1).Type.ID() != arrow.TIMESTAMP || sc.Field(3).Type.ID() != arrow.INT64 {
					t.Errorf("inferred CSV schema %s", sc)
				}
			case ".parquet":
				for _, name := range []string{"vin", "note"} {
					if f, _ := sc.FieldsByName(name); f[0].Type.ID() != arrow.DICTIONARY {
						t.Errorf("%s read as %s, want dictionary", name, f[0].Type)
					}
				}
				if !arrow.TypeEqual(sc.Field(1).Type, testSchema().Field(1).Type) {
					t.Errorf("ts read as %s", sc.Field(1).Type)
				}
			default:
				if !sc.Equal(testSchema()) {
					t.Errorf("schema %s, want %s", sc, testSchema())
				}
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries after commit, want only the file", len(entries))
			}
		})
	}
}

func TestStdioRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var buf bytes.Buffer
	sk, err := Create("-", testSchema(), CreateOptions{Mem: mem, Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for b := 0; b < 3; b++ {
		rec := testBatch(t, mem, b, 50)
		want = append(want, rowStrings(rec)...)
		if err := sk.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := sk.Commit(); err != nil {
		t.Fatal(err)
	}
	src, err := Open(context.Background(), "-", OpenOptions{Mem: mem, Stdin: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	for src.Next() {
		got = append(got, rowStrings(src.RecordBatch())...)
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatal("stdio round trip changed the data")
	}
	if src.Rows() != int64(len(want)) {
		t.Errorf("Rows() = %d, want %d", src.Rows(), len(want))
	}
}

// An .arrow file that holds an IPC stream (no file magic) is read too.
func TestIPCStreamInArrowFile(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var buf bytes.Buffer
	sk, err := Create("-", testSchema(), CreateOptions{Mem: mem, Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	rec := testBatch(t, mem, 0, 10)
	want := rowStrings(rec)
	if err := sk.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if err := sk.Commit(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "s.arrow")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, got := readAll(t, mem, p, OpenOptions{})
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatal("stream in .arrow file read wrongly")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good := filepath.Join(dir, "good.parquet")
	writeFile(t, mem, good, 2, 100)
	goodBytes, _ := os.ReadFile(good)
	goodArrow := filepath.Join(dir, "good.arrow")
	writeFile(t, mem, goodArrow, 2, 100)
	arrowBytes, _ := os.ReadFile(goodArrow)

	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		is   error
		want string // substring of the message
	}{
		{"unknown extension", write("x.txt", []byte("a")), ErrUnknownFormat, "x.txt"},
		{"missing", filepath.Join(dir, "nope.parquet"), os.ErrNotExist, "nope.parquet"},
		{"empty parquet", write("e.parquet", nil), ErrEmptyFile, "e.parquet"},
		{"empty arrow", write("e.arrow", nil), ErrEmptyFile, "e.arrow"},
		{"empty csv", write("e.csv", nil), ErrEmptyFile, "e.csv"},
		{"garbage parquet", write("g.parquet", []byte("this is not parquet at all, not even close")), ErrCorrupt, "g.parquet"},
		{"truncated parquet", write("t.parquet", goodBytes[:len(goodBytes)/2]), ErrCorrupt, "t.parquet"},
		{"truncated arrow", write("t.arrow", arrowBytes[:len(arrowBytes)-40]), ErrCorrupt, "t.arrow"},
		{"garbage arrow", write("g.arrow", bytes.Repeat([]byte{0xff, 0x00, 0x13}, 50)), ErrCorrupt, "g.arrow"},
		{"directory", dir + "/sub.csv", nil, "sub.csv"},
	}
	os.Mkdir(filepath.Join(dir, "sub.csv"), 0o700)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := drain(mem, tc.path, OpenOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// drain opens path and reads every batch, returning the first error.
func drain(mem memory.Allocator, path string, opts OpenOptions) error {
	opts.Mem = mem
	src, err := Open(context.Background(), path, opts)
	if err != nil {
		return err
	}
	defer src.Close()
	for src.Next() {
	}
	return src.Err()
}

// Bytes flipped in the middle of a Parquet file (its data pages) must give
// an error or the correct row count, never a panic.
func TestCorruptParquetPages(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	writeFile(t, mem, good, 2, 300)
	data, _ := os.ReadFile(good)
	for _, at := range []int{4, 40, len(data) / 3, len(data) / 2, len(data) - 200} {
		bad := bytes.Clone(data)
		for i := at; i < at+16 && i < len(bad)-8; i++ {
			bad[i] ^= 0x5a
		}
		p := filepath.Join(dir, fmt.Sprintf("bad%d.parquet", at))
		os.WriteFile(p, bad, 0o600)
		_ = drain(mem, p, OpenOptions{}) // must not panic; errors are fine
	}
}

func TestCSVErrors(t *testing.T) {
	dir := t.TempDir()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	intSchema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}, {Name: "b", Type: arrow.BinaryTypes.String}}, nil)
	tests := []struct {
		name   string
		data   string
		opts   OpenOptions
		row    int64
		line   int
		column string
		want   string
	}{
		{"bad int after inference prefix", "a,b\n1,x\n2,y\nzz,w\n", OpenOptions{CSV: CSVOptions{InferRows: 2}}, 3, 0, "a", "zz"},
		{"bad int with schema", "a,b\n1,x\n2,y\n3,z\n4.5,w\n", OpenOptions{BatchSize: 2, CSV: CSVOptions{Schema: intSchema}}, 4, 0, "a", "4.5"},
		{"empty int cell is not null", "a,b\n1,x\n,y\n", OpenOptions{CSV: CSVOptions{Schema: intSchema}}, 2, 0, "a", ""},
		{"ragged row", "a,b\n1,x\n2\n", OpenOptions{}, 0, 3, "", "wrong number of fields"},
		{"ragged row after prefix", "a,b\n1,x\n2,y\n3\n", OpenOptions{CSV: CSVOptions{InferRows: 1}}, 0, 4, "", "wrong number of fields"},
		{"bare quote", "a,b\n1,x\"y\n", OpenOptions{}, 0, 2, "", "bare"},
		{"header mismatch", "a,c\n1,x\n", OpenOptions{CSV: CSVOptions{Schema: intSchema}}, 0, 1, "c", "schema wants"},
		{"duplicate header", "a,a\n1,2\n", OpenOptions{}, 0, 1, "a", "duplicate"},
		{"empty header name", "a,\n1,2\n", OpenOptions{}, 0, 1, "", "no name"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("c%d.csv", i))
			os.WriteFile(p, []byte(tc.data), 0o600)
			err := drain(mem, p, tc.opts)
			var ce *CSVError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *CSVError", err)
			}
			row := ce.Row
			if tc.line > 0 {
				row = 0 // the parser's line is what locates a syntax error
			}
			if ce.File != p || row != tc.row || ce.Line != tc.line || ce.Column != tc.column {
				t.Errorf("got file %q row %d line %d column %q; want row %d line %d column %q (%v)",
					ce.File, ce.Row, ce.Line, ce.Column, tc.row, tc.line, tc.column, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %q lacks %q or the file name", err, tc.want)
			}
		})
	}
}

func TestCSVNullsAndHeaderOnly(t *testing.T) {
	dir := t.TempDir()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := filepath.Join(dir, "n.csv")
	os.WriteFile(p, []byte("a;b\n1;NA\nNA;y\n"), 0o600)
	src, err := Open(context.Background(), p, OpenOptions{Mem: mem, CSV: CSVOptions{Comma: ';', NullValues: []string{"NA"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !src.Next() {
		t.Fatal(src.Err())
	}
	rec := src.RecordBatch()
	if rec.Column(0).DataType().ID() != arrow.INT64 || rec.Column(0).NullN() != 1 || rec.Column(1).NullN() != 1 {
		t.Errorf("nulls not read: %v", rec)
	}
	src.Close()

	bom := filepath.Join(dir, "bom.csv")
	os.WriteFile(bom, []byte("\xef\xbb\xbfvin,n\nX,1\n"), 0o600)
	sc, rows := readAll(t, mem, bom, OpenOptions{})
	if sc.Field(0).Name != "vin" || len(rows) != 1 || rows[0] != "X|1" {
		t.Errorf("BOM CSV: schema %s rows %q", sc, rows)
	}

	h := filepath.Join(dir, "h.csv")
	os.WriteFile(h, []byte("a,b\n"), 0o600)
	sc, rows = readAll(t, mem, h, OpenOptions{})
	if len(rows) != 0 || sc.NumFields() != 2 {
		t.Errorf("header-only CSV: %d rows, schema %s", len(rows), sc)
	}
}

func TestSinkLifecycle(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, ext := range []string{".parquet", ".arrow", ".csv"} {
		t.Run(ext, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out"+ext)
			empty := func() {
				t.Helper()
				if e, _ := os.ReadDir(dir); len(e) != 0 {
					t.Errorf("directory not empty: %v", e)
				}
			}
			// Abort leaves nothing.
			sk, err := Create(path, testSchema(), CreateOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			rec := testBatch(t, mem, 0, 10)
			defer rec.Release()
			if err := sk.Write(rec); err != nil {
				t.Fatal(err)
			}
			if err := sk.Abort(); err != nil {
				t.Fatal(err)
			}
			if err := sk.Abort(); err != nil {
				t.Fatal("second Abort:", err)
			}
			if err := sk.Commit(); err == nil {
				t.Error("Commit after Abort succeeded")
			}
			if err := sk.Write(rec); err == nil {
				t.Error("Write after Abort succeeded")
			}
			empty()

			// A wrong schema fails the sink and removes the temp file.
			sk, err = Create(path, testSchema(), CreateOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			other := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{rec.Column(3)}, rec.NumRows())
			defer other.Release()
			err = sk.Write(other)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("wrong schema: error %v does not name the file", err)
			}
			if err := sk.Commit(); err == nil {
				t.Error("Commit after failed Write succeeded")
			}
			if err := sk.Abort(); err != nil {
				t.Error("Abort after failure:", err)
			}
			empty()

			// Commit is idempotent and Abort after Commit keeps the file.
			sk, err = Create(path, testSchema(), CreateOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			if err := sk.Write(rec); err != nil {
				t.Fatal(err)
			}
			if err := sk.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := sk.Commit(); err != nil {
				t.Error("second Commit:", err)
			}
			if err := sk.Abort(); err != nil {
				t.Error("Abort after Commit:", err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Error("committed file gone:", err)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	if _, err := Create("x.json", testSchema(), CreateOptions{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("unknown extension: %v", err)
	}
	if _, err := Create("-", testSchema(), CreateOptions{}); err == nil {
		t.Error("- without Stdout accepted")
	}
	if _, err := Create(filepath.Join(t.TempDir(), "no", "such", "dir.parquet"), testSchema(), CreateOptions{}); err == nil {
		t.Error("missing directory accepted")
	}
	if _, err := Create(filepath.Join(t.TempDir(), "a.parquet"), testSchema(), CreateOptions{Parquet: ParquetOptions{Codec: "brotli9"}}); err == nil {
		t.Error("unknown codec accepted")
	}
	nested := arrow.NewSchema([]arrow.Field{{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)
	if _, err := Create(filepath.Join(t.TempDir(), "a.csv"), nested, CreateOptions{}); err == nil {
		t.Error("list column accepted for CSV")
	}
	if _, err := Open(context.Background(), "-", OpenOptions{}); err == nil {
		t.Error("- without Stdin accepted")
	}
	if _, err := Open(context.Background(), "a.csv", OpenOptions{BatchSize: -1}); err == nil {
		t.Error("negative BatchSize accepted")
	}
}

func TestContextCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := filepath.Join(t.TempDir(), "c.parquet")
	writeFile(t, mem, p, 4, 100)
	ctx, cancel := context.WithCancel(context.Background())
	src, err := Open(ctx, p, OpenOptions{Mem: mem, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	if !src.Next() {
		t.Fatal(src.Err())
	}
	cancel()
	if src.Next() {
		t.Fatal("Next after cancel returned a batch")
	}
	if !errors.Is(src.Err(), context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", src.Err())
	}
}

// A Parquet file written with several row groups streams in batches no
// larger than BatchSize and keeps the Parquet key-value metadata.
func TestParquetStreamsRowGroups(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := filepath.Join(t.TempDir(), "rg.parquet")
	sk, err := Create(p, testSchema(), CreateOptions{Mem: mem, Parquet: ParquetOptions{RowGroupRows: 100, Metadata: map[string]string{"tarnkappe.test": "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 7; b++ {
		rec := testBatch(t, mem, b, 64)
		if err := sk.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := sk.Commit(); err != nil {
		t.Fatal(err)
	}
	src, err := Open(context.Background(), p, OpenOptions{Mem: mem, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	batches := 0
	for src.Next() {
		batches++
		if src.RecordBatch().NumRows() > 50 {
			t.Errorf("batch of %d rows", src.RecordBatch().NumRows())
		}
	}
	if src.Err() != nil || src.Rows() != 7*64 || batches < 7*64/50 {
		t.Errorf("rows %d in %d batches, err %v", src.Rows(), batches, src.Err())
	}
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{
		"a.parquet": FormatParquet, "A.PARQUET": FormatParquet, "x/y.arrow": FormatIPC, "b.ipc": FormatIPC,
		"c.csv": FormatCSV, "-": FormatStdio, "d.json": FormatUnknown, "noext": FormatUnknown,
	} {
		if got := FormatOf(path); got != want {
			t.Errorf("FormatOf(%q) = %v, want %v", path, got, want)
		}
	}
	_ = time.Now
}

// A sink committed without batches is a valid empty file of every format.
func TestZeroRowFiles(t *testing.T) {
	for _, ext := range []string{".parquet", ".arrow", ".csv"} {
		t.Run(ext, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			p := filepath.Join(t.TempDir(), "empty"+ext)
			sk, err := Create(p, testSchema(), CreateOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			if err := sk.Commit(); err != nil {
				t.Fatal(err)
			}
			sc, rows := readAll(t, mem, p, OpenOptions{})
			if len(rows) != 0 || sc.NumFields() != testSchema().NumFields() {
				t.Errorf("%d rows, schema %s", len(rows), sc)
			}
		})
	}
}

// A Parquet file whose stored Arrow schema (ARROW:schema metadata) claims
// impossible vector lengths is refused before arrow's unchecked decoder
// sizes allocations by them (larger claims crashed the process).
func TestDamagedStoredSchema(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	err := drain(mem, filepath.Join("testdata", "damaged-schema.parquet"), OpenOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "stored in the Parquet metadata is damaged") {
		t.Errorf("got %v", err)
	}
}

// IPC batches are validated: a dictionary index past the dictionary's end
// (which arrow's reader accepts) is an error naming file and column.
func TestIPCBadDictionaryIndex(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dictB := array.NewStringBuilder(mem)
	dictB.AppendValues([]string{"a", "b"}, nil)
	dict := dictB.NewArray()
	dictB.Release()
	defer dict.Release()
	idxB := array.NewInt32Builder(mem)
	idxB.AppendValues([]int32{0, 1, 7}, nil)
	idx := idxB.NewArray()
	idxB.Release()
	defer idx.Release()
	col := array.NewDictionaryArray(testDictType, idx, dict)
	defer col.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: testDictType}}, nil)
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 3)
	defer rec.Release()
	var buf bytes.Buffer
	sk, err := Create("-", sc, CreateOptions{Mem: mem, Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := sk.Commit(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bad.arrow")
	os.WriteFile(p, buf.Bytes(), 0o600)
	err = drain(mem, p, OpenOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `row 3, column "vin": dictionary index 7 out of range`) {
		t.Errorf("got %v", err)
	}
}

// Parquet sinks write zstd and dictionary pages for string and dictionary
// columns (and not for floats, where dictionaries only cost).
func TestParquetEncoding(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := filepath.Join(t.TempDir(), "enc.parquet")
	writeFile(t, mem, p, 2, 500)
	pf, err := file.OpenParquetFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	rg := pf.MetaData().RowGroup(0)
	for i, wantDict := range map[int]bool{0: true, 2: false, 4: true} { // vin, speed, note
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Compression() != compress.Codecs.Zstd {
			t.Errorf("column %d: compression %v, want zstd", i, cc.Compression())
		}
		if cc.HasDictionaryPage() != wantDict {
			t.Errorf("column %d: dictionary page %v, want %v", i, cc.HasDictionaryPage(), wantDict)
		}
	}
}

// An IPC file sink writes batches straight through while their dictionaries
// equal the first batch's, and falls back to unifying (rereading what it
// wrote) when one differs; either way the file reads back unchanged.
func TestIPCFileDictionaryFallback(t *testing.T) {
	for _, changeAt := range []int{-1, 1, 3} {
		t.Run(fmt.Sprint(changeAt), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			p := filepath.Join(dir, "d.arrow")
			sk, err := Create(p, testSchema(), CreateOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for b := 0; b < 5; b++ {
				dictBatch := 0 // same dictionary by value, new arrays each batch
				if changeAt >= 0 && b >= changeAt {
					dictBatch = b
				}
				rec := testBatch(t, mem, dictBatch, 40)
				want = append(want, rowStrings(rec)...)
				if err := sk.Write(rec); err != nil {
					t.Fatal(err)
				}
				rec.Release()
			}
			if err := sk.Commit(); err != nil {
				t.Fatal(err)
			}
			if e, _ := os.ReadDir(dir); len(e) != 1 {
				t.Errorf("left behind: %v", e)
			}
			_, got := readAll(t, mem, p, OpenOptions{})
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("read back %d rows differing from the %d written", len(got), len(want))
			}
		})
	}
}

// A timestamp that fails to parse is located by row and column.
func TestCSVBadTimestamp(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := filepath.Join(t.TempDir(), "ts.csv")
	os.WriteFile(p, []byte("ts,n\n2026-03-02T10:00:00Z,1\nyesterday,2\n"), 0o600)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	err := drain(mem, p, OpenOptions{CSV: CSVOptions{Schema: sc}})
	var ce *CSVError
	if !errors.As(err, &ce) || ce.Row != 2 || ce.Column != "ts" || ce.File != p {
		t.Fatalf("got %v", err)
	}
}

// panicReader stands in for an arrow decoder that panics on corrupt input.
type panicReader struct{ array.RecordReader }

func (panicReader) Next() bool { panic("index out of range [7] with length 3") }
func (panicReader) Release()   {}

// The guard turns a decoder panic into an ErrCorrupt error naming the file.
func TestGuardTurnsPanicIntoError(t *testing.T) {
	src := &Source{ctx: context.Background(), path: "fleet.arrow", rr: panicReader{}, schema: testSchema()}
	src.refs.Store(1)
	if src.Next() {
		t.Fatal("Next succeeded")
	}
	err := src.Err()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "fleet.arrow") || !strings.Contains(err.Error(), "index out of range") {
		t.Errorf("got %v", err)
	}
	if err := src.Close(); err != nil {
		t.Error(err)
	}
}

// TestIPCFileSpoolEncrypted: the spool of the dictionary fallback, next to
// the output until Commit, holds the batches' columns: it is an encrypted
// scratch file, so a crash before Commit leaves none of them in clear.
func TestIPCFileSpoolEncrypted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	sk, err := Create(filepath.Join(dir, "d.arrow"), testSchema(), CreateOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Abort()
	for b := range 6 {
		rec := testBatch(t, mem, b, 50_000) // a new dictionary each batch
		err := sk.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	var spool int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".d.arrow.tmp-spool-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		spool += int64(len(b))
		if bytes.Contains(b, []byte(`n,"3"`)) {
			t.Errorf("spool %s holds batch values in clear", e.Name())
		}
	}
	if spool < 1<<20 {
		t.Fatalf("spool: %d bytes on disk, want the fallback's spool of several MB", spool)
	}
}
