package beam

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestPlanRejects: the worker enforces the single-machine Runner's schema
// rules (deny by default, types) before touching any row.
func TestPlanRejects(t *testing.T) {
	f := newFixture(t, 5, 50, 64)
	base := brakedisc.Schema()
	cases := []struct {
		name   string
		schema func() *arrow.Schema
		want   string
	}{
		{"unnamed column", func() *arrow.Schema {
			return arrow.NewSchema(append(base.Fields(), arrow.Field{Name: "odometer", Type: arrow.PrimitiveTypes.Int64}), nil)
		}, `input column "odometer" is not named`},
		{"missing column", func() *arrow.Schema {
			return arrow.NewSchema(base.Fields()[:len(base.Fields())-1], nil)
		}, `column "owner_sex" named by the policy`},
		{"wrong type", func() *arrow.Schema {
			fs := base.Fields()
			for i := range fs {
				if fs[i].Name == "ts" {
					fs[i].Type = arrow.BinaryTypes.String
				}
			}
			return arrow.NewSchema(fs, nil)
		}, `column "ts" has type utf8; action coarsen needs a timestamp`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := newWorker(f.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			err = w.plan(tc.schema())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("plan() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestBatchRoundTrip: a batch survives the element encoding with its rows,
// and no allocation is leaked.
func TestBatchRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rdr, err := brakedisc.NewReader(brakedisc.Config{Vehicles: 3, Rows: 100, Seed: 1, BatchSize: 100}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	if !rdr.Next() {
		t.Fatal(rdr.Err())
	}
	rec := rdr.RecordBatch()
	b, err := encodeBatch(2, 500, rec, mem)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.decode(mem)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if b.File != 2 || b.Base != 500 || !array.RecordEqual(got, rec) {
		t.Fatalf("round trip changed the batch: file %d base %d", b.File, b.Base)
	}
	b.Rows++
	if _, err := b.decode(mem); err == nil {
		t.Fatal("a row count mismatch must be an error")
	}
	if _, err := (Batch{IPC: []byte("garbage")}).decode(mem); err == nil {
		t.Fatal("garbage must be an error")
	}
	_ = context.Background
}

// FuzzSplitFields: the length-prefixed combination keys never panic and
// round-trip.
func FuzzSplitFields(f *testing.F) {
	f.Add(string(packFields([]string{"80331", "1970", "F"})))
	f.Add("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		fields, err := splitFields(key)
		if err != nil {
			return
		}
		if got := string(packFields(fields)); got != key {
			// Non-minimal varints decode but re-encode differently; the
			// decoded fields must still be stable.
			again, err := splitFields(got)
			if err != nil || strings.Join(again, "\x00") != strings.Join(fields, "\x00") || len(again) != len(fields) {
				t.Fatalf("round trip: %q → %q → %q", key, fields, again)
			}
		}
	})
}

// TestWorkerNoLeaks runs the worker's batch steps (opt-out, column actions,
// subject sharding, generalisation and suppression) under a checked
// allocator: every buffer they allocate is released.
func TestWorkerNoLeaks(t *testing.T) {
	f := newFixture(t, 30, 3000, 1000)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	w, err := newWorkerMem(f.cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	rdr, err := brakedisc.NewReader(brakedisc.Config{Vehicles: 30, Rows: 3000, Seed: 7, BatchSize: 1000}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	// Suppress the class of the first row, whatever it is, to exercise the
	// filter path.
	cf := &classFn{workerDoFn: workerDoFn{Cfg: f.cfg, w: w}}
	var dropped, suppressed int64
	for base := int64(0); rdr.Next(); base += rdr.RecordBatch().NumRows() {
		trans, n, err := w.transform(ctx, rdr.RecordBatch(), base)
		if err != nil {
			t.Fatal(err)
		}
		dropped += int64(len(n))
		if cf.d == nil {
			cf.d = &anonymize.KAnonDecision{QuasiIdentifiers: w.p.KAnon.QuasiIdentifiers, Levels: []int{1, 2, 1, 0}, PerSubject: true}
			var key []byte
			for j, q := range cf.d.QuasiIdentifiers {
				v, _ := anonymize.ValueText(trans.Column(w.st.Trans().FieldIndices(q)[0]), 0)
				g, err := w.r.Hierarchy(q).Generalize(v, cf.d.Levels[j])
				if err != nil {
					t.Fatal(err)
				}
				key = append(append(key, g...), 0)
			}
			cf.sup = map[string]bool{string(key): true}
		}
		out, s, err := cf.apply(ctx, mem, trans, base, func(string, int64) {}, nil)
		if err != nil {
			t.Fatal(err)
		}
		suppressed += s
		if out.NumRows()+s != trans.NumRows() || !out.Schema().Equal(w.st.Gen()) {
			t.Fatalf("apply: %d rows out + %d suppressed of %d", out.NumRows(), s, trans.NumRows())
		}
		sub, err := takeRows(ctx, mem, trans, []int32{0, 2, 4})
		if err != nil {
			t.Fatal(err)
		}
		sub.Release()
		out.Release()
		trans.Release()
	}
	if dropped == 0 || suppressed == 0 {
		t.Errorf("the test should exercise opt-out (%d rows) and suppression (%d rows)", dropped, suppressed)
	}
}
