package arrowio

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ipcFileWriter writes the Arrow IPC file format.
//
// The file format allows a single dictionary per field, but batches from a
// pipeline carry their own dictionaries (a Parquet row group, a pseudonymised
// batch). Without dictionary fields, batches go straight to the file. With
// them, each batch's dictionary indices are transposed into a growing
// unified dictionary per field and the batch (indices only) is spooled to a
// temporary IPC stream next to the output; finish writes the unified
// dictionaries once and replays the spool. Memory stays O(distinct values).
type ipcFileWriter struct {
	out    io.Writer
	schema *arrow.Schema
	mem    memory.Allocator

	direct *ipc.FileWriter

	// spool mode
	dictCols  []int
	unifiers  []array.DictionaryUnifier // per dictCols entry
	spoolSc   *arrow.Schema
	spoolF    *os.File
	spoolBuf  *bufio.Writer
	spoolW    *ipc.Writer
	spoolPath string
}

func newIPCFileWriter(out io.Writer, dir string, sc *arrow.Schema, mem memory.Allocator) (w *ipcFileWriter, err error) {
	w = &ipcFileWriter{out: out, schema: sc, mem: mem}
	spoolFields := make([]arrow.Field, sc.NumFields())
	for i, f := range sc.Fields() {
		spoolFields[i] = f
		if dt, ok := f.Type.(*arrow.DictionaryType); ok {
			if _, ok := dt.ValueType.(*arrow.DictionaryType); ok {
				return nil, fmt.Errorf("field %q: nested dictionaries are not supported", f.Name)
			}
			u, err := array.NewDictionaryUnifier(mem, dt.ValueType)
			if err != nil {
				w.discard()
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			w.dictCols = append(w.dictCols, i)
			w.unifiers = append(w.unifiers, u)
			spoolFields[i] = arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Int32, Nullable: f.Nullable}
		}
	}
	if len(w.dictCols) == 0 {
		fw, err := ipc.NewFileWriter(out, ipc.WithSchema(sc), ipc.WithAllocator(mem))
		if err != nil {
			return nil, err
		}
		w.direct = fw
		return w, nil
	}
	w.spoolSc = arrow.NewSchema(spoolFields, nil)
	f, err := os.CreateTemp(dir, ".arrowio-spool-*")
	if err != nil {
		w.discard()
		return nil, err
	}
	w.spoolF, w.spoolPath = f, f.Name()
	w.spoolBuf = bufio.NewWriterSize(f, 1<<20)
	w.spoolW = ipc.NewWriter(w.spoolBuf, ipc.WithSchema(w.spoolSc), ipc.WithAllocator(mem))
	return w, nil
}

func (w *ipcFileWriter) write(rec arrow.RecordBatch) error {
	if w.direct != nil {
		return w.direct.Write(rec)
	}
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
	defer w.discard()
	if err := w.spoolW.Close(); err != nil {
		return err
	}
	w.spoolW = nil
	if err := w.spoolBuf.Flush(); err != nil {
		return err
	}
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
	if _, err := w.spoolF.Seek(0, io.SeekStart); err != nil {
		return err
	}
	rr, err := ipc.NewReader(bufio.NewReaderSize(w.spoolF, 1<<20), ipc.WithAllocator(w.mem), ipc.WithSchema(w.spoolSc))
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
	if w.spoolW != nil {
		w.spoolW.Close()
		w.spoolW = nil
	}
	for _, u := range w.unifiers {
		u.Release()
	}
	w.unifiers = nil
	if w.spoolF != nil {
		w.spoolF.Close()
		w.spoolF = nil
	}
	if w.spoolPath != "" {
		os.Remove(w.spoolPath)
		w.spoolPath = ""
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
