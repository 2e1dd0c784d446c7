package anonymize

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/linkage"
)

// TestLinkageMerge: the example policy's linkage and unicity measure run
// by one Linkage over every batch, and by three whose batches are in
// reverse order and whose states are merged (as package beam's workers
// do), give the same figures. Without a measurement key there is no
// Linkage.
func TestLinkageMerge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	cfg := smallFleet()
	cfg.Rows, cfg.Vehicles = 8_000, 100
	steps := func(key []byte) (*Steps, func()) {
		rd, err := brakedisc.NewReader(cfg, mem)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Release()
		r, err := NewRunner(Options{Policy: writePolicy(t, string(brakedisc.DemoPolicy())), Keyring: newKeyring(t), Mem: mem,
			Release: sinkFor(&memSink{}), Measure: MeasureOptions{Key: key}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.Steps(rd.Schema())
		if err != nil {
			t.Fatal(err)
		}
		return st, func() { st.Close(); r.Close() }
	}
	if st, done := steps(nil); true {
		if _, err := st.NewLinkage(); err == nil || !strings.Contains(err.Error(), "Measure.Key must be set") {
			t.Errorf("NewLinkage without a key: %v", err)
		}
		done()
	}
	st, done := steps([]byte(strings.Repeat("k", 32)))
	defer done()
	rd, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	trans := stepsTrans(t, st, rd)
	defer func() {
		for _, r := range trans {
			r.Release()
		}
	}()
	micro := st.NewMicroAgg()
	for _, tr := range trans {
		if err := micro.Add(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	// The input batches at raw GPS precision: the fleet again.
	rd2, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Release()
	var input []arrow.RecordBatch
	for rd2.Next() {
		rec := rd2.RecordBatch()
		rec.Retain()
		input = append(input, rec)
	}
	defer func() {
		for _, r := range input {
			r.Release()
		}
	}()
	// Every trip is published (no gate), every row written (the Gen
	// layout: microaggregated; the policy has no kanon block).
	var written []arrow.RecordBatch
	for _, tr := range trans {
		m, err := micro.Apply(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Schema().Equal(st.Gen()) {
			t.Fatalf("written schema %v, want Gen %v", m.Schema(), st.Gen())
		}
		written = append(written, m)
	}
	defer func() {
		for _, r := range written {
			r.Release()
		}
	}()

	measure := func(parts int, order func(int) []int) *RiskFigures {
		t.Helper()
		ls := make([]*Linkage, parts)
		for i := range ls {
			l, err := st.NewLinkage()
			if err != nil {
				t.Fatal(err)
			}
			ls[i] = l
		}
		each := func(recs []arrow.RecordBatch, f func(*Linkage, arrow.RecordBatch) error) {
			for k, i := range order(len(recs)) {
				if err := f(ls[k%parts], recs[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		merge := func(state func(*Linkage) ([]byte, error), into func([]byte) error) {
			for _, l := range ls[1:] {
				s, err := state(l)
				if err != nil {
					t.Fatal(err)
				}
				if err := into(s); err != nil {
					t.Fatal(err)
				}
			}
		}
		one := ls[0]
		each(input, func(l *Linkage, r arrow.RecordBatch) error { return l.Input(ctx, r) })
		each(trans, func(l *Linkage, r arrow.RecordBatch) error { return l.Offer(ctx, r) })
		merge((*Linkage).Candidates, one.MergeCandidates)
		cands, err := one.Candidates()
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range ls {
			if i > 0 {
				// Every part seals the merged candidates.
				fresh, err := st.NewLinkage()
				if err != nil {
					t.Fatal(err)
				}
				if err := fresh.MergeCandidates(cands); err != nil {
					t.Fatal(err)
				}
				gps, err := l.GPSState()
				if err != nil {
					t.Fatal(err)
				}
				if err := fresh.MergeGPS(gps); err != nil {
					t.Fatal(err)
				}
				ls[i] = fresh
			}
			if err := ls[i].Seal(false, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		each(trans, func(l *Linkage, r arrow.RecordBatch) error { return l.Spilled(ctx, r, micro) })
		merge((*Linkage).RawState, one.MergeRaw)
		merge((*Linkage).BeforeState, one.MergeBefore)
		merge((*Linkage).GPSState, one.MergeGPS)
		each(written, func(l *Linkage, r arrow.RecordBatch) error { return l.Written(ctx, r) })
		merge((*Linkage).PublishedState, one.MergePublished)
		rf, err := one.Figures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rf
	}
	inOrder := func(n int) []int {
		o := make([]int, n)
		for i := range o {
			o[i] = i
		}
		return o
	}
	reversed := func(n int) []int {
		o := inOrder(n)
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			o[i], o[j] = o[j], o[i]
		}
		return o
	}
	want := measure(1, inOrder)
	got := measure(3, reversed)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n%+v\none:\n%+v", *got, *want)
	}
	if want.Traces.Traces == 0 || want.Before.Unicity.Of == 0 || want.RawGPS.Unicity.Of == 0 {
		t.Errorf("the fixture should sample traces and subjects: %+v", *want)
	}
}

// TestCheckLinkage: the limit an engine checks before writing is the
// report builder's, on the upper end of the interval of a sample and on
// the share of a census.
func TestCheckLinkage(t *testing.T) {
	r, err := NewRunner(Options{Policy: writePolicy(t, string(brakedisc.DemoPolicy())), Keyring: newKeyring(t), Release: sinkFor(&memSink{})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rd, err := brakedisc.NewReader(brakedisc.Config{Vehicles: 10, Rows: 10, Days: 1, Seed: 1, BatchSize: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Steps(rd.Schema())
	rd.Release()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fig := func(census bool, share, upper float64) *RiskFigures {
		return &RiskFigures{Columns: []string{"ts", "cell", "speed_kmh"},
			Traces: linkage.TraceResult{Traces: 100, Census: census, Linkage: linkage.Proportion{Of: 100, Share: share, Upper: upper}}}
	}
	for _, tc := range []struct {
		name string
		rf   *RiskFigures
		fail bool
	}{
		{"sample under the limit", fig(false, 0, 0.03), false},
		{"sample whose interval reaches over", fig(false, 0.02, 0.08), true},
		{"census under the limit", fig(true, 0.04, 0.1), false},
		{"census over", fig(true, 0.2, 0.3), true},
	} {
		err := st.CheckLinkage(tc.rf)
		if (err != nil) != tc.fail || (err != nil && !strings.Contains(err.Error(), "mobility.max_linkage")) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
