package arrowio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// DefaultBatchSize is the number of rows per batch when OpenOptions.BatchSize
// is zero: large enough to amortise per-batch costs, small enough that a
// batch of a wide table stays in cache-friendly megabytes.
const DefaultBatchSize = 64 * 1024

// Stdio is the path that means standard input (Open) or standard output
// (Create); the data is an Arrow IPC stream.
const Stdio = "-"

var (
	// ErrUnknownFormat is returned for a path whose extension is not one of
	// .parquet, .arrow, .ipc, .csv (or "-").
	ErrUnknownFormat = errors.New("unknown file format (want .parquet, .arrow, .ipc, .csv or -)")
	// ErrEmptyFile is returned when an input file has no bytes (or a CSV file
	// has no header row).
	ErrEmptyFile = errors.New("empty file")
	// ErrCorrupt marks input that arrow's decoders could not make sense of.
	ErrCorrupt = errors.New("corrupt input")
	// ErrNoEndOfStream is returned for an Arrow IPC stream (on stdin, or in
	// a file without the "ARROW1" magic) that ends between two messages
	// without the end-of-stream marker: the producer was interrupted, and
	// the rows read so far are not the whole input. See
	// OpenOptions.AllowMissingEndOfStream.
	ErrNoEndOfStream = errors.New("truncated input: the Arrow IPC stream has no end-of-stream marker")
)

// Format is a file format known to this package.
type Format int

// The formats, chosen by extension (FormatOf).
const (
	FormatUnknown Format = iota
	FormatParquet
	FormatIPC // Arrow IPC file (or stream, when reading a file without the file magic)
	FormatCSV
	FormatStdio // Arrow IPC stream on stdin/stdout
)

// String names the format as users write it.
func (f Format) String() string {
	switch f {
	case FormatParquet:
		return "parquet"
	case FormatIPC:
		return "arrow"
	case FormatCSV:
		return "csv"
	case FormatStdio:
		return "arrow-stream"
	}
	return "unknown"
}

// FormatOf returns the format a path denotes by its extension
// (case-insensitive), FormatStdio for "-", or FormatUnknown.
func FormatOf(path string) Format {
	if path == Stdio {
		return FormatStdio
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet":
		return FormatParquet
	case ".arrow", ".ipc":
		return FormatIPC
	case ".csv":
		return FormatCSV
	}
	return FormatUnknown
}

// OpenOptions configures Open.
type OpenOptions struct {
	// Mem allocates every batch of Parquet and CSV input. Nil means
	// memory.DefaultAllocator. Batches of IPC input live in Go memory
	// (zero-copy slices of the message bodies, and what decompression
	// allocates): arrow's IPC decoder drops what it allocated when it gives
	// up on a corrupt message, which the garbage collector reclaims and
	// any other allocator would lose.
	Mem memory.Allocator
	// BatchSize is the maximum number of rows per batch (larger IPC batches
	// are handed out in zero-copy slices). Zero means DefaultBatchSize;
	// negative is an error.
	BatchSize int
	// Stdin is read as an Arrow IPC stream when the path is "-". Required
	// then, ignored otherwise.
	Stdin io.Reader
	// CSV configures .csv sources.
	CSV CSVOptions
	// AllowMissingEndOfStream accepts an Arrow IPC stream that ends without
	// its end-of-stream marker (ErrNoEndOfStream otherwise), for producers
	// known to omit it. Such a stream cannot be told from a truncated one,
	// so the Source then records a warning (Source.Warnings) for the
	// caller to show and report. The IPC file format does not need the
	// marker: its footer proves the file complete.
	AllowMissingEndOfStream bool
	// Warn, if set, is called with each warning when it arises (at Open
	// for CSV inference, at the end of input for a missing end-of-stream
	// marker), for a caller that shows them as they come; Source.Warnings
	// keeps them too.
	Warn func(warning string)
}

// Source is an open input: an array.RecordReader over a file's batches plus
// Close. Batches returned by RecordBatch are valid until the next call to
// Next; Retain them to keep them longer. A Source is not safe for concurrent
// use.
type Source struct {
	ctx    context.Context
	path   string
	format Format
	schema *arrow.Schema

	rr       array.RecordReader
	closer   io.Closer
	validate bool // batches come from untrusted IPC bytes: check them
	csv      *csvState
	// ipc frames an IPC stream's messages; warnEOS: a missing
	// end-of-stream marker was accepted (AllowMissingEndOfStream) and is
	// to be reported in warnings.
	ipc      *msgReader
	warnEOS  bool
	warnings []string
	onWarn   func(string)
	// conv is the current batch when the CSV reader's batch needed
	// converting (owned, released on the next Next).
	conv arrow.RecordBatch
	mem  memory.Allocator

	batchSize int64
	// big is an inner batch larger than batchSize, handed out in slices;
	// bigOff is the next row to hand out, slice the current slice.
	big    arrow.RecordBatch
	bigOff int64
	slice  arrow.RecordBatch

	refs   atomic.Int64
	cur    arrow.RecordBatch
	rows   int64 // rows handed out before cur
	err    error
	done   bool
	closed bool
}

// Compile-time check: a Source is a record reader.
var _ array.RecordReader = (*Source)(nil)

// Open opens path for reading as a stream of record batches; the format
// follows the extension (see FormatOf). The caller must Close (or Release)
// the Source. ctx is checked before every batch.
func Open(ctx context.Context, path string, opts OpenOptions) (src *Source, err error) {
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("arrowio.Open: BatchSize must be >= 0, got %d", opts.BatchSize)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Mem == nil {
		opts.Mem = memory.DefaultAllocator
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("arrowio.Open %s: %w", path, err)
	}
	s := &Source{ctx: ctx, path: path, format: FormatOf(path), batchSize: int64(opts.BatchSize), mem: opts.Mem, onWarn: opts.Warn}
	s.refs.Store(1)
	switch s.format {
	case FormatUnknown:
		return nil, fmt.Errorf("arrowio.Open %s: %w", path, ErrUnknownFormat)
	case FormatStdio:
		if opts.Stdin == nil {
			return nil, errors.New("arrowio.Open -: Stdin must be set to read from standard input")
		}
		s.path = "stdin"
		err = guard(func() error {
			return s.openIPCStream(bufio.NewReader(opts.Stdin), maxStdinMessage, s.streamEOS(opts))
		})
		if err != nil {
			return nil, s.errorf(err)
		}
		return s, nil
	}

	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("arrowio.Open: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("arrowio.Open: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("arrowio.Open %s: is a directory", path)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("arrowio.Open %s: %w", path, ErrEmptyFile)
	}
	s.closer = f
	switch s.format {
	case FormatParquet:
		err = guard(func() error { return s.openParquet(f, opts) })
	case FormatIPC:
		err = guard(func() error { return s.openIPC(f, st.Size(), opts) })
	case FormatCSV:
		err = guard(func() error { return s.openCSV(f, opts) })
	}
	if err != nil {
		return nil, s.errorf(err)
	}
	return s, nil
}

// errorf prefixes err with the operation and the file, unless it already
// carries the file (a *CSVError).
func (s *Source) errorf(err error) error {
	var ce *CSVError
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("arrowio: read %s: %w", s.path, err)
}

func (s *Source) openParquet(f *os.File, opts OpenOptions) error {
	// The file reader's page and decompression buffers live in Go memory:
	// arrow's page reader drops them without a release when a corrupt
	// column chunk fails half-way (found by FuzzOpenParquet), which the
	// garbage collector reclaims and another allocator would lose. The
	// batches themselves come from opts.Mem (pqarrow.NewFileReader below).
	props := parquet.NewReaderProperties(memory.NewGoAllocator())
	// Read column chunks through a bounded buffer instead of whole: a row
	// group of a wide file can be hundreds of megabytes.
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	pf, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		return fmt.Errorf("%w: not a Parquet file: %v", ErrCorrupt, err)
	}
	if err := checkStoredSchema(pf); err != nil {
		pf.Close()
		return err
	}
	arrProps := pqarrow.ArrowReadProperties{BatchSize: int64(opts.BatchSize)}
	if err := markDictColumns(pf, &arrProps); err != nil {
		pf.Close()
		return err
	}
	fr, err := pqarrow.NewFileReader(pf, arrProps, opts.Mem)
	if err != nil {
		pf.Close()
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	rr, err := fr.GetRecordReader(s.ctx, nil, nil)
	if err != nil {
		pf.Close()
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	s.rr = rr
	s.schema = rr.Schema()
	// file.Reader.Close closes f too; keep one closer.
	s.closer = pf
	return nil
}

// markDictColumns asks pqarrow to read every string leaf, and every leaf whose
// stored Arrow type is a dictionary, as a dictionary array: decoding them to
// plain strings would cost memory and time and throw away the encoding every
// later stage (pseudonyms on the dictionary only) relies on.
func markDictColumns(pf *file.Reader, props *pqarrow.ArrowReadProperties) error {
	sc := pf.MetaData().Schema
	var stored *arrow.Schema
	if s, err := pqarrow.FromParquet(sc, props, pf.MetaData().KeyValueMetadata()); err == nil {
		stored = s
	}
	for i := 0; i < sc.NumColumns(); i++ {
		col := sc.Column(i)
		if col.PhysicalType() != parquet.Types.ByteArray {
			continue
		}
		isString := col.ConvertedType() == schema.ConvertedTypes.UTF8
		if lt := col.LogicalType(); lt != nil {
			if _, ok := lt.(schema.StringLogicalType); ok {
				isString = true
			}
		}
		isDict := false
		if stored != nil {
			if path := col.ColumnPath(); len(path) > 0 {
				if idx := stored.FieldIndices(path[0]); len(idx) == 1 {
					isDict = stored.Field(idx[0]).Type.ID() == arrow.DICTIONARY
				}
			}
		}
		if isString || isDict {
			props.SetReadDict(i, true)
		}
	}
	return nil
}

// checkStoredSchema verifies the Arrow schema pqarrow keeps in the Parquet
// key-value metadata (an IPC schema message, base64) before pqarrow decodes
// it with arrow's unchecked flatbuffer reader (see ipcmsg.go): a corrupt
// copy must be an error, not a fatal out-of-memory.
func checkStoredSchema(pf *file.Reader) error {
	kv := pf.MetaData().KeyValueMetadata()
	if kv == nil {
		return nil
	}
	ser := kv.FindValue("ARROW:schema")
	if ser == nil {
		return nil
	}
	// Decode as pqarrow does: padded, else unpadded base64. What neither
	// decodes, pqarrow rejects by itself.
	var raw []byte
	var err error
	if len(*ser)%4 == 0 {
		raw, err = base64.StdEncoding.DecodeString(*ser)
	}
	if len(raw) == 0 || err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(*ser); err != nil {
			return nil
		}
	}
	bad := fmt.Errorf("%w: the Arrow schema stored in the Parquet metadata is damaged", ErrCorrupt)
	if len(raw) < 8 {
		return bad
	}
	n, rest := binary.LittleEndian.Uint32(raw), raw[4:]
	if n == 0xFFFFFFFF {
		n, rest = binary.LittleEndian.Uint32(raw[4:]), raw[8:]
	}
	if n < 8 || int64(n) > int64(len(rest)) {
		return bad
	}
	if _, err := checkMessage(rest[:n]); err != nil {
		return fmt.Errorf("%w: %v", bad, err)
	}
	return nil
}

// ipcFileMagic opens (and closes) the Arrow IPC file format.
const ipcFileMagic = "ARROW1"

// streamEOS is the end-of-stream rule for an IPC stream (not the file
// format's stream section).
func (s *Source) streamEOS(opts OpenOptions) eosRule {
	if opts.AllowMissingEndOfStream {
		s.warnEOS = true
		return eosOptional
	}
	return eosRequired
}

func (s *Source) openIPC(f *os.File, size int64, opts OpenOptions) error {
	var magic [len(ipcFileMagic)]byte
	n, err := io.ReadFull(f, magic[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if n < len(magic) || string(magic[:]) != ipcFileMagic {
		// No file magic: accept the IPC stream format, which tools write
		// to .arrow files as often as the file format.
		return s.openIPCStream(bufio.NewReader(f), size, s.streamEOS(opts))
	}
	// The file format is magic, padding, an IPC stream, the footer, its
	// length and the magic again. Check the trailer (a truncated file
	// fails here), then read the stream section sequentially through the
	// verifying message reader; the footer only indexes that stream.
	var tail [10]byte
	if size < int64(8+len(tail)) {
		return fmt.Errorf("%w: Arrow IPC file of %d bytes is truncated", ErrCorrupt, size)
	}
	if _, err := f.ReadAt(tail[:], size-int64(len(tail))); err != nil {
		return err
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if string(tail[4:]) != ipcFileMagic || footer <= 0 || footer > size-8-int64(len(tail)) {
		return fmt.Errorf("%w: Arrow IPC file has no valid footer (truncated?)", ErrCorrupt)
	}
	stream := io.NewSectionReader(f, 8, size-int64(len(tail))-footer-8)
	return s.openIPCStream(bufio.NewReaderSize(stream, 1<<16), size, eosOptional)
}

// maxStdinMessage bounds one IPC message read from standard input, whose
// size is unknown: a corrupt length must not make us allocate terabytes.
const maxStdinMessage = 1 << 30

func (s *Source) openIPCStream(r io.Reader, maxMessage int64, eos eosRule) error {
	s.validate = true
	s.ipc = newMsgReader(r, maxMessage, eos)
	// Go memory, not s.mem: see OpenOptions.Mem (a corrupt compressed
	// buffer leaked its decompression buffer from a checked allocator).
	rr, err := ipc.NewReaderFromMessageReader(s.ipc, ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: no Arrow IPC schema message", ErrEmptyFile)
		}
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("%w: not an Arrow IPC file or stream: %v", ErrCorrupt, err)
	}
	s.rr = rr
	s.schema = rr.Schema()
	return nil
}

// Schema returns the schema of every batch.
func (s *Source) Schema() *arrow.Schema { return s.schema }

// Path returns the path the Source was opened with ("stdin" for "-").
func (s *Source) Path() string { return s.path }

// Format returns the format the Source reads.
func (s *Source) Format() Format { return s.format }

// Rows returns the number of rows handed out so far, including the current
// batch.
func (s *Source) Rows() int64 {
	if s.cur != nil {
		return s.rows + s.cur.NumRows()
	}
	return s.rows
}

// Next advances to the next batch. It returns false at the end of the input
// or on error; Err tells which.
func (s *Source) Next() bool {
	if s.cur != nil {
		s.rows += s.cur.NumRows()
		s.cur = nil
	}
	if s.slice != nil {
		s.slice.Release()
		s.slice = nil
	}
	if s.conv != nil {
		s.conv.Release()
		s.conv = nil
	}
	if s.err != nil || s.done || s.closed {
		return false
	}
	if s.big != nil {
		if s.bigOff < s.big.NumRows() {
			return s.nextSlice()
		}
		s.big = nil
	}
	if err := s.ctx.Err(); err != nil {
		s.err = s.errorf(err)
		return false
	}
	var ok bool
	if err := guard(func() error { ok = s.rr.Next(); return nil }); err != nil {
		if s.csv == nil {
			err = s.explain(err, nil)
		}
		s.err = s.errorf(err)
		return false
	}
	if !ok {
		s.done = true
		if err := s.rr.Err(); err != nil {
			if errors.Is(err, ErrNoEndOfStream) {
				s.err = s.errorf(fmt.Errorf("%w: it stops after %d rows, so the input is incomplete (its producer was probably interrupted)", err, s.rows))
				return false
			}
			s.err = s.errorf(s.explain(err, nil))
		} else if s.warnEOS && s.ipc.missingEOS {
			s.warn(fmt.Sprintf("%s: the Arrow IPC stream has no end-of-stream marker; accepted as complete after %d rows, but it may be truncated", s.path, s.rows))
		}
		return false
	}
	rec := s.rr.RecordBatch()
	if err := s.rr.Err(); err != nil {
		// The CSV reader hands out the batch in which a value failed to parse
		// (with a null in its place) and reports the error beside it: that
		// batch must not travel on.
		s.err = s.errorf(s.explain(err, rec))
		return false
	}
	if rec == nil {
		s.err = s.errorf(fmt.Errorf("%w: reader returned no batch", ErrCorrupt))
		return false
	}
	if s.csv != nil {
		conv, err := s.csv.convertBatch(s.path, s.rows, rec, s.mem)
		if err != nil {
			s.err = s.errorf(err)
			return false
		}
		if conv != rec {
			s.conv, rec = conv, conv
		}
	}
	if !rec.Schema().Equal(s.schema) {
		s.err = s.errorf(fmt.Errorf("%w: batch schema %s differs from file schema %s", ErrCorrupt, rec.Schema(), s.schema))
		return false
	}
	if s.validate {
		if err := validateBatch(rec, s.rows); err != nil {
			s.err = s.errorf(fmt.Errorf("%w: %w", ErrCorrupt, err))
			return false
		}
	}
	if rec.NumRows() > s.batchSize {
		// IPC batches keep the size they were written with; cut them so
		// BatchSize bounds every batch whatever the format.
		s.big, s.bigOff = rec, 0
		return s.nextSlice()
	}
	s.cur = rec
	return true
}

// nextSlice hands out the next BatchSize rows of s.big (zero-copy).
func (s *Source) nextSlice() bool {
	end := min(s.bigOff+s.batchSize, s.big.NumRows())
	s.slice = s.big.NewSlice(s.bigOff, end)
	s.bigOff = end
	s.cur = s.slice
	return true
}

// explain turns a reader error into one that names the row and column where
// it can (CSV); for Parquet and IPC, whose decoders do not say, it names the
// first row of the batch that failed.
func (s *Source) explain(err error, rec arrow.RecordBatch) error {
	if s.csv == nil {
		return fmt.Errorf("in the batch from row %d: %w", s.rows+1, err)
	}
	return s.csv.explain(s.path, s.rows, err, rec)
}

// RecordBatch returns the current batch, valid until the next call to Next.
func (s *Source) RecordBatch() arrow.RecordBatch { return s.cur }

// Record returns the current batch.
//
// Deprecated: use RecordBatch; this exists to satisfy array.RecordReader.
func (s *Source) Record() arrow.RecordBatch { return s.cur }

// Err returns the error that stopped Next, or nil at a clean end.
func (s *Source) Err() error { return s.err }

// warn records a warning and hands it to OpenOptions.Warn.
func (s *Source) warn(msg string) {
	s.warnings = append(s.warnings, msg)
	if s.onWarn != nil {
		s.onWarn(msg)
	}
}

// Warnings returns what the Source accepted but a user should know: a
// missing IPC end-of-stream marker (OpenOptions.AllowMissingEndOfStream),
// CSV columns inference read as strings because of leading zeros. Each
// names the file. Complete once Next has returned false.
func (s *Source) Warnings() []string { return append([]string(nil), s.warnings...) }

// Retain adds a reference; each Retain needs a Release.
func (s *Source) Retain() { s.refs.Add(1) }

// Release drops a reference; the last one closes the Source.
func (s *Source) Release() {
	if s.refs.Add(-1) == 0 {
		s.Close()
	}
}

// Close releases the reader and closes the file. The current batch becomes
// invalid. Close is idempotent.
func (s *Source) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cur = nil
	s.big = nil
	if s.slice != nil {
		s.slice.Release()
		s.slice = nil
	}
	if s.conv != nil {
		s.conv.Release()
		s.conv = nil
	}
	var err error
	if s.rr != nil {
		err = guard(func() error { s.rr.Release(); return nil })
		s.rr = nil
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); cerr != nil && err == nil {
			err = cerr
		}
		s.closer = nil
	}
	if err != nil {
		return fmt.Errorf("arrowio: close %s: %w", s.path, err)
	}
	return nil
}

// guard calls f, turning a panic in arrow's decoders (which some corrupt
// inputs still provoke) into an ErrCorrupt error. Our own code returns errors
// and never relies on this.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: decoder failed: %v", ErrCorrupt, r)
		}
	}()
	return f()
}

// replay lets the CSV source replay the prefix it used for inference.
func replay(prefix []byte, rest io.Reader) io.Reader {
	return io.MultiReader(bytes.NewReader(prefix), rest)
}
