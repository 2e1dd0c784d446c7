package pool

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// Role is a party's role in a pool.
type Role string

// The roles. A member signs its uploads; an aggregator decrypts input shares
// (HPKE) and signs its prep files and aggregate shares; the collector
// decrypts the aggregate shares (HPKE).
const (
	RoleMember     Role = "member"
	RoleAggregator Role = "aggregator"
	RoleCollector  Role = "collector"
)

// The HPKE suite (RFC 9180) of every encryption in a pool: DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, AES-128-GCM, as DAP deployments use.
var hpkeSuite = hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM)

func hpkeScheme() kem.Scheme { return hpke.KEM_X25519_HKDF_SHA256.Scheme() }

const (
	signPrefix = "ed25519:"
	hpkePrefix = "x25519:"
	keyVersion = 1
)

// Key is one party's private keys: an ed25519 signing key (members and
// aggregators) and an X25519 HPKE key (aggregators and the collector). The
// bytes live in fixed-size unexported fields; String, Format and
// MarshalJSON never show them, and Destroy zeroes them.
type Key struct {
	role     Role
	id       string
	hasSign  bool
	hasHPKE  bool
	signSeed [ed25519.SeedSize]byte
	hpkeSK   [32]byte
}

// keyFile is the JSON form of a key file (0600, never in a config or a log).
type keyFile struct {
	Version int    `json:"version"`
	Role    Role   `json:"role"`
	ID      string `json:"id"`
	Sign    string `json:"ed25519_seed,omitempty"`
	HPKE    string `json:"x25519_private,omitempty"`
}

// GenerateKey makes fresh keys for one party from crypto/rand.
func GenerateKey(role Role, id string) (*Key, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("pool.GenerateKey: want an id of letters, digits, '.', '_' or '-', got %q", id)
	}
	k := &Key{role: role, id: id}
	switch role {
	case RoleMember:
		k.hasSign = true
	case RoleAggregator:
		k.hasSign, k.hasHPKE = true, true
	case RoleCollector:
		k.hasHPKE = true
	default:
		return nil, fmt.Errorf("pool.GenerateKey: unknown role %q (want member, aggregator or collector)", role)
	}
	if k.hasSign {
		if _, err := rand.Read(k.signSeed[:]); err != nil {
			return nil, fmt.Errorf("pool.GenerateKey: %w", err)
		}
	}
	if k.hasHPKE {
		_, sk, err := hpkeScheme().GenerateKeyPair()
		if err != nil {
			return nil, fmt.Errorf("pool.GenerateKey: %w", err)
		}
		b, err := sk.MarshalBinary()
		if err != nil || len(b) != len(k.hpkeSK) {
			return nil, errors.New("pool.GenerateKey: unexpected HPKE private key encoding")
		}
		copy(k.hpkeSK[:], b)
		clear(b)
	}
	return k, nil
}

// LoadKey reads a key file written by WriteFile. It refuses a file that
// group or others may read.
func LoadKey(path string) (*Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pool.LoadKey: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pool.LoadKey: %s is readable by group or others (mode %v); run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pool.LoadKey: %w", err)
	}
	defer clear(b)
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("pool.LoadKey: %s: %w", path, err)
	}
	return k, nil
}

// ParseKey parses the content of a key file. Errors never quote the key.
func ParseKey(b []byte) (*Key, error) {
	var f keyFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, errors.New("not a pool key file (malformed JSON)")
	}
	defer func() { f.Sign, f.HPKE = "", "" }()
	if f.Version != keyVersion {
		return nil, fmt.Errorf("key file version %d, want %d", f.Version, keyVersion)
	}
	if !idPattern.MatchString(f.ID) {
		return nil, fmt.Errorf("key file has an invalid id %q", f.ID)
	}
	k := &Key{role: f.Role, id: f.ID}
	switch f.Role {
	case RoleMember:
		k.hasSign = true
	case RoleAggregator:
		k.hasSign, k.hasHPKE = true, true
	case RoleCollector:
		k.hasHPKE = true
	default:
		return nil, fmt.Errorf("key file has an unknown role %q", f.Role)
	}
	if k.hasSign != (f.Sign != "") || k.hasHPKE != (f.HPKE != "") {
		return nil, fmt.Errorf("a %s key file must hold exactly the keys of its role", f.Role)
	}
	if k.hasSign {
		s, err := base64.StdEncoding.DecodeString(f.Sign)
		if err != nil || len(s) != len(k.signSeed) {
			return nil, errors.New("key file: malformed ed25519 seed")
		}
		copy(k.signSeed[:], s)
		clear(s)
	}
	if k.hasHPKE {
		s, err := base64.StdEncoding.DecodeString(f.HPKE)
		if err != nil || len(s) != len(k.hpkeSK) {
			return nil, errors.New("key file: malformed X25519 private key")
		}
		copy(k.hpkeSK[:], s)
		clear(s)
		if _, err := hpkeScheme().UnmarshalBinaryPrivateKey(k.hpkeSK[:]); err != nil {
			k.Destroy()
			return nil, errors.New("key file: invalid X25519 private key")
		}
	}
	return k, nil
}

// WriteFile writes the key to a new file with mode 0600; it never
// overwrites an existing file.
func (k *Key) WriteFile(path string) error {
	f := keyFile{Version: keyVersion, Role: k.role, ID: k.id}
	if k.hasSign {
		f.Sign = base64.StdEncoding.EncodeToString(k.signSeed[:])
	}
	if k.hasHPKE {
		f.HPKE = base64.StdEncoding.EncodeToString(k.hpkeSK[:])
	}
	b, err := json.MarshalIndent(f, "", "  ")
	f.Sign, f.HPKE = "", ""
	if err != nil {
		return fmt.Errorf("pool.Key.WriteFile: %w", err)
	}
	defer clear(b)
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pool.Key.WriteFile: %s exists; keys are never overwritten", path)
		}
		return fmt.Errorf("pool.Key.WriteFile: %w", err)
	}
	_, err = fh.Write(append(b, '\n'))
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("pool.Key.WriteFile: %w", err)
	}
	return nil
}

// Role is the key's role.
func (k *Key) Role() Role { return k.role }

// ID is the party's id.
func (k *Key) ID() string { return k.id }

// PublicKeys are the public halves of a Key, as a configuration lists them.
type PublicKeys struct {
	SignKey string `json:"sign_key,omitempty" yaml:"sign_key,omitempty"`
	HPKEKey string `json:"hpke_key,omitempty" yaml:"hpke_key,omitempty"`
}

// Public returns the key's public halves.
func (k *Key) Public() PublicKeys {
	var p PublicKeys
	if k.hasSign {
		sk := ed25519.NewKeyFromSeed(k.signSeed[:])
		p.SignKey = signPrefix + base64.StdEncoding.EncodeToString(sk.Public().(ed25519.PublicKey))
		clear(sk)
	}
	if k.hasHPKE {
		if sk, err := hpkeScheme().UnmarshalBinaryPrivateKey(k.hpkeSK[:]); err == nil {
			if b, err := sk.Public().MarshalBinary(); err == nil {
				p.HPKEKey = hpkePrefix + base64.StdEncoding.EncodeToString(b)
			}
		}
	}
	return p
}

// Destroy zeroes the key bytes; the key is unusable afterwards.
func (k *Key) Destroy() {
	clear(k.signSeed[:])
	clear(k.hpkeSK[:])
	k.hasSign, k.hasHPKE = false, false
}

// String names the key, never its bytes.
func (k *Key) String() string { return fmt.Sprintf("pool %s key %q (private)", k.role, k.id) }

// Format prints String for every verb, so %x or %#v cannot leak the bytes.
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// MarshalJSON refuses: a private key does not belong in JSON output.
func (k *Key) MarshalJSON() ([]byte, error) {
	return nil, errors.New("pool.Key: private keys are not marshalled (use WriteFile)")
}

// sign signs msg with the key's ed25519 key.
func (k *Key) sign(msg []byte) ([]byte, error) {
	if !k.hasSign {
		return nil, fmt.Errorf("%s has no signing key", k)
	}
	sk := ed25519.NewKeyFromSeed(k.signSeed[:])
	defer clear(sk)
	return ed25519.Sign(sk, msg), nil
}

// hpkePrivate returns the key's HPKE private key.
func (k *Key) hpkePrivate() (kem.PrivateKey, error) {
	if !k.hasHPKE {
		return nil, fmt.Errorf("%s has no HPKE key", k)
	}
	return hpkeScheme().UnmarshalBinaryPrivateKey(k.hpkeSK[:])
}

func parseSignPublic(s string) (ed25519.PublicKey, error) {
	b, ok := strings.CutPrefix(s, signPrefix)
	if !ok {
		return nil, fmt.Errorf("want %q followed by base64, got %q", signPrefix, truncate(s))
	}
	k, err := base64.StdEncoding.DecodeString(b)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("malformed ed25519 public key %q", truncate(s))
	}
	return ed25519.PublicKey(k), nil
}

func parseHPKEPublic(s string) (kem.PublicKey, error) {
	b, ok := strings.CutPrefix(s, hpkePrefix)
	if !ok {
		return nil, fmt.Errorf("want %q followed by base64, got %q", hpkePrefix, truncate(s))
	}
	k, err := base64.StdEncoding.DecodeString(b)
	if err != nil {
		return nil, fmt.Errorf("malformed X25519 public key %q", truncate(s))
	}
	pk, err := hpkeScheme().UnmarshalBinaryPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("malformed X25519 public key %q", truncate(s))
	}
	return pk, nil
}

// truncate shortens a (public) value quoted in an error.
func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
