package linkage

import "testing"

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
	s, _ := NewSubjects(SubjectOptions{Key: k})
	s.Add([]uint64{1, 2}, []uint64{3, 4})
	st, _ := s.State()
	f.Add(st)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, _ := NewTraces(opts)
		_ = a.MergeCandidates(b)
		a.Seal(nil)
		_ = a.MergeRaw(b)
		s, _ := NewSubjects(SubjectOptions{Key: k})
		_ = s.Merge(b)
	})
}
