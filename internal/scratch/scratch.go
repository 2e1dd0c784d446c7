package scratch

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// ChunkSize is the plaintext size of every chunk but the last (age's
// choice: large enough that the 16-byte tag and the per-chunk call cost are
// negligible, small enough to buffer one chunk per open file).
const ChunkSize = 64 << 10

const (
	keySize   = 32 // AES-256
	tagSize   = 16 // GCM tag
	nonceSize = 12 // GCM standard nonce: 11-byte counter || last flag
	encChunk  = ChunkSize + tagSize
)

// ErrCorrupt reports a scratch file whose contents fail authentication:
// tampered, truncated, reordered, or cut before its final chunk.
var ErrCorrupt = errors.New("scratch: file corrupt or truncated")

// errWriteDone reports a Write after Rewind: a file is written once, so
// that no counter value is ever used for two different chunks.
var errWriteDone = errors.New("scratch: write after rewind")

// File is an encrypted temporary file. Write appends; the first Rewind seals
// the final chunk and switches to reading; Close removes the file.
type File struct {
	f    *os.File
	name string
	// key is cleared as soon as the AEAD is built: only the AES key
	// schedule inside aead remains. crypto/aes copies (expands) the key into
	// memory of its own that the standard library offers no way to wipe;
	// Close drops the reference so it becomes garbage. That is the best the
	// standard library allows.
	key  [keySize]byte
	aead cipher.AEAD

	// buf is one chunk: plaintext being collected (writing) or opened
	// (reading), with room for the tag so that Seal and Open work in place.
	buf     []byte
	ctr     uint64 // index of the next chunk to seal or open
	writing bool   // false after the first Rewind
	// reading state
	pos  int   // next unread byte of buf
	last bool  // the final chunk has been opened
	size int64 // file size at Rewind: a full chunk ending there is the final one
	off  int64 // bytes of the file consumed
	err  error
}

// Create makes a new scratch file in dir (os.TempDir() when empty); pattern
// is as for os.CreateTemp. The file is created with mode 0600.
func Create(dir, pattern string) (*File, error) {
	s := &File{writing: true, buf: make([]byte, 0, encChunk)}
	if _, err := rand.Read(s.key[:]); err != nil {
		return nil, fmt.Errorf("scratch: key: %w", err)
	}
	block, err := aes.NewCipher(s.key[:])
	clear(s.key[:])
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	if s.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	s.f, s.name = f, f.Name()
	return s, nil
}

// Name is the file's path (for error messages).
func (s *File) Name() string { return s.name }

// nonce is the STREAM nonce of chunk ctr: the counter as an 11-byte
// big-endian number (the top three bytes stay zero) and the last-chunk flag.
func nonce(ctr uint64, last bool) [nonceSize]byte {
	var n [nonceSize]byte
	binary.BigEndian.PutUint64(n[3:11], ctr)
	if last {
		n[11] = 1
	}
	return n
}

// Write appends p. A full chunk is sealed and written only when more data
// follows, so that the final chunk (sealed by Rewind with the last flag) is
// never empty unless the whole file is.
func (s *File) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.writing {
		return 0, errWriteDone
	}
	n := 0
	for len(p) > 0 {
		if len(s.buf) == ChunkSize {
			if err := s.seal(s.buf, false); err != nil {
				return n, err
			}
		}
		if len(s.buf) == 0 && len(p) > ChunkSize {
			// A whole chunk with more to come: seal it straight from p
			// (one copy fewer).
			if err := s.seal(p[:ChunkSize], false); err != nil {
				return n, err
			}
			p, n = p[ChunkSize:], n+ChunkSize
			continue
		}
		k := copy(s.buf[len(s.buf):ChunkSize], p)
		s.buf = s.buf[:len(s.buf)+k]
		p, n = p[k:], n+k
	}
	return n, nil
}

// seal encrypts plain (s.buf itself, or a chunk of the caller's data) into
// s.buf and writes it.
func (s *File) seal(plain []byte, last bool) error {
	if s.ctr == math.MaxUint64 {
		// 2^64 chunks of 64 KiB: unreachable, but never reuse a nonce.
		s.err = errors.New("scratch: chunk counter overflow")
		return s.err
	}
	n := nonce(s.ctr, last)
	out := s.aead.Seal(s.buf[:0], n[:], plain, nil)
	s.ctr++
	s.buf = s.buf[:0]
	if _, err := s.f.Write(out); err != nil {
		s.err = fmt.Errorf("scratch %s: %w", s.name, err)
		return s.err
	}
	return nil
}

// Rewind positions the file at its start for reading. The first call ends
// writing: it seals the buffered data as the final chunk.
func (s *File) Rewind() error {
	if s.aead == nil {
		return fmt.Errorf("scratch %s: closed", s.name)
	}
	if s.writing {
		if s.err != nil {
			return s.err
		}
		if err := s.seal(s.buf, true); err != nil {
			return err
		}
		s.writing = false
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		s.err = fmt.Errorf("scratch %s: %w", s.name, err)
		return s.err
	}
	fi, err := s.f.Stat()
	if err != nil {
		s.err = fmt.Errorf("scratch %s: %w", s.name, err)
		return s.err
	}
	s.size = fi.Size()
	s.ctr, s.pos, s.last, s.off, s.err = 0, 0, false, 0, nil
	s.buf = s.buf[:0]
	return nil
}

// Read reads decrypted data; it returns ErrCorrupt (wrapped, with the
// chunk's index) for any chunk that fails authentication or a file that
// ends before its final chunk, and io.EOF only after the final chunk.
func (s *File) Read(p []byte) (int, error) {
	if s.writing {
		return 0, errors.New("scratch: read before rewind")
	}
	if s.err != nil {
		return 0, s.err
	}
	for s.pos == len(s.buf) {
		if s.last {
			return 0, io.EOF
		}
		if err := s.open(); err != nil {
			s.err = err
			return 0, err
		}
	}
	n := copy(p, s.buf[s.pos:])
	s.pos += n
	return n, nil
}

// open reads and authenticates the next chunk into s.buf. As in age's
// stream.Reader, a short chunk must be the final one, and after the final
// chunk the file must end. A full chunk is the final one when it ends the
// file (age tries both flags instead; GCM clears the buffer of a failed
// Open, which here is the ciphertext itself). Whichever flag is assumed, a
// wrong guess fails authentication: the flag is bound into the nonce.
func (s *File) open() error {
	in := s.buf[:encChunk]
	n, err := io.ReadFull(s.f, in)
	last := false
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w: %s ends before its final chunk (chunk %d)", ErrCorrupt, s.name, s.ctr)
	case err == io.ErrUnexpectedEOF:
		if n < tagSize || (n == tagSize && s.ctr != 0) {
			// Only an empty file has an empty final chunk.
			return fmt.Errorf("%w: %s: short chunk %d", ErrCorrupt, s.name, s.ctr)
		}
		in, last = in[:n], true
	case err != nil:
		return fmt.Errorf("scratch %s: %w", s.name, err)
	default:
		last = s.off+int64(n) >= s.size
	}
	s.off += int64(n)
	nc := nonce(s.ctr, last)
	out, err := s.aead.Open(in[:0], nc[:], in, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: chunk %d fails authentication", ErrCorrupt, s.name, s.ctr)
	}
	if last {
		var b [1]byte
		if k, err := s.f.Read(b[:]); k != 0 || err != io.EOF {
			if err != nil && err != io.EOF {
				return fmt.Errorf("scratch %s: %w", s.name, err)
			}
			return fmt.Errorf("%w: %s: data after the final chunk", ErrCorrupt, s.name)
		}
	}
	s.ctr++
	s.buf, s.pos, s.last = out, 0, last
	return nil
}

// Close closes and removes the file and drops the cipher; the plaintext
// buffer is cleared. Safe to call more than once.
func (s *File) Close() error {
	clear(s.key[:])
	s.aead = nil
	clear(s.buf[:cap(s.buf)])
	s.buf = nil
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if rerr := os.Remove(s.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if s.err == nil {
		s.err = errors.New("scratch: closed")
	}
	return err
}
