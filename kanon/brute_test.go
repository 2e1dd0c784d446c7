package kanon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// bruteOptimum enumerates every transformation with string maps and the
// textbook definitions, sharing nothing with the search but the hierarchies.
func bruteOptimum(t *testing.T, rows [][]string, sens []string, hier []*TableHierarchy, opts Options) (loss float64, level int, found bool, bestLv []int) {
	t.Helper()
	n := len(rows)
	d := len(hier)
	heights := make([]int, d)
	total := 1
	for c, h := range hier {
		heights[c] = h.Levels()
		total *= heights[c]
	}
	maxOut := int(math.Floor(opts.SuppressionLimit * float64(n)))
	// Frequencies over the input of original and generalised values.
	freq := func(c, l int) map[string]float64 {
		m := map[string]float64{}
		for _, r := range rows {
			g, _ := hier[c].Generalize(r[c], l)
			m[g]++
		}
		return m
	}
	// Domain shares for Loss: leaves of the table per generalised value.
	share := func(c, l int, g string) float64 {
		cnt := 0
		for _, v := range hier[c].Domain() {
			if x, _ := hier[c].Generalize(v, l); x == g {
				cnt++
			}
		}
		return float64(cnt) / float64(len(hier[c].Domain()))
	}
	globalSens := map[string]float64{}
	for _, s := range sens {
		globalSens[s] += 1 / float64(n)
	}
	bestLoss, bestLevel := math.Inf(1), 0
	lv := make([]int, d)
	for id := range total {
		x, sum := id, 0
		for c := d - 1; c >= 0; c-- {
			lv[c] = x % heights[c]
			x /= heights[c]
			sum += lv[c]
		}
		gen := make([][]string, n)
		classes := map[string][]int{}
		for i, r := range rows {
			gen[i] = make([]string, d)
			for c := range d {
				gen[i][c], _ = hier[c].Generalize(r[c], lv[c])
			}
			key := strings.Join(gen[i], "\x00")
			classes[key] = append(classes[key], i)
		}
		supp := map[string]bool{}
		out := 0
		for key, members := range classes {
			bad := len(members) < opts.K
			if !bad && opts.LDiversity != nil {
				vals := map[string]int{}
				for _, i := range members {
					vals[sens[i]]++
				}
				switch opts.LDiversity.Variant {
				case LDistinct:
					bad = len(vals) < int(opts.LDiversity.L)
				case LEntropy:
					var h float64
					for _, c := range vals {
						p := float64(c) / float64(len(members))
						h -= p * math.Log(p)
					}
					bad = h < math.Log(opts.LDiversity.L)
				case LRecursive:
					var f []int
					for _, c := range vals {
						f = append(f, c)
					}
					slices.Sort(f)
					slices.Reverse(f)
					l := int(opts.LDiversity.L)
					if len(f) < l {
						bad = true
					} else {
						tail := 0
						for _, x := range f[l-1:] {
							tail += x
						}
						bad = !(float64(f[0]) < opts.LDiversity.C*float64(tail))
					}
				}
			}
			if !bad && opts.TCloseness != nil {
				vals := map[string]float64{}
				for _, i := range members {
					vals[sens[i]] += 1 / float64(len(members))
				}
				var dist float64
				keys := slices.Sorted(maps.Keys(globalSens))
				if opts.TCloseness.Distance == TEqual {
					for _, v := range keys {
						dist += math.Abs(vals[v] - globalSens[v])
					}
					dist /= 2
				} else {
					var cum float64
					for _, v := range keys {
						cum += vals[v] - globalSens[v]
						dist += math.Abs(cum)
					}
					dist /= float64(len(keys) - 1)
				}
				bad = dist > opts.TCloseness.T
			}
			if bad {
				supp[key] = true
				out += len(members)
			}
		}
		if out > maxOut {
			continue
		}
		var l float64
		switch opts.Metric {
		case MetricEntropy, MetricEntropyNM:
			for c := range d {
				f0, fl := freq(c, 0), freq(c, lv[c])
				for i, r := range rows {
					l -= math.Log2(f0[r[c]] / fl[gen[i][c]])
				}
				if opts.Metric == MetricEntropyNM && out > 0 {
					sc := map[string]float64{}
					for key, members := range classes {
						if supp[key] {
							sc[gen[members[0]][c]] += float64(len(members))
						}
					}
					for _, v := range sc {
						l -= v * math.Log2(v/float64(out))
					}
				}
			}
		case MetricDiscernibility:
			for _, m := range classes {
				l += float64(len(m) * len(m))
			}
		case MetricDiscernibilityNM:
			for key, m := range classes {
				if supp[key] {
					l += float64(n * len(m))
				} else {
					l += float64(len(m) * len(m))
				}
			}
		case MetricPrecision:
			for c := range d {
				var v float64
				for i := range rows {
					key := strings.Join(gen[i], "\x00")
					if supp[key] {
						v++
					} else {
						v += float64(lv[c]) / float64(heights[c]-1)
					}
				}
				l += v / float64(n)
			}
			l /= float64(d)
		case MetricLoss:
			prod := 1.0
			for c := range d {
				var agg float64
				for i := range rows {
					key := strings.Join(gen[i], "\x00")
					if supp[key] {
						agg++
					} else {
						agg += share(c, lv[c], gen[i][c])
					}
				}
				lo := float64(n) / float64(len(hier[c].Domain()))
				v := math.Max(0, (agg-lo)/(float64(n)-lo))
				prod *= math.Pow(v+1, 1/float64(d))
			}
			l = prod - 1
		}
		if !found || l < bestLoss-1e-9*math.Abs(bestLoss) || (math.Abs(l-bestLoss) <= 1e-9*math.Abs(bestLoss) && sum < bestLevel) {
			bestLoss, bestLevel, found = l, sum, true
			bestLv = append([]int(nil), lv...)
		}
	}
	return bestLoss, bestLevel, found, bestLv
}

// TestSearchMatchesBruteForce compares Search with exhaustive enumeration on
// random data, for every metric, with and without suppression, with k, l
// and t. A mismatch in optimal loss or in the level of the optimum fails.
func TestSearchMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// Hierarchies: a 12-value column in 4 levels, 8 values in 3, 6 in 3.
	mk := func(n, fan1, fan2 int) *TableHierarchy {
		var rows [][]string
		for i := range n {
			r := []string{fmt.Sprint("v", i), fmt.Sprint("g", i/fan1)}
			if fan2 > 0 {
				r = append(r, fmt.Sprint("h", i/fan2))
			}
			rows = append(rows, append(r, "*"))
		}
		h, err := NewTableHierarchy(rows)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	hier := []*TableHierarchy{mk(12, 2, 6), mk(8, 4, 0), mk(6, 3, 0)}
	names := []string{"a", "b", "c"}
	for trial := range 6 {
		n := 40 + rng.IntN(80)
		rows := make([][]string, n)
		sens := make([]string, n)
		cols := make([][]string, 4)
		for i := range n {
			rows[i] = make([]string, 3)
			for c, h := range hier {
				// Skewed values so that some combinations are rare.
				dom := h.Domain()
				rows[i][c] = dom[min(len(dom)-1, int(rng.ExpFloat64()*float64(len(dom))/3))]
				cols[c] = append(cols[c], rows[i][c])
			}
			sens[i] = fmt.Sprint("s", rng.IntN(4))
			cols[3] = append(cols[3], sens[i])
		}
		b := batchOf(t, mem, map[string][]string{"a": cols[0], "b": cols[1], "c": cols[2], "s": cols[3]}, []string{"a", "b", "c", "s"}, nil)
		hm := map[string]Hierarchy{"a": hier[0], "b": hier[1], "c": hier[2]}
		build := func(sensitive string) *Histogram {
			rdr, _ := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
			defer rdr.Release()
			h, err := BuildHistogram(context.Background(), rdr, HistogramOptions{QuasiIdentifiers: names, Hierarchies: hm, Sensitive: sensitive})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		plain, withSens := build(""), build("s")
		for _, metric := range metricNames {
			for _, supp := range []float64{0, 0.1} {
				for _, model := range []string{"k", "l", "t"} {
					opts := Options{K: 2 + trial%3, SuppressionLimit: supp, Metric: metric}
					h := plain
					switch model {
					case "l":
						// l above k in some trials exercises the pruning by the
						// class size l implies.
						opts.LDiversity = &LDiversity{Sensitive: "s", L: float64(2 + trial%2), Variant: []LVariant{LDistinct, LEntropy, LRecursive}[trial%3], C: 2}
						h = withSens
					case "t":
						// T avoids the exact boundaries where the summation order of
						// floating point decides.
						opts.TCloseness = &TCloseness{Sensitive: "s", T: 0.3517, Distance: []TDistance{TEqual, TOrdered}[trial%2]}
						if trial%2 == 1 {
							opts.TCloseness.T = 0.2317
						}
						h = withSens
					}
					name := fmt.Sprintf("trial %d %s supp=%v %s k=%d", trial, metric, supp, model, opts.K)
					want, wantLevel, ok, wantLv := bruteOptimum(t, rows, sens, hier, opts)
					res, err := Search(context.Background(), h, opts)
					if !ok {
						if err == nil {
							t.Errorf("%s: found %v, brute force finds none", name, res.Levels)
						}
						continue
					}
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					got := res.InformationLoss[string(metric)]
					level := 0
					for _, l := range res.Levels {
						level += l
					}
					if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) || level != wantLevel {
						t.Errorf("%s: loss %v at level %d (%v), brute force %v at level %d (%v)", name, got, level, res.Levels, want, wantLevel, wantLv)
					}
				}
			}
		}
		b.Release()
	}
}

// TestSearchMatchesBruteForceLT compares Search with exhaustive enumeration
// where l-diversity or t-closeness meet suppression — the models are not
// monotone there, and the search runs its two phases (k-part probes, then
// the remaining candidates one by one or a batch per core) on class tables
// with merged sensitive frequencies. The trials vary what those paths
// depend on: K absent (0) or set, few or more than 64 sensitive values
// (the dense and the counting-sort merge), suppression limits, every
// metric, and both ways of checking the remaining candidates.
func TestSearchMatchesBruteForceLT(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 5))
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	mk := func(n, fan1, fan2 int) *TableHierarchy {
		var rows [][]string
		for i := range n {
			r := []string{fmt.Sprint("v", i), fmt.Sprint("g", i/fan1)}
			if fan2 > 0 {
				r = append(r, fmt.Sprint("h", i/fan2))
			}
			rows = append(rows, append(r, "*"))
		}
		h, err := NewTableHierarchy(rows)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	hier := []*TableHierarchy{mk(12, 2, 6), mk(8, 4, 0), mk(6, 3, 0)}
	names := []string{"a", "b", "c"}
	hm := map[string]Hierarchy{"a": hier[0], "b": hier[1], "c": hier[2]}
	checked := 0
	for trial := range 4 {
		values := []int{3, 6, 90}[trial%3]
		n := 100 + rng.IntN(60)
		rows := make([][]string, n)
		sens := make([]string, n)
		cols := make([][]string, 4)
		for i := range n {
			rows[i] = make([]string, 3)
			for c, h := range hier {
				dom := h.Domain()
				rows[i][c] = dom[min(len(dom)-1, int(rng.ExpFloat64()*float64(len(dom))/3))]
				cols[c] = append(cols[c], rows[i][c])
			}
			// Skewed sensitive values, correlated with column a in some
			// trials, so that classes differ in diversity.
			v := int(rng.ExpFloat64() * float64(values) / 4)
			if trial%2 == 1 {
				v += int(rows[i][0][1] - '0')
			}
			if values > 64 && i < values {
				// More than 64 values present: the counting-sort merge.
				v = i
			}
			sens[i] = fmt.Sprint("s", min(v, values-1))
			cols[3] = append(cols[3], sens[i])
		}
		b := batchOf(t, mem, map[string][]string{"a": cols[0], "b": cols[1], "c": cols[2], "s": cols[3]}, []string{"a", "b", "c", "s"}, nil)
		rdr, _ := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
		h, err := BuildHistogram(context.Background(), rdr, HistogramOptions{QuasiIdentifiers: names, Hierarchies: hm, Sensitive: "s"})
		rdr.Release()
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
		models := []Options{
			{LDiversity: &LDiversity{Sensitive: "s", L: 2, Variant: LDistinct}},
			{LDiversity: &LDiversity{Sensitive: "s", L: 2, Variant: LEntropy}},
			{K: 3, LDiversity: &LDiversity{Sensitive: "s", L: 2, Variant: LRecursive, C: 3}},
			{TCloseness: &TCloseness{Sensitive: "s", T: 0.4117, Distance: TEqual}},
			{K: 2, TCloseness: &TCloseness{Sensitive: "s", T: 0.2317, Distance: TOrdered}},
			{K: 4, LDiversity: &LDiversity{Sensitive: "s", L: 2, Variant: LDistinct}, TCloseness: &TCloseness{Sensitive: "s", T: 0.5117, Distance: TEqual}},
		}
		for _, metric := range metricNames {
			for _, supp := range []float64{0.05, 0.3} {
				for mi, model := range models {
					opts := model
					opts.Metric, opts.SuppressionLimit = metric, supp
					name := fmt.Sprintf("trial %d (%d values) %s supp=%v model %d", trial, values, metric, supp, mi)
					want, wantLevel, ok, wantLv := bruteOptimum(t, rows, sens, hier, opts)
					for _, parallel := range []bool{false, true} {
						res, err := searchWith(h, opts, parallel)
						if !ok {
							if !errors.Is(err, ErrNoSolution) {
								t.Errorf("%s: got %v, %v; brute force finds none", name, res, err)
							}
							continue
						}
						if err != nil {
							t.Errorf("%s: %v", name, err)
							continue
						}
						got := res.InformationLoss[string(metric)]
						level := 0
						for _, l := range res.Levels {
							level += l
						}
						if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) || level != wantLevel {
							t.Errorf("%s (parallel %v): loss %v at level %d (%v), brute force %v at level %d (%v)", name, parallel, got, level, res.Levels, want, wantLevel, wantLv)
						}
						checked++
					}
				}
			}
		}
	}
	if checked < 200 {
		t.Errorf("only %d searches found a solution to compare", checked)
	}
}

// searchWith runs Search's algorithm with the remaining candidates checked
// one at a time or a batch at a time on two workers, whatever GOMAXPROCS.
func searchWith(h *Histogram, opts Options, parallel bool) (*Result, error) {
	if err := opts.validate("test", h); err != nil {
		return nil, err
	}
	bufs := searchPool.Get().(*searchBufs)
	s, err := newSearcher(context.Background(), h, opts, bufs)
	defer func() { bufs.release(s) }()
	if err != nil {
		return nil, err
	}
	if s.strategy.monotonePrivacy {
		return s.run()
	}
	s.strategy.linear = (*searcher).checkNow
	if parallel {
		for len(s.workers) < 2 {
			s.workers = append(s.workers, &worker{scratch: &scratch{}, checker: newChecker(h, opts.K, opts.LDiversity, opts.TCloseness)})
		}
		s.workers = s.workers[:2]
		s.strategy.linear = (*searcher).checkLater
	}
	return s.run()
}

// TestRollupPathIndependent rolls random nodes up from the histogram and
// from nodes below them (packed keys repacked by segments, or ids): the
// classes and their sensitive frequencies must not depend on the path.
func TestRollupPathIndependent(t *testing.T) {
	qi := []string{"sex", "age", "race", "marital-status", "education", "native-country", "workclass", "salary-class"}
	h := adultHistogram(t, qi, "occupation")
	e, err := newEngine(h)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	lat := e.lattice
	var s1, s2 scratch
	describe := func(x *table) map[string]string {
		x.ensureIDs()
		m := map[string]string{}
		for r := range x.rows() {
			k := ""
			for c := range x.ids {
				k += fmt.Sprint(",", x.ids[c][r])
			}
			sens, freq := x.frequencies(r)
			if !slices.IsSorted(sens) {
				t.Fatalf("class %s lists its sensitive values out of order: %v", k, sens)
			}
			m[k] = fmt.Sprint(x.counts[r], sens, freq)
		}
		return m
	}
	for range 40 {
		lo, hi := make([]int, len(qi)), make([]int, len(qi))
		for c, height := range lat.heights {
			lo[c] = rng.IntN(height)
			hi[c] = lo[c] + rng.IntN(height-lo[c])
		}
		mid := e.rollup(e.base, lat.id(lo), &s1).clone()
		direct := describe(e.rollup(e.base, lat.id(hi), &s2).clone())
		via := describe(e.rollup(mid, lat.id(hi), &s2).clone())
		if !maps.Equal(direct, via) {
			t.Fatalf("%v via %v: %d classes, directly %d", hi, lo, len(via), len(direct))
		}
	}
}
