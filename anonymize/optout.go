package anonymize

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// optOutSet holds an opt-out list keyed: only HMACs of the listed subjects
// under the opt-out domain key, never the subjects themselves, so a memory
// dump or a crash report does not reveal who opted out.
type optOutSet struct {
	mac    *pseudonym.HMAC
	keys   map[string]struct{}
	listed int
	// toForm maps a clear subject value to the form the list is written in
	// (identity for clear lists, the subject's pseudonym otherwise).
	toForm func(string) (string, error)
	seen   map[string]struct{} // keyed subjects matched at least once
	// last dictionary tested and its results (see dictKey)
	lastDict dictKey
	lastHits []bool
}

// forget drops the last dictionary (input data) at the end of a run.
func (s *optOutSet) forget() { s.lastDict, s.lastHits = dictKey{}, nil }

// loadOptOut reads one subject per line from r. Lines are trimmed; blank
// lines and lines starting with # are ignored. name is used in errors.
func loadOptOut(name string, r io.Reader, mac *pseudonym.HMAC, toForm func(string) (string, error)) (*optOutSet, error) {
	s := &optOutSet{mac: mac, keys: map[string]struct{}{}, toForm: toForm, seen: map[string]struct{}{}}
	h := mac.NewHasher()
	defer h.Destroy()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	line := 0
	var buf []byte
	for sc.Scan() {
		line++
		v := strings.TrimSpace(sc.Text())
		if v == "" || strings.HasPrefix(v, "#") {
			continue
		}
		if len(v) > 1024 {
			return nil, fmt.Errorf("opt-out list %s, line %d: entry longer than 1024 bytes", name, line)
		}
		buf = h.Append(buf[:0], []byte(v))
		s.keys[string(buf)] = struct{}{}
		s.listed++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("opt-out list %s, line %d: %w", name, line+1, err)
	}
	return s, nil
}

// dictHits tests every entry of d's dictionary, reusing the results for an
// identical dictionary in consecutive batches.
func (s *optOutSet) dictHits(d *array.Dictionary, test func(string) (bool, error), subject string) ([]bool, error) {
	sd, isStr := stringDictOf(d)
	if isStr && s.lastHits != nil && s.lastDict.matches(sd) {
		return s.lastHits, nil
	}
	dict := d.Dictionary()
	hits := make([]bool, dict.Len())
	for i := range hits {
		if dict.IsNull(i) {
			continue
		}
		v, err := valueText(dict, i)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", subject, err)
		}
		if hits[i], err = test(v); err != nil {
			return nil, fmt.Errorf("column %q: %w", subject, err)
		}
	}
	if isStr {
		s.lastDict.set(sd)
		s.lastHits = hits
	}
	return hits, nil
}

// filterMask returns a boolean array: true for rows to keep. A dictionary
// subject column is tested once per dictionary entry.
func (s *optOutSet) filterMask(mem memory.Allocator, subject string, col arrow.Array, rowBase int64) (arrow.Array, int64, error) {
	h := s.mac.NewHasher()
	defer h.Destroy()
	var buf []byte
	test := func(v string) (bool, error) {
		f, err := s.toForm(v)
		if err != nil {
			return false, err
		}
		buf = h.Append(buf[:0], []byte(f))
		_, hit := s.keys[string(buf)]
		if hit {
			s.seen[string(buf)] = struct{}{}
		}
		return hit, nil
	}
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.Reserve(col.Len())
	var dropped int64
	if d, ok := col.(*array.Dictionary); ok {
		hits, err := s.dictHits(d, test, subject)
		if err != nil {
			return nil, 0, err
		}
		for i := range d.Len() {
			if d.IsNull(i) {
				return nil, 0, rowerr.Atf(rowerr.Row(rowBase, i), subject, "null subject")
			}
			hit := hits[d.GetValueIndex(i)]
			b.UnsafeAppend(!hit)
			if hit {
				dropped++
			}
		}
		return b.NewArray(), dropped, nil
	}
	for i := range col.Len() {
		if col.IsNull(i) {
			return nil, 0, rowerr.Atf(rowerr.Row(rowBase, i), subject, "null subject")
		}
		v, err := valueText(col, i)
		if err != nil {
			return nil, 0, rowerr.At(rowerr.Row(rowBase, i), subject, err)
		}
		hit, err := test(v)
		if err != nil {
			return nil, 0, rowerr.At(rowerr.Row(rowBase, i), subject, err)
		}
		b.UnsafeAppend(!hit)
		if hit {
			dropped++
		}
	}
	return b.NewArray(), dropped, nil
}
