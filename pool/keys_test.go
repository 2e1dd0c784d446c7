package pool

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	for _, role := range []Role{RoleMember, RoleAggregator, RoleCollector} {
		k, err := GenerateKey(role, "party-1")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, string(role)+".key")
		if err := k.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		if err := k.WriteFile(path); err == nil || !strings.Contains(err.Error(), "never overwritten") {
			t.Errorf("%s: an existing key file was overwritten: %v", role, err)
		}
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: key file mode %v", role, st.Mode().Perm())
		}
		l, err := LoadKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if l.Public() != k.Public() || l.Role() != role || l.ID() != "party-1" {
			t.Errorf("%s: reloaded key differs", role)
		}
		pub := k.Public()
		if (pub.SignKey != "") != (role != RoleCollector) || (pub.HPKEKey != "") != (role != RoleMember) {
			t.Errorf("%s: public keys %+v", role, pub)
		}
		// The key's bytes appear in no printed form.
		raw, _ := os.ReadFile(path)
		var kf keyFile
		json.Unmarshal(raw, &kf)
		secrets := []string{kf.Sign, kf.HPKE}
		if b, err := base64.StdEncoding.DecodeString(kf.Sign); err == nil && len(b) > 0 {
			secrets = append(secrets, fmt.Sprintf("%x", b))
		}
		for _, s := range []string{k.String(), fmt.Sprintf("%v %+v %#v %x %s", k, k, k, k, k)} {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(s, sec) {
					t.Errorf("%s: key material printed: %q", role, s)
				}
			}
		}
		if _, err := json.Marshal(k); err == nil {
			t.Errorf("%s: a private key was marshalled to JSON", role)
		}
		k.Destroy()
		if _, err := k.sign([]byte("x")); role != RoleCollector && err == nil {
			t.Errorf("%s: a destroyed key still signs", role)
		}
		// Group- or world-readable key files are refused.
		os.Chmod(path, 0o640)
		if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("%s: a group-readable key file was loaded: %v", role, err)
		}
	}
	if _, err := GenerateKey("admin", "x"); err == nil {
		t.Error("an unknown role was accepted")
	}
	if _, err := GenerateKey(RoleMember, "no spaces"); err == nil {
		t.Error("an invalid id was accepted")
	}
}

func TestParseKeyErrors(t *testing.T) {
	cases := map[string]string{
		"not json":        "secret-material",
		"wrong version":   `{"version":2,"role":"member","id":"a","ed25519_seed":"AAAA"}`,
		"role keys":       `{"version":1,"role":"member","id":"a","x25519_private":"AAAA"}`,
		"short seed":      `{"version":1,"role":"member","id":"a","ed25519_seed":"c2VjcmV0LW1hdGVyaWFs"}`,
		"unknown field":   `{"version":1,"role":"member","id":"a","ed25519_seed":"c2VjcmV0LW1hdGVyaWFs","note":1}`,
		"unknown role":    `{"version":1,"role":"admin","id":"a"}`,
		"collector short": `{"version":1,"role":"collector","id":"a","x25519_private":"c2VjcmV0LW1hdGVyaWFs"}`,
	}
	for name, src := range cases {
		_, err := ParseKey([]byte(src))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		// Errors never quote the key material.
		if strings.Contains(err.Error(), "c2VjcmV0LW1hdGVyaWFs") || strings.Contains(err.Error(), "secret-material") {
			t.Errorf("%s: error quotes key material: %v", name, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	k, _ := GenerateKey(RoleAggregator, "a")
	path := filepath.Join(f.TempDir(), "k")
	k.WriteFile(path)
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKey(b)
		if err == nil {
			k.Public()
			k.Destroy()
		}
	})
}
