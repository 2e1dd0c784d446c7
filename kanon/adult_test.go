package kanon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var adultColumns = []string{"sex", "age", "race", "marital-status", "education", "native-country", "workclass", "occupation", "salary-class"}

// adultDir finds the shared Adult data: $TARNKAPPE_ADULT_DIR, or
// shared/data/adult beside the module root or beside one of its parents (a
// worktree sits one level deeper than the main checkout).
func adultDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("TARNKAPPE_ADULT_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
			continue
		}
		for up := filepath.Dir(d); ; up = filepath.Dir(up) {
			dir := filepath.Join(up, "shared", "data", "adult")
			if _, err := os.Stat(filepath.Join(dir, "adult.csv")); err == nil {
				return dir
			}
			if filepath.Dir(up) == up {
				t.Skipf("Adult data not found in shared/data/adult beside %s or its parents (set TARNKAPPE_ADULT_DIR)", d)
			}
		}
	}
	t.Skip("module root not found; set TARNKAPPE_ADULT_DIR")
	return ""
}

// readAdult reads adult.csv as string columns.
func readAdult(t testing.TB, mem memory.Allocator, dir string) arrow.Table {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "adult.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fields := make([]arrow.Field, len(adultColumns))
	for i, c := range adultColumns {
		fields[i] = arrow.Field{Name: c, Type: arrow.BinaryTypes.String}
	}
	r := csv.NewReader(f, arrow.NewSchema(fields, nil), csv.WithComma(';'), csv.WithHeader(true), csv.WithChunk(8192), csv.WithAllocator(mem))
	defer r.Release()
	var recs []arrow.RecordBatch
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	tbl := array.NewTableFromRecords(r.Schema(), recs)
	for _, rec := range recs {
		rec.Release()
	}
	return tbl
}

func adultHistogram(t testing.TB, qi []string, sensitive string) *Histogram {
	t.Helper()
	dir := adultDir(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tbl := readAdult(t, mem, dir)
	defer tbl.Release()
	hier, err := LoadHierarchies(dir, qi)
	if err != nil {
		t.Fatal(err)
	}
	rdr := array.NewTableReader(tbl, 8192)
	defer rdr.Release()
	h, err := BuildHistogram(context.Background(), rdr, HistogramOptions{QuasiIdentifiers: qi, Hierarchies: hier, Sensitive: sensitive})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func join(v []int) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(rune('0' + x)))
	}
	return b.String()
}
