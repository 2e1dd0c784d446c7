package anonymize

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/text/encoding"
	xunicode "golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/tarnkappe/tarnkappe/pseudonym"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// optOutSet holds an opt-out list keyed: only HMACs of the listed subjects'
// normalised form under the opt-out domain key, never the subjects
// themselves, so a memory dump or a crash report does not reveal who opted
// out. It is used by one goroutine at a time (the Runner's serial stage, a
// Steps).
type optOutSet struct {
	name string // the list's path, for errors
	mac  *pseudonym.HMAC
	mode normMode
	// toForm maps a subject value to its pseudonym; nil for clear lists.
	toForm func(string) (string, error)
	keys   map[string]struct{} // keyed comparison key of every entry
	// ints holds the keyed canonical integer of every entry that is one,
	// used when the subject column is int64 (clear lists only): "00123"
	// and "123" are then one subject. notInt counts the other entries.
	ints        map[string]struct{}
	notInt      int
	notIntLine  int
	intSubject  bool
	seen        map[string]struct{} // keyed entries matched at least once
	notNormRows int64               // rows whose subject value is not in normal form
	// last dictionary tested and its results (see dictKey)
	lastDict dictKey
	lastHits []bool
	lastOdd  []bool
}

// forget drops what the last run saw: the last dictionary (input data),
// the matched entries and the count of unnormalised subjects.
func (s *optOutSet) forget() {
	s.lastDict, s.lastHits, s.lastOdd = dictKey{}, nil, nil
	clear(s.seen)
	s.notNormRows = 0
}

// loadOptOut reads one subject per line from r (syntax: listEntry; UTF-8,
// or UTF-16 with a byte order mark), normalises each entry with mode and
// keeps it keyed. toForm is nil for a list of clear subjects and the
// subject column's pseudonymiser for a list of pseudonyms. name is used in
// errors; they never quote an entry.
func loadOptOut(name string, r io.Reader, mac *pseudonym.HMAC, mode normMode, toForm func(string) (string, error)) (*optOutSet, error) {
	s := &optOutSet{name: name, mac: mac, mode: mode, toForm: toForm,
		keys: map[string]struct{}{}, ints: map[string]struct{}{}, seen: map[string]struct{}{}}
	h := mac.NewHasher()
	defer h.Destroy()
	sc := bufio.NewScanner(transform.NewReader(r, xunicode.BOMOverride(encoding.Nop.NewDecoder())))
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	sc.Split(scanListLines)
	line := 0
	var key, buf []byte
	for sc.Scan() {
		line++
		e, err := listEntry(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("opt-out list %s, line %d: %w", name, line, err)
		}
		if e == "" {
			continue
		}
		if len(e) > 1024 {
			return nil, fmt.Errorf("opt-out list %s, line %d: entry longer than 1024 bytes", name, line)
		}
		c := s.listCanon(e)
		if c == "" {
			continue // only quotes or invisible characters
		}
		if mode == normVIN && toForm == nil && !validVIN(c) {
			return nil, fmt.Errorf("opt-out list %s, line %d: not a VIN after normalisation (want 17 characters of 0-9 and A-Z, got %d; a header line? use normalize: text for other identifiers)", name, line, len([]rune(c)))
		}
		key = s.appendListKey(key[:0], c)
		buf = h.Append(buf[:0], key)
		s.keys[string(buf)] = struct{}{}
		if toForm != nil {
			continue
		}
		if n, ok := canonInt(canonText(e)); ok {
			buf = h.Append(buf[:0], []byte(n))
			s.ints[string(buf)] = struct{}{}
		} else if s.notInt++; s.notInt == 1 {
			s.notIntLine = line
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = errors.New("line longer than 64 KiB (is this a list of subjects, one per line?)")
		}
		return nil, fmt.Errorf("opt-out list %s, line %d: %w", name, line+1, err)
	}
	return s, nil
}

// listCanon is an entry's spelling: clear entries get the mode's; entries
// in pseudonym form are pseudonyms, whose alphabet is not the subject's, so
// they get the text spelling (exact: none) on both sides.
func (s *optOutSet) listCanon(e string) string {
	if s.toForm != nil && s.mode == normVIN {
		return canonText(e)
	}
	return s.mode.canon(e)
}

func (s *optOutSet) appendListKey(dst []byte, c string) []byte {
	if s.toForm != nil && s.mode == normVIN {
		return normText.appendKey(dst, c)
	}
	return s.mode.appendKey(dst, c)
}

// listed is the number of distinct subjects the list names, after
// normalisation (duplicate and variant spellings count once).
func (s *optOutSet) listed() int {
	if s.intSubject {
		return len(s.ints)
	}
	return len(s.keys)
}

// bind checks the list against the subject column's type: an int64 subject
// matches by value, and then every entry must be an integer.
func (s *optOutSet) bind(subject string, t arrow.DataType) error {
	s.intSubject = t.ID() == arrow.INT64 && s.toForm == nil
	if !s.intSubject {
		return nil
	}
	if s.mode == normVIN {
		return fmt.Errorf("opt_out.normalize vin needs a string subject column; %q is int64 (use text)", subject)
	}
	if s.notInt > 0 {
		return fmt.Errorf("opt-out list %s: %d entries are not integers (the first on line %d) but the subject column %q is int64, so they could never match", s.name, s.notInt, s.notIntLine, subject)
	}
	return nil
}

// matcher tests subject values against the list; one per batch.
type matcher struct {
	s   *optOutSet
	h   *pseudonym.Hasher
	key []byte
	buf []byte
}

func (s *optOutSet) newMatcher() *matcher { return &matcher{s: s, h: s.mac.NewHasher()} }

func (m *matcher) close() { m.h.Destroy() }

// lookup reports whether key (a comparison key) is in set, recording a hit.
func (m *matcher) lookup(set map[string]struct{}, key []byte) bool {
	m.buf = m.h.Append(m.buf[:0], key)
	_, hit := set[string(m.buf)]
	if hit {
		m.s.seen[string(m.buf)] = struct{}{}
	}
	return hit
}

// test reports whether the subject value v (its text) is listed, and
// whether v differs from its normal form (under exact, the text form: the
// warning is the same whichever mode matches).
func (m *matcher) test(v string) (hit, odd bool, err error) {
	s := m.s
	if s.intSubject {
		// valueText writes int64 in canonical decimal.
		return m.lookup(s.ints, []byte(v)), false, nil
	}
	c := s.mode.canon(v)
	if s.mode == normExact {
		odd = canonText(v) != v
	} else {
		odd = c != v
	}
	if s.toForm == nil {
		m.key = s.mode.appendKey(m.key[:0], c)
		return m.lookup(s.keys, m.key), odd, nil
	}
	// Pseudonym form: the list may hold the pseudonym of the value as the
	// data spells it (copied from an earlier output) or of its normal form
	// (computed from a clean register); both are tried.
	for i, x := range []string{v, c} {
		if i == 1 && c == v {
			break
		}
		p, err := s.toForm(x)
		if err != nil {
			return false, odd, err
		}
		m.key = s.appendListKey(m.key[:0], s.listCanon(p))
		if m.lookup(s.keys, m.key) {
			return true, odd, nil
		}
	}
	return false, odd, nil
}

// dictHits tests every entry of d's dictionary, reusing the results for an
// identical dictionary in consecutive batches. odd marks the entries not in
// normal form.
func (s *optOutSet) dictHits(m *matcher, d *array.Dictionary, subject string) (hits, odd []bool, err error) {
	sd, isStr := stringDictOf(d)
	if isStr && s.lastHits != nil && s.lastDict.matches(sd) {
		return s.lastHits, s.lastOdd, nil
	}
	dict := d.Dictionary()
	hits, odd = make([]bool, dict.Len()), make([]bool, dict.Len())
	for i := range hits {
		if dict.IsNull(i) {
			continue
		}
		v, err := valueText(dict, i)
		if err != nil {
			return nil, nil, rowerr.At(0, subject, err)
		}
		if hits[i], odd[i], err = m.test(v); err != nil {
			return nil, nil, rowerr.At(0, subject, err)
		}
	}
	if isStr {
		s.lastDict.set(sd)
		s.lastHits, s.lastOdd = hits, odd
	}
	return hits, odd, nil
}

// filterMask returns a boolean array: true for rows to keep. A dictionary
// subject column is tested once per dictionary entry.
func (s *optOutSet) filterMask(mem memory.Allocator, subject string, col arrow.Array, rowBase int64) (arrow.Array, int64, error) {
	if err := s.bind(subject, col.DataType()); err != nil {
		return nil, 0, err
	}
	m := s.newMatcher()
	defer m.close()
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.Reserve(col.Len())
	var dropped, odd int64
	defer func() { s.notNormRows += odd }()
	if d, ok := col.(*array.Dictionary); ok {
		hits, odds, err := s.dictHits(m, d, subject)
		if err != nil {
			return nil, 0, err
		}
		dict := d.Dictionary()
		for i := range d.Len() {
			if d.IsNull(i) || dict.IsNull(d.GetValueIndex(i)) {
				return nil, 0, rowerr.At(rowerr.Row(rowBase, i), subject, errors.New("null subject"))
			}
			j := d.GetValueIndex(i)
			b.UnsafeAppend(!hits[j])
			if hits[j] {
				dropped++
			}
			if odds[j] {
				odd++
			}
		}
		return b.NewArray(), dropped, nil
	}
	for i := range col.Len() {
		if col.IsNull(i) {
			return nil, 0, rowerr.At(rowerr.Row(rowBase, i), subject, errors.New("null subject"))
		}
		v, err := valueText(col, i)
		if err != nil {
			return nil, 0, rowerr.At(rowerr.Row(rowBase, i), subject, err)
		}
		hit, o, err := m.test(v)
		if err != nil {
			return nil, 0, rowerr.At(rowerr.Row(rowBase, i), subject, err)
		}
		b.UnsafeAppend(!hit)
		if hit {
			dropped++
		}
		if o {
			odd++
		}
	}
	return b.NewArray(), dropped, nil
}
