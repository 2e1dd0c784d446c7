package anonymize

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

const testVIN = "WVWZZZ1KZ00000005"

// fullWidth writes ASCII letters and digits as their full-width forms.
func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f {
			return r - 0x21 + 0xff01
		}
		return r
	}, s)
}

func TestCanonText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"clean", testVIN, testVIN},
		{"inner single space kept", "Max Muster", "Max Muster"},
		{"trailing space", testVIN + " ", testVIN},
		{"tabs and CR", "\t" + testVIN + "\r", testVIN},
		{"no-break spaces", "\u00a0" + testVIN + "\u202f", testVIN},
		{"ideographic space", "\u3000" + testVIN, testVIN},
		{"inner runs collapsed", "Max \u00a0\t Muster", "Max Muster"},
		{"BOM", "\ufeff" + testVIN, testVIN},
		{"zero-width inside", "WVW\u200bZZZ\u200c1KZ\u200d00000005\u2060", testVIN},
		{"soft hyphen and bidi marks", "\u200eWVW\u00adZZZ1KZ00000005\u200f", testVIN},
		{"control characters", "WVW\x00ZZZ1KZ\x1b00000005\x7f", testVIN},
		{"double quotes", `"` + testVIN + `"`, testVIN},
		{"single quotes", `'` + testVIN + `'`, testVIN},
		{"typographic quotes", "\u201c" + testVIN + "\u201d", testVIN},
		{"guillemets and spaces", "« " + testVIN + " »", testVIN},
		{"full-width", fullWidth(testVIN), testVIN},
		{"full-width quotes", "\uff02" + testVIN + "\uff02", testVIN},
		{"NFC composes", "Mu\u0308ller", "Müller"},
		{"NFC across a zero-width space", "Mu\u200b\u0308ller", "Müller"},
		{"case kept", "wvwzzz", "wvwzzz"},
		{"empty", "", ""},
		{"only quotes", `""`, ""},
		{"invalid UTF-8", "A\xffB", "A\uFFFDB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := canonText(tc.in); got != tc.want {
				t.Errorf("canonText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCanonVIN(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"clean", testVIN, testVIN},
		{"lower case", strings.ToLower(testVIN), testVIN},
		{"spaces inside", "WVW ZZZ 1KZ 0000 0005", testVIN},
		{"dashes inside", "WVW-ZZZ-1KZ\u2010000\u2013000-05", testVIN},
		{"O and Q for zero, I for one", "WVWZZZIKZOOOOQOO5", testVIN},
		{"lower-case o", "wvwzzz1kz0000000o", "WVWZZZ1KZ00000000"},
		{"full-width lower case", fullWidth(strings.ToLower(testVIN)), testVIN},
		{"quotes inside", `WVW"ZZZ1KZ00000005`, testVIN},
		{"everything", "\ufeff \u201cwvw-zzz 1kz\u00a0oooo\u200b0005\u201d\t", testVIN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := canonVIN(tc.in)
			if got != tc.want {
				t.Errorf("canonVIN(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if tc.want == testVIN && !validVIN(got) {
				t.Errorf("validVIN(%q) = false", got)
			}
		})
	}
	for _, bad := range []string{"VIN", "WVWZZZ1KZ0000000", "WVWZZZ1KZ000000055", "WVWZZZ1KZ0000000Ä", "WVWZZZ1KZ,0000005"} {
		if validVIN(canonVIN(bad)) {
			t.Errorf("validVIN(canonVIN(%q)) = true", bad)
		}
	}
}

func TestTextKeyFoldsCase(t *testing.T) {
	key := func(s string) string { return string(normText.appendKey(nil, canonText(s))) }
	for _, pair := range [][2]string{
		{testVIN, strings.ToLower(testVIN)},
		{"Straße", "STRASSE"},
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},
		{fullWidth("Abc"), "aBC"},
		{"\u212a", "k"}, // Kelvin sign
	} {
		if a, b := key(pair[0]), key(pair[1]); a != b {
			t.Errorf("text keys of %q and %q differ: %q, %q", pair[0], pair[1], a, b)
		}
	}
	if key("abc") == key("abd") {
		t.Error("distinct values share a key")
	}
	if got := string(normExact.appendKey(nil, "Abc ")); got != "Abc " {
		t.Errorf("exact key %q", got)
	}
}

func TestCanonInt(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"123", "123", true}, {"00123", "123", true}, {"+123", "123", true}, {"123.0", "123", true},
		{"123.000", "123", true}, {"-0042", "-42", true}, {"-0", "0", true}, {"000", "0", true},
		{"9223372036854775807", "9223372036854775807", true}, {"-9223372036854775808", "-9223372036854775808", true},
		{"9223372036854775808", "", false}, {"123.5", "", false}, {"123.", "", false}, {"1e3", "", false},
		{"1,234", "", false}, {"", "", false}, {"+", "", false}, {"abc", "", false}, {"--1", "", false},
	} {
		got, ok := canonInt(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("canonInt(%q) = %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestListEntry(t *testing.T) {
	for _, tc := range []struct{ name, line, want, err string }{
		{"plain", testVIN, testVIN, ""},
		{"blank", "   \t", "", ""},
		{"comment", "# opted out 2026-11-01", "", ""},
		{"indented comment", "  # x", "", ""},
		{"inline comment", testVIN + "  # sold in 2025", testVIN, ""},
		{"inline comment after no-break space", testVIN + "\u00a0# x", testVIN, ""},
		{"hash inside a word", "ACME#12", "ACME#12", ""},
		{"quoted with hash", `"ACME #12" # a fleet`, "ACME #12", ""},
		{"single quoted", `'` + testVIN + `'`, testVIN, ""},
		{"BOM before a comment", "\ufeff# list", "", ""},
		{"zero-width around", "\u200b" + testVIN + "\u200b", testVIN, ""},
		{"quote not closed", `"` + testVIN, "", "not closed"},
		{"CSV with two columns", `"` + testVIN + `","Max Muster"`, "", "several columns"},
		{"NUL bytes", "W\x00V\x00W\x00", "", "UTF-16"},
		{"invalid UTF-8", "WVW\xe9", "", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := listEntry(tc.line)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("listEntry(%q) error %v, want %q", tc.line, err, tc.err)
				}
				if strings.Contains(err.Error(), "WVW") {
					t.Errorf("error %q quotes the entry", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("listEntry(%q) = %q, %v, want %q", tc.line, got, err, tc.want)
			}
		})
	}
}

func TestScanListLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a\nb\n", []string{"a", "b"}},
		{"a\r\nb\r\n", []string{"a", "b"}},
		{"a\rb\rc", []string{"a", "b", "c"}},
		{"a\r\n\r\nb", []string{"a", "", "b"}},
		{"a\r", []string{"a"}},
		{"a", []string{"a"}},
	} {
		// A one-byte reader puts every \r at the end of the buffer once.
		sc := bufio.NewScanner(&oneByteReader{s: tc.in})
		sc.Split(scanListLines)
		var got []string
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("lines of %q = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

// FuzzNormalize checks what matching relies on: each normal form is a fixed
// point (a value in normal form is not reported as unnormalised, and list
// and data meet however often either side was cleaned), the ASCII fast
// paths agree with the general ones, and the output is valid UTF-8.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{testVIN, " wvw-zzz ", "\ufeff\"x\"", "Mu\u0308ller", "e-\u0301", "ＷＶＷ", "ß", "\u212a", "A  B", "'", "\xff", "I O Q", "ǅ", "ﬁ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range []normMode{normText, normVIN} {
			c := m.canon(s)
			if cc := m.canon(c); cc != c {
				t.Fatalf("%s: canon(%q) = %q, canon of that = %q", m, s, c, cc)
			}
			if !utf8.ValidString(c) {
				t.Fatalf("%s: canon(%q) = %q is not UTF-8", m, s, c)
			}
			k := string(m.appendKey(nil, c))
			if kk := string(m.appendKey(nil, m.canon(k))); kk != k {
				t.Fatalf("%s: key of %q = %q, key of that = %q", m, s, k, kk)
			}
		}
		if isASCII(s) && canonTextASCIISlow(s) != canonTextGeneral(s) {
			t.Fatalf("ASCII path gives %q for %q, general path %q", canonTextASCIISlow(s), s, canonTextGeneral(s))
		}
		if isASCII(s) && canonVINASCIISlow(s) != canonVINGeneral(s) {
			t.Fatalf("VIN ASCII path gives %q for %q, general path %q", canonVINASCIISlow(s), s, canonVINGeneral(s))
		}
		if canonTextASCII(s) && canonTextSlow(s) != s {
			t.Fatalf("text fast path keeps %q, general path gives %q", s, canonTextSlow(s))
		}
		if canonVINASCII(s) && canonVINSlow(s) != s {
			t.Fatalf("VIN fast path keeps %q, general path gives %q", s, canonVINSlow(s))
		}
		if c := canonText(s); isASCII(c) && string(normText.appendKey(nil, c)) != foldSlow(c) {
			t.Fatalf("fold fast path of %q = %q, general path %q", c, normText.appendKey(nil, c), foldSlow(c))
		}
	})
}
