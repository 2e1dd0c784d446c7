package arrowio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// IPC input is untrusted. arrow-go (v18.8.0) trusts the vector lengths in a
// message's flatbuffer metadata and allocates them before reading
// (make([]string, CustomMetadataLength()) and the like), so a few corrupt
// bytes become a multi-terabyte allocation: a fatal runtime error no recover
// can catch. ipc.NewReader also ignores its size-limit options. So Tarnkappe
// frames the stream itself: every message's metadata is checked here — each
// vector arrow will size an allocation by must fit inside the metadata — and
// its body length must fit the input, before arrow sees it.

// msgReader is an ipc.MessageReader over an Arrow IPC stream that verifies
// each message before handing it to arrow's decoder.
type msgReader struct {
	r       io.Reader
	maxMeta int64
	maxBody int64
	msg     *ipc.Message
	refs    atomic.Int64

	// eos says what a clean end of input without the end-of-stream
	// marker means: eosRequired makes it ErrNoEndOfStream, eosOptional
	// accepts it and sets missingEOS (the IPC file format's stream
	// section, which its footer already proves complete, and streams the
	// caller chose to accept).
	eos        eosRule
	messages   int
	missingEOS bool
}

// eosRule is msgReader's treatment of a missing end-of-stream marker.
type eosRule int

const (
	eosRequired eosRule = iota
	eosOptional
)

var _ ipc.MessageReader = (*msgReader)(nil)

func newMsgReader(r io.Reader, maxMessage int64, eos eosRule) *msgReader {
	m := &msgReader{r: r, maxMeta: min(maxMessage, 64<<20), maxBody: maxMessage, eos: eos}
	m.refs.Store(1)
	return m
}

func (m *msgReader) Retain() { m.refs.Add(1) }

func (m *msgReader) Release() {
	if m.refs.Add(-1) == 0 && m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
}

// Message reads the next message; io.EOF at the end-of-stream marker, and
// at a clean end of input before any message (an empty stream). A clean
// end after messages but without the marker is ErrNoEndOfStream unless
// m.eos is eosOptional: an interrupted producer stops on a message
// boundary as often as not, and its stream must not pass for complete.
func (m *msgReader) Message() (*ipc.Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(m.r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			if m.messages > 0 {
				m.missingEOS = true
				if m.eos == eosRequired {
					return nil, ErrNoEndOfStream
				}
			}
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: IPC message length: %v", ErrCorrupt, err)
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0xFFFFFFFF { // continuation marker (format >= 0.15)
		if _, err := io.ReadFull(m.r, hdr[:]); err != nil {
			return nil, fmt.Errorf("%w: IPC message length: %v", ErrCorrupt, err)
		}
		n = binary.LittleEndian.Uint32(hdr[:])
	}
	if n == 0 {
		return nil, io.EOF // end-of-stream marker
	}
	if int64(n) > m.maxMeta || n < 8 {
		return nil, fmt.Errorf("%w: IPC message metadata length %d out of range", ErrCorrupt, n)
	}
	meta := make([]byte, n)
	if _, err := io.ReadFull(m.r, meta); err != nil {
		return nil, fmt.Errorf("%w: IPC message metadata truncated: %v", ErrCorrupt, err)
	}
	info, err := checkMessage(meta)
	if err != nil {
		return nil, fmt.Errorf("%w: IPC message: %v", ErrCorrupt, err)
	}
	bodyLen := info.bodyLen
	if bodyLen > m.maxBody {
		return nil, fmt.Errorf("%w: IPC message body length %d exceeds the input", ErrCorrupt, bodyLen)
	}
	// The body lives in Go memory, not m.mem: arrow's decoder slices
	// batches out of it zero-copy, and when it gives up on a corrupt
	// message half-way (a recovered panic) it drops those slices without
	// releasing them. The garbage collector reclaims Go memory either way;
	// an allocator would count the bytes as leaked.
	bodyBytes, err := readBody(m.r, bodyLen)
	if err != nil {
		return nil, fmt.Errorf("%w: IPC message body truncated: %v", ErrCorrupt, err)
	}
	if info.compressed {
		if err := checkCompressedBody(meta, info, bodyBytes); err != nil {
			return nil, fmt.Errorf("%w: IPC message body: %v", ErrCorrupt, err)
		}
	}
	body := memory.NewBufferBytes(bodyBytes)
	metaBuf := memory.NewBufferBytes(meta)
	if m.msg != nil {
		m.msg.Release()
	}
	m.msg = ipc.NewMessage(metaBuf, body) // retains both
	m.messages++
	metaBuf.Release()
	body.Release()
	return m.msg, nil
}

// readBody reads a message body of n bytes. Up to 64 MiB it allocates the
// body at once; beyond, it grows the buffer as bytes arrive, so a corrupt
// length on a short stream cannot claim more memory than the stream holds.
func readBody(r io.Reader, n int64) ([]byte, error) {
	const direct = 64 << 20
	if n <= direct {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	buf.Grow(direct)
	got, err := buf.ReadFrom(io.LimitReader(r, n))
	if err == nil && got < n {
		err = io.ErrUnexpectedEOF
	}
	return buf.Bytes(), err
}

// Limits on compressed bodies. arrow-go allocates each compressed buffer at
// the uncompressed length written in its first 8 bytes before it
// decompresses (ipc.ipcSource.buffer), so a forged length is a fatal
// allocation too. No codec the format allows (LZ4 frame, zstd) expands
// more than maxCompressionRatio times: zstd's densest block, an RLE block,
// turns 4 bytes into at most 128 KiB; LZ4 reaches about 255. A message may
// also decode to at most maxDecodedMessage bytes, whatever its ratio, so
// that a real decompression bomb is refused as well.
const (
	maxCompressionRatio = 32 << 10
	maxDecodedMessage   = 4 << 30
)

// checkCompressedBody checks each buffer of a compressed record batch (or
// dictionary batch) against the body and the limits above.
func checkCompressedBody(meta []byte, info msgInfo, body []byte) error {
	var decoded int64
	for k := 0; k < info.bufN; k++ {
		at := info.bufStart + 16*k
		off := int64(binary.LittleEndian.Uint64(meta[at:]))
		n := int64(binary.LittleEndian.Uint64(meta[at+8:]))
		if n == 0 {
			continue
		}
		if off < 0 || n < 8 || off > int64(len(body)) || n > int64(len(body))-off {
			return fmt.Errorf("buffer %d (offset %d, length %d) lies outside the body of %d bytes", k, off, n, len(body))
		}
		u := int64(binary.LittleEndian.Uint64(body[off:]))
		if u == -1 { // stored uncompressed
			continue
		}
		if u < 0 || u > maxCompressionRatio*(n-8)+1024 {
			return fmt.Errorf("buffer %d claims %d bytes uncompressed from %d compressed", k, u, n-8)
		}
		if decoded += u; decoded > maxDecodedMessage {
			return fmt.Errorf("batch decompresses to more than %d bytes", int64(maxDecodedMessage))
		}
	}
	return nil
}

// fb is a bounds-checked view of one flatbuffer: every read reports whether
// it stayed inside the buffer, nothing panics.
type fb struct {
	b      []byte
	budget int // tables left to visit: shared or cyclic offsets cannot blow up
}

var errFB = errors.New("flatbuffer offset out of range")

func (f *fb) u16(at int) (int, error) {
	if at < 0 || at+2 > len(f.b) {
		return 0, errFB
	}
	return int(binary.LittleEndian.Uint16(f.b[at:])), nil
}

func (f *fb) u32(at int) (int, error) {
	if at < 0 || at+4 > len(f.b) {
		return 0, errFB
	}
	return int(binary.LittleEndian.Uint32(f.b[at:])), nil
}

// deref follows the uoffset stored at at.
func (f *fb) deref(at int) (int, error) {
	off, err := f.u32(at)
	if err != nil {
		return 0, err
	}
	t := at + off
	if t < 0 || t+4 > len(f.b) {
		return 0, errFB
	}
	return t, nil
}

// table checks the table at t and charges the budget. Its vtable must lie
// inside the buffer and have an even length of at least 4, as the
// flatbuffers verifier requires (C++ Verifier::VerifyTableStart): the Go
// runtime does not verify, and with an odd length it reads a slot whose
// second byte lies past the vtable (Table.Offset: slot < vtable length).
func (f *fb) table(t int) error {
	if f.budget--; f.budget < 0 {
		return errors.New("flatbuffer has too many tables")
	}
	soff, err := f.u32(t)
	if err != nil {
		return err
	}
	vt := t - int(int32(uint32(soff)))
	vlen, err := f.u16(vt)
	if err != nil || vlen < 4 || vlen%2 != 0 || vt+vlen > len(f.b) {
		return errFB
	}
	return nil
}

// field returns the position of field i of table t, or -1 when absent.
// Presence follows the flatbuffers Go runtime exactly (Table.Offset reads
// slot s when s < vtable length, and a zero there means absent), so no
// field arrow's accessors read escapes the checks; table has already
// rejected the odd lengths at which that rule and the vtable's end differ.
func (f *fb) field(t, i int) (int, error) {
	soff, _ := f.u32(t)
	vt := t - int(int32(uint32(soff)))
	vlen, _ := f.u16(vt)
	tlen, _ := f.u16(vt + 2)
	slot := 4 + 2*i
	if slot >= vlen {
		return -1, nil
	}
	fo, err := f.u16(vt + slot)
	if err != nil {
		return 0, err
	}
	if fo == 0 {
		return -1, nil
	}
	if fo >= tlen || t+fo >= len(f.b) {
		return 0, errFB
	}
	return t + fo, nil
}

// vector checks the vector in field i of table t (elements of elem bytes)
// and returns the position of its first element and its length; n is -1
// when the field is absent.
func (f *fb) vector(t, i, elem int) (start, n int, err error) {
	p, err := f.field(t, i)
	if err != nil || p < 0 {
		return 0, -1, err
	}
	v, err := f.deref(p)
	if err != nil {
		return 0, 0, err
	}
	n, _ = f.u32(v)
	start = v + 4
	if n < 0 || n > (len(f.b)-start)/max(elem, 1) {
		return 0, 0, fmt.Errorf("vector of %d elements cannot fit in %d bytes", n, len(f.b))
	}
	return start, n, nil
}

// subtable returns the table referenced by field i of t, or -1.
func (f *fb) subtable(t, i int) (int, error) {
	p, err := f.field(t, i)
	if err != nil || p < 0 {
		return -1, err
	}
	s, err := f.deref(p)
	if err != nil {
		return 0, err
	}
	return s, f.table(s)
}

// tables checks a vector of tables in field i of t with check.
func (f *fb) tables(t, i int, check func(int) error) error {
	start, n, err := f.vector(t, i, 4)
	if err != nil || n < 0 {
		return err
	}
	for k := 0; k < n; k++ {
		s, err := f.deref(start + 4*k)
		if err != nil {
			return err
		}
		if err := f.table(s); err != nil {
			return err
		}
		if err := check(s); err != nil {
			return err
		}
	}
	return nil
}

func (f *fb) keyValues(t, i int) error {
	return f.tables(t, i, func(kv int) error {
		for _, fi := range []int{0, 1} { // key, value
			if _, _, err := f.vector(kv, fi, 1); err != nil {
				return err
			}
		}
		return nil
	})
}

// Arrow's Message.fbs / Schema.fbs field numbers.
const (
	msgHeaderType, msgHeader, msgBodyLength, msgCustomMetadata = 1, 2, 3, 4
	headerSchema, headerDictionaryBatch, headerRecordBatch     = 1, 2, 3
	schemaFields, schemaCustomMetadata, schemaFeatures         = 1, 2, 3
	fieldName, fieldTypeType, fieldType, fieldDictionary       = 0, 2, 3, 4
	fieldChildren, fieldCustomMetadata                         = 5, 6
	dictEncodingIndexType, dictBatchData                       = 1, 1
	rbNodes, rbBuffers, rbCompression, rbVariadicCounts        = 1, 2, 3, 4
	typeUnion, typeTimestamp                                   = 14, 10
	maxFieldDepth                                              = 64
)

// msgInfo is what checkMessage learns about a message.
type msgInfo struct {
	bodyLen int64
	// compressed is set for a record or dictionary batch with a
	// compression block; its buffers vector (16-byte offset/length
	// structs) then starts at bufStart and has bufN entries.
	compressed     bool
	bufStart, bufN int
}

// checkMessage verifies the vectors of an IPC Message flatbuffer that arrow
// sizes allocations by, and returns the body length it declares.
func checkMessage(meta []byte) (msgInfo, error) {
	var info msgInfo
	f := &fb{b: meta, budget: len(meta)/4 + 16}
	root, err := f.deref(0)
	if err != nil {
		return info, err
	}
	if err := f.table(root); err != nil {
		return info, err
	}
	if err := f.keyValues(root, msgCustomMetadata); err != nil {
		return info, err
	}
	if p, err := f.field(root, msgBodyLength); err != nil {
		return info, err
	} else if p >= 0 {
		if p+8 > len(meta) {
			return info, errFB
		}
		info.bodyLen = int64(binary.LittleEndian.Uint64(meta[p:]))
		if info.bodyLen < 0 {
			return info, fmt.Errorf("negative body length %d", info.bodyLen)
		}
	}
	ht := 0
	if p, err := f.field(root, msgHeaderType); err != nil {
		return info, err
	} else if p >= 0 {
		ht = int(meta[p])
	}
	hdr, err := f.subtable(root, msgHeader)
	if err != nil || hdr < 0 {
		return info, err
	}
	switch ht {
	case headerSchema:
		err = f.checkSchema(hdr)
	case headerRecordBatch:
		err = f.checkRecordBatch(hdr, &info)
	case headerDictionaryBatch:
		var rb int
		if rb, err = f.subtable(hdr, dictBatchData); err == nil && rb >= 0 {
			err = f.checkRecordBatch(rb, &info)
		}
	}
	return info, err
}

func (f *fb) checkSchema(s int) error {
	if err := f.keyValues(s, schemaCustomMetadata); err != nil {
		return err
	}
	if _, _, err := f.vector(s, schemaFeatures, 8); err != nil {
		return err
	}
	return f.tables(s, schemaFields, func(fl int) error { return f.checkField(fl, 1) })
}

func (f *fb) checkField(fl, depth int) error {
	if depth > maxFieldDepth {
		return errors.New("fields nested too deeply")
	}
	if _, _, err := f.vector(fl, fieldName, 1); err != nil {
		return err
	}
	if err := f.keyValues(fl, fieldCustomMetadata); err != nil {
		return err
	}
	if enc, err := f.subtable(fl, fieldDictionary); err != nil {
		return err
	} else if enc >= 0 {
		if _, err := f.subtable(enc, dictEncodingIndexType); err != nil {
			return err
		}
	}
	tt := 0
	if p, err := f.field(fl, fieldTypeType); err != nil {
		return err
	} else if p >= 0 {
		tt = int(f.b[p])
	}
	typ, err := f.subtable(fl, fieldType)
	if err != nil {
		return err
	}
	if typ >= 0 {
		switch tt {
		case typeUnion:
			if _, _, err := f.vector(typ, 1, 4); err != nil { // typeIds
				return err
			}
		case typeTimestamp:
			if _, _, err := f.vector(typ, 1, 1); err != nil { // timezone
				return err
			}
		}
	}
	return f.tables(fl, fieldChildren, func(c int) error { return f.checkField(c, depth+1) })
}

func (f *fb) checkRecordBatch(rb int, info *msgInfo) error {
	if _, _, err := f.vector(rb, rbNodes, 16); err != nil {
		return err
	}
	if _, _, err := f.vector(rb, rbVariadicCounts, 8); err != nil {
		return err
	}
	start, n, err := f.vector(rb, rbBuffers, 16)
	if err != nil {
		return err
	}
	c, err := f.subtable(rb, rbCompression)
	if err != nil {
		return err
	}
	if c >= 0 && n > 0 {
		info.compressed, info.bufStart, info.bufN = true, start, n
	}
	return nil
}
