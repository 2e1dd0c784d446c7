package pseudonym_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// exampleKeyring is a keyring file with a well-known key (bytes 0..31), so
// that the examples print stable output. Never use it for real data: make
// keys with NewKeyring or `tarnkappe keygen`.
const exampleKeyring = `{
  "format": "tarnkappe-keyring",
  "version": 1,
  "active": "bf007b11",
  "keys": [
    {"id": "bf007b11", "created": "2026-03-02T10:00:00Z", "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
  ]
}`

func exampleKeys() *pseudonym.Keyring {
	kr, err := pseudonym.ParseKeyring("example", []byte(exampleKeyring))
	if err != nil {
		log.Fatal(err)
	}
	return kr
}

func ExampleNewKeyring() {
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		log.Fatal(err)
	}
	defer kr.Destroy()
	dir, err := os.MkdirTemp("", "keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.json")
	if err := kr.WriteFile(path, false); err != nil { // 0600, never overwrites
		log.Fatal(err)
	}
	loaded, err := pseudonym.LoadKeyring(path)
	if err != nil {
		log.Fatal(err)
	}
	defer loaded.Destroy()
	fmt.Println(loaded.ActiveKeyID() == kr.ActiveKeyID())
	fmt.Println(len(loaded.KeyIDs()))
	// Output:
	// true
	// 1
}

func ExampleNewHMAC() {
	kr := exampleKeys()
	defer kr.Destroy()
	h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "brakedisc-pool/vin"})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Destroy()
	fmt.Println(h.Pseudonym([]byte("WVWZZZ1JZXW000001")))
	fmt.Println(h.KeyID())
	other, _ := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "other-pool/vin"})
	fmt.Println(other.Pseudonym([]byte("WVWZZZ1JZXW000001")))
	// Output:
	// qrrh6jei6tczlhlmq2haejkzmi
	// bf007b11
	// 2ucye2zxvgk32mojpn3po33vse
}

func ExampleHMAC_Column() {
	kr := exampleKeys()
	defer kr.Destroy()
	h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "brakedisc-pool/vin", Encoding: pseudonym.Hex, Bits: 64})
	if err != nil {
		log.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	b := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	for _, v := range []string{"WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "WVWZZZ1JZXW000001"} {
		b.AppendString(v)
	}
	b.AppendNull()
	vin := b.NewArray()
	b.Release()
	defer vin.Release()

	out, err := h.Column(context.Background(), vin, pseudonym.ColumnOptions{Mem: mem, Name: "vin"})
	if err != nil {
		log.Fatal(err)
	}
	defer out.Release()
	fmt.Println(out.DataType())
	fmt.Println(out)
	// Output:
	// dictionary<values=utf8, indices=int32, ordered=false>
	// { dictionary: ["84627f2488f4c595" "c3cf0f431eed2c75"]
	//   indices: [0 1 0 (null)] }
}

// pseudonymizeVINs replaces every VIN of a string or dictionary column by
// its keyed pseudonym (HMAC-SHA256 under the domain's key); nulls stay null.
// README.md quotes it.
func pseudonymizeVINs(ctx context.Context, kr *pseudonym.Keyring, vins arrow.Array) (arrow.Array, error) {
	h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "brakedisc-pool/vin"})
	if err != nil {
		return nil, err
	}
	defer h.Destroy() // zeroes the derived key
	// A dictionary column is transformed in its dictionary only.
	return h.Column(ctx, vins, pseudonym.ColumnOptions{Mem: memory.DefaultAllocator, Name: "vin"})
}

// A column function over a keyring file (pseudonymizeVINs is quoted in the
// README).
func ExampleHMAC_Column_file() {
	dir, err := os.MkdirTemp("", "keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(path, []byte(exampleKeyring), 0o600); err != nil {
		log.Fatal(err)
	}
	kr, err := pseudonym.LoadKeyring(path) // a 0600 file from `tarnkappe keygen`
	if err != nil {
		log.Fatal(err)
	}
	defer kr.Destroy() // zeroes the key bytes
	b := array.NewStringBuilder(memory.DefaultAllocator)
	b.AppendValues([]string{"WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"}, nil)
	b.AppendNull()
	vins := b.NewArray()
	b.Release()
	defer vins.Release()
	out, err := pseudonymizeVINs(context.Background(), kr, vins)
	if err != nil {
		log.Fatal(err)
	}
	defer out.Release()
	fmt.Println(out)
	// Output:
	// ["qrrh6jei6tczlhlmq2haejkzmi" "yphq6qy65uwhkrt6ph3nnvmps4" (null)]
}

func ExampleNewReversible() {
	kr := exampleKeys()
	defer kr.Destroy()
	r, err := pseudonym.NewReversible(kr, pseudonym.ReversibleOptions{Domain: "brakedisc-pool/vin"})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Destroy()
	p, err := r.Seal([]byte("WVWZZZ1JZXW000001"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p)
	// After a rotation the trustee still reveals old pseudonyms: the key id
	// in front selects the key.
	if _, err := kr.Rotate(); err != nil {
		log.Fatal(err)
	}
	trustee, _ := pseudonym.NewReversible(kr, pseudonym.ReversibleOptions{Domain: "brakedisc-pool/vin"})
	v, err := trustee.Reveal(p)
	fmt.Println(string(v), err)
	// Output:
	// bf007b11-easwstzpfjmnwf766lvc5tqzvrjmbkrjo4pmf4jncswyh7dokbkx2
	// WVWZZZ1JZXW000001 <nil>
}

func ExampleNewFF1() {
	kr := exampleKeys()
	defer kr.Destroy()
	f, err := pseudonym.NewFF1(kr, pseudonym.FF1Options{Domain: "brakedisc-pool/vin"})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Destroy()
	enc, _ := f.Encrypt("WVWZZZ1JZXW000001")
	dec, _ := f.Decrypt(enc)
	fmt.Println(enc, dec)
	_, err = f.Encrypt("WVWZZZ1JZXW00000O")
	fmt.Println(err)
	// Output:
	// KN81PALDGFXALSUNY WVWZZZ1JZXW000001
	// pseudonym.FF1.Encrypt: position 17: character outside the VIN alphabet 0-9 A-Z without I, O, Q
}

// FF1 cannot tell a wrong domain from the right one; the check digit of a
// revealed VIN can (for VINs that had a valid one).
func ExampleValidVINCheckDigit() {
	kr := exampleKeys()
	defer kr.Destroy()
	f, _ := pseudonym.NewFF1(kr, pseudonym.FF1Options{Domain: "brakedisc-pool/vin"})
	defer f.Destroy()
	wrong, _ := pseudonym.NewFF1(kr, pseudonym.FF1Options{Domain: "other-pool/vin"})
	defer wrong.Destroy()
	p, _ := f.Encrypt("1M8GDM9AXKP042788")
	right, _ := f.Decrypt(p)
	bad, _ := wrong.Decrypt(p)
	fmt.Println(right, pseudonym.ValidVINCheckDigit(right))
	fmt.Println(pseudonym.ValidVINCheckDigit(bad))
	// Output:
	// 1M8GDM9AXKP042788 true
	// false
}

func ExampleNewDateShift() {
	kr := exampleKeys()
	defer kr.Destroy()
	d, err := pseudonym.NewDateShift(kr, pseudonym.DateShiftOptions{Domain: "brakedisc-pool/ts", MaxDays: 14})
	if err != nil {
		log.Fatal(err)
	}
	start := time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC)
	end := start.Add(25 * time.Minute)
	s, e := d.Shift([]byte("WVWZZZ1JZXW000001"), start), d.Shift([]byte("WVWZZZ1JZXW000001"), end)
	fmt.Println(s.Format(time.DateTime), e.Sub(s))
	// Output:
	// 2026-03-03 07:30:00 25m0s
}

func ExampleKeyring_Rotate() {
	kr := exampleKeys()
	defer kr.Destroy()
	before, _ := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "brakedisc-pool/vin"})
	old := before.Pseudonym([]byte("WVWZZZ1JZXW000001"))

	if _, err := kr.Rotate(); err != nil {
		log.Fatal(err)
	}
	after, _ := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "brakedisc-pool/vin"})
	fmt.Println(after.KeyID() != before.KeyID(), after.Pseudonym([]byte("WVWZZZ1JZXW000001")) != old)

	// Data made before the rotation records its key id (reports do); the
	// old key is still in the keyring and reproduces its pseudonyms.
	again, _ := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "brakedisc-pool/vin", KeyID: before.KeyID()})
	fmt.Println(again.Pseudonym([]byte("WVWZZZ1JZXW000001")) == old, len(kr.KeyIDs()))
	// Output:
	// true true
	// true 2
}

func ExampleDateShift_Column() {
	kr := exampleKeys()
	defer kr.Destroy()
	d, err := pseudonym.NewDateShift(kr, pseudonym.DateShiftOptions{Domain: "brakedisc-pool/ts", MaxDays: 14})
	if err != nil {
		log.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"})
	sb := array.NewStringBuilder(mem)
	t0 := time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC)
	for i, vin := range []string{"WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "WVWZZZ1JZXW000001"} {
		tb.Append(arrow.Timestamp(t0.Add(time.Duration(i) * time.Hour).Unix()))
		sb.Append(vin)
	}
	ts, vins := tb.NewArray(), sb.NewArray()
	tb.Release()
	sb.Release()
	defer ts.Release()
	defer vins.Release()

	out, err := d.Column(context.Background(), ts, vins, pseudonym.ColumnOptions{Mem: mem, Name: "ts"})
	if err != nil {
		log.Fatal(err)
	}
	defer out.Release()
	shifted := out.(*array.Timestamp)
	// Rows 0 and 2 belong to the same vehicle: their distance is kept.
	fmt.Println(time.Duration(shifted.Value(2)-shifted.Value(0)) * time.Second)
	// Output:
	// 2h0m0s
}
