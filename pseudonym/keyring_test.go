package pseudonym

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixedKeyring builds a keyring from known key bytes (tests only).
func fixedKeyring(t testing.TB, fill ...byte) *Keyring {
	t.Helper()
	f := keyringFile{Format: keyringFormat, Version: keyringVersion}
	for _, b := range fill {
		var k [masterKeySize]byte
		for i := range k {
			k[i] = b + byte(i)
		}
		id := keyID(&k)
		f.Keys = append(f.Keys, keyringItem{ID: id, Created: "2026-03-02T10:00:00Z", Key: base64.StdEncoding.EncodeToString(k[:])})
		f.Active = id
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := ParseKeyring("fixed", data)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// secretsOf returns the hex and base64 spellings of every master key, to
// check that no error or printout contains them.
func secretsOf(kr *Keyring) []string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	var out []string
	for _, k := range kr.keys {
		out = append(out, hex.EncodeToString(k.key[:]), strings.ToUpper(hex.EncodeToString(k.key[:])),
			base64.StdEncoding.EncodeToString(k.key[:]), base64.RawURLEncoding.EncodeToString(k.key[:]),
			string(k.key[:]), hex.EncodeToString(k.key[:8]), base64.StdEncoding.EncodeToString(k.key[:12]))
	}
	return out
}

func assertNoSecrets(t *testing.T, what, s string, secrets []string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains key material: %q", what, s)
			return
		}
	}
}

func TestNewKeyringAndRoundTrip(t *testing.T) {
	kr, err := NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Destroy()
	if !keyIDPattern.MatchString(kr.ActiveKeyID()) || len(kr.KeyIDs()) != 1 {
		t.Fatalf("new keyring: active %q, ids %v", kr.ActiveKeyID(), kr.KeyIDs())
	}
	old := kr.ActiveKeyID()
	newID, err := kr.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if newID == old || kr.ActiveKeyID() != newID || !kr.HasKey(old) {
		t.Fatalf("after Rotate: active %q (new %q), old %q kept=%v", kr.ActiveKeyID(), newID, old, kr.HasKey(old))
	}
	data, err := kr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	kr2, err := ParseKeyring("mem", data)
	if err != nil {
		t.Fatal(err)
	}
	defer kr2.Destroy()
	if kr2.ActiveKeyID() != newID || strings.Join(kr2.KeyIDs(), ",") != strings.Join(kr.KeyIDs(), ",") {
		t.Fatalf("round trip: %v active %s, want %v active %s", kr2.KeyIDs(), kr2.ActiveKeyID(), kr.KeyIDs(), newID)
	}
	for _, id := range kr.KeyIDs() {
		a, _ := NewHMAC(kr, HMACOptions{Domain: "d", KeyID: id})
		b, _ := NewHMAC(kr2, HMACOptions{Domain: "d", KeyID: id})
		if a.Pseudonym([]byte("v")) != b.Pseudonym([]byte("v")) {
			t.Errorf("key %s differs after Encode/Parse", id)
		}
	}
}

func TestWriteAndLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	kr, err := NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Destroy()
	if err := kr.WriteFile(path, false); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	err = kr.WriteFile(path, false)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteFile without overwrite: %v, want ErrExist", err)
	}
	if err := kr.WriteFile(path, true); err != nil {
		t.Errorf("WriteFile with overwrite: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	back, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Destroy()
	if back.ActiveKeyID() != kr.ActiveKeyID() {
		t.Errorf("loaded active %s, want %s", back.ActiveKeyID(), kr.ActiveKeyID())
	}
	secrets := secretsOf(kr)

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadKeyring(path)
	if !errors.Is(err, ErrInsecureKeyring) || !strings.Contains(err.Error(), path) {
		t.Errorf("group-readable keyring: %v, want ErrInsecureKeyring naming the file", err)
	}
	assertNoSecrets(t, "error", fmt.Sprint(err), secrets)

	_, err = LoadKeyring(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing keyring: %v, want ErrNotExist", err)
	}
}

func TestParseKeyringErrors(t *testing.T) {
	kr := fixedKeyring(t, 1, 50)
	defer kr.Destroy()
	good, err := kr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	secrets := secretsOf(kr)
	var f map[string]any
	if err := json.Unmarshal(good, &f); err != nil {
		t.Fatal(err)
	}
	keys := f["keys"].([]any)
	k0 := keys[0].(map[string]any)
	k1 := keys[1].(map[string]any)
	edit := func(fn func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal(good, &m)
		fn(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	shortKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 31))
	longKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 33))
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "unexpected end"},
		{"not json", "{\"format\": " + k0["key"].(string), "syntax error"},
		{"array", "[]", "not a JSON object"},
		{"unknown top field", edit(func(m map[string]any) { m["extra"] = 1 }), "extra: unknown field"},
		{"unknown key field", edit(func(m map[string]any) { m["keys"].([]any)[0].(map[string]any)["note"] = "x" }), "keys[0].note: unknown field"},
		{"key as field name", `{"` + k0["key"].(string) + `": 1}`, "unprintable field name"},
		{"duplicate field", strings.Replace(string(good), `"version": 1,`, `"version": 1, "version": 1,`, 1), "version: appears twice"},
		{"wrong format", edit(func(m map[string]any) { m["format"] = "age" }), "format: must be"},
		{"wrong version", edit(func(m map[string]any) { m["version"] = 2 }), "version: is 2"},
		{"missing active", edit(func(m map[string]any) { delete(m, "active") }), "active: is missing"},
		{"no keys", edit(func(m map[string]any) { m["keys"] = []any{} }), "keys: is empty"},
		{"short key", edit(func(m map[string]any) { m["keys"].([]any)[0].(map[string]any)["key"] = shortKey }), "keys[0].key: must be 32 bytes, got 31"},
		{"long key", edit(func(m map[string]any) { m["keys"].([]any)[1].(map[string]any)["key"] = longKey }), "keys[1].key: must be 32 bytes"},
		{"bad base64", edit(func(m map[string]any) { m["keys"].([]any)[1].(map[string]any)["key"] = "!!" + k1["key"].(string)[2:] }), "keys[1].key: is not valid standard base64"},
		{"key as number", edit(func(m map[string]any) { m["keys"].([]any)[0].(map[string]any)["key"] = 5 }), "keys[0].key: must be a base64 string"},
		{"id mismatch", edit(func(m map[string]any) { m["keys"].([]any)[0].(map[string]any)["key"] = k1["key"] }), "keys[0].id"},
		{"duplicate ids", edit(func(m map[string]any) { m["keys"] = []any{k0, k0} }), "keys[1].id: \"" + k0["id"].(string) + "\" appears twice"},
		{"unknown active", edit(func(m map[string]any) { m["active"] = "00000000" }), "active: \"00000000\" names no key"},
		{"bad id", edit(func(m map[string]any) { m["keys"].([]any)[0].(map[string]any)["id"] = "XYZ" }), "keys[0].id: must be 8 lowercase hex"},
		{"bad created", edit(func(m map[string]any) { m["keys"].([]any)[0].(map[string]any)["created"] = "yesterday" }), "keys[0].created"},
		{"trailing data", string(good) + "{}", "trailing data"},
		{"key with escapes", strings.Replace(string(good), `"key": "`+k0["key"].(string)[:1], `"key": "\u00`+fmt.Sprintf("%02x", k0["key"].(string)[0]), 1), "keys[0].key: must be a base64 string written without JSON escapes"},
		{"escaped field name", strings.Replace(string(good), `"key":`, `"k\u0065y":`, 1), "field name is written with JSON escapes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeyring("keys.json", []byte(tc.data))
			if err == nil {
				t.Fatal("parsed a corrupt keyring")
			}
			if !errors.Is(err, ErrCorruptKeyring) {
				t.Errorf("%v does not wrap ErrCorruptKeyring", err)
			}
			if !strings.Contains(err.Error(), `"keys.json"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the file and %q", err, tc.want)
			}
			assertNoSecrets(t, "error", err.Error(), secrets)
		})
	}
}

func TestRedaction(t *testing.T) {
	kr := fixedKeyring(t, 9)
	defer kr.Destroy()
	secrets := secretsOf(kr)
	h, err := NewHMAC(kr, HMACOptions{Domain: "d"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReversible(kr, ReversibleOptions{Domain: "d"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFF1(kr, FF1Options{Domain: "d"})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := NewDateShift(kr, DateShiftOptions{Domain: "d", MaxDays: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The derived states are secret too: include their bytes.
	secrets = append(secrets, hex.EncodeToString(h.istate[4:36]), hex.EncodeToString(f.key[:]), string(f.key[:16]))
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	for name, v := range map[string]any{"keyring": kr, "hmac": h, "hasher": h.NewHasher(), "reversible": r, "ff1": f, "dateshift": ds, "masterKey": kr.keys[0]} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			assertNoSecrets(t, name+" "+verb, fmt.Sprintf(verb, v), secrets)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Errorf("%s: json: %v", name, err)
		}
		assertNoSecrets(t, name+" json", string(j), secrets)
		log.Info("x", "v", v)
	}
	assertNoSecrets(t, "slog", logBuf.String(), secrets)
	if s := fmt.Sprint(kr); !strings.Contains(s, kr.ActiveKeyID()) {
		t.Errorf("keyring prints %q, want its key id", s)
	}
}

func TestDestroy(t *testing.T) {
	kr := fixedKeyring(t, 3)
	h, _ := NewHMAC(kr, HMACOptions{Domain: "d"})
	f, _ := NewFF1(kr, FF1Options{Domain: "d"})
	keys := kr.keys
	kr.Destroy()
	for _, k := range keys {
		if k.key != [masterKeySize]byte{} {
			t.Error("Destroy left key bytes")
		}
	}
	if _, err := NewHMAC(kr, HMACOptions{Domain: "d"}); !errors.Is(err, ErrDestroyed) {
		t.Errorf("NewHMAC on destroyed keyring: %v", err)
	}
	if _, err := kr.Rotate(); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Rotate on destroyed keyring: %v", err)
	}
	if _, err := kr.Encode(); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Encode on destroyed keyring: %v", err)
	}
	h.Destroy()
	if h.istate != [sha256StateSize]byte{} || h.ostate != [sha256StateSize]byte{} {
		t.Error("HMAC.Destroy left state")
	}
	if p := h.Pseudonym([]byte("x")); p != "" {
		t.Errorf("destroyed HMAC made pseudonym %q", p)
	}
	if h.Verify(nil, "") || h.Verify([]byte("x"), "") {
		t.Error("destroyed HMAC verifies")
	}
	f.Destroy()
	if _, err := f.Encrypt("WVWZZZ1JZXW000001"); !errors.Is(err, ErrDestroyed) {
		t.Errorf("destroyed FF1: %v", err)
	}
}

func TestDomainAndPurposeSeparation(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	seen := map[string]string{}
	for _, p := range []purpose{purposeHMAC, purposeSIV, purposeFF1, purposeDateShift} {
		for _, d := range []string{"pool-a/vin", "pool-b/vin", "pool-a/vin2"} {
			_, k, err := kr.deriveKey("test", p, d, "", 32)
			if err != nil {
				t.Fatal(err)
			}
			if prev, dup := seen[string(k)]; dup {
				t.Errorf("%s/%s derives the same key as %s", p, d, prev)
			}
			seen[string(k)] = string(p) + "/" + d
		}
	}
	for _, bad := range []string{"", "a\x00b", "tab\there", strings.Repeat("x", 257), "\xff"} {
		if _, err := NewHMAC(kr, HMACOptions{Domain: bad}); err == nil || !strings.Contains(err.Error(), "Domain") {
			t.Errorf("domain %q accepted or error does not name Domain: %v", bad, err)
		}
	}
	if _, err := NewHMAC(kr, HMACOptions{Domain: "d", KeyID: "0badc0de"}); !errors.Is(err, ErrUnknownKeyID) || !strings.Contains(err.Error(), "0badc0de") {
		t.Errorf("unknown key id: %v", err)
	}
}

// Encode writes each key once, into a result allocated at its final size
// (no grown buffer, pooled encoder buffer or string holds a copy), in the
// layout encoding/json gives the file format (issue #13).
func TestEncodeOneCopy(t *testing.T) {
	kr := fixedKeyring(t, 1, 50, 99)
	defer kr.Destroy()
	got, err := kr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if cap(got) != len(got) {
		t.Errorf("Encode result has cap %d for len %d: it was grown (and copied)", cap(got), len(got))
	}
	kr.mu.RLock()
	f := keyringFile{Format: keyringFormat, Version: keyringVersion, Active: kr.keys[kr.active].id}
	for _, k := range kr.keys {
		f.Keys = append(f.Keys, keyringItem{ID: k.id, Created: k.created, Key: base64.StdEncoding.EncodeToString(k.key[:])})
	}
	kr.mu.RUnlock()
	want, _ := json.MarshalIndent(f, "", "  ")
	if string(got) != string(want)+"\n" {
		t.Errorf("Encode =\n%s\nwant\n%s", got, want)
	}
}

// maskKeyValues hides the value of every "key" field, and only those, from
// the JSON decoder; parseKeyring decodes the keys from the input in place.
func TestMaskKeyValues(t *testing.T) {
	in := `{"keys": [{"id": "ab", "key": "S2V5MQ==", "note": "key"}, {"key" : "a\"b"}], "x": ["key", "key"]}`
	masked, spans, err := maskKeyValues([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keys": [{"id": "ab", "key": "@0", "note": "key"}, {"key" : "@1"}], "x": ["key", "key"]}`
	if string(masked) != want {
		t.Errorf("masked\n%s\nwant\n%s", masked, want)
	}
	if len(spans) != 2 || in[spans[0][0]:spans[0][1]] != "S2V5MQ==" || in[spans[1][0]:spans[1][1]] != `a\"b` {
		t.Errorf("spans %v", spans)
	}
	if _, _, err := maskKeyValues([]byte(`{"k\u0065y": "S2V5MQ=="}`)); err == nil {
		t.Error("escaped field name accepted")
	}
}
