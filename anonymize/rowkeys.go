package anonymize

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// rowKeys is a temporary file of three small ids per spilled row, in spill
// order: the subject (dense id of mobility.CellSuppressor), the (cell,
// bucket) group (dense id of the same suppressor) and the raw
// quasi-identifier combination (kanonAcc.num.keys); with an l-diversity or
// t-closeness block a fourth, the sensitive value (divAcc.vals). The steps between pass
// 1 and pass 2 (the survivor count for k-anonymity and the rounds of settle)
// need only these, so they read 12 bytes a row instead of decoding every
// column of the spill and recomputing string keys, and pass 2 decides cell
// suppression from the group id. The file grows with the input (disk, not
// memory): it is read sequentially in fixed chunks. It is an encrypted
// scratch file like the spill: the ids are dense numbers into dictionaries
// that live only in memory, but with the output they would still tell which
// written rows had equal raw quasi-identifiers, and the cost is small (12-16
// bytes a row at GB/s).
type rowKeys struct {
	f     *scratch.File
	rows  int64
	buf   []byte
	width int // bytes per row: 12, or 16 with the sensitive id
}

// rowKeyChunk is the number of rows scan hands over at a time.
const rowKeyChunk = 1 << 16

// newRowKeys creates the file; sens says whether rows carry a sensitive id.
func newRowKeys(dir string, sens bool) (*rowKeys, error) {
	f, err := scratch.Create(dir, "tarnkappe-keys-*.bin.enc")
	if err != nil {
		return nil, fmt.Errorf("row keys: %w", err)
	}
	w := 12
	if sens {
		w = 16
	}
	return &rowKeys{f: f, width: w}, nil
}

// write appends one batch's ids (equal lengths; sens only when the file
// was created with sensitive ids, nil otherwise).
func (k *rowKeys) write(subj, group, combo, sens []uint32) error {
	n := len(subj)
	if (sens != nil) != (k.width == 16) {
		return fmt.Errorf("row keys: internal error: sensitive ids given %v, expected %v", sens != nil, k.width == 16)
	}
	if cap(k.buf) < n*k.width {
		k.buf = make([]byte, n*k.width)
	}
	b := k.buf[:n*k.width]
	for i := range n {
		o := i * k.width
		binary.LittleEndian.PutUint32(b[o:], subj[i])
		binary.LittleEndian.PutUint32(b[o+4:], group[i])
		binary.LittleEndian.PutUint32(b[o+8:], combo[i])
		if sens != nil {
			binary.LittleEndian.PutUint32(b[o+12:], sens[i])
		}
	}
	if _, err := k.f.Write(b); err != nil {
		return fmt.Errorf("row keys %s: %w", k.f.Name(), err)
	}
	k.rows += int64(n)
	return nil
}

// finish seals the file and positions it for the first read.
func (k *rowKeys) finish() error {
	return k.rewind()
}

func (k *rowKeys) rewind() error {
	if err := k.f.Rewind(); err != nil {
		return fmt.Errorf("row keys: %w", err)
	}
	return nil
}

// keyReader reads the ids back in order, n rows at a time.
type keyReader struct {
	k                        *rowKeys
	raw                      []byte
	subj, group, combo, sens []uint32
	read                     int64
}

func (k *rowKeys) reader() *keyReader {
	return &keyReader{k: k}
}

// next returns the ids of the next n rows (valid until the next call; sens
// is nil when the file has no sensitive ids).
func (r *keyReader) next(n int) (subj, group, combo, sens []uint32, err error) {
	w := r.k.width
	if cap(r.raw) < n*w {
		r.raw = make([]byte, n*w)
		r.subj, r.group, r.combo = make([]uint32, n), make([]uint32, n), make([]uint32, n)
		if w == 16 {
			r.sens = make([]uint32, n)
		}
	}
	b := r.raw[:n*w]
	if _, err := io.ReadFull(r.k.f, b); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("row keys %s: after row %d: %w", r.k.f.Name(), r.read, err)
	}
	subj, group, combo = r.subj[:n], r.group[:n], r.combo[:n]
	if w == 16 {
		sens = r.sens[:n]
	}
	for i := range n {
		o := i * w
		subj[i] = binary.LittleEndian.Uint32(b[o:])
		group[i] = binary.LittleEndian.Uint32(b[o+4:])
		combo[i] = binary.LittleEndian.Uint32(b[o+8:])
		if sens != nil {
			sens[i] = binary.LittleEndian.Uint32(b[o+12:])
		}
	}
	r.read += int64(n)
	return subj, group, combo, sens, nil
}

// scan calls fn over every row's ids, in chunks, and rewinds the file.
func (k *rowKeys) scan(ctx context.Context, fn func(subj, group, combo, sens []uint32) error) error {
	r := k.reader()
	for left := k.rows; left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(left, rowKeyChunk))
		s, g, c, v, err := r.next(n)
		if err != nil {
			return err
		}
		if err := fn(s, g, c, v); err != nil {
			return err
		}
		left -= int64(n)
	}
	return k.rewind()
}

func (k *rowKeys) remove() {
	k.f.Close()
}
