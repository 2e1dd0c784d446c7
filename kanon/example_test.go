package kanon_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/kanon"
)

// people returns a small batch: age, zip and a sensitive diagnosis.
func people(mem memory.Allocator) arrow.RecordBatch {
	rows := [][3]string{
		{"34", "80331", "flu"}, {"36", "80333", "cold"}, {"35", "80331", "flu"},
		{"38", "80335", "asthma"}, {"52", "81245", "flu"}, {"57", "81249", "cold"},
		{"55", "81247", "asthma"}, {"90", "81249", "flu"},
	}
	names := []string{"age", "zip", "diagnosis"}
	var fields []arrow.Field
	var cols []arrow.Array
	for c, n := range names {
		b := array.NewStringBuilder(mem)
		for _, r := range rows {
			b.Append(r[c])
		}
		cols = append(cols, b.NewArray())
		b.Release()
		fields = append(fields, arrow.Field{Name: n, Type: arrow.BinaryTypes.String})
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(rows)))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func Example() {
	ctx := context.Background()
	mem := memory.NewGoAllocator()
	batch := people(mem)
	defer batch.Release()

	// Ages as 10- and 20-year intervals, post codes masked from the right.
	age, _ := kanon.NewIntervalHierarchy(kanon.IntervalHierarchy{Origin: 0, Width: 10, FanOut: 2, Height: 2, Min: 0, Max: 120})
	hier := map[string]kanon.Hierarchy{"age": age, "zip": kanon.MaskHierarchy{MaxMasked: 4}}

	// Pass 1: histogram of quasi-identifier combinations, then the search.
	b, _ := kanon.NewHistogramBuilder(kanon.HistogramOptions{QuasiIdentifiers: []string{"age", "zip"}, Hierarchies: hier})
	if err := b.Add(batch); err != nil {
		panic(err)
	}
	h, _ := b.Histogram()
	res, err := kanon.Search(ctx, h, kanon.Options{K: 2, SuppressionLimit: 0.2, Metric: kanon.MetricLoss})
	if err != nil {
		panic(err)
	}
	fmt.Println("transformation:", res.Transformation, "suppressed:", res.SuppressedRows)

	// Pass 2: generalise and suppress.
	ap, _ := kanon.NewApplier(h, res, mem)
	defer ap.Release()
	out, _ := ap.Apply(ctx, batch)
	defer out.Release()
	for i := range int(out.NumRows()) {
		fmt.Println(out.Column(0).ValueStr(i), out.Column(1).ValueStr(i))
	}

	// Independent check of the output.
	rdr, _ := array.NewRecordReader(out.Schema(), []arrow.RecordBatch{out})
	defer rdr.Release()
	rep, _ := kanon.Verify(ctx, rdr, kanon.VerifyOptions{QuasiIdentifiers: []string{"age", "zip"}, K: 2})
	fmt.Println("verified:", rep.OK())
	// Output:
	// transformation: map[age:1 zip:1] suppressed: 1
	// 30-39 8033*
	// 30-39 8033*
	// 30-39 8033*
	// 30-39 8033*
	// 50-59 8124*
	// 50-59 8124*
	// 50-59 8124*
	// verified: true
}

func ExampleParseHierarchy() {
	h, err := kanon.ParseHierarchy(strings.NewReader("80331;8033*;*\n80333;8033*;*\n81245;8124*;*\n"), ';')
	if err != nil {
		panic(err)
	}
	v, _ := h.Generalize("80333", 1)
	fmt.Println(h.Levels(), v)
	// Output: 3 8033*
}

func ExampleMeasureRisk() {
	mem := memory.NewGoAllocator()
	batch := people(mem)
	defer batch.Release()
	rdr, _ := array.NewRecordReader(batch.Schema(), []arrow.RecordBatch{batch})
	defer rdr.Release()
	r, _ := kanon.MeasureRisk(context.Background(), rdr, []string{"age", "zip"})
	fmt.Printf("prosecutor %.2f, marketer %.2f\n", r.Prosecutor, r.Marketer)
	// Output: prosecutor 1.00, marketer 1.00
}
