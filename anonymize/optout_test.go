package anonymize

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// The opted-out vehicle of these tests is vinOf(5) (testVIN): 20 of the
// test fleet's 600 rows (2 trips × 10 readings).
const optOutRows = 20

// spellings are ways lists and data write testVIN that every mode but
// exact must see through.
var spellings = []string{
	testVIN,
	strings.ToLower(testVIN),
	"Wvwzzz1kz00000005",
	testVIN + " ",
	" " + testVIN + "\t",
	testVIN + "\u00a0",
	"\ufeff" + testVIN,
	"WVW\u200bZZZ1KZ0000\u20600005",
	fullWidth(testVIN),
	`"` + testVIN + `"`,
	"'" + testVIN + "'",
	"\u201c" + testVIN + "\u201d",
}

// vinSpellings are seen through by mode vin only.
var vinSpellings = []string{"WVW ZZZ 1KZ 0000 0005", "wvw-zzz-1kz-00000005", "WVWZZZ1KZOOOOOOO5"}

// optOutPolicy pseudonymises the VIN (HMAC, domain vin): the attacker of
// these tests holds the key and looks for the pseudonym of every spelling.
func optOutPolicy(normalize, form string) string {
	vin := "{pseudonymize: {method: hmac, domain: vin}}"
	o := "{file: optout.txt, form: " + form + ", domain: optout"
	if normalize != "" {
		o += ", normalize: " + normalize
	}
	return `version: 1
subject: vin
opt_out: ` + o + `}
columns:
  vin: ` + vin + `
  ts: {dateshift: {domain: shift, max_days: 30}}
  lat: {coarsen: {degrees: 0.05}}
  lon: {coarsen: {degrees: 0.05}}
  disc_temp_c: keep
  postcode: {mask: {keep_prefix: 2}}
  owner_birth_year: drop
  owner_sex: drop
`
}

// runOptOut runs policy over the test fleet (batches changed by mod) with
// the opt-out file holding exactly list.
func runOptOut(t *testing.T, policy string, list []byte, mod func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch, kr *pseudonym.Keyring) (*Report, *memSink, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 30, trips: 2, readings: 10, batch: 100})
	if mod != nil {
		recs = mod(mem, recs)
		schema = recs[0].Schema()
	}
	rdr, err := array.NewRecordReader(schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	defer rdr.Release()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), list, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	out := &memSink{}
	t.Cleanup(out.release)
	r, err := NewRunner(Options{Policy: p, Keyring: kr, Mem: mem, Workers: 2, TempDir: t.TempDir()})
	if err != nil {
		return nil, out, err
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), rdr, sinkFor(out))
	return rep, out, err
}

// respell writes vinOf(5) in the data as spells[k % len(spells)] in its
// k-th row; dict chooses a dictionary or a plain string column.
func respell(spells []string, dict bool) func(memory.Allocator, []arrow.RecordBatch) []arrow.RecordBatch {
	return func(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
		k := 0
		out := make([]arrow.RecordBatch, len(recs))
		for bi, r := range recs {
			var b array.Builder
			var appendString func(string)
			typ := arrow.DataType(arrow.BinaryTypes.String)
			if dict {
				typ = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
				db := array.NewDictionaryBuilder(mem, typ.(*arrow.DictionaryType)).(*array.BinaryDictionaryBuilder)
				b, appendString = db, func(s string) { _ = db.AppendString(s) }
			} else {
				sb := array.NewStringBuilder(mem)
				b, appendString = sb, sb.Append
			}
			vin := r.Column(0)
			for i := range vin.Len() {
				v, _ := valueText(vin, i)
				if v == testVIN {
					v = spells[k%len(spells)]
					k++
				}
				appendString(v)
			}
			col := b.NewArray()
			b.Release()
			fields := r.Schema().Fields()
			fields[0].Type = typ
			cols := append([]arrow.Array{col}, r.Columns()[1:]...)
			out[bi] = array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, r.NumRows())
			col.Release()
			r.Release()
		}
		return out
	}
}

// pseudonymsOf is what the attacker looks for: the vin column's pseudonym
// of every spelling of the vehicle (the clean one included).
func pseudonymsOf(t *testing.T, kr *pseudonym.Keyring, spells ...string) map[string]bool {
	t.Helper()
	h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "vin"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Destroy()
	ps := map[string]bool{h.Pseudonym([]byte(testVIN)): true}
	for _, s := range append(spells, spellings...) {
		ps[h.Pseudonym([]byte(s))] = true
	}
	return ps
}

// attackerRows counts the output rows of the opted-out vehicle the way
// someone looking for it would: by the pseudonym of any of its spellings.
func attackerRows(t *testing.T, out *memSink, pseudonyms map[string]bool) int {
	t.Helper()
	if len(pseudonyms) == 0 {
		t.Fatal("the attacker looks for nothing")
	}
	n := 0
	for _, rec := range out.recs {
		col := rec.Column(rec.Schema().FieldIndices("vin")[0])
		for i := range col.Len() {
			v, err := valueText(col, i)
			if err != nil {
				t.Fatal(err)
			}
			if pseudonyms[v] {
				n++
			}
		}
	}
	return n
}

func checkOptedOut(t *testing.T, rep *Report, out *memSink, err error, pseudonyms map[string]bool) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if n := attackerRows(t, out, pseudonyms); n != 0 {
		t.Errorf("%d rows of the opted-out vehicle published", n)
	}
	if got := rep.Rows.FilteredBy["opt_out"]; got != optOutRows || out.rows() != 600-optOutRows {
		t.Errorf("opt-out removed %d rows, output %d; want %d and %d", got, out.rows(), optOutRows, 600-optOutRows)
	}
	if rep.OptOut.Listed != 1 || rep.OptOut.Subjects != 1 {
		t.Errorf("opt-out report %+v, want 1 listed, 1 seen", rep.OptOut)
	}
}

func utf16File(s string, order binary.ByteOrder) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, order, uint16(0xfeff))
	for _, u := range utf16.Encode([]rune(s)) {
		_ = binary.Write(&b, order, u)
	}
	return b.Bytes()
}

// TestOptOutListSpellings: whichever way the list writes the vehicle, and
// whatever the file around it looks like, none of its rows is published.
func TestOptOutListSpellings(t *testing.T) {
	type variant struct{ name, list string }
	var vs []variant
	for i, s := range spellings {
		vs = append(vs, variant{fmt.Sprintf("spelling %d %q", i, s), s + "\n"})
	}
	vs = append(vs,
		variant{"BOM at the start of the file", "\ufeff" + testVIN + "\n"},
		variant{"CRLF", "# list\r\n" + testVIN + "\r\n"},
		variant{"lone CR", "# list\r" + testVIN + "\r# end\r"},
		variant{"no final line end", testVIN},
		variant{"inline comment", testVIN + "   # sold 2025\n"},
		variant{"quoted with a comment", `"` + testVIN + `" # owner asked 2026-11-02` + "\n"},
		variant{"blank lines and comments", "\n# opted out\n\n   \n" + testVIN + "\n\n"},
		variant{"duplicates and variants count once", testVIN + "\n" + testVIN + "\n" + strings.Join(spellings, "\n") + "\n"},
	)
	for _, mode := range []string{"", "vin"} { // "": the default, text
		t.Run("mode "+mode, func(t *testing.T) {
			all := vs
			if mode == "vin" {
				for _, s := range vinSpellings {
					all = append(all, variant{"VIN spelling " + s, s + "\n"})
				}
			}
			for _, v := range all {
				t.Run(v.name, func(t *testing.T) {
					kr := newKeyring(t)
					rep, out, err := runOptOut(t, optOutPolicy(mode, "clear"), []byte(v.list), nil, kr)
					checkOptedOut(t, rep, out, err, pseudonymsOf(t, kr))
				})
			}
			for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				t.Run(fmt.Sprintf("UTF-16 %v", order), func(t *testing.T) {
					kr := newKeyring(t)
					rep, out, err := runOptOut(t, optOutPolicy(mode, "clear"), utf16File("# list\r\n"+strings.ToLower(testVIN)+"\r\n", order), nil, kr)
					checkOptedOut(t, rep, out, err, pseudonymsOf(t, kr))
				})
			}
		})
	}
}

// TestOptOutDataSpellings: whichever way the data write the vehicle (each
// row a different spelling), none of its rows is published, and the report
// counts the rows not in normal form.
func TestOptOutDataSpellings(t *testing.T) {
	for _, mode := range []string{"", "vin"} {
		spells := spellings
		canon := canonText
		if mode == "vin" {
			spells = append(append([]string{}, spellings...), vinSpellings...)
			canon = canonVIN
		}
		var odd int64
		for k := range optOutRows {
			if s := spells[k%len(spells)]; canon(s) != s {
				odd++
			}
		}
		for _, dict := range []bool{true, false} {
			t.Run(fmt.Sprintf("mode %q dictionary %v", mode, dict), func(t *testing.T) {
				kr := newKeyring(t)
				rep, out, err := runOptOut(t, optOutPolicy(mode, "clear"), []byte(strings.ToLower(testVIN)+"\n"), respell(spells, dict), kr)
				checkOptedOut(t, rep, out, err, pseudonymsOf(t, kr, spells...))
				if rep.OptOut.RowsNotNormalized != odd || odd == 0 {
					t.Errorf("rows not normalized %d, want %d", rep.OptOut.RowsNotNormalized, odd)
				}
				if w := rep.Warnings(); len(w) != 1 || !strings.Contains(w[0], fmt.Sprintf("%d rows have a subject value not in normal form", odd)) {
					t.Errorf("warnings %q", w)
				}
			})
		}
	}
}

// TestOptOutPseudonymFormSpellings: a list of pseudonyms, written loosely,
// removes the vehicle however the data spell it, because the subject is
// normalised before its pseudonym is computed (and the pseudonym of the
// spelling in the data is tried too).
func TestOptOutPseudonymFormSpellings(t *testing.T) {
	kr := newKeyring(t)
	h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "vin"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Destroy()
	clean := h.Pseudonym([]byte(testVIN))
	for _, tc := range []struct {
		name, mode string
		spells     []string
		list       string
	}{
		// Mode vin: every spelling, vin-only ones included, normalises to
		// the clean VIN, whose pseudonym the list names (upper-cased,
		// quoted, after a BOM, with CRLF).
		{"vin", "vin", append(append([]string{}, spellings...), vinSpellings...), "\ufeff\"" + strings.ToUpper(clean) + "\"\r\n"},
		// Mode text keeps case in the normal form: case variants are
		// different pseudonyms, so the spellings here differ otherwise.
		{"text", "", []string{testVIN, testVIN + " ", "\ufeff" + testVIN, fullWidth(testVIN), `"` + testVIN + `"`, "WVW\u200bZZZ1KZ00000005", testVIN + "\u00a0"}, " " + clean + " # from the register\n"},
		// A pseudonym copied from an earlier output, where the data spell
		// the vehicle with a trailing space.
		{"spelling as in the data", "exact", []string{testVIN + " "}, h.Pseudonym([]byte(testVIN+" ")) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, out, err := runOptOut(t, optOutPolicy(tc.mode, "pseudonym"), []byte(tc.list), respell(tc.spells, true), kr)
			checkOptedOut(t, rep, out, err, pseudonymsOf(t, kr, tc.spells...))
		})
	}
}

// TestOptOutExact: mode exact matches the spelling only, as documented, and
// still counts the rows a text normalisation would change.
func TestOptOutExact(t *testing.T) {
	kr := newKeyring(t)
	rep, out, err := runOptOut(t, optOutPolicy("exact", "clear"), []byte(strings.ToLower(testVIN)+"\n"), nil, kr)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows.FilteredBy["opt_out"] != 0 || attackerRows(t, out, pseudonymsOf(t, kr)) != optOutRows {
		t.Errorf("exact matched a lower-case entry: %+v", rep.OptOut)
	}
	spells := []string{testVIN, testVIN + " "}
	rep, out, err = runOptOut(t, optOutPolicy("exact", "clear"), []byte(" "+testVIN+" \n"), respell(spells, false), kr)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Rows.FilteredBy["opt_out"]; got != optOutRows/2 || attackerRows(t, out, pseudonymsOf(t, kr)) != optOutRows/2 {
		t.Errorf("exact removed %d rows, want the %d written exactly", got, optOutRows/2)
	}
	if rep.OptOut.RowsNotNormalized != optOutRows/2 || rep.OptOut.Normalize != "exact" || len(rep.Warnings()) != 1 {
		t.Errorf("report %+v, warnings %q", rep.OptOut, rep.Warnings())
	}
}

// int64Subject replaces the vin column by an int64 id: 1000 + vehicle.
func int64Subject(mem memory.Allocator, recs []arrow.RecordBatch) []arrow.RecordBatch {
	for bi, r := range recs {
		b := array.NewInt64Builder(mem)
		vin := r.Column(0)
		for i := range vin.Len() {
			v, _ := valueText(vin, i)
			var n int64
			fmt.Sscanf(v[len(v)-8:], "%d", &n)
			b.Append(1000 + n)
		}
		col := b.NewArray()
		b.Release()
		fields := r.Schema().Fields()
		fields[0].Type = arrow.PrimitiveTypes.Int64
		cols := append([]arrow.Array{col}, r.Columns()[1:]...)
		recs[bi] = array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, r.NumRows())
		col.Release()
		r.Release()
	}
	return recs
}

// TestOptOutInt64Subject: an int64 subject is matched by value, in every
// spelling a list may use for a number; an entry that is not a number
// could never match and is an error.
func TestOptOutInt64Subject(t *testing.T) {
	list := "01005\n+1005\n1005.0\n\"1005\"\n" + fullWidth("1005") + "\n"
	for _, mode := range []string{"", "exact"} {
		kr := newKeyring(t)
		rep, out, err := runOptOut(t, optOutPolicy(mode, "clear"), []byte(list), int64Subject, kr)
		if err != nil {
			t.Fatal(err)
		}
		// int64 subjects are pseudonymised as decimal text.
		if n := attackerRows(t, out, pseudonymsOf(t, kr, "1005")); n != 0 {
			t.Errorf("mode %q: %d rows of subject 1005 published", mode, n)
		}
		if rep.Rows.FilteredBy["opt_out"] != optOutRows || rep.OptOut.Listed != 1 || rep.OptOut.Subjects != 1 || rep.OptOut.RowsNotNormalized != 0 {
			t.Errorf("mode %q: rows %+v, opt-out %+v", mode, rep.Rows, rep.OptOut)
		}
	}
	_, _, err := runOptOut(t, optOutPolicy("", "clear"), []byte("1005\nWVW\n"), int64Subject, newKeyring(t))
	if err == nil || !strings.Contains(err.Error(), "1 entries are not integers (the first on line 2)") {
		t.Errorf("non-integer entry: %v", err)
	}
	_, _, err = runOptOut(t, optOutPolicy("vin", "clear"), []byte(testVIN+"\n"), int64Subject, newKeyring(t))
	if err == nil || !strings.Contains(err.Error(), "needs a string subject column") {
		t.Errorf("vin mode on int64: %v", err)
	}
}

// TestOptOutListErrors: a list that would silently match nothing is an
// error naming the line, and the error never quotes an entry.
func TestOptOutListErrors(t *testing.T) {
	for _, tc := range []struct {
		name, mode, list, want string
	}{
		{"header line in vin mode", "vin", "VIN\n" + testVIN + "\n", "line 1: not a VIN after normalisation"},
		{"CSV with two columns", "", testVIN + "\n\"" + testVIN + "\",\"Max\"\n", "line 2: text after the closing quote"},
		{"unclosed quote", "", "\"" + testVIN + "\n", "line 1: the quote \" is not closed"},
		{"UTF-16 without BOM", "", string(utf16File(testVIN+"\n", binary.LittleEndian)[2:]), "line 1: holds NUL bytes"},
		{"Latin-1", "", "M\xfcller\n", "line 1: is not valid UTF-8"},
		{"entry too long", "", strings.Repeat("W", 1025) + "\n", "line 1: entry longer than 1024 bytes"},
		{"line too long", "", strings.Repeat("W", 1<<17), "line 1: line longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runOptOut(t, optOutPolicy(tc.mode, "clear"), []byte(tc.list), nil, newKeyring(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "WVW") || strings.Contains(err.Error(), "ller") {
				t.Errorf("error %q quotes an entry", err)
			}
		})
	}
}

// FuzzOptOutList: the list parser never panics, and counts no more
// distinct subjects than the list has lines.
func FuzzOptOutList(f *testing.F) {
	for _, s := range []string{"\ufeff" + testVIN + "\r\n# c\r\n", `"a #1" # x`, "a\rb\r", "'x", `"a","b"`, "\xff\xfe" + "W\x00\n\x00", "1\n01\n+1\n"} {
		f.Add([]byte(s), uint8(0))
	}
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		f.Fatal(err)
	}
	defer kr.Destroy()
	mac, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: "optout", Bits: 256})
	if err != nil {
		f.Fatal(err)
	}
	defer mac.Destroy()
	f.Fuzz(func(t *testing.T, list []byte, mode uint8) {
		m := normMode(mode % 3)
		s, err := loadOptOut("fuzz", bytes.NewReader(list), mac, m, nil)
		if err != nil {
			return
		}
		if lines := bytes.Count(list, []byte{'\n'}) + bytes.Count(list, []byte{'\r'}) + 1; s.listed() > lines {
			t.Fatalf("%d subjects from %d lines", s.listed(), lines)
		}
		if len(s.ints) > len(s.keys) {
			t.Fatalf("%d integers from %d entries", len(s.ints), len(s.keys))
		}
	})
}
