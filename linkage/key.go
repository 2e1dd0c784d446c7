package linkage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// KeySize is the size of a measurement key in bytes.
const KeySize = 32

// Key keys a measurement: which traces and subjects are sampled, which
// points are drawn, and the seed of the value keys. A sample that nobody
// can predict cannot be dodged by shaping the data; a fresh key per run
// (NewKey(nil)) is the default. The key lives only in memory; its String
// and Format never print it.
type Key struct {
	block cipher.Block // AES-256: a keyed pseudo-random permutation of 128-bit blocks
	seed  uint64
}

// Domains of the key's uses, so that no two uses share an output.
const (
	domSeed byte = iota + 1
	domTrace
	domSubject
	domEligible
	domDraw
)

// NewKey returns the key of b, which must hold KeySize bytes (copied; the
// caller may clear b afterwards), or a fresh random key when b is nil.
// Tests pass a fixed key for reproducible samples.
func NewKey(b []byte) (*Key, error) {
	var raw [KeySize]byte
	defer clear(raw[:])
	switch {
	case b == nil:
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, fmt.Errorf("linkage.NewKey: %w", err)
		}
	case len(b) != KeySize:
		return nil, fmt.Errorf("linkage.NewKey: want %d bytes, got %d", KeySize, len(b))
	default:
		copy(raw[:], b)
	}
	block, err := aes.NewCipher(raw[:])
	if err != nil {
		return nil, fmt.Errorf("linkage.NewKey: %w", err)
	}
	k := &Key{block: block}
	k.seed = k.prf(domSeed, 0)
	return k, nil
}

// prf is AES-256 of (domain, x): a keyed pseudo-random function of x.
func (k *Key) prf(domain byte, x uint64) uint64 {
	var buf prfBuf
	return k.prfInto(&buf, domain, x)
}

// prfBuf is prf's scratch: cipher.Block is an interface, so blocks passed
// to it escape to the heap. Hot callers (a subject or trace admitted per
// row) keep one in their own state instead of allocating per call.
type prfBuf [2 * aes.BlockSize]byte

// prfInto is prf with the caller's scratch (one goroutine per buffer).
func (k *Key) prfInto(buf *prfBuf, domain byte, x uint64) uint64 {
	clear(buf[:])
	in, out := buf[:aes.BlockSize], buf[aes.BlockSize:]
	in[0] = domain
	binary.LittleEndian.PutUint64(in[8:], x)
	k.block.Encrypt(out, in)
	return binary.LittleEndian.Uint64(out[:8])
}

// Seed is the seed of the value keys (NewKeyer) under this key.
func (k *Key) Seed() uint64 { return k.seed }

// String never shows the key.
func (k *Key) String() string { return "linkage.Key(…)" }

// Format never shows the key.
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }
