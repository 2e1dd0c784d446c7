package linkage

import (
	"reflect"
	"testing"
)

// FuzzMergeStates: a state from another worker is parsed; corrupt bytes
// are an error, never a panic or a huge allocation.
func FuzzMergeStates(f *testing.F) {
	k := testKey(f, 1)
	opts := TraceOptions{Columns: []string{"a", "b"}, Block: []int{0}, Key: k}
	tr, _ := NewTraces(opts)
	tr.Offer([]uint64{1, 2}, []uint64{3, 4}, [][]uint64{{5, 6}})
	c, _ := tr.Candidates()
	f.Add(c)
	tr.Seal(nil)
	tr.Raw([]uint64{3}, [][]uint64{{5}, {7}})
	r, _ := tr.RawState()
	f.Add(r)
	tr.Published([]uint64{1}, [][]uint64{{5}, {7}})
	pub, _ := tr.PublishedState()
	f.Add(pub)
	s, _ := NewSubjects(SubjectOptions{Key: k})
	s.Add([]uint64{1, 2}, []uint64{3, 4})
	st, _ := s.State()
	f.Add(st)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, _ := NewTraces(opts)
		_ = a.MergeCandidates(b)
		a.Seal(nil)
		_ = a.MergeRaw(b)
		_ = a.MergePublished(b)
		s, _ := NewSubjects(SubjectOptions{Key: k})
		_ = s.Merge(b)
	})
}

// TestMergePublished: published rows split over two Traces sealed alike,
// their states merged into one, give the Result of one Traces that took
// every row (in another order).
func TestMergePublished(t *testing.T) {
	k := testKey(t, 3)
	opts := TraceOptions{Columns: []string{"blk", "v"}, Block: []int{0}, Key: k, Traces: 40, Diagnose: 10}
	var units, truths, blks, vals []uint64
	for u := uint64(1); u <= 60; u++ {
		for i := range uint64(6) {
			units = append(units, u)
			truths = append(truths, 100+u%12)
			blks = append(blks, 1000+(u*7+i)%25)
			vals = append(vals, 5000+(u*i)%4)
		}
	}
	sealed := func() *Traces {
		tr, err := NewTraces(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Offer(units, truths, [][]uint64{blks}); err != nil {
			t.Fatal(err)
		}
		if err := tr.Seal(nil); err != nil {
			t.Fatal(err)
		}
		if err := tr.Raw(truths, [][]uint64{blks, vals}); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	one := sealed()
	// One Traces takes every published row, in reverse order.
	n := len(units)
	ru, rb, rv := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	for i := range n {
		ru[i], rb[i], rv[i] = units[n-1-i], blks[n-1-i], vals[n-1-i]
	}
	if err := one.Published(ru, [][]uint64{rb, rv}); err != nil {
		t.Fatal(err)
	}
	want, err := one.Result()
	if err != nil {
		t.Fatal(err)
	}
	a, b := sealed(), sealed()
	h := n / 3
	if err := a.Published(units[:h], [][]uint64{blks[:h], vals[:h]}); err != nil {
		t.Fatal(err)
	}
	if err := b.Published(units[h:], [][]uint64{blks[h:], vals[h:]}); err != nil {
		t.Fatal(err)
	}
	st, err := b.PublishedState()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.MergePublished(st); err != nil {
		t.Fatal(err)
	}
	if err := a.MergePublished([]byte("not a state")); err == nil {
		t.Error("MergePublished took a corrupt state")
	}
	got, err := a.Result()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged %+v\nwant   %+v", got, want)
	}
	if want.Traces == 0 || want.Diagnosed == 0 {
		t.Errorf("the fixture should measure and diagnose traces: %+v", want)
	}
}
