package arrowio

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// validateBatch checks that every column's buffers are large enough for its
// length and that offsets and dictionary indices stay in range. IPC bytes
// are untrusted: arrow's loader builds arrays from the lengths the message
// claims, and an out-of-range index would otherwise surface as a panic (or a
// silently wrong value) far downstream.
//
// Errors are located as package rowerr does: base is the number of rows
// before rec, a row is named when one value is at fault, else the column.
func validateBatch(rec arrow.RecordBatch, base int64) error {
	// A row count must be backed by bytes: a batch without a column whose
	// buffers grow with its length (null and empty-struct columns have
	// none) could claim 2^60 rows from a few bytes.
	backed := false
	for _, col := range rec.Columns() {
		switch col.DataType().(type) {
		case arrow.FixedWidthDataType, arrow.BinaryDataType, *arrow.DictionaryType:
			backed = backed || col.DataType().ID() != arrow.NULL
		}
	}
	if !backed && rec.NumRows() > 0 {
		return fmt.Errorf("batch of rows %d to %d has no column holding data", base+1, base+rec.NumRows())
	}
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rec.NumRows() {
			return rowerr.Atf(0, rec.ColumnName(i), "%d rows in the batch of rows %d to %d", col.Len(), base+1, base+rec.NumRows())
		}
		if err := guard(func() error { return validateArray(col) }); err != nil {
			var at *badRow
			if errors.As(err, &at) {
				return rowerr.At(rowerr.Row(base, at.i), rec.ColumnName(i), at.err)
			}
			return rowerr.At(0, rec.ColumnName(i), err)
		}
	}
	return nil
}

// badRow locates a validateArray error at the row index i of the array.
type badRow struct {
	i   int
	err error
}

func (e *badRow) Error() string { return fmt.Sprintf("row index %d: %v", e.i, e.err) }
func (e *badRow) Unwrap() error { return e.err }

func validateArray(arr arrow.Array) error {
	data := arr.Data()
	n, off := data.Len(), data.Offset()
	if n < 0 || off < 0 {
		return fmt.Errorf("negative length %d or offset %d", n, off)
	}
	bufs := data.Buffers()
	if arr.NullN() > 0 && arr.DataType().ID() != arrow.NULL {
		if len(bufs) == 0 || bufs[0] == nil || bufs[0].Len()*8 < off+n {
			return fmt.Errorf("validity bitmap too short for %d rows", n)
		}
	}
	switch a := arr.(type) {
	case *array.Dictionary:
		dict := a.Dictionary()
		if err := validateArray(dict); err != nil {
			return fmt.Errorf("dictionary: %w", err)
		}
		idx := a.Indices()
		if err := validateArray(idx); err != nil {
			return fmt.Errorf("indices: %w", err)
		}
		m := dict.Len()
		if i32, ok := idx.(*array.Int32); ok && a.NullN() == 0 {
			// the common case, without a call per row
			for i, v := range i32.Int32Values() {
				if v < 0 || int(v) >= m {
					return &badRow{i, fmt.Errorf("dictionary index %d out of range [0,%d)", v, m)}
				}
			}
			return nil
		}
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				continue
			}
			if v := a.GetValueIndex(i); v < 0 || v >= m {
				return &badRow{i, fmt.Errorf("dictionary index %d out of range [0,%d)", v, m)}
			}
		}
		return nil
	case *array.Boolean:
		if len(bufs) < 2 || bufs[1] == nil || bufs[1].Len()*8 < off+n {
			return fmt.Errorf("boolean buffer too short for %d rows", n)
		}
		return nil
	}
	if fw, ok := arr.DataType().(arrow.FixedWidthDataType); ok && arr.DataType().ID() != arrow.NULL {
		bits := fw.BitWidth()
		if bits >= 8 {
			need := (off + n) * (bits / 8)
			if len(bufs) < 2 || (need > 0 && (bufs[1] == nil || bufs[1].Len() < need)) {
				return fmt.Errorf("%s buffer too short for %d rows", arr.DataType(), n)
			}
		}
		return nil
	}
	if v, ok := arr.(interface{ ValidateFull() error }); ok {
		return v.ValidateFull()
	}
	return nil
}
