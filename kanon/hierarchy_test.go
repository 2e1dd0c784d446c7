package kanon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

func TestParseHierarchyErrors(t *testing.T) {
	cases := []struct {
		name, csv, want string
	}{
		{"empty", "", "no rows"},
		{"ragged", "a;x;*\nb;x\n", "row 2 has 2 levels"},
		{"duplicate", "a;x;*\na;y;*\n", `value "a" in rows 1 and 2`},
		{"non-monotone", "a;x;p\nb;x;q\n", `"x" at level 1 has two parents`},
		{"empty cell", "a;;*\n", "level 1 is empty"},
		{"bad quote", "a;\"x;*\n", "bad hierarchy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseHierarchy(strings.NewReader(c.csv), ';')
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadHierarchy) {
				t.Fatalf("err = %v, want %q wrapping ErrBadHierarchy", err, c.want)
			}
		})
	}
}

func TestGeneratedHierarchies(t *testing.T) {
	iv, err := NewIntervalHierarchy(IntervalHierarchy{Origin: 0, Width: 5, FanOut: 2, Height: 3, Min: 0, Max: 150})
	if err != nil {
		t.Fatal(err)
	}
	date := DateHierarchy{}
	cases := []struct {
		h     Hierarchy
		value string
		want  []string
	}{
		{iv, "37", []string{"37", "35-39", "30-39", "20-39", "*"}},
		{MaskHierarchy{MaxMasked: 4}, "80331", []string{"80331", "8033*", "803**", "80***", "8****", "*"}},
		{date, "2026-03-02T10:17:00Z", []string{"2026-03-02T10:17:00Z", "2026-03-02T10:17", "2026-03-02T10", "2026-03-02", "2026-W10", "2026-03", "2026", "*"}},
		{date, "2027-01-01T00:00:00Z", []string{"2027-01-01T00:00:00Z", "2027-01-01T00:00", "2027-01-01T00", "2027-01-01", "2026-W53", "2026-12", "2026", "*"}},
		{GeoHierarchy{CellDegrees: 0.25, Height: 2}, "48.137,11.575", []string{"48.137,11.575", "48,11.5", "48,11.5", "*"}},
	}
	for _, c := range cases {
		if c.h.Levels() != len(c.want) {
			t.Errorf("%T: %d levels, want %d", c.h, c.h.Levels(), len(c.want))
			continue
		}
		for l, w := range c.want {
			got, err := c.h.Generalize(c.value, l)
			if err != nil || got != w {
				t.Errorf("%T(%q, %d) = %q, %v; want %q", c.h, c.value, l, got, err, w)
			}
		}
	}
	for _, bad := range []struct {
		h Hierarchy
		v string
	}{{iv, "abc"}, {iv, "151"}, {date, "yesterday"}, {GeoHierarchy{CellDegrees: 1, Height: 1}, "91,0"}} {
		if _, err := bad.h.Generalize(bad.v, 1); !errors.Is(err, ErrValueNotInHierarchy) {
			t.Errorf("%T(%q): err = %v, want ErrValueNotInHierarchy", bad.h, bad.v, err)
		}
	}
	if _, err := NewIntervalHierarchy(IntervalHierarchy{Width: 0, FanOut: 2, Height: 1}); err == nil {
		t.Error("Width 0 accepted")
	}
}

func TestLoadHierarchies(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("x;*\ny;*\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "data_hierarchy_b.csv"), []byte("1;*\n"), 0o644)
	hs, err := LoadHierarchies(dir, []string{"a", "b"})
	if err != nil || hs["a"].Levels() != 2 || hs["b"].Levels() != 2 {
		t.Fatalf("LoadHierarchies = %v, %v", hs, err)
	}
	if _, err := LoadHierarchies(dir, []string{"c"}); err == nil || !strings.Contains(err.Error(), `column "c"`) {
		t.Fatalf("missing hierarchy: err = %v", err)
	}
}

// batchOf builds a batch of string columns.
func batchOf(t testing.TB, mem memory.Allocator, cols map[string][]string, order []string, nulls map[string]int) arrow.RecordBatch {
	t.Helper()
	var fields []arrow.Field
	var arrs []arrow.Array
	n := 0
	for _, name := range order {
		b := array.NewStringBuilder(mem)
		for i, v := range cols[name] {
			if r, ok := nulls[name]; ok && r == i {
				b.AppendNull()
			} else {
				b.Append(v)
			}
		}
		a := b.NewArray()
		b.Release()
		defer a.Release()
		n = a.Len()
		fields = append(fields, arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true})
		arrs = append(arrs, a)
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(n))
}

// TestHistogramFailsClosed pins the errors about data: the project's one
// location format (rowerr: rows counted from 1 as data rows across
// batches, then the column), no package prefix for callers to repeat, and
// the chain kept for errors.Is.
func TestHistogramFailsClosed(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	h, _ := ParseHierarchy(strings.NewReader("x;*\ny;*\n"), ';')
	hier := map[string]Hierarchy{"a": h}
	cases := []struct {
		name  string
		cols  map[string][]string
		nulls map[string]int
		want  string
		row   int64
		is    error
	}{
		{"missing value", map[string][]string{"a": {"x", "z"}}, nil, `row 2, column "a": "z": value not in hierarchy`, 2, ErrValueNotInHierarchy},
		{"missing value, fourth row", map[string][]string{"a": {"x", "y", "x", "z"}}, nil, `row 4, column "a": "z": value not in hierarchy`, 4, ErrValueNotInHierarchy},
		{"null", map[string][]string{"a": {"x", "y", "x"}}, map[string]int{"a": 2}, `row 3, column "a": null value (nulls in quasi-identifiers and sensitive columns are not allowed: fill or drop them first)`, 3, errNull},
		{"missing column", map[string][]string{"b": {"x"}}, nil, `column "a": not in input (columns: b)`, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			order := []string{"a"}
			if _, ok := c.cols["b"]; ok {
				order = []string{"b"}
			}
			b := batchOf(t, mem, c.cols, order, c.nulls)
			defer b.Release()
			hb, err := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: []string{"a"}, Hierarchies: hier})
			if err != nil {
				t.Fatal(err)
			}
			err = hb.Add(b)
			if err == nil || err.Error() != c.want {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			var re *rowerr.Error
			if !errors.As(err, &re) || re.Row != c.row || re.Column != "a" {
				t.Errorf("errors.As: %#v, want row %d, column a", re, c.row)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, c.is)
			}
		})
	}
	// Rows are counted across batches: the second batch's first row is
	// row 3.
	hb, _ := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: []string{"a"}, Hierarchies: hier})
	ok := batchOf(t, mem, map[string][]string{"a": {"x", "y"}}, []string{"a"}, nil)
	bad := batchOf(t, mem, map[string][]string{"a": {"z"}}, []string{"a"}, nil)
	if err := hb.Add(ok); err != nil {
		t.Fatal(err)
	}
	if err := hb.Add(bad); err == nil || err.Error() != `row 3, column "a": "z": value not in hierarchy` {
		t.Errorf("second batch: err = %v", err)
	}
	ok.Release()
	bad.Release()
	if _, err := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: []string{"a"}}); err == nil {
		t.Error("missing hierarchy accepted")
	}
	if _, err := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: []string{"a", "a"}, Hierarchies: hier}); err == nil {
		t.Error("duplicate quasi-identifier accepted")
	}
}

// A generated hierarchy that is not monotone is caught when values meet.
type badHierarchy struct{}

func (badHierarchy) Levels() int { return 3 }
func (badHierarchy) Generalize(v string, l int) (string, error) {
	switch l {
	case 0:
		return v, nil
	case 1:
		return "g", nil
	}
	return v, nil // level 2 depends on the value, not on level 1
}

func TestNonMonotoneGenerated(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := batchOf(t, mem, map[string][]string{"a": {"x", "y"}}, []string{"a"}, nil)
	defer b.Release()
	hb, _ := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: []string{"a"}, Hierarchies: map[string]Hierarchy{"a": badHierarchy{}}})
	if err := hb.Add(b); !errors.Is(err, ErrBadHierarchy) {
		t.Fatalf("err = %v, want ErrBadHierarchy", err)
	}
}

func TestSearchEdgeCases(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	h, _ := ParseHierarchy(strings.NewReader("x;*\ny;*\n"), ';')
	hier := map[string]Hierarchy{"a": h}
	b := batchOf(t, mem, map[string][]string{"a": {"x", "x", "y"}}, []string{"a"}, nil)
	defer b.Release()
	rdr, _ := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
	defer rdr.Release()
	hist, err := BuildHistogram(context.Background(), rdr, HistogramOptions{QuasiIdentifiers: []string{"a"}, Hierarchies: hier})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Search(ctx, hist, Options{K: 1, Metric: MetricEntropy}); err == nil || !strings.Contains(err.Error(), "K must be >= 2") {
		t.Errorf("K=1: %v", err)
	}
	if _, err := Search(ctx, hist, Options{K: 2}); err == nil || !strings.Contains(err.Error(), "Metric") {
		t.Errorf("no metric: %v", err)
	}
	if _, err := Search(ctx, hist, Options{K: 2, SuppressionLimit: 1, Metric: MetricEntropy}); err == nil {
		t.Error("suppression 1 accepted")
	}
	if _, err := Search(ctx, hist, Options{K: 4, Metric: MetricEntropy}); !errors.Is(err, ErrNoSolution) {
		t.Errorf("k > rows: %v, want ErrNoSolution", err)
	}
	r, err := Search(ctx, hist, Options{K: 2, Metric: MetricEntropy})
	if err != nil || r.Levels[0] != 1 {
		t.Fatalf("k=2: %+v, %v", r, err)
	}
	// One of three rows may be suppressed: level 0 with y suppressed.
	r, err = Search(ctx, hist, Options{K: 2, SuppressionLimit: 0.34, Metric: MetricEntropy})
	if err != nil || r.Levels[0] != 0 || r.SuppressedRows != 1 {
		t.Fatalf("k=2 supp: %+v, %v", r, err)
	}
	empty, _ := NewHistogramBuilder(HistogramOptions{QuasiIdentifiers: []string{"a"}, Hierarchies: hier})
	eh, _ := empty.Histogram()
	if _, err := Search(ctx, eh, Options{K: 2, Metric: MetricEntropy}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty input: %v", err)
	}
}

func FuzzParseHierarchy(f *testing.F) {
	f.Add([]byte("1;0-4;*\n2;0-4;*\n"))
	f.Add([]byte("a;x;*\nb;x;*\nc;y;*\n"))
	f.Add([]byte("a;x\nb"))
	f.Add([]byte("\"a;b\";*\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHierarchy(bytes.NewReader(data), ';')
		if err != nil {
			if !errors.Is(err, ErrBadHierarchy) {
				t.Fatalf("error does not wrap ErrBadHierarchy: %v", err)
			}
			return
		}
		// A parsed hierarchy generalises every domain value at every level
		// and is monotone.
		parent := map[[2]string]string{}
		for _, v := range h.Domain() {
			prev := ""
			for l := range h.Levels() {
				g, err := h.Generalize(v, l)
				if err != nil {
					t.Fatalf("Generalize(%q, %d): %v", v, l, err)
				}
				if l > 0 {
					k := [2]string{string(rune(l)), prev}
					if p, ok := parent[k]; ok && p != g {
						t.Fatalf("non-monotone hierarchy accepted")
					}
					parent[k] = g
				}
				prev = g
			}
		}
	})
}
