package pseudonym

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// This file implements AES-SIV (RFC 5297) from its specification on
// crypto/aes, crypto/cipher (CTR) and crypto/subtle: x/crypto has no SIV,
// and github.com/secure-io/siv-go is not available to this build. CMAC
// follows RFC 4493 / NIST SP 800-38B. Both are tested against the RFC
// vectors (siv_test.go).

const blockLen = aes.BlockSize

// cmac is AES-CMAC with precomputed subkeys.
type cmac struct {
	redacted
	b      cipher.Block
	k1, k2 [blockLen]byte
}

func newCMAC(key []byte) (*cmac, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	c := &cmac{b: b}
	// RFC 4493 2.3: L = AES-128(K, 0^128); K1 = dbl(L); K2 = dbl(K1).
	var l [blockLen]byte
	b.Encrypt(l[:], l[:])
	c.k1 = dbl(l)
	c.k2 = dbl(c.k1)
	zero(l[:])
	return c, nil
}

// dbl is multiplication by x in GF(2^128) with the polynomial
// x^128 + x^7 + x^2 + x + 1 (RFC 5297 2.3), in constant time.
func dbl(in [blockLen]byte) [blockLen]byte {
	var out [blockLen]byte
	msb := in[0] >> 7
	for i := 0; i < blockLen-1; i++ {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[blockLen-1] = in[blockLen-1]<<1 ^ byte(subtle.ConstantTimeByteEq(msb, 1))*0x87
	return out
}

func xorBlock(dst *[blockLen]byte, src []byte) {
	subtle.XORBytes(dst[:], dst[:], src[:blockLen])
}

// sum returns AES-CMAC(K, m) (RFC 4493 2.4).
func (c *cmac) sum(m []byte) [blockLen]byte {
	var x [blockLen]byte
	n := (len(m) + blockLen - 1) / blockLen
	complete := n > 0 && len(m)%blockLen == 0
	if n == 0 {
		n = 1
	}
	for i := 0; i < n-1; i++ {
		xorBlock(&x, m[i*blockLen:])
		c.b.Encrypt(x[:], x[:])
	}
	var last [blockLen]byte
	rest := m[(n-1)*blockLen:]
	if complete {
		copy(last[:], rest)
		xorBlock(&last, c.k1[:])
	} else {
		copy(last[:], rest)
		last[len(rest)] = 0x80
		xorBlock(&last, c.k2[:])
	}
	xorBlock(&x, last[:])
	c.b.Encrypt(x[:], x[:])
	return x
}

// siv is AES-SIV with a 2n-byte key: the first half keys S2V (CMAC), the
// second half keys CTR.
type siv struct {
	redacted
	mac *cmac
	ctr cipher.Block
}

func newSIV(key []byte) (*siv, error) {
	switch len(key) {
	case 32, 48, 64:
	default:
		return nil, fmt.Errorf("AES-SIV key must be 32, 48 or 64 bytes, got %d", len(key))
	}
	h := len(key) / 2
	m, err := newCMAC(key[:h])
	if err != nil {
		return nil, err
	}
	c, err := aes.NewCipher(key[h:])
	if err != nil {
		return nil, err
	}
	return &siv{mac: m, ctr: c}, nil
}

// s2v is RFC 5297 2.4 over the strings ss (the last is the plaintext).
func (s *siv) s2v(ss ...[]byte) [blockLen]byte {
	var zeroBlock [blockLen]byte
	if len(ss) == 0 {
		one := zeroBlock
		one[blockLen-1] = 1
		return s.mac.sum(one[:])
	}
	d := s.mac.sum(zeroBlock[:])
	for _, si := range ss[:len(ss)-1] {
		d = dbl(d)
		m := s.mac.sum(si)
		xorBlock(&d, m[:])
	}
	sn := ss[len(ss)-1]
	if len(sn) >= blockLen {
		// T = Sn xorend D: XOR D into the last 16 bytes of Sn.
		t := make([]byte, len(sn))
		copy(t, sn)
		subtle.XORBytes(t[len(t)-blockLen:], t[len(t)-blockLen:], d[:])
		v := s.mac.sum(t)
		zero(t)
		return v
	}
	d = dbl(d)
	var p [blockLen]byte
	copy(p[:], sn)
	p[len(sn)] = 0x80
	xorBlock(&d, p[:])
	zero(p[:])
	return s.mac.sum(d[:])
}

// ctrXOR writes src XOR AES-CTR(K2, Q) to dst, Q = V with bits 63 and 31
// cleared (RFC 5297 2.5).
func (s *siv) ctrXOR(dst, src []byte, v [blockLen]byte) {
	q := v
	q[8] &= 0x7f
	q[12] &= 0x7f
	cipher.NewCTR(s.ctr, q[:]).XORKeyStream(dst, src)
}

// seal appends V || C to dst; ad are the associated-data strings.
func (s *siv) seal(dst, plaintext []byte, ad ...[]byte) []byte {
	v := s.s2v(append(ad, plaintext)...)
	dst = append(dst, v[:]...)
	n := len(dst)
	dst = growLen(dst, len(plaintext))
	s.ctrXOR(dst[n:], plaintext, v)
	return dst
}

var errSIVOpen = errors.New("AES-SIV authentication failed")

// open checks and decrypts V || C, appending the plaintext to dst.
func (s *siv) open(dst, sealed []byte, ad ...[]byte) ([]byte, error) {
	if len(sealed) < blockLen {
		return dst, errSIVOpen
	}
	var v [blockLen]byte
	copy(v[:], sealed)
	c := sealed[blockLen:]
	n := len(dst)
	dst = growLen(dst, len(c))
	s.ctrXOR(dst[n:], c, v)
	t := s.s2v(append(ad, dst[n:])...)
	if subtle.ConstantTimeCompare(t[:], v[:]) != 1 {
		zero(dst[n:])
		return dst[:n], errSIVOpen
	}
	return dst, nil
}

// sivAD is the first associated-data string of every reversible pseudonym:
// it versions the construction. The domain is the second.
const sivAD = "tarnkappe/pseudonym/siv/v1"

// sivKeyLen: AES-SIV with two AES-256 keys (AEAD_AES_SIV_CMAC_512).
const sivKeyLen = 64

// ReversibleOptions configures NewReversible.
type ReversibleOptions struct {
	// Domain names what the pseudonyms are for. Required; revealing needs
	// the same domain.
	Domain string
	// KeyID selects the master key new pseudonyms are sealed with; "" means
	// the active key. Pseudonyms made with any key of the keyring can be
	// revealed.
	KeyID string
}

// Reversible makes deterministic pseudonyms that a trustee holding the
// keyring can reveal: "<key id>-<base32(AES-SIV(domain key, value))>". The
// key id in front is what makes rotation work: Reveal picks the key the
// pseudonym was made with. Equal values give equal pseudonyms (SIV is
// deterministic), which is what linkage across a data set needs; a value's
// length is visible (16 + len bytes, base32).
//
// A Reversible is safe for concurrent use and prints as [REDACTED]. Call
// Destroy when done.
type Reversible struct {
	redacted
	domain string
	keyID  string
	seal   *siv
	open   map[string]*siv // key id -> cipher for every key in the keyring
	b32    *base32.Encoding
	// ad is (sivAD, domain). Its capacity equals its length, so the
	// append in seal/open always copies and concurrent calls share nothing.
	ad [][]byte
}

// NewReversible derives AES-SIV keys for opts.Domain from every key of the
// keyring (to reveal) and selects the active or given key to seal.
func NewReversible(kr *Keyring, opts ReversibleOptions) (*Reversible, error) {
	const fn = "pseudonym.NewReversible"
	if kr == nil {
		return nil, errors.New(fn + ": keyring is nil")
	}
	r := &Reversible{domain: opts.Domain, open: map[string]*siv{},
		ad:  [][]byte{[]byte(sivAD), []byte(opts.Domain)},
		b32: base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)}
	ids := kr.KeyIDs()
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: %w", fn, ErrDestroyed)
	}
	if opts.KeyID != "" && !kr.HasKey(opts.KeyID) {
		return nil, fmt.Errorf("%s: KeyID %q: %w", fn, opts.KeyID, ErrUnknownKeyID)
	}
	for _, id := range ids {
		_, key, err := kr.deriveKey(fn, purposeSIV, opts.Domain, id, sivKeyLen)
		if err != nil {
			return nil, err
		}
		s, err := newSIV(key)
		zero(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		r.open[id] = s
	}
	r.keyID = opts.KeyID
	if r.keyID == "" {
		r.keyID = kr.ActiveKeyID()
	}
	r.seal = r.open[r.keyID]
	if r.seal == nil {
		return nil, fmt.Errorf("%s: KeyID %q: %w", fn, r.keyID, ErrUnknownKeyID)
	}
	return r, nil
}

// KeyID returns the id of the key new pseudonyms are sealed with.
func (r *Reversible) KeyID() string { return r.keyID }

// Domain returns the domain.
func (r *Reversible) Domain() string { return r.domain }

// sealedLen is the pseudonym length for an n-byte value.
func (r *Reversible) sealedLen(n int) int {
	return len(r.keyID) + 1 + r.b32.EncodedLen(blockLen+n)
}

// Seal returns the reversible pseudonym of value.
func (r *Reversible) Seal(value []byte) (string, error) {
	if r.seal == nil {
		return "", fmt.Errorf("pseudonym.Reversible.Seal: %w", ErrDestroyed)
	}
	w := r.newWorker()
	out := make([]byte, r.sealedLen(len(value)))
	w.put(out, value)
	return string(out), nil
}

// Reveal returns the value a pseudonym was made from. It fails with
// ErrUnknownKeyID when the key id in front is not in the keyring and with
// ErrRevealFailed when the value does not authenticate (wrong domain,
// different keyring, or tampered). Errors quote the key id, never the
// value or a key.
func (r *Reversible) Reveal(pseudonym string) ([]byte, error) {
	const fn = "pseudonym.Reversible.Reveal"
	if r.open == nil {
		return nil, fmt.Errorf("%s: %w", fn, ErrDestroyed)
	}
	id, body, ok := strings.Cut(pseudonym, "-")
	if !ok || !keyIDPattern.MatchString(id) {
		return nil, fmt.Errorf("%s: not a reversible pseudonym (want <8 hex key id>-<base32>)", fn)
	}
	s := r.open[id]
	if s == nil {
		return nil, fmt.Errorf("%s: key id %q: %w", fn, id, ErrUnknownKeyID)
	}
	sealed, err := r.b32.DecodeString(body)
	// encoding/base32 ignores the unused low bits of the last character;
	// requiring the canonical spelling keeps one pseudonym per value.
	if err != nil || len(sealed) < blockLen || r.b32.EncodeToString(sealed) != body {
		return nil, fmt.Errorf("%s: not a reversible pseudonym (bad base32 body)", fn)
	}
	out, err := s.open(nil, sealed, r.ad...)
	if err != nil {
		return nil, fmt.Errorf("%s: key id %q, domain %q: %w", fn, id, r.domain, ErrRevealFailed)
	}
	return out, nil
}

// Destroy drops the ciphers and zeroes the CMAC subkeys. (crypto/aes keeps
// its expanded key schedule private; it is released to the garbage
// collector, not zeroed.)
func (r *Reversible) Destroy() {
	for _, s := range r.open {
		zero(s.mac.k1[:])
		zero(s.mac.k2[:])
	}
	r.open = nil
	r.seal = nil
}

// sivWorker seals values for one goroutine, reusing its buffer.
type sivWorker struct {
	r   *Reversible
	buf []byte
}

func (r *Reversible) newWorker() *sivWorker { return &sivWorker{r: r} }

// put writes the pseudonym of value into dst (len r.sealedLen(len(value))).
func (w *sivWorker) put(dst, value []byte) {
	r := w.r
	w.buf = r.seal.seal(w.buf[:0], value, r.ad...)
	n := copy(dst, r.keyID)
	dst[n] = '-'
	r.b32.Encode(dst[n+1:], w.buf)
	zero(w.buf)
}
