package anonymize

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// rowKeys is a temporary file of three small ids per spilled row, in spill
// order: the subject (dense id of mobility.CellSuppressor), the (cell,
// bucket) group (dense id of the same suppressor) and the raw
// quasi-identifier combination (kanonAcc.comboKeys). The steps between pass
// 1 and pass 2 (the survivor count for k-anonymity and the rounds of settle)
// need only these, so they read 12 bytes a row instead of decoding every
// column of the spill and recomputing string keys, and pass 2 decides cell
// suppression from the group id. The file grows with the input (disk, not
// memory): it is read sequentially in fixed chunks.
type rowKeys struct {
	f    *os.File
	bw   *bufio.Writer
	rows int64
	buf  []byte
}

// rowKeyBytes is the size of one row's record.
const rowKeyBytes = 12

// rowKeyChunk is the number of rows scan hands over at a time.
const rowKeyChunk = 1 << 16

func newRowKeys(dir string) (*rowKeys, error) {
	f, err := os.CreateTemp(dir, "tarnkappe-keys-*.bin")
	if err != nil {
		return nil, fmt.Errorf("row keys: %w", err)
	}
	return &rowKeys{f: f, bw: bufio.NewWriterSize(f, 1<<20)}, nil
}

// write appends one batch's ids (equal lengths).
func (k *rowKeys) write(subj, group, combo []uint32) error {
	n := len(subj)
	if cap(k.buf) < n*rowKeyBytes {
		k.buf = make([]byte, n*rowKeyBytes)
	}
	b := k.buf[:n*rowKeyBytes]
	for i := range n {
		o := i * rowKeyBytes
		binary.LittleEndian.PutUint32(b[o:], subj[i])
		binary.LittleEndian.PutUint32(b[o+4:], group[i])
		binary.LittleEndian.PutUint32(b[o+8:], combo[i])
	}
	if _, err := k.bw.Write(b); err != nil {
		return fmt.Errorf("row keys %s: %w", k.f.Name(), err)
	}
	k.rows += int64(n)
	return nil
}

// finish flushes the file and positions it for the first read.
func (k *rowKeys) finish() error {
	if err := k.bw.Flush(); err != nil {
		return fmt.Errorf("row keys %s: %w", k.f.Name(), err)
	}
	return k.rewind()
}

func (k *rowKeys) rewind() error {
	if _, err := k.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("row keys %s: %w", k.f.Name(), err)
	}
	return nil
}

// keyReader reads the ids back in order, n rows at a time.
type keyReader struct {
	k                  *rowKeys
	br                 *bufio.Reader
	raw                []byte
	subj, group, combo []uint32
	read               int64
}

func (k *rowKeys) reader() *keyReader {
	return &keyReader{k: k, br: bufio.NewReaderSize(k.f, 1<<20)}
}

// next returns the ids of the next n rows (valid until the next call).
func (r *keyReader) next(n int) (subj, group, combo []uint32, err error) {
	if cap(r.raw) < n*rowKeyBytes {
		r.raw = make([]byte, n*rowKeyBytes)
		r.subj, r.group, r.combo = make([]uint32, n), make([]uint32, n), make([]uint32, n)
	}
	b := r.raw[:n*rowKeyBytes]
	if _, err := io.ReadFull(r.br, b); err != nil {
		return nil, nil, nil, fmt.Errorf("row keys %s: after row %d: %w", r.k.f.Name(), r.read, err)
	}
	subj, group, combo = r.subj[:n], r.group[:n], r.combo[:n]
	for i := range n {
		o := i * rowKeyBytes
		subj[i] = binary.LittleEndian.Uint32(b[o:])
		group[i] = binary.LittleEndian.Uint32(b[o+4:])
		combo[i] = binary.LittleEndian.Uint32(b[o+8:])
	}
	r.read += int64(n)
	return subj, group, combo, nil
}

// scan calls fn over every row's ids, in chunks, and rewinds the file.
func (k *rowKeys) scan(ctx context.Context, fn func(subj, group, combo []uint32) error) error {
	r := k.reader()
	for left := k.rows; left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(left, rowKeyChunk))
		s, g, c, err := r.next(n)
		if err != nil {
			return err
		}
		if err := fn(s, g, c); err != nil {
			return err
		}
		left -= int64(n)
	}
	return k.rewind()
}

func (k *rowKeys) remove() {
	name := k.f.Name()
	k.f.Close()
	os.Remove(name)
}
