package pseudonym

import (
	"errors"
	"fmt"

	"github.com/capitalone/fpe/ff1"
)

// VINAlphabet is the alphabet of vehicle identification numbers (ISO 3779):
// digits and capital letters without I, O and Q. FF1 runs over it with
// radix 33, so a VIN maps to a VIN-shaped string of the same length.
const VINAlphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"

const (
	vinRadix = len(VINAlphabet)
	// fpeDigits is how capitalone/fpe spells radix-33 digits (big.Int text).
	fpeDigits = "0123456789abcdefghijklmnopqrstuvw"
	// ff1MinLen: SP 800-38G Rev. 1 requires radix^minlen >= 1,000,000;
	// 33^4 = 1,185,921.
	ff1MinLen = 4
	ff1MaxLen = 256
	ff1KeyLen = 32 // AES-256
)

// ErrFF1Alphabet: a value has a character outside VINAlphabet. Errors wrapping
// it give the position, never the value: a VIN identifies a vehicle.
var ErrFF1Alphabet = errors.New("character outside the VIN alphabet 0-9 A-Z without I, O, Q")

// FF1Options configures NewFF1.
type FF1Options struct {
	// Domain names what the pseudonyms are for. Required.
	Domain string
	// KeyID selects the master key; "" means the active key. FF1 output has
	// no room for a key id, so record KeyID() next to the data (reports do)
	// to decrypt after a rotation.
	KeyID string
}

// FF1 is format-preserving encryption (NIST SP 800-38G FF1 with AES-256)
// over VINAlphabet: a 17-character VIN becomes another 17-character string
// over the same alphabet, reversibly, so downstream schema checks keep
// working. The check digit of the output is not recomputed (it would be
// meaningless and would leak nothing but breaks no format either).
//
// FF1 does not authenticate: Decrypt with a wrong key, key id or domain
// returns a plausible wrong value, not an error. After decrypting VINs that
// had valid check digits, ValidVINCheckDigit catches a wrong key 32 times
// in 33 (the whole VIN is encrypted, so the right key restores the check
// digit; see vin.go).
//
// Equal inputs give equal outputs. An FF1 is safe for concurrent use
// (each call builds its own cipher state) and prints as [REDACTED].
type FF1 struct {
	redacted
	keyID, domain string
	key           [ff1KeyLen]byte
	destroyed     bool
}

// NewFF1 derives the FF1 key for opts.Domain.
func NewFF1(kr *Keyring, opts FF1Options) (*FF1, error) {
	const fn = "pseudonym.NewFF1"
	if kr == nil {
		return nil, errors.New(fn + ": keyring is nil")
	}
	id, key, err := kr.deriveKey(fn, purposeFF1, opts.Domain, opts.KeyID, ff1KeyLen)
	if err != nil {
		return nil, err
	}
	f := &FF1{keyID: id, domain: opts.Domain}
	copy(f.key[:], key)
	zero(key)
	return f, nil
}

// KeyID returns the id of the master key in use.
func (f *FF1) KeyID() string { return f.keyID }

// Domain returns the domain.
func (f *FF1) Domain() string { return f.domain }

// Destroy zeroes the key.
func (f *FF1) Destroy() {
	zero(f.key[:])
	f.destroyed = true
}

// Encrypt returns the FF1 encryption of vin (same length, same alphabet).
func (f *FF1) Encrypt(vin string) (string, error) {
	w, err := f.newWorker()
	if err != nil {
		return "", fmt.Errorf("pseudonym.FF1.Encrypt: %w", err)
	}
	out := make([]byte, len(vin))
	if err := w.crypt(out, []byte(vin), true); err != nil {
		return "", fmt.Errorf("pseudonym.FF1.Encrypt: %w", err)
	}
	return string(out), nil
}

// Decrypt inverts Encrypt.
func (f *FF1) Decrypt(vin string) (string, error) {
	w, err := f.newWorker()
	if err != nil {
		return "", fmt.Errorf("pseudonym.FF1.Decrypt: %w", err)
	}
	out := make([]byte, len(vin))
	if err := w.crypt(out, []byte(vin), false); err != nil {
		return "", fmt.Errorf("pseudonym.FF1.Decrypt: %w", err)
	}
	return string(out), nil
}

// ff1Worker holds one goroutine's cipher: capitalone/fpe's Cipher reuses a
// CBC encrypter and is not safe for concurrent use.
type ff1Worker struct {
	c   ff1.Cipher
	buf []byte
}

func (f *FF1) newWorker() (*ff1Worker, error) {
	if f.destroyed {
		return nil, ErrDestroyed
	}
	c, err := ff1.NewCipher(vinRadix, 0, f.key[:], nil)
	if err != nil {
		return nil, err
	}
	return &ff1Worker{c: c}, nil
}

// vinDigit maps a VIN character to its digit in capitalone/fpe's spelling.
func vinDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c, true
	case c >= 'A' && c <= 'Z' && c != 'I' && c != 'O' && c != 'Q':
		i := 10 + int(c-'A')
		if c > 'I' {
			i--
		}
		if c > 'O' {
			i--
		}
		if c > 'Q' {
			i--
		}
		return fpeDigits[i], true
	}
	return 0, false
}

// fromFPEDigit inverts vinDigit.
func fromFPEDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return VINAlphabet[c-'0'], true
	case c >= 'a' && c <= 'w':
		return VINAlphabet[10+int(c-'a')], true
	}
	return 0, false
}

// crypt encrypts or decrypts src into dst (same length). Errors give the
// character position, not the value.
func (w *ff1Worker) crypt(dst, src []byte, encrypt bool) error {
	if len(src) < ff1MinLen || len(src) > ff1MaxLen {
		return fmt.Errorf("FF1 needs %d to %d characters, got %d", ff1MinLen, ff1MaxLen, len(src))
	}
	w.buf = w.buf[:0]
	for i, c := range src {
		d, ok := vinDigit(c)
		if !ok {
			return fmt.Errorf("position %d: %w", i+1, ErrFF1Alphabet)
		}
		w.buf = append(w.buf, d)
	}
	var out string
	var err error
	if encrypt {
		out, err = w.c.Encrypt(string(w.buf))
	} else {
		out, err = w.c.Decrypt(string(w.buf))
	}
	if err != nil {
		return fmt.Errorf("FF1: %w", err)
	}
	if len(out) != len(dst) {
		return fmt.Errorf("FF1 returned %d characters for %d", len(out), len(dst))
	}
	for i := 0; i < len(out); i++ {
		c, ok := fromFPEDigit(out[i])
		if !ok {
			return errors.New("FF1 returned a digit outside radix 33")
		}
		dst[i] = c
	}
	return nil
}
