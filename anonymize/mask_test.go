package anonymize

import (
	"context"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestMask(t *testing.T) {
	for _, tc := range []struct {
		name      string
		spec      MaskSpec
		in, want  string
		wantWhole bool
	}{
		{"middle", MaskSpec{KeepPrefix: 3, KeepSuffix: 3}, "WVWZZZ1KZ00000005", "WVW***********005", false},
		{"postcode under 3+3: masked whole", MaskSpec{KeepPrefix: 3, KeepSuffix: 3}, "80331", "*****", true},
		{"as long as prefix + suffix: masked whole", MaskSpec{KeepPrefix: 2, KeepSuffix: 3}, "80331", "*****", true},
		{"one longer: one masked", MaskSpec{KeepPrefix: 2, KeepSuffix: 2}, "80331", "80*31", false},
		{"prefix only", MaskSpec{KeepPrefix: 2}, "80331", "80***", false},
		{"prefix only, short", MaskSpec{KeepPrefix: 5}, "80331", "*****", true},
		{"nothing kept", MaskSpec{}, "abc", "***", false},
		{"empty stays empty", MaskSpec{KeepPrefix: 1, KeepSuffix: 1}, "", "", false},
		{"multi-byte by characters", MaskSpec{KeepPrefix: 1, KeepSuffix: 1}, "Jürgen", "J****n", false},
		{"multi-byte kept characters", MaskSpec{KeepPrefix: 2, KeepSuffix: 2}, "Ülkü Öz", "Ül***Öz", false},
		{"decomposed accent is one character", MaskSpec{KeepPrefix: 1, KeepSuffix: 1}, "Mu\u0308ller", "M****r", false},
		{"emoji", MaskSpec{KeepPrefix: 1, KeepSuffix: 1}, "a🚗🚗b", "a**b", false},
		{"CJK", MaskSpec{KeepPrefix: 1}, "東京都", "東**", false},
		{"multi-byte mask character", MaskSpec{KeepPrefix: 1, Char: "•"}, "abc", "a••", false},
		{"fixed width, long value", MaskSpec{KeepPrefix: 2, KeepSuffix: 2, Width: 8}, "alexander.mustermann@example.org", "al****rg", false},
		{"fixed width, short value", MaskSpec{KeepPrefix: 2, KeepSuffix: 2, Width: 8}, "bo", "********", true},
		{"fixed width, empty value", MaskSpec{KeepPrefix: 2, KeepSuffix: 2, Width: 8}, "", "********", false},
		{"invalid UTF-8", MaskSpec{KeepPrefix: 1}, "a\xffb", "a**", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, whole := newMasker(tc.spec).mask(tc.in)
			if got != tc.want || whole != tc.wantWhole {
				t.Errorf("mask(%q) = %q, %v, want %q, %v", tc.in, got, whole, tc.want, tc.wantWhole)
			}
		})
	}
}

// TestMaskNeverPassesThrough: for every length and split, no masked value
// equals its input (unless it is empty, or made of mask characters), and
// with width set every output has that width.
func TestMaskNeverPassesThrough(t *testing.T) {
	for p := range 5 {
		for s := range 5 {
			for n := 1; n <= 12; n++ {
				in := strings.Repeat("ä", n/2) + strings.Repeat("7", n-n/2)
				out, _ := newMasker(MaskSpec{KeepPrefix: p, KeepSuffix: s}).mask(in)
				if out == in {
					t.Errorf("%d+%d mask of %q published it unchanged", p, s, in)
				}
				if utf8.RuneCountInString(out) != n {
					t.Errorf("%d+%d mask of %q = %q changes the length", p, s, in, out)
				}
				w := p + s + 1 + n%3
				out, _ = newMasker(MaskSpec{KeepPrefix: p, KeepSuffix: s, Width: w}).mask(in)
				if out == in || utf8.RuneCountInString(out) != w {
					t.Errorf("%d+%d width %d mask of %q = %q", p, s, w, in, out)
				}
			}
		}
	}
}

// TestMaskOpCountsRows: the count is of rows, through a dictionary, a plain
// column and a dictionary seen again, and holds under concurrent batches.
func TestMaskOpCountsRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	vals := []string{"80331", "803311", "80", "80331", "8033112"} // 4 of 5 no longer than 3+3
	db := array.NewDictionaryBuilder(mem, stringDict).(*array.BinaryDictionaryBuilder)
	sb := array.NewStringBuilder(mem)
	for _, v := range vals {
		_ = db.AppendString(v)
		sb.Append(v)
	}
	db.AppendNull()
	sb.AppendNull()
	dict, plain := db.NewArray(), sb.NewArray()
	db.Release()
	sb.Release()
	defer dict.Release()
	defer plain.Release()
	op := newMaskOp("postcode", MaskSpec{KeepPrefix: 3, KeepSuffix: 3})
	// Arrow builds a dictionary array's value array lazily and
	// unsynchronised (a race, and a leak of the losing copy): build it
	// before the goroutines share the array, as the Runner does.
	dict.(*array.Dictionary).Dictionary()
	var wg sync.WaitGroup
	for range 4 {
		for _, col := range []arrow.Array{dict, plain} {
			wg.Go(func() {
				out, err := op.apply(context.Background(), mem, col, nil, 0)
				if err != nil {
					t.Error(err)
					return
				}
				defer out.Release()
				for i, v := range vals {
					if got, _ := valueText(out, i); got == v && len(v) <= 6 {
						t.Errorf("row %d: %q published", i, v)
					}
				}
				if !out.IsNull(len(vals)) {
					t.Error("null not kept")
				}
			})
		}
	}
	wg.Wait()
	got := maskedWhole([]colOp{keepOp{}, op}, arrow.NewSchema([]arrow.Field{{Name: "vin", Type: stringDict}, {Name: "postcode", Type: stringDict}}, nil))
	if len(got) != 1 || got["postcode"] != 8*4 {
		t.Errorf("masked whole %v, want postcode 32", got)
	}
	if got := maskedWhole([]colOp{op}, arrow.NewSchema([]arrow.Field{{Name: "postcode", Type: stringDict}}, nil)); got["postcode"] != 0 {
		t.Errorf("count not drained: %v", got)
	}
}

// TestRunMaskShortValues: every postcode of the fleet is 5 digits; under a
// 3+3 mask none may be published, and the report says how many rows were
// masked whole.
func TestRunMaskShortValues(t *testing.T) {
	pol := strings.Replace(simplePolicy, "postcode: {mask: {keep_prefix: 2}}", "postcode: {mask: {keep_prefix: 3, keep_suffix: 3}}", 1)
	rep, out, err := runFleet(t, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range out.recs {
		pc := rec.Column(rec.Schema().FieldIndices("postcode")[0])
		for i := range pc.Len() {
			if v, _ := valueText(pc, i); v != "*****" {
				t.Fatalf("postcode written as %q", v)
			}
		}
	}
	if got := rep.MaskedWhole["postcode"]; got != rep.Rows.Out || got == 0 {
		t.Errorf("masked whole %v, want all %d rows", rep.MaskedWhole, rep.Rows.Out)
	}
	if w := rep.Warnings(); len(w) != 1 || !strings.Contains(w[0], `column "postcode": 580 rows`) {
		t.Errorf("warnings %q", w)
	}
	// A mask that keeps less reports zero, not nothing.
	rep, _, err = runFleet(t, simplePolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := rep.MaskedWhole["postcode"]; !ok || n != 0 || len(rep.Warnings()) != 0 {
		t.Errorf("masked whole %v, warnings %q", rep.MaskedWhole, rep.Warnings())
	}
}
