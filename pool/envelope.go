package pool

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloudflare/circl/kem"
)

// Every signed file of a pool (manifest, prep file, aggregate share) is one
// JSON object: its kind, the body (compact JSON, signed as the exact bytes
// written), an optional binary blob the signature also covers (base64), and
// the ed25519 signature. Signatures are domain-separated by kind, so a
// signature on one kind of file is no signature on another.
type signedFile struct {
	Kind      string          `json:"kind"`
	Body      json.RawMessage `json:"body"`
	Blob      string          `json:"blob,omitempty"`
	Signature string          `json:"signature"`
}

// The kinds of signed files.
const (
	kindManifest = "manifest"
	kindPrep     = "prep"
	kindShare    = "share"
)

// maxSignedFile bounds what is read of a signed file (a share of 2^20
// partitions × a few aggregates in base64 fits well inside).
const maxSignedFile = 1 << 30

func signedMessage(kind string, body, blob []byte) []byte {
	hb, hx := sha256.Sum256(body), sha256.Sum256(blob)
	msg := append([]byte("tarnkappe-pool/v1 signed "+kind+"\x00"), hb[:]...)
	return append(msg, hx[:]...)
}

// marshalSigned signs body (marshalled compactly) and blob with key.
func marshalSigned(kind string, body any, blob []byte, key *Key) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	sig, err := key.sign(signedMessage(kind, b, blob))
	if err != nil {
		return nil, err
	}
	f := signedFile{Kind: kind, Body: b, Signature: base64.StdEncoding.EncodeToString(sig)}
	if blob != nil {
		f.Blob = base64.StdEncoding.EncodeToString(blob)
	}
	out, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// errBadSignature is wrapped when a signature does not verify.
var errBadSignature = errors.New("signature does not verify")

// parseSigned splits a signed file without checking the signature (the
// signer is named in the body); verify does that.
func parseSigned(data []byte, kind string) (*signedFile, []byte, error) {
	var f signedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("not a signed pool file: %v", err)
	}
	if f.Kind != kind {
		return nil, nil, fmt.Errorf("a %q file where a %q file was expected", f.Kind, kind)
	}
	blob, err := base64.StdEncoding.DecodeString(f.Blob)
	if err != nil {
		return nil, nil, errors.New("malformed blob")
	}
	return &f, blob, nil
}

// verify checks f's signature with pub.
func (f *signedFile) verify(pub ed25519.PublicKey, blob []byte) error {
	sig, err := base64.StdEncoding.DecodeString(f.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errBadSignature
	}
	if !ed25519.Verify(pub, signedMessage(f.Kind, f.Body, blob), sig) {
		return errBadSignature
	}
	return nil
}

// decodeBody decodes a signed body strictly (unknown fields are errors).
func decodeBody(body []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("malformed body: %v", err)
	}
	return nil
}

// sealed is an HPKE ciphertext: the encapsulated key and the AEAD output.
type sealed struct {
	Enc        []byte `json:"enc"`
	Ciphertext []byte `json:"ciphertext"`
}

// seal encrypts pt to pk (RFC 9180 base mode) with info naming the purpose
// and aad binding the context.
func seal(pk kem.PublicKey, info, aad, pt []byte) (sealed, error) {
	snd, err := hpkeSuite.NewSender(pk, info)
	if err != nil {
		return sealed{}, err
	}
	enc, sl, err := snd.Setup(rand.Reader)
	if err != nil {
		return sealed{}, err
	}
	ct, err := sl.Seal(pt, aad)
	if err != nil {
		return sealed{}, err
	}
	return sealed{Enc: enc, Ciphertext: ct}, nil
}

// errDecrypt is wrapped when a ciphertext does not open: the wrong key, or
// a tampered or misdirected file.
var errDecrypt = errors.New("cannot decrypt (wrong key, or the file was tampered with or sent to the wrong party)")

func open(sk kem.PrivateKey, info, aad []byte, s sealed) ([]byte, error) {
	rcv, err := hpkeSuite.NewReceiver(sk, info)
	if err != nil {
		return nil, errDecrypt
	}
	op, err := rcv.Setup(s.Enc)
	if err != nil {
		return nil, errDecrypt
	}
	pt, err := op.Open(s.Ciphertext, aad)
	if err != nil {
		return nil, errDecrypt
	}
	return pt, nil
}

// marshalSealed frames a sealed value as bytes: magic, enc length, enc,
// ciphertext.
func marshalSealed(magic string, s sealed) []byte {
	out := make([]byte, 0, len(magic)+2+len(s.Enc)+len(s.Ciphertext))
	out = append(out, magic...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(s.Enc)))
	out = append(out, s.Enc...)
	return append(out, s.Ciphertext...)
}

func unmarshalSealed(magic string, b []byte) (sealed, error) {
	if len(b) < len(magic)+2 || string(b[:len(magic)]) != magic {
		return sealed{}, errors.New("not a pool upload (bad magic)")
	}
	b = b[len(magic):]
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > len(b) {
		return sealed{}, errors.New("truncated upload")
	}
	return sealed{Enc: b[:n], Ciphertext: b[n:]}, nil
}

// fileSet writes several files so that either all appear or none: each is
// written to a temporary file beside its target and fsynced; Commit renames
// them in order; any failure removes what was written.
type fileSet struct {
	temps, targets []string
	done           bool
}

func (s *fileSet) add(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	s.temps = append(s.temps, f.Name())
	s.targets = append(s.targets, path)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit renames every file into place; the last one written marks the set
// complete (a manifest after its uploads).
func (s *fileSet) commit() error {
	for i := range s.temps {
		if _, err := os.Lstat(s.targets[i]); err == nil {
			return fmt.Errorf("%s exists; pool files are never overwritten", s.targets[i])
		}
	}
	for i, t := range s.temps {
		if err := os.Rename(t, s.targets[i]); err != nil {
			for _, done := range s.targets[:i] {
				os.Remove(done)
			}
			return err
		}
	}
	s.done = true
	syncDir(filepath.Dir(s.targets[len(s.targets)-1]))
	return nil
}

// abort removes the temporary files (after a successful commit: nothing).
func (s *fileSet) abort() {
	if s.done {
		return
	}
	for _, t := range s.temps {
		os.Remove(t)
	}
}

// writeFiles writes files[i] to paths[i] as one set (see fileSet).
func writeFiles(paths []string, files [][]byte, perm os.FileMode) error {
	var s fileSet
	defer s.abort()
	for i, p := range paths {
		if err := s.add(p, files[i], perm); err != nil {
			return err
		}
	}
	return s.commit()
}

// syncDir makes a rename durable (best effort: not every system can sync a
// directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
