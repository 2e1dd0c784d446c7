package arrowio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// drainStdin reads data as an IPC stream on standard input to the end.
func drainStdin(mem memory.Allocator, data []byte) error {
	src, err := Open(context.Background(), Stdio, OpenOptions{Mem: mem, Stdin: bytes.NewReader(data)})
	if err != nil {
		return err
	}
	defer src.Close()
	for src.Next() {
	}
	return src.Err()
}

// ipcMessages splits an IPC stream (continuation-marked messages) into
// its messages' metadata and body offsets; it stops at the end-of-stream
// marker.
type ipcFrame struct{ meta, body, bodyLen int }

func ipcMessages(t *testing.T, stream []byte) []ipcFrame {
	t.Helper()
	var out []ipcFrame
	for at := 0; at+8 <= len(stream); {
		n := int(binary.LittleEndian.Uint32(stream[at+4:]))
		if n == 0 {
			break
		}
		info, err := checkMessage(stream[at+8 : at+8+n])
		if err != nil {
			t.Fatalf("message at %d: %v", at, err)
		}
		out = append(out, ipcFrame{meta: at + 8, body: at + 8 + n, bodyLen: int(info.bodyLen)})
		at += 8 + n + int(info.bodyLen)
	}
	return out
}

// Inputs that killed the process with a fatal out-of-memory error, which
// no recover catches: they must be errors now, from a file and from stdin.
//   - issue13-stream-488.arrow (issue #13): a Schema table whose vtable is
//     9 bytes long. The flatbuffers runtime reads a slot when slot < vtable
//     length, so custom_metadata (slot 8) was read from a half slot the
//     pre-check had skipped, claiming 4,294,967,008 key-value pairs.
//   - mutation-file-3322.arrow: found by random byte mutation of a valid
//     two-batch IPC file (1 to 8 random bytes per mutant, as in
//     TestIPCByteMutations, over the file form only: PCG seed 1, mutant
//     111,068); the same cause: a 9-byte Schema vtable.
func TestIPCCrashInputs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "crash", "*.arrow"))
	if err != nil || len(files) < 2 {
		t.Fatalf("crash inputs missing: %v %v", files, err)
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			if err := drain(mem, p, OpenOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
				t.Errorf("file: got %v, want ErrCorrupt naming the file", err)
			}
			data, _ := os.ReadFile(p)
			if bytes.HasPrefix(data, []byte(ipcFileMagic)) {
				data = data[8:] // the stream section, as a producer pipes it
			}
			if err := drainStdin(mem, data); !errors.Is(err, ErrCorrupt) {
				t.Errorf("stdin: got %v, want ErrCorrupt", err)
			}
		})
	}
}

// The Arrow schema pqarrow stores in Parquet metadata goes through the same
// validator: the crash input's schema message there is an error, not a
// fatal allocation inside pqarrow.
func TestIPCCrashSchemaInParquet(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	crash, err := os.ReadFile(filepath.Join("testdata", "crash", "issue13-stream-488.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint32(crash[4:]))
	md := arrow.NewMetadata([]string{"ARROW:schema"}, []string{base64.StdEncoding.EncodeToString(crash[:8+n])})
	sc := arrow.NewSchema([]arrow.Field{{Name: "year", Type: arrow.PrimitiveTypes.Int64}}, &md)
	p := filepath.Join(t.TempDir(), "crash.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{2020, 2021}, nil)
	col := b.NewArray()
	b.Release()
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 2)
	col.Release()
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	err = drain(mem, p, OpenOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "stored in the Parquet metadata is damaged") {
		t.Errorf("got %v", err)
	}
}

// checkMessage follows the flatbuffers rules: a vtable of odd length is
// refused (the verifier's rule; the Go runtime would read half a slot
// past it), a short vtable means absent fields, and a field offset past
// the table is an error.
func TestCheckMessageVtable(t *testing.T) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema()))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	frames := ipcMessages(t, buf.Bytes())
	if len(frames) != 1 {
		t.Fatalf("want the schema message only, got %d messages", len(frames))
	}
	meta := buf.Bytes()[frames[0].meta:frames[0].body]
	root := int(binary.LittleEndian.Uint32(meta))
	vt := root - int(int32(binary.LittleEndian.Uint32(meta[root:])))
	vlen := int(binary.LittleEndian.Uint16(meta[vt:]))
	for _, tc := range []struct {
		name    string
		edit    func(m []byte)
		wantErr bool
	}{
		{"valid", func([]byte) {}, false},
		{"odd vtable length", func(m []byte) { binary.LittleEndian.PutUint16(m[vt:], uint16(vlen-1)) }, true},
		{"vtable length 2", func(m []byte) { binary.LittleEndian.PutUint16(m[vt:], 2) }, true},
		{"vtable without fields", func(m []byte) { binary.LittleEndian.PutUint16(m[vt:], 4) }, false},
		{"vtable past the buffer", func(m []byte) { binary.LittleEndian.PutUint16(m[vt:], uint16(len(m))) }, true},
		{"field past the table", func(m []byte) { binary.LittleEndian.PutUint16(m[vt+4+2*msgHeader:], 0xfff0) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := bytes.Clone(meta)
			tc.edit(m)
			_, err := checkMessage(m)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// compressedStream is an IPC stream of one zstd-compressed batch.
func compressedStream(t *testing.T, mem memory.Allocator, opt ipc.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema()), ipc.WithAllocator(mem), opt)
	rec := testBatch(t, mem, 0, 200)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// arrow-go allocates a compressed buffer at the uncompressed length its
// first 8 bytes claim, before decompressing: a forged claim was a fatal
// out-of-memory. Compressed streams read as they are; a claim no codec can
// reach from the compressed bytes is an error.
func TestIPCCompressedLengthClaims(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for name, opt := range map[string]ipc.Option{"zstd": ipc.WithZstd(), "lz4": ipc.WithLZ4()} {
		t.Run(name, func(t *testing.T) {
			data := compressedStream(t, mem, opt)
			if err := drainStdin(mem, data); err != nil {
				t.Fatalf("valid compressed stream: %v", err)
			}
			// Forge every compressed buffer's claim of the batch message in turn.
			frames := ipcMessages(t, data)
			last := frames[len(frames)-1]
			info, _ := checkMessage(data[last.meta:last.body])
			if !info.compressed {
				t.Fatal("batch is not compressed")
			}
			forged := 0
			for k := 0; k < info.bufN; k++ {
				at := last.meta + info.bufStart + 16*k
				off := int(binary.LittleEndian.Uint64(data[at:]))
				if binary.LittleEndian.Uint64(data[at+8:]) < 8 {
					continue
				}
				bad := bytes.Clone(data)
				binary.LittleEndian.PutUint64(bad[last.body+off:], 1<<40)
				err := drainStdin(mem, bad)
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "uncompressed") {
					t.Errorf("buffer %d: got %v", k, err)
				}
				forged++
			}
			if forged == 0 {
				t.Fatal("no compressed buffer found")
			}
		})
	}
}

// A message may not decode to more than maxDecodedMessage bytes even when
// every buffer's ratio is possible.
func TestCheckCompressedBodyTotal(t *testing.T) {
	const n = 3
	comp := int64(maxDecodedMessage/n/maxCompressionRatio + 64) // ratio allows a third of the limit and more
	meta := make([]byte, 16*n)
	body := make([]byte, n*comp)
	for k := int64(0); k < n; k++ {
		binary.LittleEndian.PutUint64(meta[16*k:], uint64(k*comp))
		binary.LittleEndian.PutUint64(meta[16*k+8:], uint64(comp))
		binary.LittleEndian.PutUint64(body[k*comp:], uint64(maxDecodedMessage/n+1))
	}
	info := msgInfo{compressed: true, bufStart: 0, bufN: n}
	if err := checkCompressedBody(meta, info, body); err == nil || !strings.Contains(err.Error(), "decompresses to more than") {
		t.Errorf("got %v", err)
	}
	info.bufN = n - 1
	if err := checkCompressedBody(meta, info, body); err != nil {
		t.Errorf("two buffers within the limit: %v", err)
	}
}

// A random byte-mutation loop over a valid two-batch IPC file (the search
// that found mutation-file-3322.arrow): every mutant must give an error or
// a clean read, never a panic, a leak or a fatal error. The full search
// runs for minutes (FuzzOpenIPC covers it in CI's fuzz smoke); this is its
// fast deterministic prefix, over the stream on stdin and the file on disk.
func TestIPCByteMutations(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.arrow")
	writeFile(t, mem, good, 2, 20)
	file, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	stream := file[8:]
	rng := rand.New(rand.NewPCG(1, 1))
	mutate := func(src []byte) []byte {
		bad := bytes.Clone(src)
		for j := 1 + rng.IntN(8); j > 0; j-- {
			bad[rng.IntN(len(bad))] = byte(rng.UintN(256))
		}
		return bad
	}
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	for i := 0; i < iters; i++ {
		_ = drainStdin(mem, mutate(stream))
	}
	p := filepath.Join(dir, "mutant.arrow")
	for i := 0; i < iters/10; i++ {
		if err := os.WriteFile(p, mutate(file), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = drain(mem, p, OpenOptions{})
	}
}

// A stream cut on a message boundary (an interrupted `--out -` producer
// piped into `--in -`) is not the whole input: it is ErrNoEndOfStream
// naming the source and the rows read, unless AllowMissingEndOfStream
// accepts it, loudly. The file format needs no marker (its footer proves
// the file complete).
func TestIPCStreamWithoutEndOfStream(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	var buf bytes.Buffer
	sk, err := Create(Stdio, testSchema(), CreateOptions{Mem: mem, Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	const batches, rows = 10, 100
	for b := 0; b < batches; b++ {
		rec := testBatch(t, mem, b, rows)
		if err := sk.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := sk.Commit(); err != nil {
		t.Fatal(err)
	}
	stream := buf.Bytes()
	frames := ipcMessages(t, stream)
	// Cut after the 6th record batch: every dictionary batch before it
	// is kept, the cut falls on a message boundary.
	cut, seen := 0, 0
	for _, fr := range frames {
		if isRecordBatch(stream[fr.meta:fr.body]) {
			if seen++; seen == 6 {
				cut = fr.body + fr.bodyLen
				break
			}
		}
	}
	if cut == 0 {
		t.Fatal("no cut point")
	}
	truncated := stream[:cut]
	streamFile := filepath.Join(dir, "cut.arrow")
	os.WriteFile(streamFile, truncated, 0o600)

	read := func(path string, data []byte, allow bool) (*Source, int64, error) {
		src, err := Open(context.Background(), path, OpenOptions{Mem: mem, Stdin: bytes.NewReader(data), AllowMissingEndOfStream: allow})
		if err != nil {
			return nil, 0, err
		}
		for src.Next() {
		}
		return src, src.Rows(), src.Err()
	}
	for _, tc := range []struct{ path, name string }{{Stdio, "stdin"}, {streamFile, streamFile}} {
		src, n, err := read(tc.path, truncated, false)
		if !errors.Is(err, ErrNoEndOfStream) || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), "after 600 rows") {
			t.Errorf("%s: got %v (rows %d), want ErrNoEndOfStream naming it and 600 rows", tc.name, err, n)
		}
		src.Close()
		src, n, err = read(tc.path, truncated, true)
		if err != nil || n != 600 {
			t.Errorf("%s allowed: err %v, rows %d", tc.name, err, n)
		}
		if w := src.Warnings(); len(w) != 1 || !strings.Contains(w[0], tc.name) || !strings.Contains(w[0], "may be truncated") {
			t.Errorf("%s allowed: warnings %q", tc.name, w)
		}
		src.Close()
	}
	// The whole stream reads without warnings, allowed or not.
	for _, allow := range []bool{false, true} {
		src, n, err := read(Stdio, stream, allow)
		if err != nil || n != batches*rows || len(src.Warnings()) != 0 {
			t.Errorf("whole stream (allow %v): err %v, rows %d, warnings %q", allow, err, n, src.Warnings())
		}
		src.Close()
	}
	// An IPC file whose stream section lacks the marker (older writers)
	// is complete by its footer.
	good := filepath.Join(dir, "good.arrow")
	writeFile(t, mem, good, 2, 20)
	data, _ := os.ReadFile(good)
	footer := int(binary.LittleEndian.Uint32(data[len(data)-10:]))
	eosAt := len(data) - 10 - footer - 8
	if !bytes.Equal(data[eosAt:eosAt+8], []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) {
		t.Fatalf("no end-of-stream marker before the footer: % x", data[eosAt:eosAt+8])
	}
	noEOS := append(bytes.Clone(data[:eosAt]), data[eosAt+8:]...)
	p := filepath.Join(dir, "noeos.arrow")
	os.WriteFile(p, noEOS, 0o600)
	src, n, err := read(p, nil, false)
	if err != nil || n != 40 || len(src.Warnings()) != 0 {
		t.Errorf("file without marker: err %v, rows %d, warnings %q", err, n, src.Warnings())
	}
	src.Close()
}

// isRecordBatch reports whether an IPC message's header is a record batch.
func isRecordBatch(meta []byte) bool {
	f := &fb{b: meta, budget: 16}
	root, err := f.deref(0)
	if err != nil || f.table(root) != nil {
		return false
	}
	p, err := f.field(root, msgHeaderType)
	return err == nil && p >= 0 && meta[p] == headerRecordBatch
}

// An aborted stdout sink never writes the end-of-stream marker: what it
// wrote before cannot pass downstream for a complete stream.
func TestStdoutAbortWritesNoEndOfStream(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var buf bytes.Buffer
	sk, err := Create(Stdio, testSchema(), CreateOptions{Mem: mem, Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 4; b++ {
		rec := testBatch(t, mem, b, 2000) // > 64 KiB in all: some reach stdout
		if err := sk.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := sk.Abort(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() == 0 {
		t.Fatal("nothing reached stdout: the test does not test")
	}
	if bytes.HasSuffix(buf.Bytes(), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) {
		t.Error("aborted stream ends with the end-of-stream marker")
	}
	if err := drainStdin(mem, buf.Bytes()); err == nil {
		t.Error("aborted stream reads as complete")
	}
}

// An error from arrow's decoder (here: compressed bytes that do not
// decompress) names the first row of the batch that failed, since the
// decoder itself names none.
func TestIPCDecodeErrorNamesRow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema()), ipc.WithAllocator(mem), ipc.WithZstd())
	for b := 0; b < 2; b++ {
		rec := testBatch(t, mem, b, 200)
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	frames := ipcMessages(t, data)
	last := frames[len(frames)-1]
	info, _ := checkMessage(data[last.meta:last.body])
	for k := 0; k < info.bufN; k++ {
		at := last.meta + info.bufStart + 16*k
		off := int(binary.LittleEndian.Uint64(data[at:]))
		if n := int(binary.LittleEndian.Uint64(data[at+8:])); n > 16 {
			for i := 12; i < n; i++ {
				data[last.body+off+i] ^= 0xa5 // the zstd frame, not its length prefix
			}
			break
		}
	}
	err := drainStdin(mem, data)
	if err == nil || !strings.Contains(err.Error(), "in the batch from row 201") {
		t.Errorf("error %v does not name the batch's first row", err)
	}
}
