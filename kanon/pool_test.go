package kanon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
)

// TestRadixSortHigh checks the candidate sort's radix sort against a
// comparison sort, with the low bits unique and ascending as sortCandidates
// writes them, and with many equal high parts.
func TestRadixSortHigh(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 255, 256, 257, 5000} {
		for _, spread := range []uint64{1, 7, 1 << 20, 1 << 40} {
			keys := make([]uint64, n)
			for i := range keys {
				keys[i] = (rng.Uint64N(spread)+1<<50)<<candIndexBits | uint64(i)
			}
			want := slices.Clone(keys)
			slices.Sort(want)
			got := radixSortHigh(keys, make([]uint64, n), candIndexBits)
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d spread=%d: radix order differs from sort", n, spread)
			}
		}
	}
}

// TestSearchReusesBuffersSafely runs searches of two different lattices
// concurrently and repeatedly: the pooled buffers (lattice, tags,
// candidates, hash tables, cached tables) must never leak state from one
// search into another, so every result equals the one of a fresh run.
func TestSearchReusesBuffersSafely(t *testing.T) {
	full := adultHistogram(t, adultColumns, "")
	small := adultHistogram(t, adultColumns[:5], "")
	type job struct {
		h    *Histogram
		opts Options
	}
	var jobs []job
	for _, h := range []*Histogram{full, small} {
		for _, k := range []int{5, 100} {
			for _, supp := range []float64{0, 0.04} {
				jobs = append(jobs, job{h, Options{K: k, SuppressionLimit: supp, Metric: MetricEntropy}})
			}
		}
	}
	want := make([]*Result, len(jobs))
	for i, j := range jobs {
		r, err := Search(context.Background(), j.h, j.opts)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r
	}
	var wg sync.WaitGroup
	errs := make(chan string, 2*len(jobs))
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range len(jobs) {
				i := (n + g*3) % len(jobs)
				r, err := Search(context.Background(), jobs[i].h, jobs[i].opts)
				if err != nil {
					errs <- err.Error()
					continue
				}
				if !reflect.DeepEqual(r, want[i]) {
					errs <- fmt.Sprintf("job %d (%d columns, %+v): result differs from the first run: %s vs %s", i, len(jobs[i].h.dims), jobs[i].opts, join(r.Levels), join(want[i].Levels))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestPairBoundsFromJoints checks the two-column bounds computed from the
// level-0 joints against the same bounds counted from the histogram, for
// every pair of Adult's columns at every pair of levels.
func TestPairBoundsFromJoints(t *testing.T) {
	h := adultHistogram(t, adultColumns, "")
	e, err := newEngine(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{2, 5, 100} {
		viaJoint, direct := newKBounds(e, k), newKBounds(e, k)
		d := len(h.dims)
		direct.joints, direct.noJoint = make([]*pairJoint, d*d), make([]bool, d*d)
		for i := range direct.noJoint {
			direct.noJoint[i] = true
		}
		used := 0
		for a := range d {
			for b := a + 1; b < d; b++ {
				for la := range h.dims[a].levels {
					for lb := range h.dims[b].levels {
						got, want := viaJoint.pair(a, b, la, lb), direct.pair(a, b, la, lb)
						if got != want {
							t.Fatalf("k=%d columns %d,%d levels %d,%d: joint %d, histogram %d", k, a, b, la, lb, got, want)
						}
					}
				}
				if viaJoint.joints[a*d+b] != nil {
					used++
				}
			}
		}
		if used == 0 {
			t.Fatalf("k=%d: no joint was built: the test does not exercise them", k)
		}
	}
}
