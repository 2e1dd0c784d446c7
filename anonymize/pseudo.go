package anonymize

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// columnFunc is the shape of the pseudonym package's column functions.
type columnFunc func(ctx context.Context, arr arrow.Array, opts pseudonym.ColumnOptions) (arrow.Array, error)

// pseudonymOp pseudonymises a column with HMAC, AES-SIV or FF1.
type pseudonymOp struct {
	name    string
	fn      columnFunc
	one     func(string) (string, error) // single value, for opt-out lists in pseudonym form
	keyID   string
	domain  string
	method  string
	destroy func()
}

func (o *pseudonymOp) outType(in arrow.DataType) arrow.DataType {
	if _, ok := in.(*arrow.DictionaryType); ok {
		return stringDict
	}
	return arrow.BinaryTypes.String
}

func (o *pseudonymOp) apply(ctx context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, rowBase int64) (arrow.Array, error) {
	out, err := o.fn(ctx, col, pseudonym.ColumnOptions{Mem: mem, Name: o.name, Workers: 1})
	if err != nil {
		return nil, columnError(err, rowBase)
	}
	return out, nil
}

// columnError locates a pseudonym.ColumnError (rows counted from 0 in the
// batch) at the data row, rowBase+1 being the batch's first.
func columnError(err error, rowBase int64) error {
	var ce *pseudonym.ColumnError
	if !errors.As(err, &ce) || ce.Row < 0 {
		return fmt.Errorf("batch from row %d on: %w", rowBase+1, err)
	}
	return rowerr.At(rowerr.Row(rowBase, ce.Row), ce.Column, ce.Err)
}

func newPseudonymOp(kr *pseudonym.Keyring, name string, s *PseudonymizeSpec) (*pseudonymOp, error) {
	o := &pseudonymOp{name: name, domain: s.Domain, method: s.Method}
	switch s.Method {
	case "hmac":
		h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: s.Domain})
		if err != nil {
			return nil, err
		}
		o.fn, o.keyID, o.destroy = h.Column, h.KeyID(), h.Destroy
		o.one = func(v string) (string, error) { return h.Pseudonym([]byte(v)), nil }
	case "siv":
		r, err := pseudonym.NewReversible(kr, pseudonym.ReversibleOptions{Domain: s.Domain})
		if err != nil {
			return nil, err
		}
		o.fn, o.keyID, o.destroy = r.Column, r.KeyID(), func() {}
		o.one = func(v string) (string, error) { return r.Seal([]byte(v)) }
	case "ff1":
		f, err := pseudonym.NewFF1(kr, pseudonym.FF1Options{Domain: s.Domain})
		if err != nil {
			return nil, err
		}
		o.fn, o.keyID, o.destroy = f.Column, f.KeyID(), f.Destroy
		o.one = f.Encrypt
	default:
		return nil, fmt.Errorf("unknown method %q", s.Method)
	}
	return o, nil
}

// dateShiftOp shifts timestamps by a keyed per-subject offset.
type dateShiftOp struct {
	name    string
	subject int // index of the subject column in the batch
	ds      *pseudonym.DateShift
}

func (o *dateShiftOp) outType(in arrow.DataType) arrow.DataType { return in }

func (o *dateShiftOp) apply(ctx context.Context, mem memory.Allocator, col arrow.Array, rec arrow.RecordBatch, rowBase int64) (arrow.Array, error) {
	out, err := o.ds.Column(ctx, col, rec.Column(o.subject), pseudonym.ColumnOptions{Mem: mem, Name: o.name, Workers: 1})
	if err != nil {
		return nil, columnError(err, rowBase)
	}
	return out, nil
}
