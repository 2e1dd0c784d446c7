package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHMACOptions(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	v := []byte("WVWZZZ1JZXW000001")
	for _, tc := range []struct {
		opts    HMACOptions
		pattern func(string) bool
		n       int
	}{
		{HMACOptions{Domain: "d"}, isBase32Lower, 26},
		{HMACOptions{Domain: "d", Encoding: Hex}, func(s string) bool { _, err := hex.DecodeString(s); return err == nil }, 32},
		{HMACOptions{Domain: "d", Encoding: Base64URL}, func(s string) bool { return !strings.ContainsAny(s, "+/=") }, 22},
		{HMACOptions{Domain: "d", Bits: 256, Encoding: Hex}, func(s string) bool { return true }, 64},
		{HMACOptions{Domain: "d", Bits: 64, Prefix: "v-"}, func(s string) bool { return strings.HasPrefix(s, "v-") }, 2 + 13},
	} {
		h, err := NewHMAC(kr, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		p := h.Pseudonym(v)
		if len(p) != tc.n || len(p) != h.Len() || !tc.pattern(p) {
			t.Errorf("%+v: pseudonym %q (len %d, Len %d), want len %d", tc.opts, p, len(p), h.Len(), tc.n)
		}
		if h.Pseudonym(v) != p {
			t.Errorf("%+v: not deterministic", tc.opts)
		}
		if !h.Verify(v, p) || h.Verify([]byte("WVWZZZ1JZXW000002"), p) || h.Verify(v, p[:len(p)-1]) {
			t.Errorf("%+v: Verify wrong", tc.opts)
		}
		if h.KeyID() != kr.ActiveKeyID() {
			t.Errorf("KeyID %q, want %q", h.KeyID(), kr.ActiveKeyID())
		}
	}
	// The pseudonym is HMAC-SHA256 under the HKDF-derived key, truncated.
	_, key, _ := kr.deriveKey("t", purposeHMAC, "d", "", 32)
	m := hmac.New(sha256.New, key)
	m.Write(v)
	h, _ := NewHMAC(kr, HMACOptions{Domain: "d", Encoding: Hex})
	if want := hex.EncodeToString(m.Sum(nil)[:16]); h.Pseudonym(v) != want {
		t.Errorf("pseudonym %s, want crypto/hmac's %s", h.Pseudonym(v), want)
	}
	for _, bad := range []HMACOptions{
		{Domain: "d", Bits: 56}, {Domain: "d", Bits: 130}, {Domain: "d", Bits: 512},
		{Domain: "d", Encoding: 7}, {Domain: "d", Prefix: "has space"}, {Domain: "d", Prefix: strings.Repeat("p", 33)},
	} {
		if _, err := NewHMAC(kr, bad); err == nil || !strings.HasPrefix(err.Error(), "pseudonym.NewHMAC: ") {
			t.Errorf("%+v accepted or unnamed error: %v", bad, err)
		}
	}
	if _, err := NewHMAC(nil, HMACOptions{Domain: "d"}); err == nil {
		t.Error("nil keyring accepted")
	}
}

func isBase32Lower(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Every length from 0 to 200 bytes agrees with crypto/hmac, across the
// fast/general boundary at 55 bytes.
func TestHMACAllLengths(t *testing.T) {
	kr := fixedKeyring(t, 4)
	defer kr.Destroy()
	h, _ := NewHMAC(kr, HMACOptions{Domain: "lengths", Bits: 256, Encoding: Hex})
	_, key, _ := kr.deriveKey("t", purposeHMAC, "lengths", "", 32)
	s := h.NewHasher()
	for n := 0; n <= 200; n++ {
		v := []byte(strings.Repeat("x", n))
		m := hmac.New(sha256.New, key)
		m.Write(v)
		if got, want := string(s.Append(nil, v)), hex.EncodeToString(m.Sum(nil)); got != want {
			t.Fatalf("len %d: %s, want %s", n, got, want)
		}
	}
	if raceEnabled {
		return // the race detector changes allocation counts
	}
	if n := testing.AllocsPerRun(100, func() { s.Append(make([]byte, 0, 0), nil) }); n > 1 {
		t.Errorf("Append allocates %v times", n)
	}
	buf := make([]byte, 0, 64)
	v := []byte("WVWZZZ1JZXW000001")
	if n := testing.AllocsPerRun(1000, func() { buf = s.Append(buf[:0], v) }); n != 0 {
		t.Errorf("Append into a sized buffer allocates %v times per value", n)
	}
	long := []byte(strings.Repeat("long value ", 20)) // the general path
	if n := testing.AllocsPerRun(1000, func() { buf = s.Append(buf[:0], long) }); n != 0 {
		t.Errorf("Append of a %d-byte value allocates %v times", len(long), n)
	}
}

func TestRotation(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	v := []byte("WVWZZZ1JZXW000001")
	h1, _ := NewHMAC(kr, HMACOptions{Domain: "d"})
	p1 := h1.Pseudonym(v)
	r1, _ := NewReversible(kr, ReversibleOptions{Domain: "d"})
	s1, err := r1.Seal(v)
	if err != nil {
		t.Fatal(err)
	}
	f1, _ := NewFF1(kr, FF1Options{Domain: "d"})
	e1, _ := f1.Encrypt(string(v))
	oldID := kr.ActiveKeyID()
	if !strings.HasPrefix(s1, oldID+"-") {
		t.Errorf("reversible pseudonym %q does not start with key id %s", s1, oldID)
	}

	newID, err := kr.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through the file format, as a trustee would receive it.
	data, _ := kr.Encode()
	kr2, err := ParseKeyring("rotated", data)
	if err != nil {
		t.Fatal(err)
	}
	defer kr2.Destroy()

	h2, _ := NewHMAC(kr2, HMACOptions{Domain: "d"})
	if h2.KeyID() != newID || h2.Pseudonym(v) == p1 {
		t.Errorf("after rotation: key %s (want %s), pseudonym unchanged=%v", h2.KeyID(), newID, h2.Pseudonym(v) == p1)
	}
	hOld, err := NewHMAC(kr2, HMACOptions{Domain: "d", KeyID: oldID})
	if err != nil || hOld.Pseudonym(v) != p1 || hOld.KeyID() != oldID {
		t.Errorf("old key id %s no longer reproduces its pseudonyms: %v", oldID, err)
	}
	r2, _ := NewReversible(kr2, ReversibleOptions{Domain: "d"})
	back, err := r2.Reveal(s1)
	if err != nil || string(back) != string(v) {
		t.Errorf("reveal of a pre-rotation pseudonym: %q, %v", back, err)
	}
	s2, _ := r2.Seal(v)
	if !strings.HasPrefix(s2, newID+"-") || s2 == s1 {
		t.Errorf("post-rotation pseudonym %q, want prefix %s", s2, newID)
	}
	fOld, _ := NewFF1(kr2, FF1Options{Domain: "d", KeyID: oldID})
	if d, err := fOld.Decrypt(e1); err != nil || d != string(v) {
		t.Errorf("FF1 with the old key id: %q, %v", d, err)
	}
}

func TestReversible(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	secrets := secretsOf(kr)
	r, _ := NewReversible(kr, ReversibleOptions{Domain: "pool/vin"})
	for _, v := range []string{"", "a", "WVWZZZ1JZXW000001", strings.Repeat("long value ", 20), "\x00\xff"} {
		p, err := r.Seal([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if p2, _ := r.Seal([]byte(v)); p2 != p {
			t.Errorf("Seal not deterministic for %q", v)
		}
		if len(p) != r.sealedLen(len(v)) {
			t.Errorf("len %d, sealedLen %d", len(p), r.sealedLen(len(v)))
		}
		got, err := r.Reveal(p)
		if err != nil || string(got) != v {
			t.Errorf("Reveal(Seal(%q)) = %q, %v", v, got, err)
		}
	}
	p, _ := r.Seal([]byte("WVWZZZ1JZXW000001"))
	other, _ := NewReversible(kr, ReversibleOptions{Domain: "pool/other"})
	if p2, _ := other.Seal([]byte("WVWZZZ1JZXW000001")); p2 == p {
		t.Error("two domains give the same reversible pseudonym")
	}
	foreign := fixedKeyring(t, 1, 77) // same first key, different active key
	defer foreign.Destroy()
	stranger := fixedKeyring(t, 200)
	defer stranger.Destroy()
	rs, _ := NewReversible(stranger, ReversibleOptions{Domain: "pool/vin"})
	// Flip one bit of the sealed bytes and re-encode.
	body, err := r.b32.DecodeString(p[9:])
	if err != nil {
		t.Fatal(err)
	}
	body[len(body)-1] ^= 1
	tampered := p[:9] + r.b32.EncodeToString(body)
	// 33 sealed bytes take 53 base32 characters with one unused low bit;
	// flipping it must not give a second spelling of the same pseudonym.
	const b32 = "abcdefghijklmnopqrstuvwxyz234567"
	last := strings.IndexByte(b32, p[len(p)-1])
	nonCanonical := p[:len(p)-1] + string(b32[last^1])
	for _, tc := range []struct {
		name string
		r    *Reversible
		p    string
		want error
	}{
		{"non-canonical base32", r, nonCanonical, nil},
		{"wrong domain", other, p, ErrRevealFailed},
		{"unknown key id", rs, p, ErrUnknownKeyID},
		{"tampered", r, tampered, ErrRevealFailed},
		{"garbage", r, "nonsense", nil},
		{"bad base32", r, p[:9] + "!!!!", nil},
		{"short", r, p[:12], nil},
	} {
		_, err := tc.r.Reveal(tc.p)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		assertNoSecrets(t, tc.name, fmt.Sprint(err), secrets)
		if strings.Contains(fmt.Sprint(err), "WVWZZZ") {
			t.Errorf("%s: error contains the value: %v", tc.name, err)
		}
	}
	rf, _ := NewReversible(foreign, ReversibleOptions{Domain: "pool/vin"})
	if v, err := rf.Reveal(p); err != nil || string(v) != "WVWZZZ1JZXW000001" {
		t.Errorf("a keyring holding the key (not active) cannot reveal: %v", err)
	}
}

func TestFF1(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	f, _ := NewFF1(kr, FF1Options{Domain: "pool/vin"})
	g, _ := NewFF1(kr, FF1Options{Domain: "pool/other"})
	vins := []string{"WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "1HGCM82633A004352", "00000000000000000", "ZZZZZZZZZZZZZZZZZ", "ABCD"}
	seen := map[string]bool{}
	for _, v := range vins {
		e, err := f.Encrypt(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(e) != len(v) || strings.Trim(e, VINAlphabet) != "" {
			t.Errorf("Encrypt(%s) = %s: length or alphabet changed", v, e)
		}
		if e == v || seen[e] {
			t.Errorf("Encrypt(%s) = %s: identity or collision", v, e)
		}
		seen[e] = true
		if e2, _ := f.Encrypt(v); e2 != e {
			t.Error("not deterministic")
		}
		if eg, _ := g.Encrypt(v); eg == e {
			t.Errorf("domains share FF1 output for %s", v)
		}
		if d, err := f.Decrypt(e); err != nil || d != v {
			t.Errorf("Decrypt(Encrypt(%s)) = %s, %v", v, d, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"WVWZZZ1JZXW00000I", "position 17"},
		{"wvwzzz1jzxw000001", "position 1"},
		{"WVW ZZZ", "position 4"},
		{"ABC", "4 to 256 characters"},
	} {
		_, err := f.Encrypt(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.in) {
			t.Errorf("Encrypt(%q): %v, want error with %q and without the value", tc.in, err, tc.want)
		}
	}
}

func TestDateShiftOffsets(t *testing.T) {
	kr := fixedKeyring(t, 1)
	defer kr.Destroy()
	const maxDays = 30
	d, err := NewDateShift(kr, DateShiftOptions{Domain: "pool/ts", MaxDays: maxDays})
	if err != nil {
		t.Fatal(err)
	}
	// Chi-square goodness of fit of 6100 subjects over the 61 day offsets:
	// 60 degrees of freedom, critical value 112.3 at p = 1e-5 (the chance
	// that a correct implementation fails this test).
	const subjects = 6100
	counts := map[time.Duration]int{}
	for i := range subjects {
		s := []byte(fmt.Sprintf("VIN%06d", i))
		o := d.Offset(s)
		if o%(24*time.Hour) != 0 || o < -maxDays*24*time.Hour || o > maxDays*24*time.Hour {
			t.Fatalf("offset %v outside ±%d whole days", o, maxDays)
		}
		if d.Offset(s) != o {
			t.Fatal("offset not deterministic")
		}
		counts[o]++
	}
	exp := float64(subjects) / (2*maxDays + 1)
	chi := 0.0
	for k := -maxDays; k <= maxDays; k++ {
		c := float64(counts[time.Duration(k)*24*time.Hour])
		chi += (c - exp) * (c - exp) / exp
	}
	if chi > 112.3 {
		t.Errorf("offsets not uniform: chi-square %.1f > 112.3 (60 df, p=1e-5)", chi)
	}
	ds, _ := NewDateShift(kr, DateShiftOptions{Domain: "pool/ts", MaxDays: 2, Granularity: time.Second})
	seconds := false
	for i := range 50 {
		o := ds.Offset([]byte(fmt.Sprint(i)))
		if o.Abs() > 48*time.Hour || o%time.Second != 0 {
			t.Fatalf("second offset %v out of range", o)
		}
		seconds = seconds || o%time.Hour != 0
	}
	if !seconds {
		t.Error("second granularity gave only whole hours in 50 subjects")
	}
	for _, bad := range []DateShiftOptions{{Domain: "x"}, {Domain: "x", MaxDays: -1}, {Domain: "x", MaxDays: 4000},
		{Domain: "x", MaxDays: 1, Granularity: 7 * time.Hour}, {Domain: "x", MaxDays: 1, Granularity: time.Millisecond}} {
		if _, err := NewDateShift(kr, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestInteropDerivation pins the whole chain (key id, HKDF-SHA256 with the
// documented salt and info, HMAC-SHA256, truncation to 128 bits, lowercase
// unpadded base32) to a value computed independently with Python's hmac
// and hashlib (HKDF written out from RFC 5869), so that a consortium member
// can reimplement it and get the same pseudonyms:
//
//	k = bytes(range(32))
//	prk = hmac.new(b"tarnkappe/pseudonym/v1", k, sha256).digest()
//	dk = hmac.new(prk, b"hmac-sha256\x00brakedisc-pool/vin\x01", sha256).digest()
//	mac = hmac.new(dk, b"WVWZZZ1JZXW000001", sha256).digest()[:16]
//	base32(mac).lower().rstrip("=")  -> "qrrh6jei6tczlhlmq2haejkzmi"
//	sha256(b"tarnkappe/keyring/key-id/v1\x00" + k).hexdigest()[:8] -> "bf007b11"
func TestInteropDerivation(t *testing.T) {
	kr := fixedKeyring(t, 0)
	defer kr.Destroy()
	if id := kr.ActiveKeyID(); id != "bf007b11" {
		t.Errorf("key id %s, want bf007b11", id)
	}
	h, err := NewHMAC(kr, HMACOptions{Domain: "brakedisc-pool/vin"})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Pseudonym([]byte("WVWZZZ1JZXW000001")); got != "qrrh6jei6tczlhlmq2haejkzmi" {
		t.Errorf("pseudonym %s, want qrrh6jei6tczlhlmq2haejkzmi", got)
	}
}
