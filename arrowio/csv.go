package arrowio

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	arrowcsv "github.com/apache/arrow-go/v18/arrow/csv"
)

// DefaultInferRows is the number of data rows CSV type inference looks at
// when CSVOptions.InferRows is zero.
const DefaultInferRows = 1000

// CSVOptions configures CSV sources and sinks.
type CSVOptions struct {
	// Schema, if set, fixes the column names and types: the header row must
	// name exactly these columns in this order. Nil means infer the types
	// from the first InferRows data rows (int64, float64, bool, timestamp
	// with zone, else utf8); a later value that does not fit the inferred
	// type is an error naming its row and column, never a silent null.
	// Inferred timestamps have millisecond unit, or the finest unit the
	// prefix shows; give a Schema when later rows carry finer fractions.
	Schema *arrow.Schema
	// InferRows bounds the prefix used for type inference. Zero means
	// DefaultInferRows; negative is an error.
	InferRows int
	// Comma is the field delimiter. Zero means ','.
	Comma rune
	// NullValues lists the cell texts read as null (for example "" or "NA").
	// Empty means no nulls: every cell must parse as its column's type
	// (an empty string column cell is an empty string).
	NullValues []string
}

// CSVError locates a CSV input error. Row counts data rows from 1 (the
// header is row 0); Line is the physical line when the CSV parser knows it
// (quoted fields can span lines), else 0. Column is empty when the error is
// not about one column.
type CSVError struct {
	File   string
	Row    int64
	Line   int
	Column string
	Err    error
}

func (e *CSVError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "arrowio: read %s: ", e.File)
	switch {
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d", e.Line)
	case e.Row > 0:
		fmt.Fprintf(&b, "row %d", e.Row)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ", column %q", e.Column)
	}
	if e.Line > 0 || e.Row > 0 || e.Column != "" {
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *CSVError) Unwrap() error { return e.Err }

// csvState remembers what the Source needs to explain CSV errors.
type csvState struct {
	nullsAllowed bool
	schema       *arrow.Schema
}

func (o CSVOptions) comma() rune {
	if o.Comma == 0 {
		return ','
	}
	return o.Comma
}

func (s *Source) openCSV(f *os.File, opts OpenOptions) error {
	co := opts.CSV
	if co.InferRows < 0 {
		return fmt.Errorf("arrowio.Open: CSV.InferRows must be >= 0, got %d", co.InferRows)
	}
	if co.InferRows == 0 {
		co.InferRows = DefaultInferRows
	}
	comma := co.comma()
	if comma == '"' || comma == '\r' || comma == '\n' || comma == 0xFFFD {
		return fmt.Errorf("arrowio.Open: CSV.Comma %q is not a valid delimiter", comma)
	}
	nulls := make(map[string]bool, len(co.NullValues))
	for _, v := range co.NullValues {
		nulls[v] = true
	}

	// A UTF-8 byte order mark (spreadsheet exports) is not part of the
	// first column's name.
	var bom [3]byte
	if n, _ := io.ReadFull(f, bom[:]); n != 3 || bom != [3]byte{0xEF, 0xBB, 0xBF} {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}

	// Read the header and the inference prefix with encoding/csv, keeping
	// every byte consumed so the arrow reader can start over from byte 0
	// without seeking (the same code then serves pipes).
	var prefix bytes.Buffer
	cr := csv.NewReader(io.TeeReader(f, &prefix))
	cr.Comma = comma
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: no header row", ErrEmptyFile)
		}
		return csvParseError(s.path, 0, err)
	}
	seen := make(map[string]bool, len(header))
	for i, name := range header {
		if name == "" {
			return &CSVError{File: s.path, Line: 1, Err: fmt.Errorf("header: column %d has no name", i+1)}
		}
		if seen[name] {
			return &CSVError{File: s.path, Line: 1, Column: name, Err: errors.New("header: duplicate column name")}
		}
		seen[name] = true
	}

	var sc *arrow.Schema
	if co.Schema != nil {
		if err := checkCSVSchema(co.Schema); err != nil {
			return fmt.Errorf("arrowio.Open: CSV.Schema: %w", err)
		}
		if co.Schema.NumFields() != len(header) {
			return &CSVError{File: s.path, Line: 1, Err: fmt.Errorf("header has %d columns, schema has %d", len(header), co.Schema.NumFields())}
		}
		for i, name := range header {
			if want := co.Schema.Field(i).Name; name != want {
				return &CSVError{File: s.path, Line: 1, Column: name, Err: fmt.Errorf("header column %d is %q, schema wants %q", i+1, name, want)}
			}
		}
		sc = co.Schema
	} else {
		inf := make([]inference, len(header))
		for i := range inf {
			inf[i] = newInference()
		}
		for row := int64(1); row <= int64(co.InferRows); row++ {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return csvParseError(s.path, row, err)
			}
			for i, v := range rec {
				if nulls[v] {
					continue
				}
				inf[i].observe(v)
			}
		}
		fields := make([]arrow.Field, len(header))
		for i, name := range header {
			fields[i] = arrow.Field{Name: name, Type: inf[i].result(), Nullable: len(nulls) > 0}
		}
		sc = arrow.NewSchema(fields, nil)
	}

	ropts := []arrowcsv.Option{
		arrowcsv.WithHeader(true),
		arrowcsv.WithChunk(opts.BatchSize),
		arrowcsv.WithAllocator(opts.Mem),
		arrowcsv.WithComma(comma),
	}
	if len(co.NullValues) > 0 {
		ropts = append(ropts, arrowcsv.WithNullReader(true, co.NullValues...))
	} else {
		// An explicit value no cell can hold: arrow's default null list
		// would turn "" and "NULL" into nulls behind our back.
		ropts = append(ropts, arrowcsv.WithNullReader(false, "\x00arrowio-no-null\x00"))
	}
	rr := arrowcsv.NewReader(replay(prefix.Bytes(), f), sc, ropts...)
	s.rr = rr
	s.schema = sc
	s.csv = &csvState{nullsAllowed: len(co.NullValues) > 0, schema: sc}
	return nil
}

// checkCSVSchema accepts the flat types the CSV reader and writer handle.
func checkCSVSchema(sc *arrow.Schema) error {
	for _, f := range sc.Fields() {
		switch f.Type.ID() {
		case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
			arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
			arrow.FLOAT32, arrow.FLOAT64, arrow.STRING, arrow.LARGE_STRING,
			arrow.DATE32, arrow.DATE64:
		case arrow.TIMESTAMP:
			ts := f.Type.(*arrow.TimestampType)
			if _, err := ts.GetZone(); err != nil {
				return fmt.Errorf("field %q: %w", f.Name, err)
			}
		default:
			return fmt.Errorf("field %q: type %s is not supported in CSV", f.Name, f.Type)
		}
	}
	return nil
}

func csvParseError(path string, row int64, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &CSVError{File: path, Row: row, Line: pe.Line, Err: fmt.Errorf("column %d: %w", pe.Column, pe.Err)}
	}
	return &CSVError{File: path, Row: row, Err: err}
}

// explain locates a CSV error. The arrow reader reports value parse errors
// without a position but leaves a null where the value failed; when nulls
// are otherwise impossible the first null in the batch is the culprit.
func (c *csvState) explain(path string, rowsBefore int64, err error, rec arrow.RecordBatch) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return csvParseError(path, 0, err)
	}
	if rec == nil {
		return &CSVError{File: path, Row: rowsBefore + 1, Err: err}
	}
	if !c.nullsAllowed {
		best, col := -1, ""
		for i, a := range rec.Columns() {
			if a.NullN() == 0 {
				continue
			}
			for r := 0; r < a.Len() && (best < 0 || r < best); r++ {
				if a.IsNull(r) {
					best, col = r, rec.ColumnName(i)
					break
				}
			}
		}
		if best >= 0 {
			return &CSVError{File: path, Row: rowsBefore + int64(best) + 1, Column: col, Err: err}
		}
	}
	return &CSVError{File: path, Err: fmt.Errorf("in rows %d to %d: %w", rowsBefore+1, rowsBefore+rec.NumRows(), err)}
}

// inference tracks which types every observed value of a column still fits.
type inference struct {
	canInt, canFloat, canBool, canTime bool
	timeUnit                           arrow.TimeUnit
	seen                               bool
}

func newInference() inference {
	// Milliseconds at least: a prefix of whole seconds must not truncate the
	// milliseconds of later rows.
	return inference{canInt: true, canFloat: true, canBool: true, canTime: true, timeUnit: arrow.Millisecond}
}

// The timestamp forms inferred: RFC 3339 and the layout the arrow CSV writer
// uses for zoned timestamps. Only zoned forms are inferred, so a value never
// silently changes its instant.
const (
	timeLayoutRFC3339   = time.RFC3339Nano
	timeLayoutArrowZone = "2006-01-02 15:04:05.999999999Z07:00"
)

func (in *inference) observe(v string) {
	in.seen = true
	if in.canInt {
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			in.canInt = false
		}
	}
	if in.canFloat && !in.canInt {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			in.canFloat = false
		}
	}
	if in.canBool {
		if _, err := strconv.ParseBool(v); err != nil || (v != "true" && v != "false" && v != "TRUE" && v != "FALSE" && v != "True" && v != "False") {
			in.canBool = false
		}
	}
	if in.canTime {
		ok := false
		for _, l := range [...]string{timeLayoutRFC3339, timeLayoutArrowZone} {
			if _, err := time.Parse(l, v); err == nil {
				ok = true
				break
			}
		}
		if !ok {
			in.canTime = false
		} else if u := fractionUnit(v); u > in.timeUnit {
			in.timeUnit = u
		}
	}
}

// fractionUnit returns the finest unit a timestamp's fractional seconds need.
func fractionUnit(v string) arrow.TimeUnit {
	dot := strings.IndexByte(v, '.')
	if dot < 0 {
		return arrow.Second
	}
	digits := 0
	for _, c := range v[dot+1:] {
		if c < '0' || c > '9' {
			break
		}
		digits++
	}
	switch {
	case digits == 0:
		return arrow.Second
	case digits <= 3:
		return arrow.Millisecond
	case digits <= 6:
		return arrow.Microsecond
	}
	return arrow.Nanosecond
}

func (in inference) result() arrow.DataType {
	switch {
	case !in.seen:
		return arrow.BinaryTypes.String
	case in.canInt:
		return arrow.PrimitiveTypes.Int64
	case in.canFloat:
		return arrow.PrimitiveTypes.Float64
	case in.canBool:
		return arrow.FixedWidthTypes.Boolean
	case in.canTime:
		return &arrow.TimestampType{Unit: in.timeUnit, TimeZone: "UTC"}
	}
	return arrow.BinaryTypes.String
}
