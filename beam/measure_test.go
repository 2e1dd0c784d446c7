package beam

import (
	"reflect"
	"testing"
)

// permutations returns every order of 0..n-1.
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
