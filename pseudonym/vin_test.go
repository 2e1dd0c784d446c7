package pseudonym

import (
	"fmt"
	"testing"
)

func TestVINCheckDigit(t *testing.T) {
	for _, tc := range []struct {
		vin   string
		digit byte
		ok    bool
		valid bool
	}{
		// Published example VINs (49 CFR 565 check digits).
		{"1M8GDM9AXKP042788", 'X', true, true},
		{"1HGCM82633A004352", '3', true, true},
		{"JH4KA7561PC008269", '1', true, true},
		{"11111111111111111", '1', true, true},
		// A European VIN with the filler 'Z' in position 9.
		{"WVWZZZ1JZXW000001", '0', true, false},
		{"1M8GDM9A1KP042788", 'X', true, false},
		{"1M8GDM9AXKP04278", 0, false, false},
		{"1M8GDM9AXKP04278O", 0, false, false},
	} {
		d, ok := VINCheckDigit(tc.vin)
		if d != tc.digit || ok != tc.ok || ValidVINCheckDigit(tc.vin) != tc.valid {
			t.Errorf("%s: digit %q ok %v valid %v; want %q %v %v", tc.vin, d, ok, ValidVINCheckDigit(tc.vin), tc.digit, tc.ok, tc.valid)
		}
	}
}

// FF1 decryption with a wrong domain or key returns wrong VINs whose check
// digit fails 32 times in 33, as the position-9 character is then uniform
// over the 33 characters of the alphabet. Keys are fixed, so the count is
// deterministic; the bounds are 4 standard deviations of Binomial(3300,
// 1/33) around 100.
func TestFF1WrongKeyFailsCheckDigit(t *testing.T) {
	kr := fixedKeyring(t, 1, 50)
	defer kr.Destroy()
	right, err := NewFF1(kr, FF1Options{Domain: "fleet/vin"})
	if err != nil {
		t.Fatal(err)
	}
	defer right.Destroy()
	wrongDomain, _ := NewFF1(kr, FF1Options{Domain: "fleet/vin2"})
	defer wrongDomain.Destroy()
	wrongKey, _ := NewFF1(kr, FF1Options{Domain: "fleet/vin", KeyID: kr.KeyIDs()[0]})
	defer wrongKey.Destroy()
	if wrongKey.KeyID() == right.KeyID() {
		t.Fatal("wrong key is the active key")
	}
	const n = 3300
	passed := map[string]int{"domain": 0, "key": 0}
	for i := 0; i < n; i++ {
		vin := validVIN(t, i)
		p, err := right.Encrypt(vin)
		if err != nil {
			t.Fatal(err)
		}
		if back, _ := right.Decrypt(p); back != vin || !ValidVINCheckDigit(back) {
			t.Fatalf("right key: %s → %s → %s", vin, p, back)
		}
		for name, f := range map[string]*FF1{"domain": wrongDomain, "key": wrongKey} {
			if got, _ := f.Decrypt(p); ValidVINCheckDigit(got) {
				passed[name]++
			}
		}
	}
	for name, c := range passed {
		if c < 60 || c > 140 {
			t.Errorf("wrong %s: %d of %d wrong reveals passed the check digit, want about %d", name, c, n, n/33)
		}
	}
}

// validVIN returns the i-th of a family of distinct VINs with a valid check
// digit.
func validVIN(t *testing.T, i int) string {
	t.Helper()
	v := []byte(fmt.Sprintf("WDB1240321X%06d", i))
	d, ok := VINCheckDigit(string(v))
	if !ok {
		t.Fatalf("bad VIN %s", v)
	}
	v[8] = d
	return string(v)
}
