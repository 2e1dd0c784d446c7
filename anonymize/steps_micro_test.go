package anonymize

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/mobility"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// TestMicroAggMerge: the example policy's microaggregation over a fleet's
// Trans batches, split over three MicroAggs in shuffled order and merged
// through their states, writes the same means bit for bit as one MicroAgg
// fed in order (the Runner's pass 1). Every buffer is released.
func TestMicroAggMerge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	cfg := smallFleet()
	cfg.Rows, cfg.Vehicles = 8_000, 100
	rd, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	r, err := NewRunner(Options{Policy: writePolicy(t, string(brakedisc.DemoPolicy())), Keyring: newKeyring(t), Mem: mem, Release: sinkFor(&memSink{})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Steps(rd.Schema())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	trans := stepsTrans(t, st, rd)
	defer func() {
		for _, r := range trans {
			r.Release()
		}
	}()
	one := st.NewMicroAgg()
	if one == nil {
		t.Fatal("the example policy microaggregates columns")
	}
	for _, tr := range trans {
		if err := one.Add(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	parts := []*MicroAgg{st.NewMicroAgg(), st.NewMicroAgg(), st.NewMicroAgg()}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, i := range rng.Perm(len(trans)) {
		if err := parts[rng.IntN(3)].Add(ctx, trans[i]); err != nil {
			t.Fatal(err)
		}
	}
	merged := st.NewMicroAgg()
	for _, p := range []*MicroAgg{parts[2], parts[0], parts[1]} {
		s, err := p.State()
		if err != nil {
			t.Fatal(err)
		}
		if err := merged.Merge(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := merged.Merge([]byte("not a state")); err == nil {
		t.Error("Merge took a corrupt state")
	}
	rows := 0
	for _, tr := range trans {
		a, err := one.Apply(tr)
		if err != nil {
			t.Fatal(err)
		}
		b, err := merged.Apply(tr)
		if err != nil {
			a.Release()
			t.Fatal(err)
		}
		if !a.Schema().Equal(one.Schema()) {
			t.Errorf("schema %v, want %v", a.Schema(), one.Schema())
		}
		for _, name := range []string{"speed_kmh", "brake_pressure_bar", "disc_temp_c"} {
			x := a.Column(a.Schema().FieldIndices(name)[0]).(*array.Float64)
			y := b.Column(b.Schema().FieldIndices(name)[0]).(*array.Float64)
			for i := range x.Len() {
				if x.IsNull(i) != y.IsNull(i) || math.Float64bits(x.Value(i)) != math.Float64bits(y.Value(i)) {
					t.Fatalf("%s row %d: merged %v, in order %v", name, i, y.Value(i), x.Value(i))
				}
				rows++
			}
		}
		a.Release()
		b.Release()
	}
	if rows == 0 {
		t.Fatal("no rows compared")
	}
}

// stepsTrans runs the input through the steps up to the column actions (as
// package beam does on workers) and returns the Trans batches.
func stepsTrans(t *testing.T, st *Steps, rd array.RecordReader) []arrow.RecordBatch {
	t.Helper()
	ctx := context.Background()
	seg, err := st.NewSegmenter(mobility.OrderTime)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Release()
	var trans []arrow.RecordBatch
	var base int64
	emit := func(rec arrow.RecordBatch) {
		t.Helper()
		defer rec.Release()
		if rec.NumRows() == 0 {
			return
		}
		mid, err := st.Coarsen(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		defer mid.Release()
		tr, err := st.Transform(ctx, mid, base)
		if err != nil {
			t.Fatal(err)
		}
		trans = append(trans, tr)
	}
	for rd.Next() {
		rec := rd.RecordBatch()
		out, err := seg.Push(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		emit(out)
		base += rec.NumRows()
	}
	out, err := seg.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	emit(out)
	return trans
}

// FuzzMicroAggMerge: a state from another worker is parsed; corrupt bytes
// are an error, never a panic.
func FuzzMicroAggMerge(f *testing.F) {
	p, err := ParsePolicy("policy.yaml", brakedisc.DemoPolicy())
	if err != nil {
		f.Fatal(err)
	}
	rd, err := brakedisc.NewReader(brakedisc.Config{Vehicles: 10, Rows: 10, Days: 1, Seed: 1, BatchSize: 10}, nil)
	if err != nil {
		f.Fatal(err)
	}
	schema := rd.Schema()
	rd.Release()
	// The policy's opt-out list and keyring are not needed for the plan's
	// microaggregation: drop them.
	p.OptOut = nil
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		f.Fatal(err)
	}
	defer kr.Destroy()
	r, err := NewRunner(Options{Policy: p, Keyring: kr, Release: sinkFor(&memSink{})})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	st, err := r.Steps(schema)
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	good := st.NewMicroAgg()
	state, _ := good.State()
	f.Add(state)
	f.Add(append(state[:8:8], 3, 1, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := st.NewMicroAgg()
		if m.Merge(b) == nil {
			s, err := m.State()
			if err != nil {
				t.Fatal(err)
			}
			if err := st.NewMicroAgg().Merge(s); err != nil {
				t.Fatalf("a merged state does not merge again: %v", err)
			}
		}
	})
}
