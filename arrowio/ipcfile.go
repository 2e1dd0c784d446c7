package arrowio

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// ipcFileWriter writes the Arrow IPC file format.
//
// The file format allows a single dictionary per field, but batches from a
// pipeline may carry their own dictionaries (a Parquet row group, a batch
// pseudonymised on its own). Without dictionary fields, batches go straight
// to the file. With them, batches also go straight to the file as long as
// every batch has the first batch's dictionaries (the common case: a
// generator's fixed dictionaries, a transform of a whole dictionary). When a
// dictionary differs, the writer falls back: it reads back what it wrote,
// transposes each batch's indices into a growing unified dictionary per
// field, spools the batches (indices only; the other columns as they are) to
// an encrypted temporary IPC stream next to the output (internal/scratch: the
// columns may be personal data, and a killed run must not leave them in
// clear beside the output), and continues so; finish writes the unified dictionaries once
// and replays the spool. Memory stays O(distinct values).
type ipcFileWriter struct {
	out  *bufio.Writer // buffers outF
	outF *os.File
	dir  string
	// spoolPattern names the spool like the output's temporary file
	// (".NAME.tmp-spool-*"), so that the next writer of the output removes
	// it with them when a killed run left it (File.claim).
	spoolPattern string
	schema       *arrow.Schema
	mem          memory.Allocator

	direct *ipc.FileWriter // no dictionary fields

	// optimistic mode: dictionary fields, all batches so far with first's
	// dictionaries
	opt   *ipc.FileWriter
	first []arrow.Array // retained dictionaries of the first batch

	// spool mode
	dictCols []int
	unifiers []array.DictionaryUnifier // per dictCols entry
	spoolSc  *arrow.Schema
	spoolF   *scratch.File
	spoolW   *ipc.Writer
}

func newIPCFileWriter(out *bufio.Writer, outF *os.File, dir string, sc *arrow.Schema, mem memory.Allocator) (*ipcFileWriter, error) {
	w := &ipcFileWriter{out: out, outF: outF, dir: dir, schema: sc, mem: mem}
	spoolFields := make([]arrow.Field, sc.NumFields())
	for i, f := range sc.Fields() {
		spoolFields[i] = f
		if dt, ok := f.Type.(*arrow.DictionaryType); ok {
			if _, ok := dt.ValueType.(*arrow.DictionaryType); ok {
				return nil, fmt.Errorf("field %q: nested dictionaries are not supported", f.Name)
			}
			w.dictCols = append(w.dictCols, i)
			spoolFields[i] = arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Int32, Nullable: f.Nullable}
		}
	}
	w.spoolSc = arrow.NewSchema(spoolFields, nil)
	fw, err := ipc.NewFileWriter(out, ipc.WithSchema(sc), ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	if len(w.dictCols) == 0 {
		w.direct = fw
	} else {
		w.opt = fw
	}
	return w, nil
}

// startSpool creates the unifiers and the spool file.
func (w *ipcFileWriter) startSpool() error {
	for _, ci := range w.dictCols {
		dt := w.schema.Field(ci).Type.(*arrow.DictionaryType)
		u, err := array.NewDictionaryUnifier(w.mem, dt.ValueType)
		if err != nil {
			return fmt.Errorf("field %q: %w", w.schema.Field(ci).Name, err)
		}
		w.unifiers = append(w.unifiers, u)
	}
	pattern := w.spoolPattern
	if pattern == "" {
		pattern = ".arrowio-spool-*"
	}
	f, err := scratch.Create(w.dir, pattern)
	if err != nil {
		return err
	}
	w.spoolF = f
	w.spoolW = ipc.NewWriter(f, ipc.WithSchema(w.spoolSc), ipc.WithAllocator(w.mem))
	return nil
}

// sameDicts reports whether rec's dictionaries are the first batch's.
func (w *ipcFileWriter) sameDicts(rec arrow.RecordBatch) bool {
	for k, ci := range w.dictCols {
		d, ok := rec.Column(ci).(*array.Dictionary)
		if !ok {
			return false
		}
		dd := d.Dictionary()
		if dd.Data() != w.first[k].Data() && (dd.Len() != w.first[k].Len() || !array.Equal(dd, w.first[k])) {
			return false
		}
	}
	return true
}

func (w *ipcFileWriter) releaseFirst() {
	for _, d := range w.first {
		d.Release()
	}
	w.first = nil
}

// fallback moves from optimistic to spool mode: the batches written so far
// are read back from the output, spooled, and the output is emptied.
func (w *ipcFileWriter) fallback() error {
	err := w.opt.Close()
	w.opt = nil
	w.releaseFirst()
	if err != nil {
		return err
	}
	if err := w.out.Flush(); err != nil {
		return err
	}
	size, err := w.outF.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if err := w.startSpool(); err != nil {
		return err
	}
	var tail [10]byte
	if _, err := w.outF.ReadAt(tail[:], size-int64(len(tail))); err != nil {
		return err
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footer <= 0 || footer > size-8-int64(len(tail)) {
		return fmt.Errorf("%w: rereading our own IPC output: bad footer", ErrCorrupt)
	}
	section := io.NewSectionReader(w.outF, 8, size-int64(len(tail))-footer-8)
	rr, err := ipc.NewReaderFromMessageReader(newMsgReader(bufio.NewReader(section), size, eosOptional), ipc.WithAllocator(w.mem))
	if err != nil {
		return fmt.Errorf("rereading our own IPC output: %w", err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := w.spoolBatch(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("rereading our own IPC output: %w", err)
	}
	if err := w.outF.Truncate(0); err != nil {
		return err
	}
	if _, err := w.outF.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.out.Reset(w.outF)
	return nil
}

func (w *ipcFileWriter) write(rec arrow.RecordBatch) error {
	if w.direct != nil {
		return w.direct.Write(rec)
	}
	if w.opt != nil {
		switch {
		case w.first == nil:
			for _, ci := range w.dictCols {
				d, ok := rec.Column(ci).(*array.Dictionary)
				if !ok {
					return fmt.Errorf("column %q: want a dictionary array, got %s", rec.ColumnName(ci), rec.Column(ci).DataType())
				}
				d.Dictionary().Retain()
				w.first = append(w.first, d.Dictionary())
			}
			return w.opt.Write(rec)
		case w.sameDicts(rec):
			return w.opt.Write(rec)
		}
		if err := w.fallback(); err != nil {
			return err
		}
	}
	return w.spoolBatch(rec)
}

// spoolBatch transposes rec's dictionary indices into the unified
// dictionaries and appends the batch to the spool.
func (w *ipcFileWriter) spoolBatch(rec arrow.RecordBatch) error {
	cols := make([]arrow.Array, rec.NumCols())
	copy(cols, rec.Columns())
	var owned []arrow.Array
	defer func() {
		for _, a := range owned {
			a.Release()
		}
	}()
	for k, ci := range w.dictCols {
		d, ok := rec.Column(ci).(*array.Dictionary)
		if !ok {
			return fmt.Errorf("column %q: want a dictionary array, got %s", rec.ColumnName(ci), rec.Column(ci).DataType())
		}
		idx, err := w.transpose(d, w.unifiers[k])
		if err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(ci), err)
		}
		owned = append(owned, idx)
		cols[ci] = idx
	}
	spool := array.NewRecordBatch(w.spoolSc, cols, rec.NumRows())
	defer spool.Release()
	return w.spoolW.Write(spool)
}

// transpose maps d's indices into the unified dictionary (int32 indices).
func (w *ipcFileWriter) transpose(d *array.Dictionary, u array.DictionaryUnifier) (arrow.Array, error) {
	buf, err := u.UnifyAndTranspose(d.Dictionary())
	if err != nil {
		return nil, err
	}
	defer buf.Release()
	m := arrow.Int32Traits.CastFromBytes(buf.Bytes())
	b := array.NewInt32Builder(w.mem)
	defer b.Release()
	b.Reserve(d.Len())
	if idx, ok := d.Indices().(*array.Int32); ok && d.NullN() == 0 {
		for _, v := range idx.Int32Values() {
			b.UnsafeAppend(m[v])
		}
	} else {
		for i := 0; i < d.Len(); i++ {
			if d.IsNull(i) {
				b.AppendNull()
				continue
			}
			b.UnsafeAppend(m[d.GetValueIndex(i)])
		}
	}
	return b.NewArray(), nil
}

func (w *ipcFileWriter) finish() error {
	if w.direct != nil {
		err := w.direct.Close()
		w.direct = nil
		return err
	}
	if w.opt != nil {
		err := w.opt.Close()
		w.opt = nil
		w.releaseFirst()
		return err
	}
	defer w.discard()
	if err := w.spoolW.Close(); err != nil {
		return err
	}
	w.spoolW = nil
	dicts := make([]arrow.Array, len(w.dictCols))
	defer func() {
		for _, d := range dicts {
			if d != nil {
				d.Release()
			}
		}
	}()
	for k, ci := range w.dictCols {
		dt := w.schema.Field(ci).Type.(*arrow.DictionaryType)
		d, err := w.unifiers[k].GetResultWithIndexType(dt.IndexType)
		if err != nil {
			return fmt.Errorf("column %q: %w", w.schema.Field(ci).Name, err)
		}
		dicts[k] = d
	}
	if err := w.spoolF.Rewind(); err != nil {
		return err
	}
	rr, err := ipc.NewReader(w.spoolF, ipc.WithAllocator(w.mem), ipc.WithSchema(w.spoolSc))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer rr.Release()
	fw, err := ipc.NewFileWriter(w.out, ipc.WithSchema(w.schema), ipc.WithAllocator(w.mem))
	if err != nil {
		return err
	}
	ctx := compute.WithAllocator(context.Background(), w.mem)
	for rr.Next() {
		if err := w.replay(ctx, fw, rr.RecordBatch(), dicts); err != nil {
			fw.Close()
			return err
		}
	}
	if err := rr.Err(); err != nil {
		fw.Close()
		return fmt.Errorf("spool: %w", err)
	}
	return fw.Close()
}

func (w *ipcFileWriter) replay(ctx context.Context, fw *ipc.FileWriter, sp arrow.RecordBatch, dicts []arrow.Array) error {
	cols := make([]arrow.Array, sp.NumCols())
	copy(cols, sp.Columns())
	var owned []arrow.Array
	defer func() {
		for _, a := range owned {
			a.Release()
		}
	}()
	for k, ci := range w.dictCols {
		dt := w.schema.Field(ci).Type.(*arrow.DictionaryType)
		idx := sp.Column(ci)
		if !arrow.TypeEqual(dt.IndexType, arrow.PrimitiveTypes.Int32) {
			cast, err := compute.CastArray(ctx, idx, compute.SafeCastOptions(dt.IndexType))
			if err != nil {
				return fmt.Errorf("column %q: %w", w.schema.Field(ci).Name, err)
			}
			owned = append(owned, cast)
			idx = cast
		}
		da := array.NewDictionaryArray(dt, idx, dicts[k])
		owned = append(owned, da)
		cols[ci] = da
	}
	rec := array.NewRecordBatch(w.schema, cols, sp.NumRows())
	defer rec.Release()
	return fw.Write(rec)
}

func (w *ipcFileWriter) discard() {
	if w.opt != nil {
		w.opt.Close()
		w.opt = nil
	}
	w.releaseFirst()
	if w.spoolW != nil {
		w.spoolW.Close()
		w.spoolW = nil
	}
	for _, u := range w.unifiers {
		u.Release()
	}
	w.unifiers = nil
	if w.spoolF != nil {
		w.spoolF.Close() // removes the file
		w.spoolF = nil
	}
	if w.direct != nil {
		// Closing writes a footer into a file about to be removed; harmless.
		w.direct.Close()
		w.direct = nil
	}
}

// Compile-time checks: every format's writer serves the Sink.
var (
	_ batchWriter = (*ipcFileWriter)(nil)
	_ batchWriter = (*ipcStreamWriter)(nil)
	_ batchWriter = (*parquetWriter)(nil)
	_ batchWriter = (*csvWriter)(nil)
)
