package anonymize

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// The opt-out normalisation (policy key opt_out.normalize). A subject is
// matched by its identity, not its spelling: the same function runs over
// every list entry and every value of the subject column, so a list
// exported from a spreadsheet (BOM, quotes, CRLF, a lower-case VIN, a
// non-breaking space) and data with stray spaces or lower case still name
// the same vehicle. The two kinds of error are not equal: a spelling
// variant that escapes the list publishes a subject who refused, while two
// subjects merged by the normalisation only lose rows they could have
// kept; so each mode folds everything that cannot tell two real
// identifiers apart.
//
// canon is the spelling a value is brought to (and the one the subject's
// pseudonym is computed from, form pseudonym); key is what is compared
// (canon, case-folded in mode text).
type normMode uint8

const (
	// normText (the default): invisible characters (format and control
	// characters: BOM, zero-width spaces and joiners, soft hyphen, bidi
	// marks, variation selectors) removed; Unicode NFKC (full-width and
	// other compatibility forms to their plain form, "Ｗ" to "W");
	// white space of every kind (tab, no-break, ideographic) as one ASCII
	// space, runs of it collapsed; white space and quotation marks
	// (ASCII and typographic) trimmed at both ends. Compared case-folded
	// (Unicode case folding), so "WVW…" and "wvw…" are one subject.
	normText normMode = iota
	// normVIN: as normText, then every space, dash and quotation mark
	// removed, upper case, and I, O, Q (not in the VIN alphabet, ISO 3779,
	// because they are read as 1 and 0) read as 1, 0, 0. A list entry must
	// then be a 17-character VIN, so a header line or a CSV row with
	// several columns is an error rather than an entry that never matches.
	normVIN
	// normExact: no normalisation; only the list file's syntax (BOM,
	// line ends, comments, quotes, white space around an entry) is read.
	normExact
)

// parseNormMode reads opt_out.normalize ("" is text).
func parseNormMode(s string) (normMode, bool) {
	switch s {
	case "", "text":
		return normText, true
	case "vin":
		return normVIN, true
	case "exact":
		return normExact, true
	}
	return 0, false
}

func (m normMode) String() string {
	switch m {
	case normVIN:
		return "vin"
	case normExact:
		return "exact"
	}
	return "text"
}

// canon brings s to the mode's spelling; exact leaves it as it is.
func (m normMode) canon(s string) string {
	switch m {
	case normVIN:
		return canonVIN(s)
	case normText:
		return canonText(s)
	}
	return s
}

// appendKey appends the comparison key of c, a value already in the mode's
// spelling (canon), to dst.
func (m normMode) appendKey(dst []byte, c string) []byte {
	if m != normText {
		return append(dst, c...)
	}
	return appendFold(dst, c)
}

// isInvisible reports whether r is a character that does not show: control
// characters other than white space, format characters (Cf: BOM, ZWSP,
// ZWJ, word joiner, soft hyphen, bidi marks), variation selectors and the
// other default-ignorable code points (Hangul fillers, the combining
// grapheme joiner).
func isInvisible(r rune) bool {
	if r < 0x80 {
		return r < 0x20 && !unicode.IsSpace(r) || r == 0x7f
	}
	return unicode.Is(unicode.Cc, r) && !unicode.IsSpace(r) ||
		unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

func isSpaceOrQuote(r rune) bool {
	return unicode.IsSpace(r) || unicode.Is(unicode.Quotation_Mark, r)
}

// canonTextASCII reports whether s is printable ASCII already in text
// spelling: the fast path for clean identifiers.
func canonTextASCII(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || s[0] == '"' || s[0] == '\'' || s[len(s)-1] == '"' || s[len(s)-1] == '\'' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == ' ' && s[i+1] == ' ' {
			return false
		}
	}
	return true
}

func canonText(s string) string {
	if canonTextASCII(s) {
		return s
	}
	return canonTextSlow(s)
}

func canonTextSlow(s string) string {
	if isASCII(s) {
		return canonTextASCIISlow(s)
	}
	return canonTextGeneral(s)
}

func canonTextGeneral(s string) string {
	// Invisible characters first, so that NFKC composes across them
	// ("e", ZWSP, U+0301 becomes "é").
	s = strings.Map(func(r rune) rune {
		if isInvisible(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = norm.NFKC.String(s)
	s = strings.TrimFunc(s, isSpaceOrQuote)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// canonTextASCIISlow is canonTextSlow for ASCII, where NFKC changes
// nothing and the only invisible characters are controls.
func canonTextASCIISlow(s string) string {
	b := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c >= '\t' && c <= '\r':
			space = len(b) > 0
			continue
		case c < 0x20 || c == 0x7f:
			continue
		case len(b) == 0 && (c == '"' || c == '\''):
			continue // a quotation mark before the value
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	// Quotation marks and spaces at the end, in any mix.
	for len(b) > 0 && (b[len(b)-1] == '"' || b[len(b)-1] == '\'' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func canonVINASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') || c == 'I' || c == 'O' || c == 'Q' {
			return false
		}
	}
	return true
}

func vinMap(r rune) rune {
	switch {
	case unicode.IsSpace(r) || unicode.Is(unicode.Dash, r) || unicode.Is(unicode.Quotation_Mark, r):
		return -1
	case r >= 'a' && r <= 'z':
		r -= 'a' - 'A'
	}
	switch r {
	case 'I':
		return '1'
	case 'O', 'Q':
		return '0'
	}
	return r
}

func canonVIN(s string) string {
	if canonVINASCII(s) {
		return s
	}
	return canonVINSlow(s)
}

func canonVINSlow(s string) string {
	if isASCII(s) {
		return canonVINASCIISlow(s)
	}
	return canonVINGeneral(s)
}

// canonVINASCIISlow is canonVINSlow for ASCII: NFKC changes nothing, and
// every space, control character, dash and quote goes.
func canonVINASCIISlow(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= ' ' || c == 0x7f || c == '-' || c == '"' || c == '\'':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'I':
			c = '1'
		case 'O', 'Q':
			c = '0'
		}
		b = append(b, c)
	}
	return string(b)
}

func canonVINGeneral(s string) string {
	s = strings.Map(vinMap, canonText(s))
	// Removing a dash can bring a combining mark next to a letter NFKC
	// composes with; repeat until stable (twice is enough in practice).
	for range 3 {
		t := strings.Map(vinMap, norm.NFKC.String(s))
		if t == s {
			break
		}
		s = t
	}
	return s
}

// validVIN reports whether c (in VIN spelling) is a 17-character VIN.
func validVIN(c string) bool { return len(c) == 17 && canonVINASCII(c) }

// appendFold appends the Unicode case folding of c to dst (ASCII: lower
// case), normalised again so that folding and NFKC commute.
func appendFold(dst []byte, c string) []byte {
	if isASCII(c) {
		for i := 0; i < len(c); i++ {
			b := c[i]
			if b >= 'A' && b <= 'Z' {
				b += 'a' - 'A'
			}
			dst = append(dst, b)
		}
		return dst
	}
	return append(dst, foldSlow(c)...)
}

func foldSlow(c string) string {
	f := cases.Fold().String(c)
	for range 3 {
		g := cases.Fold().String(norm.NFKC.String(f))
		if g == f {
			break
		}
		f = g
	}
	return f
}

// canonInt reads c (text spelling) as a base-10 integer and returns its
// canonical decimal form: an optional sign, no leading zeros, and a
// fractional part of zeros allowed ("00123", "+123" and "123.0", as
// spreadsheets write numbers, are all 123).
func canonInt(c string) (string, bool) {
	neg := false
	if c != "" && (c[0] == '+' || c[0] == '-') {
		neg = c[0] == '-'
		c = c[1:]
	}
	if whole, frac, ok := strings.Cut(c, "."); ok {
		if frac == "" || strings.Trim(frac, "0") != "" {
			return "", false
		}
		c = whole
	}
	if c == "" || strings.Trim(c, "0123456789") != "" {
		return "", false
	}
	c = strings.TrimLeft(c, "0")
	if c == "" {
		return "0", true
	}
	if neg {
		c = "-" + c
	}
	if _, err := strconv.ParseInt(c, 10, 64); err != nil {
		return "", false
	}
	return c, true
}

// listEntry reads the entry on one line of an opt-out list. The syntax is
// the same in every mode: white space and invisible characters around the
// line are ignored; a line that is then empty or starts with # is skipped
// (entry ""); # after white space starts a comment; an entry in "double"
// or 'single' quotes is taken literally up to the closing quote (# inside
// it is part of the entry) and only a comment may follow it.
func listEntry(line string) (string, error) {
	if strings.IndexByte(line, 0) >= 0 {
		return "", errors.New("holds NUL bytes (a UTF-16 file without byte order mark? save the list as UTF-8)")
	}
	if !utf8.ValidString(line) || strings.ContainsRune(line, utf8.RuneError) {
		return "", errors.New("is not valid UTF-8 (save the list as UTF-8)")
	}
	trim := func(r rune) bool { return unicode.IsSpace(r) || isInvisible(r) }
	s := strings.TrimFunc(line, trim)
	if s == "" || s[0] == '#' {
		return "", nil
	}
	if q := s[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(s[1:], q)
		if end < 0 {
			return "", fmt.Errorf("the quote %c is not closed", q)
		}
		if rest := strings.TrimLeftFunc(s[end+2:], trim); rest != "" && rest[0] != '#' {
			return "", errors.New("text after the closing quote (one subject per line; is this a CSV file with several columns?)")
		}
		return s[1 : end+1], nil
	}
	prev := ' '
	for i, r := range s {
		if r == '#' && (unicode.IsSpace(prev) || isInvisible(prev)) && i > 0 {
			return strings.TrimRightFunc(s[:i], trim), nil
		}
		prev = r
	}
	return s, nil
}

// scanListLines splits a list at \n, \r\n and a lone \r (old Mac and some
// spreadsheet exports): a list read as one line would match nothing.
func scanListLines(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0 && atEOF:
		return len(data), data, nil
	case i < 0:
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data) && data[i+1] == '\n':
		return i + 2, data[:i], nil
	case i+1 < len(data) || atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // a \r at the end of the buffer: is a \n next?
}
