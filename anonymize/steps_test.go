package anonymize

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/mobility"
)

// TestStepsMatchRun drives the exported steps by hand (as package beam
// does on workers) over the same input as Run, and checks that they give
// what Run reports: opt-out counts, trips and trimmed rows, key ids, the
// transformed schema, and the k-anonymity search's transformation over
// the rows cell suppression keeps. Every buffer is released.
func TestStepsMatchRun(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 60, trips: 4, readings: 20, batch: 500})
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	p := writePolicy(t, testPolicy, vinOf(3), vinOf(7))
	kr := newKeyring(t)
	run := func() *Report {
		rdr, err := array.NewRecordReader(schema, recs)
		if err != nil {
			t.Fatal(err)
		}
		defer rdr.Release()
		out, rel := &memSink{}, &memSink{}
		defer out.release()
		defer rel.release()
		r, err := NewRunner(Options{Policy: p, Keyring: kr, Mem: mem, Workers: 2, Release: sinkFor(rel), TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rep, err := r.Run(ctx, rdr, sinkFor(out))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	want := run()

	r, err := NewRunner(Options{Policy: p, Keyring: kr, Mem: mem, Release: sinkFor(&memSink{})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bad := arrow.NewSchema(append(schema.Fields(), arrow.Field{Name: "odometer", Type: arrow.PrimitiveTypes.Int64}), nil)
	if _, err := r.Steps(bad); err == nil || !strings.Contains(err.Error(), `"odometer" is not named`) {
		t.Fatalf("Steps on an unnamed column: %v", err)
	}
	st, err := r.Steps(schema)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seg, err := st.NewSegmenter(mobility.OrderTime)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Release()
	var trans []arrow.RecordBatch
	defer func() {
		for _, r := range trans {
			r.Release()
		}
	}()
	var base, optRows int64
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
		if !tr.Schema().Equal(st.Trans()) {
			t.Fatalf("transformed schema %v, want %v", tr.Schema(), st.Trans())
		}
		trans = append(trans, tr)
	}
	for _, rec := range recs {
		kept, n, err := st.OptOut(ctx, rec, base)
		if err != nil {
			t.Fatal(err)
		}
		optRows += int64(len(n))
		out, err := seg.Push(ctx, kept)
		kept.Release()
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
	if optRows != want.Rows.FilteredBy["opt_out"] || len(r.DrainOptOutSeen()) != want.OptOut.Subjects || r.OptOutListed() != want.OptOut.Listed {
		t.Errorf("opt-out: %d rows, want %+v", optRows, want.OptOut)
	}
	if s := seg.Stats(); s.Trips != want.Mobility.Trips || s.RowsTrimmed != want.Rows.FilteredBy["trip_trim"] {
		t.Errorf("trips %+v, want %d trips, %d trimmed", s, want.Mobility.Trips, want.Rows.FilteredBy["trip_trim"])
	}
	if !reflect.DeepEqual(r.KeyIDs(), want.Keys) {
		t.Errorf("key ids %v, want %v", r.KeyIDs(), want.Keys)
	}
	// k-anonymity over the rows cell suppression keeps, per subject.
	m := p.Mobility
	cs, err := mobility.NewCellSuppressor(st.Trans(), mobility.SuppressOptions{Subject: p.Subject, Cell: m.CellColumn, Time: m.Time, K: m.K, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trans {
		if err := cs.Observe(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var combos []KAnonCombo
	for _, tr := range trans {
		kept, _, err := cs.Apply(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		for i := range int(kept.NumRows()) {
			c := KAnonCombo{}
			for _, q := range p.KAnon.QuasiIdentifiers {
				v, _ := ValueText(kept.Column(kept.Schema().FieldIndices(q)[0]), i)
				c.Values = append(c.Values, v)
			}
			c.Subject, _ = ValueText(kept.Column(kept.Schema().FieldIndices(p.Subject)[0]), i)
			if k := strings.Join(c.Values, "\x00") + "\x00" + c.Subject; !seen[k] {
				seen[k] = true
				combos = append(combos, c)
			}
		}
		kept.Release()
	}
	d, err := st.KAnonSearch(combos)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Transformation, want.KAnon.Transformation) {
		t.Errorf("transformation %v, want %v", d.Transformation, want.KAnon.Transformation)
	}
	g, err := st.Generalize("owner_sex", trans[0].Column(trans[0].Schema().FieldIndices("owner_sex")[0]), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ValueText(g, 0); v != "*" {
		t.Errorf("owner_sex at level 1: %q, want *", v)
	}
	g.Release()
	o, err := st.DPOptions()
	if err != nil || !reflect.DeepEqual(o.GroupBy, p.Release.By) {
		t.Errorf("dp options %+v, %v", o, err)
	}
}
