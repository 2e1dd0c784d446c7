package rowerr

import (
	"fmt"
	"strconv"
	"strings"
)

// Error locates err in the data.
type Error struct {
	// Row is the data row, counted from 1; 0 when the error is not about
	// one row.
	Row int64
	// Column names the column; "" when the error is not about one column.
	Column string
	// Err is what went wrong. Required.
	Err error
}

// Error returns `row N, column "x": err`, leaving out the parts that are
// not known.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Row > 0 {
		b.WriteString("row ")
		b.WriteString(strconv.FormatInt(e.Row, 10))
	}
	if e.Column != "" {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString("column ")
		b.WriteString(strconv.Quote(e.Column))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause, so that errors.Is and errors.As see through the
// location.
func (e *Error) Unwrap() error { return e.Err }

// At locates err at a data row (counted from 1; 0 for none) and a column
// ("" for none).
func At(row int64, column string, err error) error {
	return &Error{Row: row, Column: column, Err: err}
}

// Atf is At with a message formatted as by fmt.Errorf (so %w wraps).
func Atf(row int64, column string, format string, args ...any) error {
	return &Error{Row: row, Column: column, Err: fmt.Errorf(format, args...)}
}

// Row turns the zero-based index i of a value inside a batch whose first
// row has the zero-based offset base in the stream into a data row counted
// from 1.
func Row(base int64, i int) int64 { return base + int64(i) + 1 }
