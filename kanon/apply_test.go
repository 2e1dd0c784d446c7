package kanon

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// searchApplyVerify runs Search, applies the result to the Adult batches and
// checks the output with the independent Verify.
func searchApplyVerify(t *testing.T, qi []string, sens string, opts Options, vopts VerifyOptions) *Result {
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
	ctx := context.Background()
	rdr := array.NewTableReader(tbl, 5000)
	h, err := BuildHistogram(ctx, rdr, HistogramOptions{QuasiIdentifiers: qi, Hierarchies: hier, Sensitive: sens})
	rdr.Release()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Search(ctx, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := NewApplier(h, res, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer ap.Release()
	rdr = array.NewTableReader(tbl, 5000)
	defer rdr.Release()
	var outs []arrow.RecordBatch
	var schema *arrow.Schema
	for rdr.Next() {
		out, err := ap.Apply(ctx, rdr.RecordBatch())
		if err != nil {
			t.Fatal(err)
		}
		schema = out.Schema()
		outs = append(outs, out)
	}
	defer func() {
		for _, o := range outs {
			o.Release()
		}
	}()
	in, out, supp := ap.Counts()
	if in != h.Rows() || in != out+supp || supp != res.SuppressedRows {
		t.Errorf("rows in %d out %d suppressed %d; histogram %d, search suppressed %d", in, out, supp, h.Rows(), res.SuppressedRows)
	}
	if supp > int64(opts.SuppressionLimit*float64(in)) {
		t.Errorf("suppressed %d rows, limit %v of %d", supp, opts.SuppressionLimit, in)
	}
	vr, err := array.NewRecordReader(schema, outs)
	if err != nil {
		t.Fatal(err)
	}
	defer vr.Release()
	vopts.QuasiIdentifiers = qi
	rep, err := Verify(ctx, vr, vopts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("output of %s fails Verify: %d violations, e.g. %+v", join(res.Levels), rep.Violations, rep.Examples[0])
	}
	if rep.Rows != out || rep.Classes != res.Classes {
		t.Errorf("Verify saw %d rows in %d classes; Apply wrote %d rows, Search kept %d classes", rep.Rows, rep.Classes, out, res.Classes)
	}
	return res
}

func TestApplyVerifyAdult(t *testing.T) {
	for _, c := range []struct {
		k    int
		supp float64
	}{{5, 0.04}, {100, 0.04}, {5, 0}, {100, 0}} {
		searchApplyVerify(t, adultColumns, "", Options{K: c.k, SuppressionLimit: c.supp, Metric: MetricEntropy}, VerifyOptions{K: c.k})
	}
}

func TestApplyVerifyAdultLT(t *testing.T) {
	qi := []string{"sex", "age", "race", "marital-status", "education", "native-country", "workclass", "salary-class"}
	for _, l := range []*LDiversity{
		{Sensitive: "occupation", L: 3, Variant: LDistinct},
		{Sensitive: "occupation", L: 5, Variant: LEntropy},
		{Sensitive: "occupation", L: 3, Variant: LRecursive, C: 4},
	} {
		searchApplyVerify(t, qi, "occupation", Options{K: 5, Metric: MetricLoss, LDiversity: l}, VerifyOptions{K: 5, LDiversity: l})
	}
	tc := &TCloseness{Sensitive: "occupation", T: 0.2, Distance: TEqual}
	// Without suppression the released rows are the input, so the file's own
	// distribution is the one the search used.
	searchApplyVerify(t, qi, "occupation", Options{K: 5, Metric: MetricDiscernibility, TCloseness: tc}, VerifyOptions{K: 5, TCloseness: tc})
	to := &TCloseness{Sensitive: "age", T: 0.3, Distance: TOrdered}
	qi2 := []string{"sex", "race", "marital-status", "education", "native-country", "workclass", "occupation", "salary-class"}
	searchApplyVerify(t, qi2, "age", Options{K: 5, Metric: MetricPrecision, TCloseness: to}, VerifyOptions{K: 5, TCloseness: to})
}
