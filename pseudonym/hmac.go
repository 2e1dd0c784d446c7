package pseudonym

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync/atomic"
)

// Encoding is the text encoding of HMAC pseudonyms.
type Encoding int

const (
	// Base32 is RFC 4648 base32, lowercase, without padding (the default):
	// 26 characters for 128 bits, case-insensitive-safe, no punctuation.
	Base32 Encoding = iota
	// Hex is lowercase hexadecimal: 32 characters for 128 bits.
	Hex
	// Base64URL is RFC 4648 base64url without padding: 22 characters for 128 bits.
	Base64URL
)

func (e Encoding) String() string {
	switch e {
	case Base32:
		return "base32"
	case Hex:
		return "hex"
	case Base64URL:
		return "base64url"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// ParseEncoding maps "base32", "hex" and "base64url" to an Encoding.
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "base32", "":
		return Base32, nil
	case "hex":
		return Hex, nil
	case "base64url":
		return Base64URL, nil
	}
	return 0, fmt.Errorf("pseudonym.ParseEncoding: unknown encoding %q (want base32, hex or base64url)", s)
}

const (
	defaultBits  = 128
	minBits      = 64
	maxPrefixLen = 32

	// sha256StateSize is the size of crypto/sha256's marshaled state:
	// 4-byte magic, 8 32-bit chaining words, a 64-byte block buffer and a
	// 64-bit length. Go's hash package promises compatibility of this
	// encoding across releases.
	sha256StateSize = 4 + 32 + 64 + 8
	sha256Magic     = "sha\x03"
	// fastMaxLen is the longest message whose inner hash fits one padded
	// block: 64 - 1 (0x80) - 8 (length) = 55 bytes.
	fastMaxLen = 55
)

// HMACOptions configures NewHMAC.
type HMACOptions struct {
	// Domain names what the pseudonyms are for, e.g. "brakedisc-pool/vin".
	// Pseudonyms of different domains are unlinkable. Required.
	Domain string
	// KeyID selects the master key; "" means the keyring's active key.
	KeyID string
	// Encoding of the output; the zero value is Base32.
	Encoding Encoding
	// Bits is the pseudonym length: a multiple of 8 from 64 to 256;
	// 0 means 128. Shorter pseudonyms collide sooner (birthday bound
	// 2^(Bits/2) values), so less than 64 is refused.
	Bits int
	// Prefix is prepended to every pseudonym, e.g. "p1-". Printable ASCII,
	// at most 32 bytes. Optional.
	Prefix string
}

// HMAC makes keyed, deterministic, irreversible pseudonyms:
// encode(truncate(HMAC-SHA256(domain key, value), Bits)). The same key,
// domain and value always give the same pseudonym; without the key they
// cannot be computed or inverted.
//
// An HMAC is safe for concurrent use; its Hashers are not. It prints as
// [REDACTED]. Call Destroy to zero its key state.
type HMAC struct {
	redacted
	keyID, domain string
	enc           Encoding
	nbytes        int // truncated MAC length
	prefix        string
	outLen        int
	// istate and ostate are crypto/sha256's marshaled states after the
	// first block (key XOR ipad, key XOR opad): the precomputed inner and
	// outer states of FIPS 198-1 section 6, as secret as the key.
	istate, ostate [sha256StateSize]byte
	// fast: the one-block path (see Hasher.mac) agreed with crypto/hmac on
	// probe messages when the HMAC was made.
	fast      bool
	destroyed atomic.Bool
	b32       *base32.Encoding // lowercase, unpadded; read-only after init
}

// NewHMAC derives the HMAC key for opts.Domain from the keyring and returns
// a pseudonymizer.
func NewHMAC(kr *Keyring, opts HMACOptions) (*HMAC, error) {
	const fn = "pseudonym.NewHMAC"
	if kr == nil {
		return nil, errors.New(fn + ": keyring is nil")
	}
	h := &HMAC{domain: opts.Domain, enc: opts.Encoding, prefix: opts.Prefix}
	switch opts.Encoding {
	case Base32, Hex, Base64URL:
	default:
		return nil, fmt.Errorf("%s: Encoding %d is not one of Base32, Hex, Base64URL", fn, int(opts.Encoding))
	}
	bits := opts.Bits
	if bits == 0 {
		bits = defaultBits
	}
	if bits < minBits || bits > 256 || bits%8 != 0 {
		return nil, fmt.Errorf("%s: Bits must be a multiple of 8 from %d to 256, got %d", fn, minBits, opts.Bits)
	}
	h.nbytes = bits / 8
	if len(opts.Prefix) > maxPrefixLen {
		return nil, fmt.Errorf("%s: Prefix is %d bytes; the limit is %d", fn, len(opts.Prefix), maxPrefixLen)
	}
	for i := 0; i < len(opts.Prefix); i++ {
		if c := opts.Prefix[i]; c < 0x21 || c > 0x7e {
			return nil, fmt.Errorf("%s: Prefix must be printable ASCII without spaces (byte %d)", fn, i)
		}
	}
	h.outLen = len(h.prefix) + encodedLen(h.enc, h.nbytes)
	id, key, err := kr.deriveKey(fn, purposeHMAC, opts.Domain, opts.KeyID, 32)
	if err != nil {
		return nil, err
	}
	defer zero(key)
	h.keyID = id
	if err := h.init(key); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return h, nil
}

// newHMACRaw makes an HMAC over an arbitrary key, for the RFC 4231 vectors
// (whose keys are not 32 bytes) and the date shift.
func newHMACRaw(key []byte, nbytes int, enc Encoding) (*HMAC, error) {
	h := &HMAC{nbytes: nbytes, enc: enc}
	h.outLen = encodedLen(enc, nbytes)
	return h, h.init(key)
}

func encodedLen(e Encoding, n int) int {
	switch e {
	case Hex:
		return hex.EncodedLen(n)
	case Base64URL:
		return base64.RawURLEncoding.EncodedLen(n)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodedLen(n)
}

// init precomputes the inner and outer states (RFC 2104 / FIPS 198-1) and
// checks the one-block fast path against crypto/hmac.
func (h *HMAC) init(key []byte) error {
	h.b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	var k0 [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		s := sha256.Sum256(key)
		copy(k0[:], s[:])
		zero(s[:])
	} else {
		copy(k0[:], key)
	}
	defer zero(k0[:])
	var pad [sha256.BlockSize]byte
	defer zero(pad[:])
	for i, pv := range [2]byte{0x36, 0x5c} {
		for j := range pad {
			pad[j] = k0[j] ^ pv
		}
		d := sha256.New()
		d.Write(pad[:])
		st, err := d.(encoding.BinaryAppender).AppendBinary(nil)
		d.Reset()
		if err != nil || len(st) != sha256StateSize {
			zero(st)
			return errors.New("crypto/sha256 state cannot be saved")
		}
		if i == 0 {
			copy(h.istate[:], st)
		} else {
			copy(h.ostate[:], st)
		}
		zero(st)
	}
	// The fast path reads the chaining value out of the marshaled state,
	// which Go documents as a stable encoding. Verify it on probes against
	// crypto/hmac anyway; if a future release changed the layout we would
	// silently fall back to the general path rather than emit wrong values.
	h.fast = string(h.istate[:4]) == sha256Magic
	if h.fast {
		s := h.newHasher()
		ref := hmac.New(sha256.New, key)
		for _, n := range []int{0, 1, 17, 32, fastMaxLen} {
			msg := bytes.Repeat([]byte{byte(n)}, n)
			ref.Reset()
			ref.Write(msg)
			want := ref.Sum(nil)
			var got [sha256.Size]byte
			s.macFast(&got, msg)
			if !hmac.Equal(got[:], want) {
				h.fast = false
			}
		}
		s.Destroy()
	}
	return nil
}

// KeyID returns the id of the master key the pseudonyms are made with.
// Record it next to the data (reports do) so that after a rotation it is
// clear which key a column was made with.
func (h *HMAC) KeyID() string { return h.keyID }

// Domain returns the domain the key was derived for.
func (h *HMAC) Domain() string { return h.domain }

// Len returns the length in bytes of every pseudonym, prefix included.
func (h *HMAC) Len() int { return h.outLen }

// Pseudonym returns the pseudonym of value. It allocates; use a Hasher or
// the column functions in loops.
func (h *HMAC) Pseudonym(value []byte) string {
	s := h.newHasher()
	defer s.Destroy()
	return string(s.Append(make([]byte, 0, h.outLen), value))
}

// Verify reports whether pseudonym is the pseudonym of value, comparing in
// constant time.
func (h *HMAC) Verify(value []byte, pseudonym string) bool {
	if h.destroyed.Load() {
		return false
	}
	s := h.newHasher()
	defer s.Destroy()
	want := s.Append(make([]byte, 0, h.outLen), value)
	ok := hmac.Equal(want, []byte(pseudonym))
	zero(want)
	return ok
}

// Destroy zeroes the key state. Afterwards nothing produces pseudonyms:
// the column functions fail with ErrDestroyed, Pseudonym returns "",
// Verify returns false and Hasher.Append appends nothing.
func (h *HMAC) Destroy() {
	h.destroyed.Store(true)
	zero(h.istate[:])
	zero(h.ostate[:])
}

// NewHasher returns a Hasher for one goroutine.
func (h *HMAC) NewHasher() *Hasher { return h.newHasher() }

func (h *HMAC) newHasher() *Hasher {
	in, out := sha256.New(), sha256.New()
	s := &Hasher{h: h, in: in, out: out,
		iu: in.(encoding.BinaryUnmarshaler), ou: out.(encoding.BinaryUnmarshaler),
		ia: in.(encoding.BinaryAppender), oa: out.(encoding.BinaryAppender),
		st: make([]byte, 0, sha256StateSize),
	}
	return s
}

// Hasher computes pseudonyms without allocating. Not safe for concurrent
// use: make one per goroutine with HMAC.NewHasher.
type Hasher struct {
	redacted
	h       *HMAC
	in, out hash.Hash
	iu, ou  encoding.BinaryUnmarshaler
	ia, oa  encoding.BinaryAppender
	blk     [sha256.BlockSize]byte
	st      []byte
	mac     [sha256.Size]byte
}

// Append appends the pseudonym of value to dst and returns the result.
// After HMAC.Destroy it appends nothing.
func (s *Hasher) Append(dst, value []byte) []byte {
	if s.h.destroyed.Load() {
		return dst
	}
	s.sum(value)
	n := len(dst)
	dst = append(dst, s.h.prefix...)
	dst = growLen(dst, s.h.outLen-len(s.h.prefix))
	s.encode(dst[n+len(s.h.prefix):], s.mac[:s.h.nbytes])
	return dst
}

// put writes the pseudonym of value into dst, which has exactly h.outLen bytes.
func (s *Hasher) put(dst, value []byte) {
	s.sum(value)
	copy(dst, s.h.prefix)
	s.encode(dst[len(s.h.prefix):], s.mac[:s.h.nbytes])
}

func (s *Hasher) encode(dst, mac []byte) {
	switch s.h.enc {
	case Hex:
		hex.Encode(dst, mac)
	case Base64URL:
		base64.RawURLEncoding.Encode(dst, mac)
	default:
		s.h.b32.Encode(dst, mac)
	}
}

func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// sum sets s.mac to HMAC-SHA256(key, value).
func (s *Hasher) sum(value []byte) {
	if s.h.fast && len(value) <= fastMaxLen {
		s.macFast(&s.mac, value)
		return
	}
	s.macGeneral(&s.mac, value)
}

// macGeneral is HMAC with the saved inner and outer states: restore, write,
// sum. It handles any length.
func (s *Hasher) macGeneral(out *[sha256.Size]byte, value []byte) {
	s.iu.UnmarshalBinary(s.h.istate[:])
	s.in.Write(value)
	s.in.Sum(out[:0])
	s.ou.UnmarshalBinary(s.h.ostate[:])
	s.out.Write(out[:])
	s.out.Sum(out[:0])
}

// macFast computes HMAC-SHA256 for a value of at most 55 bytes with exactly
// two SHA-256 block compressions and no copies of the digest: the inner
// message (value, 0x80, zeros, bit length of ipad block + value) is built as
// one padded block, written to the restored inner state (crypto/sha256
// compresses a whole block straight from the caller's buffer), and the
// chaining value read back from the saved state is the inner hash. The
// outer hash is the same with the 32-byte inner hash. Every byte of the
// result is SHA-256 from crypto/sha256; only the FIPS 180-4 padding is laid
// out here, so that Digest.Sum's copy-and-pad work is not done twice.
func (s *Hasher) macFast(out *[sha256.Size]byte, value []byte) {
	b := &s.blk
	n := copy(b[:], value)
	b[n] = 0x80
	clear(b[n+1 : 56])
	binary.BigEndian.PutUint64(b[56:], uint64(sha256.BlockSize+n)*8)
	s.iu.UnmarshalBinary(s.h.istate[:])
	s.in.Write(b[:])
	st, _ := s.ia.AppendBinary(s.st[:0])
	copy(b[:sha256.Size], st[4:4+sha256.Size])
	b[sha256.Size] = 0x80
	clear(b[sha256.Size+1 : 56])
	binary.BigEndian.PutUint64(b[56:], uint64(sha256.BlockSize+sha256.Size)*8)
	s.ou.UnmarshalBinary(s.h.ostate[:])
	s.out.Write(b[:])
	st, _ = s.oa.AppendBinary(s.st[:0])
	copy(out[:], st[4:4+sha256.Size])
}

// Destroy zeroes the Hasher's buffers and digest states.
func (s *Hasher) Destroy() {
	zero(s.blk[:])
	zero(s.mac[:])
	zero(s.st[:cap(s.st)])
	s.in.Reset()
	s.out.Reset()
}
