package beam

import (
	"reflect"
	"testing"
)

// TestSampleFnAnyOrder checks that the unicity sample is the Runner's
// prefix (whole batches while their rows add up to at most the cap) in
// whatever order and split the runner adds and merges the batches. A small
// late batch must stay out once an earlier one crossed the cap, even when
// the partial that saw the crossing did not see it.
func TestSampleFnAnyOrder(t *testing.T) {
	rows := []int64{4, 4, 4, 1, 0, 2}
	for _, tc := range []struct {
		cap    int64
		want   []int64 // bases kept
		capped bool
	}{
		{cap: 10, want: []int64{0, 100}, capped: true},
		{cap: 12, want: []int64{0, 100, 200}, capped: true},
		{cap: 15, want: []int64{0, 100, 200, 300, 400, 500}},
		{cap: 3, want: nil, capped: true},
	} {
		var all []Batch
		for i, n := range rows {
			all = append(all, Batch{Base: int64(i) * 100, Rows: n})
		}
		f := sampleFn{Cap: tc.cap}
		perms := permutations(len(all))
		for _, perm := range perms {
			for split := 0; split <= len(all); split++ {
				var a, b Sample
				for i, j := range perm {
					if i < split {
						a = f.AddInput(a, all[j])
					} else {
						b = f.AddInput(b, all[j])
					}
				}
				for _, got := range []Sample{f.ExtractOutput(f.MergeAccumulators(a, b)), f.ExtractOutput(f.MergeAccumulators(b, a))} {
					var bases []int64
					for _, x := range got.B {
						bases = append(bases, x.Base)
					}
					if !reflect.DeepEqual(bases, tc.want) || got.Capped != tc.capped {
						t.Fatalf("cap %d, order %v split %d: kept %v capped %v, want %v capped %v", tc.cap, perm, split, bases, got.Capped, tc.want, tc.capped)
					}
				}
			}
		}
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{nil}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestSampleCoder(t *testing.T) {
	s := Sample{B: []Batch{{File: 1, Base: 2, Rows: 3, IPC: []byte{4, 5}}}, Capped: true, Cut: Batch{File: 1, Base: 9}}
	b, err := encSample(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decSample(b)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

// TestMeanCombineFn checks that the distinct subjects of a group are
// counted exactly up to the cap in any merge order, with sums and counts.
func TestMeanCombineFn(t *testing.T) {
	f := meanCombineFn{K: 3}
	parts := []MeanPart{{Sum: 1, N: 1, S: []string{"a"}}, {Sum: 2, N: 2, S: []string{"a", "b"}}, {Sum: 4, N: 1, S: []string{"c"}}, {Sum: 8, N: 3, S: []string{"b", "d"}}}
	for _, perm := range permutations(len(parts)) {
		acc := f.CreateAccumulator()
		for _, j := range perm {
			acc = f.AddInput(acc, parts[j])
		}
		if acc.Sum != 15 || acc.N != 7 || !reflect.DeepEqual(acc.S, []string{"a", "b", "c"}) {
			t.Fatalf("order %v: %+v", perm, acc)
		}
	}
}

func TestConfigUnicityMaxRows(t *testing.T) {
	c := Config{Policy: []byte("x"), PolicyFile: "p.yaml", Inputs: []string{"in"}, Output: "out", TempDir: "tmp", UnicityMaxRows: -1}
	if err := c.Validate(); err == nil {
		t.Fatal("a negative UnicityMaxRows was accepted")
	}
	if got := (Config{}).unicityMaxRows(); got != 1_000_000 {
		t.Fatalf("default UnicityMaxRows %d, want the Runner's 1,000,000", got)
	}
}
