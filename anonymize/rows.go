package anonymize

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// RowSpan says which data rows of the input a batch holds, so that an
// error a stage locates in the batch names the data row (package rowerr:
// counted from 1 in input order) even after the opt-out removed rows before
// it or within it, and names none when trips regrouped the rows. Run keeps
// one per batch of pass 1; engines that schedule the steps themselves
// (beam/) keep one per batch too, so that they name the rows Run names.
type RowSpan struct {
	// Base is the number of data rows before the input batch the rows come
	// from.
	Base int64
	// Removed are the positions in that input batch of the rows the
	// opt-out removed (Steps.OptOut), ascending; nil when it removed none.
	Removed []int32
	// Input, when set, holds the data row (from 1) of each row of the input
	// batch: Run sorted the input by subject and time before pass 1, and
	// Base counts rows in the sorted order.
	Input []int64
	// NoRow, when set, says why the batch's rows are no data rows ("in a
	// trip emitted after data row 4096"): errors keep their column and say
	// this instead of a row.
	NoRow string
}

// tripRows is the RowSpan of trips emitted after data row base.
func tripRows(base int64) RowSpan {
	return RowSpan{Base: base, NoRow: fmt.Sprintf("in a trip emitted after data row %d", base)}
}

// Row is the data row (from 1) of the batch's row i (from 0).
func (s RowSpan) Row(i int64) int64 {
	// The batch's row i is the input batch's row i plus the removed rows
	// at or below that position.
	j := i
	for _, r := range s.Removed {
		if int64(r) > j {
			break
		}
		j++
	}
	if s.Input != nil && j < int64(len(s.Input)) {
		return s.Input[j]
	}
	return s.Base + j + 1
}

// Locate rewrites the first located error (rowerr.Error) in err's chain
// whose row lies in this batch to name the data row, or no row (NoRow). A
// stage that counted the batch's rows from from+1 located the batch's row i
// at from+1+i; n is the batch's length. The text of the wrappers above the
// located error is kept, and the chain below it (errors.Is reaches a
// sentinel the callee wrapped). Other errors are returned as they are.
func (s RowSpan) Locate(err error, from, n int64) error {
	var re *rowerr.Error
	if err == nil || !errors.As(err, &re) || re.Row <= from || re.Row > from+n {
		return err
	}
	var at error
	if s.NoRow != "" {
		at = rowerr.At(0, re.Column, fmt.Errorf("%w (%s)", re.Err, s.NoRow))
	} else {
		at = rowerr.At(s.Row(re.Row-from-1), re.Column, re.Err)
	}
	if err == error(re) {
		return at
	}
	return &relocated{prefix: strings.TrimSuffix(err.Error(), re.Error()), err: at}
}

// relocated is an error whose location Locate rewrote: the text its
// wrappers added (prefix), then the located error.
type relocated struct {
	prefix string
	err    error
}

func (e *relocated) Error() string { return e.prefix + e.err.Error() }
func (e *relocated) Unwrap() error { return e.err }

// removedRows is the positions (ascending) of the rows a filter mask
// removes (false or null).
func removedRows(mask *array.Boolean) []int32 {
	var out []int32
	for i := range mask.Len() {
		if !mask.IsValid(i) || !mask.Value(i) {
			out = append(out, int32(i))
		}
	}
	return out
}
