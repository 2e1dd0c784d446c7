package dp

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/differential-privacy/go/v2/noise"
)

// row is one test input row.
type row struct {
	subj string
	key  string
	v    float64
}

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "vin", Type: arrow.BinaryTypes.String},
	{Name: "seg", Type: arrow.BinaryTypes.String},
	{Name: "temp", Type: arrow.PrimitiveTypes.Float64},
}, nil)

func makeBatch(t testing.TB, mem memory.Allocator, rows []row) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, testSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.subj)
		b.Field(1).(*array.StringBuilder).Append(r.key)
		b.Field(2).(*array.Float64Builder).Append(r.v)
	}
	return b.NewRecordBatch()
}

// partialOf runs rows (in batches of batch rows) through an Aggregator.
func partialOf(t testing.TB, mem memory.Allocator, opts Options, rows []row, batch int) *Partial {
	t.Helper()
	ag, err := NewAggregator(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	for i := 0; i < len(rows); i += batch {
		rec := makeBatch(t, mem, rows[i:min(len(rows), i+batch)])
		err := ag.Add(context.Background(), rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := ag.Partial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noNoise is the no-noise double: it returns its input unchanged and records
// every call, so arithmetic and sensitivities are tested exactly. Test-only.
type noNoise struct {
	mu    sync.Mutex
	calls []noiseCall
}

type noiseCall struct {
	x          float64
	l0         int64
	lInf       float64
	eps, delta float64
}

var _ noise.Noise = (*noNoise)(nil)

// String keeps the library's log line for an unknown noise (it prints the
// noise with %v) from reading the call log while other goroutines append.
func (n *noNoise) String() string { return "noNoise" }

func (n *noNoise) rec(c noiseCall) {
	n.mu.Lock()
	n.calls = append(n.calls, c)
	n.mu.Unlock()
}

func (n *noNoise) AddNoiseInt64(x, l0, lInf int64, eps, delta float64) (int64, error) {
	n.rec(noiseCall{float64(x), l0, float64(lInf), eps, delta})
	return x, nil
}

func (n *noNoise) AddNoiseFloat64(x float64, l0 int64, lInf, eps, delta float64) (float64, error) {
	n.rec(noiseCall{x, l0, lInf, eps, delta})
	return x, nil
}

func (n *noNoise) Threshold(int64, float64, float64, float64, float64) (float64, error) {
	return 0, nil
}

func (n *noNoise) ComputeConfidenceIntervalInt64(x, _, _ int64, _, _, _ float64) (noise.ConfidenceInterval, error) {
	return noise.ConfidenceInterval{LowerBound: float64(x), UpperBound: float64(x)}, nil
}

func (n *noNoise) ComputeConfidenceIntervalFloat64(x float64, _ int64, _, _, _, _ float64) (noise.ConfidenceInterval, error) {
	return noise.ConfidenceInterval{LowerBound: x, UpperBound: x}, nil
}

func col(t testing.TB, rec arrow.RecordBatch, name string) arrow.Array {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		t.Fatalf("result has no column %q (schema %v)", name, rec.Schema())
	}
	return rec.Column(idx[0])
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }
