package pseudonym

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Sentinel errors callers can match with errors.Is. Messages that wrap them
// name the file, field, key id or domain, never key bytes.
var (
	// ErrCorruptKeyring: the keyring file is malformed (syntax, unknown or
	// missing fields, wrong version, wrong key size, duplicate ids, ...).
	ErrCorruptKeyring = errors.New("corrupt keyring")
	// ErrUnknownKeyID: a key id is not in the keyring.
	ErrUnknownKeyID = errors.New("unknown key id")
	// ErrInsecureKeyring: the keyring file is readable or writable by group
	// or others.
	ErrInsecureKeyring = errors.New("keyring file is accessible by group or others")
	// ErrDestroyed: the keyring or pseudonymizer was destroyed (its keys zeroed).
	ErrDestroyed = errors.New("keys were destroyed")
	// ErrRevealFailed: a reversible pseudonym did not authenticate under any
	// key of the keyring (wrong key, wrong domain, or tampered value).
	ErrRevealFailed = errors.New("pseudonym does not authenticate")
)

const (
	keyringFormat  = "tarnkappe-keyring"
	keyringVersion = 1

	// keyIDLabel is hashed with the key to name it. Ids are public: they go
	// into reports and into reversible pseudonyms.
	keyIDLabel = "tarnkappe/keyring/key-id/v1\x00"
	// hkdfSalt fixes the HKDF extract step to this application and version.
	hkdfSalt = "tarnkappe/pseudonym/v1"

	maxDomainLen = 256
	// maxKeyringFile bounds what LoadKeyring reads: a keyring with thousands
	// of rotated keys is still far below it.
	maxKeyringFile = 1 << 20
)

// purpose names the algorithm a derived key is for. It is bound into the
// HKDF info, so the HMAC, AES-SIV, FF1 and date-shift keys of one domain are
// independent.
type purpose string

// The purposes this package derives keys for.
const (
	purposeHMAC      purpose = "hmac-sha256"
	purposeSIV       purpose = "aes-siv-cmac-512"
	purposeFF1       purpose = "ff1-aes256"
	purposeDateShift purpose = "dateshift-hmac-sha256"
)

var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{8}$`)

// Keyring holds 256-bit master keys: one active key that new pseudonyms are
// made with, and older keys kept after rotation so that old reversible
// pseudonyms can still be revealed and old HMAC pseudonyms recomputed.
// Per-domain keys are derived from a master key with HKDF-SHA256 and never
// stored.
//
// A Keyring is safe for concurrent use. Its String, Format and MarshalJSON
// print only key ids. Call Destroy when done to zero the key bytes.
type Keyring struct {
	mu        sync.RWMutex
	keys      []*masterKey // oldest first
	active    int
	destroyed bool
}

// NewKeyring returns a keyring with one fresh active key from crypto/rand.
func NewKeyring() (*Keyring, error) {
	kr := &Keyring{}
	if _, err := kr.rotate(rand.Reader); err != nil {
		return nil, fmt.Errorf("pseudonym.NewKeyring: %w", err)
	}
	return kr, nil
}

// Rotate adds a fresh key from crypto/rand, makes it the active key and
// returns its id. Older keys stay in the keyring (for reveal and for reading
// pseudonyms made before the rotation) until the file is edited by hand.
func (kr *Keyring) Rotate() (string, error) {
	id, err := kr.rotate(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("pseudonym.Keyring.Rotate: %w", err)
	}
	return id, nil
}

func (kr *Keyring) rotate(r io.Reader) (string, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if kr.destroyed {
		return "", ErrDestroyed
	}
	// Ids are 32 bits of a hash of the key; on the (2^-32) chance of a clash
	// with an existing key draw again, since ids must name keys uniquely.
	for range 8 {
		k := &masterKey{created: time.Now().UTC().Format(time.RFC3339)}
		if _, err := io.ReadFull(r, k.key[:]); err != nil {
			return "", fmt.Errorf("reading random key: %w", err)
		}
		k.id = keyID(&k.key)
		if kr.indexLocked(k.id) >= 0 {
			k.destroy()
			continue
		}
		kr.keys = append(kr.keys, k)
		kr.active = len(kr.keys) - 1
		return k.id, nil
	}
	return "", errors.New("could not draw a key with a unique id")
}

func keyID(key *[masterKeySize]byte) string {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(key[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return hex.EncodeToString(sum[:4])
}

func (kr *Keyring) indexLocked(id string) int {
	for i, k := range kr.keys {
		if k.id == id {
			return i
		}
	}
	return -1
}

// ActiveKeyID returns the id of the active key ("" after Destroy).
func (kr *Keyring) ActiveKeyID() string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if kr.destroyed || len(kr.keys) == 0 {
		return ""
	}
	return kr.keys[kr.active].id
}

// KeyIDs returns the ids of all keys, oldest first.
func (kr *Keyring) KeyIDs() []string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if kr.destroyed {
		return nil
	}
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	return ids
}

// HasKey reports whether the keyring holds a key with this id.
func (kr *Keyring) HasKey(id string) bool {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return !kr.destroyed && kr.indexLocked(id) >= 0
}

// Destroy zeroes every key. Afterwards every method fails with ErrDestroyed.
// Pseudonymizers made from the keyring hold their own derived state and have
// their own Destroy.
func (kr *Keyring) Destroy() {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	for _, k := range kr.keys {
		k.destroy()
	}
	kr.keys = nil
	kr.destroyed = true
}

// String describes the keyring by its key ids only.
func (kr *Keyring) String() string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if kr.destroyed {
		return "pseudonym.Keyring(destroyed)"
	}
	var b strings.Builder
	b.WriteString("pseudonym.Keyring(active=")
	if len(kr.keys) > 0 {
		b.WriteString(kr.keys[kr.active].id)
	}
	b.WriteString(" keys=")
	for i, k := range kr.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k.id)
	}
	b.WriteByte(')')
	return b.String()
}

// GoString is String, so %#v cannot print the keys.
func (kr *Keyring) GoString() string { return kr.String() }

// Format prints String for every verb, so no fmt verb reaches the key bytes.
func (kr *Keyring) Format(f fmt.State, _ rune) { io.WriteString(f, kr.String()) }

// MarshalJSON writes the public part only: {"active": id, "keys": [ids]}.
// The key file itself is written by Encode / WriteFile.
func (kr *Keyring) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Active string   `json:"active"`
		Keys   []string `json:"keys"`
	}{kr.ActiveKeyID(), kr.KeyIDs()})
}

// deriveKey derives an n-byte key for purpose and domain from the master key
// with the given id ("" = active key). The caller zeroes the result.
func (kr *Keyring) deriveKey(fn string, purpose purpose, domain, id string, n int) (string, []byte, error) {
	if err := checkDomain(domain); err != nil {
		return "", nil, fmt.Errorf("%s: Domain %w", fn, err)
	}
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if kr.destroyed {
		return "", nil, fmt.Errorf("%s: %w", fn, ErrDestroyed)
	}
	i := kr.active
	if id != "" {
		if i = kr.indexLocked(id); i < 0 {
			return "", nil, fmt.Errorf("%s: KeyID %q: %w", fn, id, ErrUnknownKeyID)
		}
	}
	k := kr.keys[i]
	// info = purpose NUL domain. Purposes contain no NUL and domains are
	// checked to contain none, so distinct (purpose, domain) pairs give
	// distinct info strings.
	key, err := hkdf.Key(sha256.New, k.key[:], []byte(hkdfSalt), string(purpose)+"\x00"+domain, n)
	if err != nil {
		return "", nil, fmt.Errorf("%s: deriving key: %w", fn, err)
	}
	return k.id, key, nil
}

// checkDomain accepts 1..256 bytes of printable UTF-8.
func checkDomain(d string) error {
	switch {
	case d == "":
		return errors.New("is required (it names the purpose, e.g. \"brakedisc-pool/vin\")")
	case len(d) > maxDomainLen:
		return fmt.Errorf("is %d bytes long; the limit is %d", len(d), maxDomainLen)
	case !utf8.ValidString(d):
		return errors.New("is not valid UTF-8")
	}
	for _, r := range d {
		if r < 0x20 || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// keyringFile is the on-disk format, version 1:
//
//	{"format": "tarnkappe-keyring", "version": 1, "active": "3f9a0c1d",
//	 "keys": [{"id": "3f9a0c1d", "created": "2026-03-02T10:00:00Z", "key": "<base64 of 32 bytes>"}]}
type keyringFile struct {
	Format  string        `json:"format"`
	Version int           `json:"version"`
	Active  string        `json:"active"`
	Keys    []keyringItem `json:"keys"`
}

type keyringItem struct {
	ID      string `json:"id"`
	Created string `json:"created,omitempty"`
	Key     string `json:"key"`
}

// Encode returns the keyring file contents. The result holds the keys in the
// clear: write it only to a 0600 file (WriteFile does) and zero it after use.
// It is the only copy of the encoded keys Encode makes: encoding/json lays
// out the file with a placeholder per key (its pooled buffers and the
// strings it takes could not be zeroed), and the keys are base64-encoded
// straight into the result, which is allocated once at its final size.
func (kr *Keyring) Encode() ([]byte, error) {
	const fn = "pseudonym.Keyring.Encode"
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if kr.destroyed {
		return nil, fmt.Errorf("%s: %w", fn, ErrDestroyed)
	}
	enc := base64.StdEncoding
	keyLen := enc.EncodedLen(masterKeySize)
	f := keyringFile{Format: keyringFormat, Version: keyringVersion, Active: kr.keys[kr.active].id}
	for i, k := range kr.keys {
		f.Keys = append(f.Keys, keyringItem{ID: k.id, Created: k.created, Key: keyPlaceholder(i, keyLen)})
	}
	layout, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	out := make([]byte, len(layout)+1)
	copy(out, layout)
	out[len(layout)] = '\n'
	at := 0
	for i, k := range kr.keys {
		ph := []byte(`"` + keyPlaceholder(i, keyLen) + `"`)
		j := bytes.Index(out[at:], ph)
		if j < 0 {
			zero(out)
			return nil, fmt.Errorf("%s: key %d missing from the layout", fn, i)
		}
		at += j + 1
		enc.Encode(out[at:at+keyLen], k.key[:])
		at += keyLen
	}
	return out, nil
}

// keyPlaceholder stands in for key i in Encode's layout: as long as an
// encoded key, and no other value in a keyring file looks like it.
func keyPlaceholder(i, n int) string {
	return fmt.Sprintf("%0*d", n, i)
}

// WriteFile writes the keyring to path with mode 0600, through a temporary
// file in the same directory that is renamed into place, so a crash leaves
// either the old file or the new one. Unless overwrite is set, an existing
// file is never replaced (the check and the rename are one atomic link).
func (kr *Keyring) WriteFile(path string, overwrite bool) (err error) {
	const fn = "pseudonym.Keyring.WriteFile"
	data, err := kr.Encode()
	if err != nil {
		return err
	}
	defer zero(data)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".keyring-*.tmp")
	if err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("%s: %q: %w", fn, path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("%s: %q: %w", fn, path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("%s: %q: %w", fn, path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("%s: %q: %w", fn, path, err)
	}
	if overwrite {
		if err = os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
		syncDir(dir)
		return nil
	}
	// os.Link fails if path exists: no window in which another writer's file
	// could be replaced.
	if err = os.Link(tmpName, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			err = fmt.Errorf("%s: %q already exists (refusing to overwrite a keyring): %w", fn, path, os.ErrExist)
		} else {
			err = fmt.Errorf("%s: %w", fn, err)
		}
		return err
	}
	os.Remove(tmpName)
	syncDir(dir)
	return nil
}

// syncDir makes the new directory entry durable where the platform allows;
// failure only weakens crash durability, not correctness, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// LoadKeyring reads a keyring file. It refuses a file that group or others
// can access (on Unix): a keyring that others can read is already leaked,
// and failing loudly gets it fixed (chmod 600). The error names the file and
// the field at fault, never key bytes.
func LoadKeyring(path string) (*Keyring, error) {
	const fn = "pseudonym.LoadKeyring"
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %q is not a regular file: %w", fn, path, ErrCorruptKeyring)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %q has mode %04o (run chmod 600 on it): %w", fn, path, st.Mode().Perm(), ErrInsecureKeyring)
	}
	if st.Size() > maxKeyringFile {
		return nil, fmt.Errorf("%s: %q is larger than %d bytes: %w", fn, path, maxKeyringFile, ErrCorruptKeyring)
	}
	// One buffer of the file's size (plus one byte to see it grow): reading
	// into a growing buffer would leave copies of the keys behind.
	buf := make([]byte, st.Size()+1)
	defer zero(buf)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		return nil, fmt.Errorf("%s: %q grew while being read: %w", fn, path, ErrCorruptKeyring)
	case !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: %q: %w", fn, path, err)
	}
	data := buf[:n]
	kr, err := ParseKeyring(path, data)
	if err != nil {
		return nil, err
	}
	return kr, nil
}

// ParseKeyring parses keyring file contents; name is used in errors only.
// The parser is strict: unknown or duplicate fields, a wrong format or
// version, ids that do not match their keys, keys that are not 32 bytes or
// written with JSON escapes, duplicate ids and an active id that names no
// key are all errors. The keys are decoded from data in place: no copy of
// them is left behind (data itself is the caller's to zero).
func ParseKeyring(name string, data []byte) (*Keyring, error) {
	kr, field, err := parseKeyring(data)
	if err != nil {
		if field != "" {
			return nil, fmt.Errorf("pseudonym.ParseKeyring: %q: %s: %w: %w", name, field, err, ErrCorruptKeyring)
		}
		return nil, fmt.Errorf("pseudonym.ParseKeyring: %q: %w: %w", name, err, ErrCorruptKeyring)
	}
	return kr, nil
}

var fieldNamePattern = regexp.MustCompile(`^[a-z_]{1,24}$`)

// objectFields reads one JSON object into its raw fields, rejecting
// duplicate and unknown names. Errors never quote values (they may be keys):
// only field names that look like field names, and byte offsets.
func objectFields(raw []byte, allowed ...string) (map[string]json.RawMessage, string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, "", jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, "", errors.New("is not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", jsonError(err)
		}
		name, _ := tok.(string)
		shown := "(unprintable field name)"
		if fieldNamePattern.MatchString(name) {
			shown = name
		}
		if _, dup := fields[name]; dup {
			return nil, shown, errors.New("appears twice")
		}
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return nil, shown, errors.New("unknown field")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, shown, jsonError(err)
		}
		fields[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, "", jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", errors.New("trailing data after the JSON object")
	}
	return fields, "", nil
}

// jsonError strips a JSON error of quoted input: encoding/json syntax errors
// quote the offending character, which could be part of a key.
func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("JSON syntax error at byte offset %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of JSON")
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("has JSON type %s, want %s", te.Value, te.Type)
	}
	return errors.New("invalid JSON")
}

// maskKeyValues returns a copy of data in which the string value of every
// field named "key" is replaced by the marker "@n" (n counts such values
// from 0), and where each value's content lies in data. The JSON parsing
// (encoding/json's decoder copies its input into buffers of its own) then
// sees no key; parseKeyring decodes each key from data through its marker.
// It lexes just enough JSON to find strings: malformed input comes out as
// malformed. A field name written with escapes is an error (the lexer
// could not tell "k\u0065y" from another name; no keyring needs escapes).
func maskKeyValues(data []byte) (masked []byte, spans [][2]int, err error) {
	masked = make([]byte, 0, len(data))
	afterKeyName := false // the last tokens were the name "key" and ':'
	for i := 0; i < len(data); {
		c := data[i]
		if c != '"' {
			masked = append(masked, c)
			if c != ':' && c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				afterKeyName = false
			}
			i++
			continue
		}
		j := i + 1 // the closing quote, or len(data)
		for j < len(data) && data[j] != '"' {
			if data[j] == '\\' {
				j++
			}
			j++
		}
		j = min(j, len(data))
		k := j + 1
		for k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\n' || data[k] == '\r') {
			k++
		}
		isName := k < len(data) && data[k] == ':'
		if isName && bytes.IndexByte(data[i+1:j], '\\') >= 0 {
			return nil, nil, errors.New("a field name is written with JSON escapes")
		}
		if afterKeyName && !isName {
			masked = append(masked, '"', '@')
			masked = strconv.AppendInt(masked, int64(len(spans)), 10)
			masked = append(masked, '"')
			spans = append(spans, [2]int{i + 1, j})
		} else {
			masked = append(masked, data[i:min(j+1, len(data))]...)
		}
		afterKeyName = isName && string(data[i+1:j]) == "key"
		i = j + 1
	}
	return masked, spans, nil
}

func parseKeyring(orig []byte) (*Keyring, string, error) {
	data, spans, err := maskKeyValues(orig)
	if err != nil {
		return nil, "", err
	}
	top, field, err := objectFields(data, "format", "version", "active", "keys")
	if err != nil {
		return nil, field, err
	}
	for _, f := range []string{"format", "version", "active", "keys"} {
		if _, ok := top[f]; !ok {
			return nil, f, errors.New("is missing")
		}
	}
	var format string
	if err := json.Unmarshal(top["format"], &format); err != nil || format != keyringFormat {
		return nil, "format", fmt.Errorf("must be %q", keyringFormat)
	}
	var version int
	if err := json.Unmarshal(top["version"], &version); err != nil {
		return nil, "version", errors.New("must be an integer")
	}
	if version != keyringVersion {
		return nil, "version", fmt.Errorf("is %d; this build reads version %d", version, keyringVersion)
	}
	var active string
	if err := json.Unmarshal(top["active"], &active); err != nil || !keyIDPattern.MatchString(active) {
		return nil, "active", errors.New("must be a key id of 8 lowercase hex digits")
	}
	var rawKeys []json.RawMessage
	if err := json.Unmarshal(top["keys"], &rawKeys); err != nil {
		return nil, "keys", errors.New("must be a JSON array")
	}
	if len(rawKeys) == 0 {
		return nil, "keys", errors.New("is empty")
	}
	kr := &Keyring{active: -1}
	fail := func(field string, err error) (*Keyring, string, error) {
		kr.Destroy()
		return nil, field, err
	}
	for i, raw := range rawKeys {
		at := fmt.Sprintf("keys[%d]", i)
		obj, field, err := objectFields(raw, "id", "created", "key")
		if err != nil {
			if field != "" {
				at += "." + field
			}
			return fail(at, err)
		}
		for _, f := range []string{"id", "key"} {
			if _, ok := obj[f]; !ok {
				return fail(at+"."+f, errors.New("is missing"))
			}
		}
		var item keyringItem
		if err := json.Unmarshal(obj["id"], &item.ID); err != nil || !keyIDPattern.MatchString(item.ID) {
			return fail(at+".id", errors.New("must be 8 lowercase hex digits"))
		}
		if c, ok := obj["created"]; ok {
			if err := json.Unmarshal(c, &item.Created); err != nil {
				return fail(at+".created", errors.New("must be a string"))
			}
			if _, err := time.Parse(time.RFC3339, item.Created); err != nil {
				return fail(at+".created", errors.New("must be an RFC 3339 time"))
			}
		}
		var marker string
		if err := json.Unmarshal(obj["key"], &marker); err != nil {
			return fail(at+".key", errors.New("must be a base64 string"))
		}
		span, ok := keySpan(marker, spans)
		if !ok {
			return fail(at+".key", errors.New("must be a base64 string written without JSON escapes"))
		}
		encoded := orig[span[0]:span[1]]
		if bytes.IndexByte(encoded, '\\') >= 0 {
			return fail(at+".key", errors.New("must be a base64 string written without JSON escapes"))
		}
		k := &masterKey{id: item.ID, created: item.Created}
		// Decode into a fixed buffer so that the error path cannot quote the
		// value and the key never lives in a growable slice.
		var buf [masterKeySize + 3]byte
		if base64.StdEncoding.DecodedLen(len(encoded)) > len(buf) {
			return fail(at+".key", fmt.Errorf("must be %d bytes, got more", masterKeySize))
		}
		n, err := base64.StdEncoding.Strict().Decode(buf[:], encoded)
		if err != nil {
			zero(buf[:])
			return fail(at+".key", errors.New("is not valid standard base64"))
		}
		if n != masterKeySize {
			zero(buf[:])
			return fail(at+".key", fmt.Errorf("must be %d bytes, got %d", masterKeySize, n))
		}
		copy(k.key[:], buf[:n])
		zero(buf[:])
		if keyID(&k.key) != k.id {
			k.destroy()
			return fail(at+".id", fmt.Errorf("%q does not match its key (file edited or keys mixed up)", item.ID))
		}
		if kr.indexLocked(k.id) >= 0 {
			k.destroy()
			return fail(at+".id", fmt.Errorf("%q appears twice", k.id))
		}
		kr.keys = append(kr.keys, k)
		if k.id == active {
			kr.active = len(kr.keys) - 1
		}
	}
	if kr.active < 0 {
		return fail("active", fmt.Errorf("%q names no key in keys", active))
	}
	return kr, "", nil
}

// keySpan returns the span maskKeyValues recorded for a marker "@n".
func keySpan(marker string, spans [][2]int) ([2]int, bool) {
	digits, ok := strings.CutPrefix(marker, "@")
	if !ok {
		return [2]int{}, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n >= len(spans) || strconv.Itoa(n) != digits {
		return [2]int{}, false
	}
	return spans[n], true
}
