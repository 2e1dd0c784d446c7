package pseudonym

import (
	"strings"
	"testing"
)

// FuzzParseKeyring: the parser never panics, never accepts a keyring it
// cannot write back identically, and never quotes key bytes in errors.
func FuzzParseKeyring(f *testing.F) {
	kr := fixedKeyring(f, 1, 2)
	good, err := kr.Encode()
	if err != nil {
		f.Fatal(err)
	}
	kr.Destroy()
	f.Add(good)
	f.Add([]byte(`{"format":"tarnkappe-keyring","version":1,"active":"00000000","keys":[]}`))
	f.Add([]byte(`{"format":"tarnkappe-keyring","version":1,"active":"00000000","keys":[{"id":"00000000","key":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"id":1}]}`))
	f.Add([]byte(`[`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ParseKeyring("fuzz", data)
		if err != nil {
			if kr != nil {
				t.Fatal("keyring returned with an error")
			}
			if !strings.HasPrefix(err.Error(), `pseudonym.ParseKeyring: "fuzz": `) {
				t.Fatalf("error does not name the function and file: %v", err)
			}
			return
		}
		defer kr.Destroy()
		secrets := secretsOf(kr)
		out, err := kr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		kr2, err := ParseKeyring("again", out)
		if err != nil {
			t.Fatalf("re-encoded keyring does not parse: %v", err)
		}
		defer kr2.Destroy()
		if kr2.ActiveKeyID() != kr.ActiveKeyID() || strings.Join(kr2.KeyIDs(), ",") != strings.Join(kr.KeyIDs(), ",") {
			t.Fatal("round trip changed the keyring")
		}
		for _, s := range []string{kr.String(), kr2.String()} {
			for _, sec := range secrets {
				if strings.Contains(s, sec) {
					t.Fatal("String prints key material")
				}
			}
		}
	})
}

// FuzzFF1: any string over the VIN alphabet of length 4..64 encrypts to a
// string of the same length over the alphabet and decrypts back; anything
// else is an error, never a panic.
func FuzzFF1(f *testing.F) {
	kr := fixedKeyring(f, 1)
	ff, err := NewFF1(kr, FF1Options{Domain: "fuzz"})
	kr.Destroy()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("WVWZZZ1JZXW000001")
	f.Add("0000")
	f.Add("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("WVWZZZ1JZXW00000I")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 64 {
			return
		}
		enc, err := ff.Encrypt(in)
		valid := len(in) >= ff1MinLen && strings.Trim(in, VINAlphabet) == ""
		if !valid {
			if err == nil {
				t.Fatalf("Encrypt accepted %q", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encrypt(%q): %v", in, err)
		}
		if len(enc) != len(in) || strings.Trim(enc, VINAlphabet) != "" {
			t.Fatalf("Encrypt(%q) = %q: format not kept", in, enc)
		}
		dec, err := ff.Decrypt(enc)
		if err != nil || dec != in {
			t.Fatalf("Decrypt(Encrypt(%q)) = %q, %v", in, dec, err)
		}
	})
}
