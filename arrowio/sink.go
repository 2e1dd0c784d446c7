package arrowio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	arrowcsv "github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// DefaultRowGroupRows is the Parquet row-group length when
// ParquetOptions.RowGroupRows is zero: about a million rows keeps column
// chunks large enough for good compression while a writer buffers one group.
const DefaultRowGroupRows = 1 << 20

// ParquetOptions configures Parquet sinks. The zero value means zstd at its
// default level, one row group per DefaultRowGroupRows rows.
type ParquetOptions struct {
	// Codec is "zstd" (the default when empty), "snappy", "gzip", "lz4" or
	// "none".
	Codec string
	// Level is the compression level; zero means the codec's default.
	Level int
	// RowGroupRows is the maximum number of rows per row group. Zero means
	// DefaultRowGroupRows; negative is an error.
	RowGroupRows int64
	// Metadata is added to the file's key-value metadata (for example the
	// policy version that produced it).
	Metadata map[string]string
}

// CreateOptions configures Create.
type CreateOptions struct {
	// Mem allocates the writers' buffers. Nil means memory.DefaultAllocator.
	Mem memory.Allocator
	// Stdout receives an Arrow IPC stream when the path is "-". Required
	// then, ignored otherwise.
	Stdout io.Writer
	// Parquet configures .parquet sinks.
	Parquet ParquetOptions
	// CSV configures .csv sinks; only Comma is used when writing (nulls are
	// written as empty cells).
	CSV CSVOptions
}

// batchWriter is what each format's writer provides to the Sink.
type batchWriter interface {
	write(arrow.RecordBatch) error
	// finish writes trailers (footer, end of stream) without closing the file.
	finish() error
	// discard frees what the writer holds after an error.
	discard()
}

type sinkState int

const (
	sinkOpen sinkState = iota
	sinkPrepared
	sinkCommitted
	sinkAborted
	sinkFailed
)

// Sink writes record batches to a file. Data goes to a temporary file in the
// destination directory (a File: the destination is checked, and locked
// against a second writer, when the Sink is created); Commit finishes,
// fsyncs and renames it into place, Abort (or any error) removes it, so the
// destination only ever holds a complete file. The file is created readable
// by its owner only (0600): it may hold personal data until a policy has run
// on it. Several Sinks and Files commit all or none with CommitAll. A Sink is
// not safe for concurrent use.
type Sink struct {
	path   string
	format Format
	schema *arrow.Schema
	file   *File // nil for "-"
	bw     *bufio.Writer
	w      batchWriter
	rows   int64
	state  sinkState
	err    error
}

// Create opens a Sink for path (format by extension, "-" for an Arrow IPC
// stream on opts.Stdout). Every batch written must have exactly schema.
// It is CreateFile followed by NewSink.
func Create(path string, schema *arrow.Schema, opts CreateOptions) (*Sink, error) {
	if path == "-" {
		return NewSink(nil, schema, opts)
	}
	if err := checkCreate(path, schema, opts); err != nil {
		return nil, err
	}
	f, err := CreateFile(path)
	if err != nil {
		return nil, fmt.Errorf("arrowio.Create %w", err)
	}
	s, err := NewSink(f, schema, opts)
	if err != nil {
		f.Abort()
		return nil, err
	}
	return s, nil
}

// checkCreate checks what Create can before touching the disk.
func checkCreate(path string, schema *arrow.Schema, opts CreateOptions) error {
	if schema == nil {
		return errors.New("arrowio.Create: schema must not be nil")
	}
	switch FormatOf(path) {
	case FormatUnknown:
		return fmt.Errorf("arrowio.Create %s: %w", path, ErrUnknownFormat)
	case FormatStdio:
		if opts.Stdout == nil {
			return errors.New("arrowio.Create -: Stdout must be set to write to standard output")
		}
	case FormatCSV:
		if err := checkCSVSchema(plainSchema(schema)); err != nil {
			return fmt.Errorf("arrowio.Create %s: %w", path, err)
		}
	}
	if opts.Parquet.RowGroupRows < 0 {
		return fmt.Errorf("arrowio.Create: Parquet.RowGroupRows must be >= 0, got %d", opts.Parquet.RowGroupRows)
	}
	_, err := parquetCodec(opts.Parquet.Codec)
	return err
}

// NewSink writes record batches to f in the format of f's extension; a nil
// f means an Arrow IPC stream on opts.Stdout. Made before the schema is
// known, the File checks and claims the output early (the CLI does so for
// every output before it reads a row). On error f stays open: the caller
// aborts it. Committing or aborting the Sink commits or aborts f.
func NewSink(f *File, schema *arrow.Schema, opts CreateOptions) (*Sink, error) {
	path := "-"
	if f != nil {
		path = f.Path()
		if f.state != fileOpen {
			return nil, fmt.Errorf("arrowio.Create %s: file is %s", path, f.stateName())
		}
	}
	if err := checkCreate(path, schema, opts); err != nil {
		return nil, err
	}
	if opts.Mem == nil {
		opts.Mem = memory.DefaultAllocator
	}
	s := &Sink{path: path, format: FormatOf(path), schema: schema, file: f}
	if f == nil {
		s.path = "stdout"
		s.bw = bufio.NewWriterSize(opts.Stdout, 1<<16)
		w, err := newIPCStreamWriter(s.bw, schema, opts.Mem)
		if err != nil {
			return nil, fmt.Errorf("arrowio.Create stdout: %w", err)
		}
		s.w = w
		return s, nil
	}
	codec, _ := parquetCodec(opts.Parquet.Codec)
	s.bw = bufio.NewWriterSize(f.f, 1<<20)
	var err error
	switch s.format {
	case FormatParquet:
		s.w, err = newParquetWriter(s.bw, schema, opts.Parquet, codec, opts.Mem)
	case FormatIPC:
		var iw *ipcFileWriter
		if iw, err = newIPCFileWriter(s.bw, f.f, filepath.Dir(f.dest), schema, opts.Mem); err == nil {
			iw.spoolPattern = "." + filepath.Base(f.dest) + ".tmp-spool-*"
			s.w = iw
		}
	case FormatCSV:
		s.w = newCSVWriter(s.bw, schema, opts.CSV.comma(), opts.Mem)
	}
	if err != nil {
		return nil, fmt.Errorf("arrowio.Create %s: %w", path, err)
	}
	return s, nil
}

func parquetCodec(name string) (compress.Compression, error) {
	switch name {
	case "", "zstd":
		return compress.Codecs.Zstd, nil
	case "snappy":
		return compress.Codecs.Snappy, nil
	case "gzip":
		return compress.Codecs.Gzip, nil
	case "lz4":
		return compress.Codecs.Lz4Raw, nil
	case "none":
		return compress.Codecs.Uncompressed, nil
	}
	return 0, fmt.Errorf("arrowio.Create: Parquet.Codec %q unknown (want zstd, snappy, gzip, lz4 or none)", name)
}

// Path returns the destination path ("stdout" for "-").
func (s *Sink) Path() string { return s.path }

// Rows returns the number of rows written so far.
func (s *Sink) Rows() int64 { return s.rows }

// Schema returns the schema every batch must have.
func (s *Sink) Schema() *arrow.Schema { return s.schema }

// Write appends one batch. A batch with a different schema is an error. After
// an error the Sink is failed: its temporary file is already removed, and
// Commit returns the error.
func (s *Sink) Write(rec arrow.RecordBatch) error {
	switch s.state {
	case sinkPrepared, sinkCommitted:
		return fmt.Errorf("arrowio: write %s: sink already committed", s.path)
	case sinkAborted:
		return fmt.Errorf("arrowio: write %s: sink aborted", s.path)
	case sinkFailed:
		return s.err
	}
	if rec == nil {
		return s.fail(errors.New("nil record batch"))
	}
	if !rec.Schema().Equal(s.schema) {
		return s.fail(fmt.Errorf("batch schema %s differs from sink schema %s", rec.Schema(), s.schema))
	}
	if err := s.w.write(rec); err != nil {
		return s.fail(err)
	}
	s.rows += rec.NumRows()
	return nil
}

// fail records err, removes the temporary file and returns the error.
func (s *Sink) fail(err error) error {
	s.err = fmt.Errorf("arrowio: write %s: %w", s.path, err)
	s.state = sinkFailed
	s.dropStream()
	s.w.discard()
	if s.file != nil {
		s.file.Abort()
	}
	return s.err
}

// Prepare finishes the file (footer, end of stream) and flushes and fsyncs
// it under its temporary name: complete, but not in place. Commit renames
// it. For "-" Prepare does nothing: writing the end of the stream is what
// commits it. Prepare after Prepare is a no-op.
func (s *Sink) Prepare() error {
	switch s.state {
	case sinkPrepared:
		return nil
	case sinkCommitted:
		return nil
	case sinkAborted:
		return fmt.Errorf("arrowio: commit %s: sink aborted", s.path)
	case sinkFailed:
		return s.err
	}
	if s.file == nil {
		return nil
	}
	if err := s.w.finish(); err != nil {
		return s.fail(err)
	}
	if err := s.bw.Flush(); err != nil {
		return s.fail(err)
	}
	if err := s.file.Prepare(); err != nil {
		return s.fail(err)
	}
	s.state = sinkPrepared
	return nil
}

// Commit finishes the file (footer, end of stream), flushes, fsyncs and
// renames it to its destination. Commit after Commit is a no-op; Commit
// after an error or Abort is an error. To commit several outputs all or
// none, use CommitAll.
func (s *Sink) Commit() error {
	if err := s.Prepare(); err != nil {
		return err
	}
	return s.publish(false)
}

// publish puts the prepared output in place: the rename of its File, or
// for "-" the end of the stream and a flush.
func (s *Sink) publish(keepOld bool) error {
	switch s.state {
	case sinkCommitted:
		return nil
	case sinkAborted:
		return fmt.Errorf("arrowio: commit %s: sink aborted", s.path)
	case sinkFailed:
		return s.err
	}
	if s.file == nil {
		if err := s.w.finish(); err != nil {
			return s.fail(err)
		}
		if err := s.bw.Flush(); err != nil {
			return s.fail(err)
		}
		s.state = sinkCommitted
		return nil
	}
	if err := s.file.publish(keepOld); err != nil {
		s.state, s.err = sinkFailed, err
		return err
	}
	if !keepOld {
		s.file.settle()
	}
	s.state = sinkCommitted
	return nil
}

// syncDir makes the rename durable. Best effort: some file systems refuse
// to fsync a directory, and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Abort discards everything written and removes the temporary file. Abort
// after Commit is a no-op (the file stays); Abort is idempotent. For "-",
// bytes already written to Stdout cannot be taken back; Abort stops writing
// and never writes the end-of-stream marker, so a reader sees the stream as
// cut short.
func (s *Sink) Abort() error {
	switch s.state {
	case sinkCommitted, sinkAborted:
		return nil
	case sinkFailed:
		s.state = sinkAborted
		return nil
	}
	prepared := s.state == sinkPrepared
	s.state = sinkAborted
	if !prepared {
		s.dropStream()
		s.w.discard()
	}
	if s.file != nil {
		s.file.Abort()
	}
	return nil
}

// dropStream sends what a stream on Stdout still buffers, and anything the
// writer writes as it is discarded (ipc.Writer's Close writes the
// end-of-stream marker), nowhere: an aborted stream must end cut short, so
// that a reader never takes it for complete.
func (s *Sink) dropStream() {
	if s.file == nil && s.bw != nil {
		s.bw.Reset(io.Discard)
	}
}

// plainSchema replaces dictionary fields by their value types.
func plainSchema(sc *arrow.Schema) *arrow.Schema {
	fields := make([]arrow.Field, sc.NumFields())
	changed := false
	for i, f := range sc.Fields() {
		if dt, ok := f.Type.(*arrow.DictionaryType); ok {
			f.Type = dt.ValueType
			changed = true
		}
		fields[i] = f
	}
	if !changed {
		return sc
	}
	md := sc.Metadata()
	return arrow.NewSchema(fields, &md)
}

// ---- Parquet ----

type parquetWriter struct {
	fw *pqarrow.FileWriter
}

func newParquetWriter(w io.Writer, sc *arrow.Schema, o ParquetOptions, codec compress.Compression, mem memory.Allocator) (*parquetWriter, error) {
	rg := o.RowGroupRows
	if rg == 0 {
		rg = DefaultRowGroupRows
	}
	props := []parquet.WriterProperty{
		parquet.WithAllocator(mem),
		parquet.WithCompression(codec),
		parquet.WithMaxRowGroupLength(rg),
		// Dictionary pages pay off for strings (VINs, makes, postcodes) and
		// cost a failed attempt on floats; enable them where they help.
		parquet.WithDictionaryDefault(false),
	}
	if o.Level != 0 {
		props = append(props, parquet.WithCompressionLevel(o.Level))
	}
	for _, f := range sc.Fields() {
		switch f.Type.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.DICTIONARY:
			props = append(props, parquet.WithDictionaryFor(f.Name, true))
		}
	}
	fw, err := pqarrow.NewFileWriter(sc, w, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	if err != nil {
		return nil, err
	}
	for k, v := range o.Metadata {
		if err := fw.AppendKeyValueMetadata(k, v); err != nil {
			fw.Close()
			return nil, err
		}
	}
	return &parquetWriter{fw: fw}, nil
}

// write appends to the current row group; pqarrow starts a new one when it
// reaches RowGroupRows, so batch size and row-group size are independent.
func (p *parquetWriter) write(rec arrow.RecordBatch) error { return p.fw.WriteBuffered(rec) }
func (p *parquetWriter) finish() error                     { return p.fw.Close() }
func (p *parquetWriter) discard()                          { p.fw.Close() }

// ---- IPC stream ("-") ----

// ipcStreamWriter writes an IPC stream through a gate: discard shuts it
// before closing the arrow writer (which frees its dictionaries), so an
// aborted stream never ends with the end-of-stream marker and a reader
// downstream cannot take the rows written so far for the whole output.
type ipcStreamWriter struct {
	w    *ipc.Writer
	gate *gateWriter
}

func newIPCStreamWriter(w io.Writer, sc *arrow.Schema, mem memory.Allocator) (*ipcStreamWriter, error) {
	g := &gateWriter{w: w}
	return &ipcStreamWriter{w: ipc.NewWriter(g, ipc.WithSchema(sc), ipc.WithAllocator(mem)), gate: g}, nil
}

func (p *ipcStreamWriter) write(rec arrow.RecordBatch) error { return p.w.Write(rec) }
func (p *ipcStreamWriter) finish() error                     { return p.w.Close() }
func (p *ipcStreamWriter) discard() {
	p.gate.shut = true
	p.w.Close()
}

// gateWriter passes writes to w until shut, then drops them.
type gateWriter struct {
	w    io.Writer
	shut bool
}

func (g *gateWriter) Write(b []byte) (int, error) {
	if g.shut {
		return len(b), nil
	}
	return g.w.Write(b)
}

// ---- CSV ----

type csvWriter struct {
	w     *arrowcsv.Writer
	plain *arrow.Schema
	mem   memory.Allocator
	wrote bool
}

func newCSVWriter(w io.Writer, sc *arrow.Schema, comma rune, mem memory.Allocator) *csvWriter {
	plain := plainSchema(sc)
	return &csvWriter{
		w:     arrowcsv.NewWriter(w, plain, arrowcsv.WithHeader(true), arrowcsv.WithComma(comma), arrowcsv.WithNullWriter("")),
		plain: plain,
		mem:   mem,
	}
}

func (c *csvWriter) write(rec arrow.RecordBatch) error {
	c.wrote = true
	if c.plain == rec.Schema() || c.plain.Equal(rec.Schema()) {
		return c.w.Write(rec)
	}
	plain, err := decodeDictionaries(rec, c.plain, c.mem)
	if err != nil {
		return err
	}
	defer plain.Release()
	return c.w.Write(plain)
}

func (c *csvWriter) finish() error {
	if !c.wrote {
		// The arrow writer emits the header with the first batch; an empty
		// CSV still needs its header to be read back.
		b := array.NewRecordBuilder(c.mem, c.plain)
		empty := b.NewRecordBatch()
		b.Release()
		err := c.w.Write(empty)
		empty.Release()
		if err != nil {
			return err
		}
	}
	c.w.Flush()
	return c.w.Error()
}
func (c *csvWriter) discard() {}

// decodeDictionaries returns rec with its dictionary columns expanded to
// their values (CSV has no dictionaries).
func decodeDictionaries(rec arrow.RecordBatch, plain *arrow.Schema, mem memory.Allocator) (arrow.RecordBatch, error) {
	ctx := compute.WithAllocator(context.Background(), mem)
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, col := range rec.Columns() {
		d, ok := col.(*array.Dictionary)
		if !ok {
			col.Retain()
			cols[i] = col
			continue
		}
		out, err := compute.TakeArray(ctx, d.Dictionary(), d.Indices())
		if err != nil {
			return nil, fmt.Errorf("column %q: decode dictionary: %w", rec.ColumnName(i), err)
		}
		cols[i] = out
	}
	return array.NewRecordBatch(plain, cols, rec.NumRows()), nil
}
