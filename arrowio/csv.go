package arrowio

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowcsv "github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DefaultInferRows is the number of data rows CSV type inference looks at
// when CSVOptions.InferRows is zero.
const DefaultInferRows = 1000

// CSVOptions configures CSV sources and sinks.
type CSVOptions struct {
	// Schema, if set, fixes the column names and types: the header row must
	// name exactly these columns in this order. Nil means infer the types
	// from the first InferRows data rows (int64, float64, bool, timestamp
	// with zone, else utf8), except the columns Types declares; a later
	// value that does not fit the inferred type is an error naming its row
	// and column, never a silent null or a silently changed value.
	// Inference takes numbers only in their plain decimal form: a digit
	// string with leading zeros (a postcode "01067", an id "007"), a
	// leading '+', an integer beyond int64 (a long id), "Inf", "NaN" or
	// hexadecimal make the column text, and Source.Warnings says why.
	// Inferred timestamps have millisecond unit, or the finest unit the
	// prefix shows; declare the type when later rows carry finer fractions.
	Schema *arrow.Schema
	// Types declares the types of some columns by name; the other columns
	// are inferred. A name the header does not have is an error, as is
	// setting both Schema and Types. ParseCSVTypes reads the form the CLI
	// takes ("postcode=string,ts=timestamp").
	Types map[string]arrow.DataType
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
// header is row 0), as package rowerr does; Line is the physical line when
// the CSV parser knows it (quoted fields can span lines), else 0. Column is
// empty when the error is not about one column. The message reads
// `arrowio: read FILE: row N (line L), column "x": ...`, leaving out what
// is not known.
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
	loc := e.Row > 0 || e.Line > 0 || e.Column != ""
	switch {
	case e.Row > 0 && e.Line > 0:
		fmt.Fprintf(&b, "row %d (line %d)", e.Row, e.Line)
	case e.Row > 0:
		fmt.Fprintf(&b, "row %d", e.Row)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d", e.Line)
	}
	if e.Column != "" {
		if e.Row > 0 || e.Line > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "column %q", e.Column)
	}
	if loc {
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *CSVError) Unwrap() error { return e.Err }

// csvState remembers what the Source needs to convert batches and explain
// CSV errors.
type csvState struct {
	nullsAllowed bool
	inferRows    int
	// schema is the Source's schema; read is the one the arrow reader
	// parses with, where the inferred numeric columns are still text:
	// arrow's parser would read "01067" after the inference prefix as
	// 1067, so convert parses them with inference's strict rules.
	schema, read *arrow.Schema
	convert      []int // indices of the columns to convert
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
	var convert []int
	if co.Schema != nil && len(co.Types) > 0 {
		return errors.New("arrowio.Open: set CSV.Schema or CSV.Types, not both")
	}
	if len(co.Types) > 0 {
		for name := range co.Types {
			if !seen[name] {
				return &CSVError{File: s.path, Line: 1, Column: name, Err: errors.New("header has no such column (named in CSV.Types)")}
			}
		}
		declared := make([]arrow.Field, 0, len(co.Types))
		for name, dt := range co.Types {
			declared = append(declared, arrow.Field{Name: name, Type: dt})
		}
		if err := checkCSVSchema(arrow.NewSchema(declared, nil)); err != nil {
			return fmt.Errorf("arrowio.Open: CSV.Types: %w", err)
		}
	}
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
				inf[i].observe(v, row)
			}
		}
		fields := make([]arrow.Field, len(header))
		for i, name := range header {
			dt, declared := co.Types[name]
			if !declared {
				dt = inf[i].result()
				if w := inf[i].warning(); w != "" {
					s.warn(fmt.Sprintf("%s: column %q read as text: %s; declare its type to read it otherwise", s.path, name, w))
				}
				if id := dt.ID(); id == arrow.INT64 || id == arrow.FLOAT64 {
					convert = append(convert, i)
				}
			}
			fields[i] = arrow.Field{Name: name, Type: dt, Nullable: len(nulls) > 0}
		}
		sc = arrow.NewSchema(fields, nil)
	}
	read := sc
	if len(convert) > 0 {
		fields := sc.Fields()
		for _, i := range convert {
			fields[i].Type = arrow.BinaryTypes.String
		}
		read = arrow.NewSchema(fields, nil)
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
	rr := arrowcsv.NewReader(replay(prefix.Bytes(), f), read, ropts...)
	s.rr = rr
	s.schema = sc
	s.csv = &csvState{nullsAllowed: len(co.NullValues) > 0, inferRows: co.InferRows, schema: sc, read: read, convert: convert}
	return nil
}

// convertBatch parses the inferred numeric columns of rec (text as read)
// into their inferred types with inference's strict rules. It returns rec
// itself (not retained) when there is nothing to convert, else a new batch
// the caller owns. rowsBefore is the number of data rows before rec.
func (c *csvState) convertBatch(path string, rowsBefore int64, rec arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if len(c.convert) == 0 {
		return rec, nil
	}
	cols := make([]arrow.Array, rec.NumCols())
	copy(cols, rec.Columns())
	var owned []arrow.Array
	defer func() {
		for _, a := range owned {
			a.Release()
		}
	}()
	for _, ci := range c.convert {
		text, ok := rec.Column(ci).(*array.String)
		if !ok {
			return nil, fmt.Errorf("column %q: read as %s, want text", rec.ColumnName(ci), rec.Column(ci).DataType())
		}
		want := c.schema.Field(ci).Type
		a, bad, err := parseNumbers(mem, text, want.ID() == arrow.INT64)
		if err != nil {
			v := text.Value(bad)
			return nil, &CSVError{File: path, Row: rowsBefore + int64(bad) + 1, Column: rec.ColumnName(ci),
				Err: fmt.Errorf("%s does not fit the type %s inferred from the first %d rows (%s); declare the column's type to read it otherwise", quoteValue(v), want, c.inferRows, numberProblem(v))}
		}
		owned = append(owned, a)
		cols[ci] = a
	}
	return array.NewRecordBatch(c.schema, cols, rec.NumRows()), nil
}

// parseNumbers parses text into int64 (ints) or float64 values by
// numberForm's rules, nulls kept. On a value that does not parse it returns
// its index and an error.
func parseNumbers(mem memory.Allocator, text *array.String, ints bool) (arrow.Array, int, error) {
	n := text.Len()
	if ints {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(n)
		for i := 0; i < n; i++ {
			if text.IsNull(i) {
				b.UnsafeAppendBoolToBitmap(false)
				continue
			}
			v := text.Value(i)
			if isInt, _ := numberForm(v); !isInt {
				return nil, i, errBadNumber
			}
			x, _ := strconv.ParseInt(v, 10, 64)
			b.UnsafeAppend(x)
		}
		return b.NewArray(), 0, nil
	}
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.Reserve(n)
	for i := 0; i < n; i++ {
		if text.IsNull(i) {
			b.UnsafeAppendBoolToBitmap(false)
			continue
		}
		v := text.Value(i)
		if _, isFloat := numberForm(v); !isFloat {
			return nil, i, errBadNumber
		}
		x, _ := strconv.ParseFloat(v, 64)
		b.UnsafeAppend(x)
	}
	return b.NewArray(), 0, nil
}

var errBadNumber = errors.New("not a number in plain decimal form")

// quoteValue quotes a cell for an error message, cut to 40 characters.
func quoteValue(v string) string {
	if r := []rune(v); len(r) > 40 {
		v = string(r[:40]) + "…"
	}
	return strconv.Quote(v)
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

// inference tracks which types every observed value of a column still fits,
// and what to tell the user when numbers turn into text.
type inference struct {
	canInt, canFloat, canBool, canTime bool
	timeUnit                           arrow.TimeUnit
	seen                               bool
	numbers                            int64  // values in plain decimal form
	firstOther                         int64  // row of the first value that is not, 0 if none
	firstOtherValue                    string // (its text)
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

func (in *inference) observe(v string, row int64) {
	in.seen = true
	isInt, isFloat := numberForm(v)
	in.canInt = in.canInt && isInt
	in.canFloat = in.canFloat && isFloat
	if isFloat {
		in.numbers++
	} else if in.firstOther == 0 {
		in.firstOther, in.firstOtherValue = row, v
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

// warning explains why a column inferred as text is not numeric, when some
// of its values are numbers or look like them (digits with leading zeros);
// "" otherwise.
func (in inference) warning() string {
	if in.result().ID() != arrow.STRING || in.firstOther == 0 {
		return ""
	}
	v := in.firstOtherValue
	if in.numbers == 0 && !looksNumeric(v) {
		return "" // a text column
	}
	return fmt.Sprintf("row %d has %s (%s)", in.firstOther, quoteValue(v), numberProblem(v))
}

// numberForm reports whether v is an integer (fits int64) and whether it
// is a float in plain decimal form: an optional '-', digits without
// leading zeros, an optional fraction and exponent; or a spelling of
// infinity or NaN (which later stages refuse, naming the row). What strconv
// accepts beyond that would change the text when read as a number: leading
// zeros ("01067" → 1067), '+' ("+3"), "-0" as an integer, hexadecimal, underscores,
// integers beyond int64 (long ids, which float64 would round) and
// exponents beyond float64 (1e400 → +Inf).
func numberForm(v string) (isInt, isFloat bool) {
	if special(v) {
		return false, true
	}
	s := strings.TrimPrefix(v, "-")
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intDigits := i
	if intDigits > 1 && s[0] == '0' {
		return false, false
	}
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			fracDigits++
		}
	}
	if intDigits+fracDigits == 0 {
		return false, false
	}
	plain := i == intDigits
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		plain = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == e {
			return false, false
		}
	}
	if i != len(s) {
		return false, false
	}
	if plain {
		if v == "-0" {
			// Not an integer (int64 has no negative zero: it would read
			// back as "0"), but a float: float64 keeps the sign. Rounded
			// sensor values print it ("-0" for -0.3 rounded).
			return false, true
		}
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return false, false
		}
		return true, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) {
		return false, false
	}
	return false, true
}

// special reports whether v is a spelling of infinity or NaN that
// strconv.ParseFloat reads.
func special(v string) bool {
	s := strings.TrimLeft(v, "+-")
	if len(v)-len(s) > 1 {
		return false
	}
	return strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity") || (strings.EqualFold(s, "nan") && s == v)
}

// looksNumeric reports whether v is made of a sign, digits, '.', 'e' and
// '_' only: a number in a form numberForm refuses.
func looksNumeric(v string) bool {
	digits := false
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case strings.ContainsRune("+-.eE_xX", c):
		default:
			return false
		}
	}
	return digits
}

// numberProblem says why v is not a number in plain decimal form.
func numberProblem(v string) string {
	s := strings.TrimLeft(v, "+-")
	switch {
	case len(s) > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9':
		return "digits with leading zeros are kept as text so the zeros are not lost"
	case strings.HasPrefix(v, "+"):
		return "a leading '+' is kept as text"
	case v == "-0":
		return "\"-0\" is kept as text"
	case looksNumeric(v) && !strings.ContainsAny(v, ".eE_xX"):
		return "an integer beyond int64 is kept as text so no digit is rounded away"
	case looksNumeric(v):
		return "not a number in plain decimal form"
	}
	return "not a number"
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
