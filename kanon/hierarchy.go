package kanon

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A Hierarchy generalises the values of one quasi-identifier. Level 0 is the
// value itself; each higher level is coarser; the last level is usually "*".
//
// A Hierarchy must be monotone: two values that share a generalised value at
// level l must share it at every level above l. The histogram checks this for
// every value it sees and reports a violation as an error.
type Hierarchy interface {
	// Levels returns the number of levels, level 0 included (>= 1).
	Levels() int
	// Generalize returns value generalised to level. It returns an error
	// wrapping ErrValueNotInHierarchy when value is outside the hierarchy.
	Generalize(value string, level int) (string, error)
}

// A DomainHierarchy knows its whole domain (all level-0 values), such as a
// table read from a CSV file. ARX's Loss metric measures the share of the
// domain a generalised value covers; for hierarchies without a known domain the
// values seen in the data are the domain.
type DomainHierarchy interface {
	Hierarchy
	// Domain returns the level-0 values in file order.
	Domain() []string
}

// ErrValueNotInHierarchy is wrapped by errors for values a hierarchy does not
// cover.
var ErrValueNotInHierarchy = errors.New("value not in hierarchy")

// ErrBadHierarchy is wrapped by errors for malformed hierarchies (ragged rows,
// duplicates, non-monotone levels).
var ErrBadHierarchy = errors.New("bad hierarchy")

// TableHierarchy is a hierarchy given as a table: one row per original value,
// one column per level, level 0 first — the CSV layout ARX uses.
type TableHierarchy struct {
	rows  [][]string
	index map[string]int
}

var _ DomainHierarchy = (*TableHierarchy)(nil)

// NewTableHierarchy validates rows and returns the hierarchy. Every row must
// have the same number of levels; level-0 values must be unique; a value at
// level l must have exactly one parent at level l+1 (monotonicity); no cell may
// be empty.
func NewTableHierarchy(rows [][]string) (*TableHierarchy, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("kanon.NewTableHierarchy: no rows: %w", ErrBadHierarchy)
	}
	width := len(rows[0])
	if width == 0 {
		return nil, fmt.Errorf("kanon.NewTableHierarchy: row 1 is empty: %w", ErrBadHierarchy)
	}
	h := &TableHierarchy{rows: make([][]string, len(rows)), index: make(map[string]int, len(rows))}
	// parent[l] maps a value at level l to its value at level l+1.
	parent := make([]map[string]string, width)
	for l := range parent {
		parent[l] = make(map[string]string)
	}
	for i, r := range rows {
		if len(r) != width {
			return nil, fmt.Errorf("kanon.NewTableHierarchy: row %d has %d levels, row 1 has %d: %w", i+1, len(r), width, ErrBadHierarchy)
		}
		for l, v := range r {
			if v == "" {
				return nil, fmt.Errorf("kanon.NewTableHierarchy: row %d level %d is empty: %w", i+1, l, ErrBadHierarchy)
			}
		}
		if j, dup := h.index[r[0]]; dup {
			return nil, fmt.Errorf("kanon.NewTableHierarchy: value %q in rows %d and %d: %w", r[0], j+1, i+1, ErrBadHierarchy)
		}
		for l := 0; l+1 < width; l++ {
			if p, ok := parent[l][r[l]]; ok && p != r[l+1] {
				return nil, fmt.Errorf("kanon.NewTableHierarchy: row %d: %q at level %d has two parents %q and %q (levels must be monotone): %w", i+1, r[l], l, p, r[l+1], ErrBadHierarchy)
			}
			parent[l][r[l]] = r[l+1]
		}
		h.index[r[0]] = i
		h.rows[i] = append([]string(nil), r...)
	}
	return h, nil
}

// ParseHierarchy reads a hierarchy table: CSV separated by sep (ARX uses ';'),
// one row per original value, level 0 first, no header.
func ParseHierarchy(r io.Reader, sep rune) (*TableHierarchy, error) {
	cr := csv.NewReader(r)
	cr.Comma = sep
	cr.FieldsPerRecord = -1 // ragged rows are reported by NewTableHierarchy with a better message
	cr.ReuseRecord = false
	var rows [][]string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("kanon.ParseHierarchy: %w: %w", err, ErrBadHierarchy)
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if len(rec) == 1 && rec[0] == "" {
			continue // blank line
		}
		rows = append(rows, rec)
	}
	h, err := NewTableHierarchy(rows)
	if err != nil {
		return nil, fmt.Errorf("kanon.ParseHierarchy: %w", err)
	}
	return h, nil
}

// Levels implements Hierarchy.
func (h *TableHierarchy) Levels() int { return len(h.rows[0]) }

// Generalize implements Hierarchy.
func (h *TableHierarchy) Generalize(value string, level int) (string, error) {
	i, ok := h.index[value]
	if !ok {
		return "", fmt.Errorf("%q: %w", value, ErrValueNotInHierarchy)
	}
	if level < 0 || level >= len(h.rows[i]) {
		return "", fmt.Errorf("level %d out of range [0,%d]", level, len(h.rows[i])-1)
	}
	return h.rows[i][level], nil
}

// Domain implements DomainHierarchy.
func (h *TableHierarchy) Domain() []string {
	out := make([]string, len(h.rows))
	for i, r := range h.rows {
		out[i] = r[0]
	}
	return out
}

// LoadHierarchies reads one table hierarchy per column from dir. The file for
// column c is "c.csv" or "<prefix>_hierarchy_c.csv" (ARX's naming); files are
// ';'-separated. A column without a file, or with two candidate files, is an
// error.
func LoadHierarchies(dir string, columns []string) (map[string]Hierarchy, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("kanon.LoadHierarchies: %w", err)
	}
	out := make(map[string]Hierarchy, len(columns))
	for _, col := range columns {
		var found []string
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() {
				continue
			}
			if n == col+".csv" || strings.HasSuffix(n, "_hierarchy_"+col+".csv") {
				found = append(found, n)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("kanon.LoadHierarchies: column %q: no %s.csv or *_hierarchy_%s.csv in %s", col, col, col, dir)
		case 1:
		default:
			return nil, fmt.Errorf("kanon.LoadHierarchies: column %q: several hierarchy files in %s: %s", col, dir, strings.Join(found, ", "))
		}
		path := filepath.Join(dir, found[0])
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("kanon.LoadHierarchies: column %q: %w", col, err)
		}
		h, err := ParseHierarchy(f, ';')
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("kanon.LoadHierarchies: column %q, file %s: %w", col, path, err)
		}
		out[col] = h
	}
	return out, nil
}

// IntervalHierarchy generalises numbers into intervals. Level 1 groups values
// into intervals of Width starting at Origin; each higher level merges FanOut
// intervals of the level below; the top level is "*". Integer bounds are
// printed as "lo-hi" (inclusive, as in ARX's Adult age hierarchy), others as
// "[lo,hi)".
type IntervalHierarchy struct {
	Origin float64 // start of the first interval
	Width  float64 // width of the level-1 intervals, > 0
	FanOut int     // intervals merged per level above 1, >= 2
	Height int     // number of interval levels (>= 1); total levels = Height + 2
	Min    float64 // values below Min are outside the hierarchy
	Max    float64 // values above Max are outside the hierarchy
}

// NewIntervalHierarchy validates the fields and returns the hierarchy.
func NewIntervalHierarchy(h IntervalHierarchy) (*IntervalHierarchy, error) {
	switch {
	case !(h.Width > 0) || math.IsInf(h.Width, 0):
		return nil, errors.New("kanon.NewIntervalHierarchy: Width must be > 0")
	case h.FanOut < 2:
		return nil, errors.New("kanon.NewIntervalHierarchy: FanOut must be >= 2")
	case h.Height < 1 || h.Height > 32:
		return nil, errors.New("kanon.NewIntervalHierarchy: Height must be in [1,32]")
	case !(h.Min <= h.Max):
		return nil, errors.New("kanon.NewIntervalHierarchy: Min must be <= Max")
	case math.IsNaN(h.Origin) || math.IsInf(h.Origin, 0):
		return nil, errors.New("kanon.NewIntervalHierarchy: Origin must be finite")
	}
	return &h, nil
}

// Levels implements Hierarchy.
func (h *IntervalHierarchy) Levels() int { return h.Height + 2 }

// Generalize implements Hierarchy.
func (h *IntervalHierarchy) Generalize(value string, level int) (string, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || math.IsNaN(x) || x < h.Min || x > h.Max {
		return "", fmt.Errorf("%q (interval hierarchy covers numbers in [%g,%g]): %w", value, h.Min, h.Max, ErrValueNotInHierarchy)
	}
	switch {
	case level == 0:
		return value, nil
	case level == h.Levels()-1:
		return "*", nil
	case level < 0 || level >= h.Levels():
		return "", fmt.Errorf("level %d out of range [0,%d]", level, h.Levels()-1)
	}
	w := h.Width * math.Pow(float64(h.FanOut), float64(level-1))
	lo := h.Origin + math.Floor((x-h.Origin)/w)*w
	hi := lo + w
	if lo == math.Trunc(lo) && w == math.Trunc(w) && math.Abs(lo) < 1e15 {
		return strconv.FormatInt(int64(lo), 10) + "-" + strconv.FormatInt(int64(hi)-1, 10), nil
	}
	return "[" + strconv.FormatFloat(lo, 'g', -1, 64) + "," + strconv.FormatFloat(hi, 'g', -1, 64) + ")", nil
}

// MaskHierarchy generalises strings by masking characters from the right:
// 80331 → 8033* → 803** … Level i masks the last i characters (at most the
// whole string); the top level, MaxMasked+1, is "*".
type MaskHierarchy struct {
	MaxMasked int  // characters masked at the level below the top, >= 1
	Mask      rune // the mask character, '*' when zero
}

// Levels implements Hierarchy.
func (h MaskHierarchy) Levels() int { return h.MaxMasked + 2 }

// Generalize implements Hierarchy.
func (h MaskHierarchy) Generalize(value string, level int) (string, error) {
	if h.MaxMasked < 1 {
		return "", errors.New("kanon.MaskHierarchy: MaxMasked must be >= 1")
	}
	if level < 0 || level >= h.Levels() {
		return "", fmt.Errorf("level %d out of range [0,%d]", level, h.Levels()-1)
	}
	if level == h.Levels()-1 {
		return "*", nil
	}
	m := h.Mask
	if m == 0 {
		m = '*'
	}
	r := []rune(value)
	n := min(level, len(r))
	for i := len(r) - n; i < len(r); i++ {
		r[i] = m
	}
	return string(r), nil
}

// DateHierarchy generalises timestamps (RFC 3339, or "2006-01-02 15:04:05",
// or "2006-01-02") through minute → hour → day → ISO week → month → year → "*".
// Level 0 is the value itself. Times are taken in UTC.
type DateHierarchy struct{}

// Levels implements Hierarchy.
func (DateHierarchy) Levels() int { return 8 }

var dateLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02"}

// Generalize implements Hierarchy.
func (h DateHierarchy) Generalize(value string, level int) (string, error) {
	var t time.Time
	var err error
	for _, layout := range dateLayouts {
		if t, err = time.Parse(layout, strings.TrimSpace(value)); err == nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("%q (date hierarchy needs a timestamp): %w", value, ErrValueNotInHierarchy)
	}
	t = t.UTC()
	switch level {
	case 0:
		return value, nil
	case 1:
		return t.Format("2006-01-02T15:04"), nil
	case 2:
		return t.Format("2006-01-02T15"), nil
	case 3:
		return t.Format("2006-01-02"), nil
	case 4:
		// A week can straddle two months or years; the hierarchy stays monotone
		// because the week label determines the month of its Monday, which is
		// what level 5 reports for week-generalised values.
		y, w := t.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w), nil
	case 5:
		y, w := t.ISOWeek()
		mon := isoMonday(y, w)
		return mon.Format("2006-01"), nil
	case 6:
		y, w := t.ISOWeek()
		return strconv.Itoa(isoMonday(y, w).Year()), nil
	case 7:
		return "*", nil
	}
	return "", fmt.Errorf("level %d out of range [0,7]", level)
}

// isoMonday returns the Monday of ISO week w of year y.
func isoMonday(y, w int) time.Time {
	jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
	wd := int(jan4.Weekday()+6) % 7 // Monday = 0
	return jan4.AddDate(0, 0, -wd+(w-1)*7)
}

// GeoHierarchy generalises positions "lat,lon" (decimal degrees) to square
// cells: level i (1 <= i < Levels-1) is the south-west corner of the cell of
// side CellDegrees·2^(i-1) containing the point; the top level is "*".
type GeoHierarchy struct {
	CellDegrees float64 // side of the level-1 cell in degrees, > 0
	Height      int     // number of cell levels, >= 1
}

// Levels implements Hierarchy.
func (h GeoHierarchy) Levels() int { return h.Height + 2 }

// Generalize implements Hierarchy.
func (h GeoHierarchy) Generalize(value string, level int) (string, error) {
	if !(h.CellDegrees > 0) || h.Height < 1 {
		return "", errors.New("kanon.GeoHierarchy: CellDegrees must be > 0 and Height >= 1")
	}
	a, b, ok := strings.Cut(value, ",")
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if !ok || err1 != nil || err2 != nil || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return "", fmt.Errorf("%q (geo hierarchy needs \"lat,lon\"): %w", value, ErrValueNotInHierarchy)
	}
	switch {
	case level == 0:
		return value, nil
	case level == h.Levels()-1:
		return "*", nil
	case level < 0 || level >= h.Levels():
		return "", fmt.Errorf("level %d out of range [0,%d]", level, h.Levels()-1)
	}
	side := h.CellDegrees * math.Pow(2, float64(level-1))
	// Cells are aligned on multiples of side from (-90,-180), so cells of a
	// level nest exactly in the cells of the level above.
	la := -90 + math.Floor((lat+90)/side)*side
	lo := -180 + math.Floor((lon+180)/side)*side
	return strconv.FormatFloat(la, 'f', -1, 64) + "," + strconv.FormatFloat(lo, 'f', -1, 64), nil
}
