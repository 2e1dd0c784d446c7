package dp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/differential-privacy/go/v2/dpagg"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

func baseOpts() Options {
	return Options{
		Subject: "vin", GroupBy: []string{"seg"},
		Aggregates: []Aggregate{
			{Kind: Count},
			{Kind: Sum, Column: "temp", Lower: 0, Upper: 100},
			{Kind: Mean, Column: "temp", Lower: 0, Upper: 100},
			{Kind: Variance, Column: "temp", Lower: 0, Upper: 100},
			{Kind: Quantiles, Column: "temp", Lower: 0, Upper: 100, Ranks: []float64{0.5}},
		},
		MaxPartitions: 2, MaxPerPartition: 3,
	}
}

// TestExactArithmetic checks the released values against hand-computed ones
// with the no-noise double, on data within the bounds (no sampling).
func TestExactArithmetic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rows := []row{
		{"v1", "a", 10}, {"v1", "a", 20}, {"v2", "a", 30}, {"v1", "b", 200}, // 200 clamps to 100
		{"v3", "b", 40}, {"v3", "b", 50}, {"v2", "b", -5}, // -5 clamps to 0
	}
	opts := baseOpts()
	pl, _ := NewPartitionList("seg")
	for _, k := range []string{"a", "b", "c"} {
		pl.Add(k)
	}
	opts.Public = pl
	p := partialOf(t, mem, opts, rows, 3)
	acct, _ := NewAccountant(1, 0)
	res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem, noise: &noNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	rec := res.Record
	if rec.NumRows() != 3 || res.PartitionsKept != 3 || res.PartitionsPublicEmpty != 1 {
		t.Fatalf("rows %d kept %d empty %d", rec.NumRows(), res.PartitionsKept, res.PartitionsPublicEmpty)
	}
	want := []struct {
		key             string
		count           int64
		sum, mean, vari float64
		median          float64
	}{
		{"a", 3, 60, 20, 200.0 / 3, 20},
		{"b", 4, 190, 47.5, varOf(100, 40, 50, 0), 45},
		{"c", 0, 0, 50, 0, 50},
	}
	keys := col(t, rec, "seg").(*array.String)
	for i, w := range want {
		if keys.Value(i) != w.key {
			t.Fatalf("row %d key %q want %q", i, keys.Value(i), w.key)
		}
		if got := col(t, rec, "count").(*array.Int64).Value(i); got != w.count {
			t.Errorf("%s count %d want %d", w.key, got, w.count)
		}
		if got := col(t, rec, "sum_temp").(*array.Float64).Value(i); !near(got, w.sum, 1e-12) {
			t.Errorf("%s sum %v want %v", w.key, got, w.sum)
		}
		if got := col(t, rec, "mean_temp").(*array.Float64).Value(i); w.count > 0 && !near(got, w.mean, 1e-12) {
			t.Errorf("%s mean %v want %v", w.key, got, w.mean)
		}
		if got := col(t, rec, "variance_temp").(*array.Float64).Value(i); !near(got, w.vari, 1e-9) {
			t.Errorf("%s variance %v want %v", w.key, got, w.vari)
		}
		// The quantile tree resolves 100/65536 per leaf.
		if got := col(t, rec, "temp_p50").(*array.Float64).Value(i); w.count > 0 && math.Abs(got-w.median) > 15 {
			t.Errorf("%s median %v want about %v", w.key, got, w.median)
		}
	}
	if s := res.Stats; s.RowsIn != 7 || s.RowsUsed != 7 || s.RowsIn != s.RowsUsed+s.RowsNotPublic+s.RowsDroppedL0+s.RowsDroppedLInf {
		t.Errorf("stats %+v", s)
	}
	if res.Spent.EpsilonSpent != 1 || acct.Spent().EpsilonSpent != 1 {
		t.Errorf("spent %+v", res.Spent)
	}
}

func varOf(xs ...float64) float64 {
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return v / float64(len(xs))
}

// TestSameNoiseCallsAsLibrary feeds the same bounded rows row by row into the
// library's BoundedMean, BoundedVariance and BoundedSumFloat64 (through a
// recording no-noise double) and checks that our release asks the noise for
// the same values with the same L0, L∞, ε and δ.
func TestSameNoiseCallsAsLibrary(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rows := []row{{"v1", "a", 10}, {"v1", "a", 25}, {"v2", "a", 30}, {"v3", "a", 99}, {"v3", "a", 150}}
	const lo, hi, l0, linf, eps = 0.0, 100.0, 2, 3, 0.9
	for _, kind := range []Kind{Count, Mean, Variance} {
		t.Run(kind.String(), func(t *testing.T) {
			opts := baseOpts()
			opts.Aggregates = []Aggregate{{Kind: kind, Column: "temp", Lower: lo, Upper: hi}}
			if kind == Count {
				// The library's standalone Count allows one row per subject.
				opts.Aggregates = []Aggregate{{Kind: Count}}
				opts.MaxPerPartition = 1
			}
			pl, _ := NewPartitionList("seg")
			pl.Add("a")
			opts.Public = pl
			p := partialOf(t, mem, opts, rows, 2)
			ours := &noNoise{}
			acct, _ := NewAccountant(eps, 0)
			res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem, noise: ours})
			if err != nil {
				t.Fatal(err)
			}
			res.Release()
			lib := &noNoise{}
			var result func() (float64, error)
			var add func(float64) error
			switch kind {
			case Count:
				c, err := dpagg.NewCount(&dpagg.CountOptions{Epsilon: eps, MaxPartitionsContributed: l0, Noise: lib})
				if err != nil {
					t.Fatal(err)
				}
				result = func() (float64, error) { v, err := c.Result(); return float64(v), err }
				add = func(float64) error { return nil }
				lib.calls = nil
				c.IncrementBy(3) // three subjects, one row each after bounding
			case Mean:
				bm, err := dpagg.NewBoundedMean(&dpagg.BoundedMeanOptions{Epsilon: eps, MaxPartitionsContributed: l0, MaxContributionsPerPartition: linf, Lower: lo, Upper: hi, Noise: lib})
				if err != nil {
					t.Fatal(err)
				}
				result, add = bm.Result, bm.Add
			case Variance:
				bv, err := dpagg.NewBoundedVariance(&dpagg.BoundedVarianceOptions{Epsilon: eps, MaxPartitionsContributed: l0, MaxContributionsPerPartition: linf, Lower: lo, Upper: hi, Noise: lib})
				if err != nil {
					t.Fatal(err)
				}
				result, add = bv.Result, bv.Add
			}
			if kind != Count {
				lib.calls = nil // drop the constructor's parameter probes
			}
			for _, r := range rows {
				add(r.v)
			}
			if _, err := result(); err != nil {
				t.Fatal(err)
			}
			ours.calls = ours.calls[:len(lib.calls)] // the rest are interval computations
			sortCalls(ours.calls)
			sortCalls(lib.calls)
			for i := range lib.calls {
				o, l := ours.calls[i], lib.calls[i]
				if o.l0 != l.l0 || o.lInf != l.lInf || o.eps != l.eps || o.delta != l.delta || !near(o.x, l.x, 1e-12) {
					t.Errorf("noise call %d: ours %+v, library %+v", i, o, l)
				}
			}
		})
	}
}

func sortCalls(c []noiseCall) {
	sort.Slice(c, func(i, j int) bool { return c[i].lInf < c[j].lInf || c[i].lInf == c[j].lInf && c[i].x < c[j].x })
}

// TestMergeHalves: partials of two halves (split by subject) merge into the
// partial of the whole, also after a serialisation round trip.
func TestMergeHalves(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var all, h1, h2 []row
	for s := range 40 {
		for j := range 2 { // within L0 = 2 and L∞ = 3: no sampling, exact
			r := row{fmt.Sprintf("v%d", s), fmt.Sprintf("k%d", (s+j)%5), float64((s*7 + j) % 100)}
			all = append(all, r)
			if s%2 == 0 {
				h1 = append(h1, r)
			} else {
				h2 = append(h2, r)
			}
		}
	}
	opts := baseOpts()
	whole := partialOf(t, mem, opts, all, 7)
	a := partialOf(t, mem, opts, h1, 5)
	b := partialOf(t, mem, opts, h2, 64)
	blob, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var b2 Partial
	if err := b2.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(&b2); err != nil {
		t.Fatal(err)
	}
	if len(a.Partitions) != len(whole.Partitions) {
		t.Fatalf("%d partitions, whole has %d", len(a.Partitions), len(whole.Partitions))
	}
	for k, w := range whole.Partitions {
		g := a.Partitions[k]
		if g == nil || g.Subjects != w.Subjects || g.Rows != w.Rows || !slices.Equal(g.Sums, w.Sums) || !slices.Equal(g.SumSquares, w.SumSquares) {
			t.Errorf("partition %q: merged %+v whole %+v", k, g, w)
			continue
		}
		for i := range w.Leaves {
			if fmt.Sprint(g.Leaves[i]) != fmt.Sprint(w.Leaves[i]) {
				t.Errorf("partition %q leaves differ", k)
			}
		}
	}
	if a.Stats != whole.Stats {
		t.Errorf("stats %+v vs %+v", a.Stats, whole.Stats)
	}
	if err := a.Merge(&b2); err == nil {
		t.Error("merging a consumed partial must fail")
	}
	other := baseOpts()
	other.MaxPerPartition = 4
	c := partialOf(t, mem, other, h1, 5)
	if err := a.Merge(c); err == nil {
		t.Error("merging partials of different options must fail")
	}
}

// TestOneSubjectSensitivity: adding one subject with 10,000 rows (extreme
// values, many partitions) changes the pre-noise state by at most the
// sensitivities the noise is calibrated to: at most L0 partitions change,
// each by at most L∞ rows, one subject, L∞·max(|lo|,|hi|) of sum, etc.
func TestOneSubjectSensitivity(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var base []row
	for s := range 30 {
		base = append(base, row{fmt.Sprintf("v%d", s), fmt.Sprintf("k%d", s%7), float64(s)})
	}
	opts := baseOpts()
	opts.Aggregates[1] = Aggregate{Kind: Sum, Column: "temp", Lower: -10, Upper: 100}
	const l0, linf = 2, 3
	for trial := range 5 {
		extra := slices.Clone(base)
		for i := range 10000 {
			v := 1e9
			if i%2 == 1 {
				v = -1e9
			}
			extra = append(extra, row{"intruder", fmt.Sprintf("k%d", i%50), v})
		}
		// Shuffle the intruder's rows among the others: order must not matter.
		slices.Reverse(extra)
		p0 := partialOf(t, mem, opts, base, 8)
		p1 := partialOf(t, mem, opts, extra, 1000)
		changed := 0
		for k, b := range p1.Partitions {
			a := p0.Partitions[k]
			if a == nil {
				a = newPartitionState(&p1.Spec)
			}
			if a.Rows == b.Rows && a.Subjects == b.Subjects {
				continue
			}
			changed++
			if d := b.Rows - a.Rows; d < 1 || d > linf {
				t.Errorf("trial %d %s: rows changed by %d", trial, k, d)
			}
			if d := b.Subjects - a.Subjects; d != 1 {
				t.Errorf("trial %d %s: subjects changed by %d", trial, k, d)
			}
			for i, ag := range p1.Spec.Aggregates {
				mid := ag.Lower + (ag.Upper-ag.Lower)/2
				var bound, bound2 float64
				switch ag.Kind {
				case Sum:
					bound = sumLInf(ag.Lower, ag.Upper, linf)
				case Mean, Variance:
					bound, bound2 = (ag.Upper-mid)*linf, (ag.Upper-mid)*(ag.Upper-mid)*linf
				}
				if d := math.Abs(b.Sums[i] - a.Sums[i]); d > bound+1e-9 {
					t.Errorf("trial %d %s %v: sum changed by %v > %v", trial, k, ag.Kind, d, bound)
				}
				if d := math.Abs(b.SumSquares[i] - a.SumSquares[i]); d > bound2+1e-9 {
					t.Errorf("trial %d %s %v: sum of squares changed by %v > %v", trial, k, ag.Kind, d, bound2)
				}
				var dl int64
				for l, c := range b.Leaves[i] {
					dl += c - a.Leaves[i][l]
				}
				if dl > linf {
					t.Errorf("trial %d %s: quantile leaves changed by %d", trial, k, dl)
				}
			}
		}
		if changed > l0 || changed == 0 {
			t.Errorf("trial %d: %d partitions changed, L0 = %d", trial, changed, l0)
		}
		if p1.Stats.RowsIn != p1.Stats.RowsUsed+p1.Stats.RowsDroppedL0+p1.Stats.RowsDroppedLInf {
			t.Errorf("rows not accounted for: %+v", p1.Stats)
		}
	}
}

// TestL0UniformAndNeverExceeded: one subject in 20 partitions with L0 = 3
// is in exactly 3 partitions after bounding, every time; each partition is
// chosen with probability 3/20. Chi-square with 19 degrees of freedom at
// α = 1e-4 (critical value 50.8): false-rejection probability 1e-4.
func TestL0UniformAndNeverExceeded(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var rows []row
	for k := range 20 {
		rows = append(rows, row{"solo", fmt.Sprintf("k%02d", k), 1})
	}
	opts := baseOpts()
	opts.Aggregates = []Aggregate{{Kind: Count}}
	opts.MaxPartitions = 3
	const trials = 2000
	hits := map[string]int{}
	for range trials {
		p := partialOf(t, mem, opts, rows, 20)
		if len(p.Partitions) != 3 {
			t.Fatalf("subject in %d partitions, L0 = 3", len(p.Partitions))
		}
		for k := range p.Partitions {
			hits[k]++
		}
	}
	exp := float64(trials) * 3 / 20
	var chi float64
	for k := range 20 {
		o := float64(hits[tupleKey([]string{fmt.Sprintf("k%02d", k)})])
		chi += (o - exp) * (o - exp) / exp
	}
	if chi > 50.8 {
		t.Errorf("chi-square %.1f > 50.8: L0 choice is not uniform (%v)", chi, hits)
	}
}

// TestReservoirUniform: with L∞ = 3 and 10 rows in one pair, each row is
// kept with probability 0.3 whatever its position, with one value column
// and with three (a row's values stay together). 20,000
// trials each; each row's count is checked at ±4.5σ (false rejection
// ≤ 2·10·6.8e-6).
func TestReservoirUniform(t *testing.T) {
	r, err := newRand()
	if err != nil {
		t.Fatal(err)
	}
	const trials, n, k = 20000, 10, 3
	sid := make([]uint32, n)
	pid := make([]uint32, n)
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = float64(i)
	}
	for _, nv := range []int{1, 3} {
		cols := make([][]float64, nv)
		for c := range cols {
			cols[c] = vals
		}
		var hits [n]int
		s := &shard{k: k, nv: nv, rng: r, buckets: make([]bucket, bucketsPerShard)}
		s.setLayout()
		for range trials {
			// bound empties every bucket, so the shard is reused.
			s.rows = s.rows[:0]
			for i := range n {
				s.rows = append(s.rows, int32(i))
			}
			s.add(sid, pid, cols)
			var st Stats
			s.bound(1, func(p chosenPair) {
				for i := 0; i < len(p.vals); i += nv {
					for c := 1; c < nv; c++ {
						if p.vals[i+c] != p.vals[i] {
							t.Fatalf("row values torn apart: %v", p.vals)
						}
					}
					hits[int(p.vals[i])]++
				}
			}, &st)
		}
		p := float64(k) / n
		sd := math.Sqrt(trials * p * (1 - p))
		for i, h := range hits {
			if math.Abs(float64(h)-trials*p) > 4.5*sd {
				t.Errorf("nv=%d: row %d kept %d times, want %.0f ± %.0f", nv, i, h, trials*p, 4.5*sd)
			}
		}
	}
}

// TestSelectionDropsSingleSubjects: with δ = 1e-9 a partition holding one
// subject is released with probability ≤ 1e-9; over 20,000 such partitions
// the chance of any release is ≤ 2e-5. A partition with 2,000 subjects is
// kept (failure probability negligible at ε = 1).
func TestSelectionDropsSingleSubjects(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var rows []row
	for s := range 1000 {
		rows = append(rows, row{fmt.Sprintf("v%d", s), fmt.Sprintf("k%d", s), 1})
	}
	for s := range 2000 {
		rows = append(rows, row{fmt.Sprintf("w%d", s), "big", 1})
	}
	opts := baseOpts()
	opts.Aggregates = []Aggregate{{Kind: Count, Epsilon: 1}}
	opts.MaxPartitions = 1
	opts.Selection = Budget{Epsilon: 1, Delta: 1e-9}
	blob, err := partialOf(t, mem, opts, rows, 4096).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for trial := range 20 {
		var p Partial
		if err := p.UnmarshalBinary(blob); err != nil {
			t.Fatal(err)
		}
		acct, _ := NewAccountant(2, 1e-9)
		res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		if res.PartitionsKept != 1 || res.PartitionsDropped != 1000 {
			t.Errorf("trial %d: kept %d dropped %d, want 1 and 1000", trial, res.PartitionsKept, res.PartitionsDropped)
		}
		if k := col(t, res.Record, "seg").(*array.String); k.Len() == 1 && k.Value(0) != "big" {
			t.Errorf("released %q", k.Value(0))
		}
		res.Release()
	}
}

func TestErrorsReleaseNothing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good := []row{{"v1", "a", 1}, {"v2", "a", 2}}
	cases := []struct {
		name    string
		opts    func(*Options)
		rows    []row
		eps     float64
		wantErr string
	}{
		{"overspent", func(o *Options) { o.Aggregates[0].Epsilon = 2 }, good, 1, "budget exceeded"},
		{"lower>upper", func(o *Options) { o.Aggregates[1].Lower = 200 }, good, 1, "lower bound 200 must be smaller"},
		{"nan bound", func(o *Options) { o.Aggregates[1].Upper = math.NaN() }, good, 1, "must be finite"},
		{"no L0", func(o *Options) { o.MaxPartitions = 0 }, good, 1, "MaxPartitions must be >= 1"},
		{"no Linf", func(o *Options) { o.MaxPerPartition = -1 }, good, 1, "MaxPerPartition must be >= 1"},
		{"no subject", func(o *Options) { o.Subject = "" }, good, 1, "Subject must be set"},
		{"missing subject column", func(o *Options) { o.Subject = "owner" }, good, 1, `column "owner": subject column not found`},
		{"missing value column", func(o *Options) { o.Aggregates[1].Column = "speed" }, good, 1, `column "speed": value column not found`},
		{"NaN value", nil, []row{{"v1", "a", 1}, {"v2", "a", math.NaN()}}, 1, `row 2, column "temp": value NaN is not finite`},
		{"Inf value", nil, []row{{"v1", "a", math.Inf(1)}}, 1, `row 1, column "temp": value +Inf`},
		{"empty input", nil, nil, 1, "no data"},
		{"laplace delta", func(o *Options) { o.Aggregates[0].Delta = 1e-6 }, good, 1, "Delta must be 0 with Laplace"},
		{"no delta for selection", func(o *Options) { o.Public = nil }, good, 1, "needs δ > 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := baseOpts()
			opts.Aggregates = opts.Aggregates[:2]
			pl, _ := NewPartitionList("seg")
			pl.Add("a")
			if c.name != "empty input" {
				opts.Public = pl
			}
			if c.opts != nil {
				c.opts(&opts)
			}
			acct, err := NewAccountant(c.eps, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = func() error {
				ag, err := NewAggregator(opts)
				if err != nil {
					return err
				}
				defer ag.Close()
				if len(c.rows) > 0 {
					rec := makeBatch(t, mem, c.rows)
					defer rec.Release()
					if err := ag.Add(context.Background(), rec); err != nil {
						// The aggregator is poisoned: Partial must fail too.
						if _, err2 := ag.Partial(context.Background()); err2 == nil {
							t.Error("Partial after a failed Add succeeded")
						}
						return err
					}
				}
				p, err := ag.Partial(context.Background())
				if err != nil {
					return err
				}
				res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem})
				if res != nil {
					res.Release()
					t.Error("a result came back with the error")
				}
				return err
			}()
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
			if s := acct.Spent(); s.EpsilonSpent != 0 || s.DeltaSpent != 0 {
				t.Errorf("budget spent on error: %+v", s)
			}
		})
	}
	for _, e := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := NewAccountant(e, 0); err == nil {
			t.Errorf("NewAccountant(%v) accepted", e)
		}
	}
	for _, d := range []float64{-1e-9, 1, math.NaN()} {
		if _, err := NewAccountant(1, d); err == nil {
			t.Errorf("NewAccountant(1, %v) accepted", d)
		}
	}
}

func TestSingleUseAndBudget(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	opts := baseOpts()
	pl, _ := NewPartitionList("seg")
	pl.Add("a")
	opts.Public = pl
	p := partialOf(t, mem, opts, []row{{"v1", "a", 1}}, 1)
	acct, _ := NewAccountant(1, 0)
	res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	if _, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem}); err == nil {
		t.Error("second Release succeeded")
	}
	p2 := partialOf(t, mem, opts, []row{{"v1", "a", 1}}, 1)
	if _, err := p2.Release(context.Background(), acct, ReleaseOptions{Mem: mem}); !errors.Is(err, ErrBudgetExceeded) {
		t.Errorf("release on a spent accountant: %v", err)
	}
}

// TestDictionaryIntAndTimestampKeys: dictionary subjects whose dictionary
// changes between batches, integer and timestamp keys; exact counts with the
// no-noise double; key types survive into the result; null dictionary
// values are rejected.
func TestDictionaryIntAndTimestampKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	tsType := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: dt}, {Name: "road", Type: arrow.PrimitiveTypes.Int64}, {Name: "hour", Type: tsType}}, nil)
	batch := func(dict []string, idx []int32, roads []int64, hours []int64, nullDict bool) arrow.RecordBatch {
		db := array.NewStringBuilder(mem)
		defer db.Release()
		for _, d := range dict {
			db.Append(d)
		}
		if nullDict {
			db.AppendNull()
		}
		da := db.NewArray()
		defer da.Release()
		ib := array.NewInt32Builder(mem)
		defer ib.Release()
		ib.AppendValues(idx, nil)
		ia := ib.NewArray()
		defer ia.Release()
		vin := array.NewDictionaryArray(dt, ia, da)
		defer vin.Release()
		rb := array.NewInt64Builder(mem)
		defer rb.Release()
		rb.AppendValues(roads, nil)
		ra := rb.NewArray()
		defer ra.Release()
		hb := array.NewTimestampBuilder(mem, tsType)
		defer hb.Release()
		for _, h := range hours {
			hb.Append(arrow.Timestamp(h * 3600_000))
		}
		ha := hb.NewArray()
		defer ha.Release()
		return array.NewRecordBatch(schema, []arrow.Array{vin, ra, ha}, int64(len(idx)))
	}
	opts := Options{Subject: "vin", GroupBy: []string{"road", "hour"}, Aggregates: []Aggregate{{Kind: Count}}, MaxPartitions: 5, MaxPerPartition: 5}
	ag, err := NewAggregator(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	b1 := batch([]string{"A", "B"}, []int32{0, 1, 1}, []int64{7, 7, 9}, []int64{10, 10, 11}, false)
	b2 := batch([]string{"C", "B", "A"}, []int32{0, 2, 1}, []int64{7, 7, 9}, []int64{10, 10, 11}, false)
	for _, b := range []arrow.RecordBatch{b1, b2} {
		if err := ag.Add(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		b.Release()
	}
	p, err := ag.Partial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.Subjects != 3 {
		t.Errorf("subjects %d, want 3 (A and B in both batches)", p.Stats.Subjects)
	}
	acct, _ := NewAccountant(1, 0)
	p.Spec.Public = true // release every data partition (no selection) for exact counts
	p.Spec.PublicKeys = p.sortedKeys()
	res, err := p.Release(context.Background(), acct, ReleaseOptions{Mem: mem, noise: &noNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	rec := res.Record
	roads := col(t, rec, "road").(*array.Int64)
	hours := col(t, rec, "hour").(*array.Timestamp)
	counts := col(t, rec, "count").(*array.Int64)
	got := map[string]int64{}
	for i := 0; i < int(rec.NumRows()); i++ {
		got[fmt.Sprintf("%d@%s", roads.Value(i), hours.Value(i).ToTime(arrow.Millisecond).UTC().Format("15"))] = counts.Value(i)
	}
	want := map[string]int64{"7@10": 4, "9@11": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	if rec.Schema().Field(1).Type.ID() != arrow.TIMESTAMP {
		t.Errorf("hour key type %v", rec.Schema().Field(1).Type)
	}

	ag2, _ := NewAggregator(opts)
	defer ag2.Close()
	b3 := batch([]string{"A"}, []int32{0, 1}, []int64{1, 1}, []int64{1, 1}, true)
	defer b3.Release()
	if err := ag2.Add(context.Background(), b3); err == nil || !strings.Contains(err.Error(), `row 2, column "vin": null`) {
		t.Errorf("null dictionary value: %v", err)
	}
}

// FuzzPartialUnmarshal: a serialised partial from elsewhere (a Beam worker)
// is checked before use; malformed input is an error, never a panic, and an
// accepted partial releases without panicking.
func FuzzPartialUnmarshal(f *testing.F) {
	mem := memory.NewGoAllocator()
	opts := baseOpts()
	p := partialOf(f, mem, opts, []row{{"v1", "a", 1}, {"v2", "b", 50}, {"v2", "a", 99}}, 2)
	blob, err := p.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add([]byte(`{"spec":{},"partitions":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var q Partial
		if err := q.UnmarshalBinary(b); err != nil {
			return
		}
		for _, ps := range q.Partitions {
			if ps.Rows > 1e5 { // valid but slow to release (one library Add per row for quantiles)
				return
			}
		}
		acct, _ := NewAccountant(1, 1e-6)
		if res, err := q.Release(context.Background(), acct, ReleaseOptions{noise: &noNoise{}}); err == nil {
			res.Release()
		}
	})
}

// dictBatch encodes rows with dictionary subject and key columns (the fast
// path); nullKeyRow >= 0 makes that row's key point at a null dictionary value.
func dictBatch(t testing.TB, mem memory.Allocator, rows []row, nullKeyRow int) arrow.RecordBatch {
	t.Helper()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: dt}, {Name: "seg", Type: dt}, {Name: "temp", Type: arrow.PrimitiveTypes.Float64}}, nil)
	enc := func(get func(row) string, nullAt int) arrow.Array {
		codes := map[string]int32{}
		db := array.NewStringBuilder(mem)
		defer db.Release()
		ib := array.NewInt32Builder(mem)
		defer ib.Release()
		for i, r := range rows {
			v := get(r)
			c, ok := codes[v]
			if !ok {
				c = int32(len(codes))
				codes[v] = c
				db.Append(v)
			}
			if i == nullAt {
				c = int32(len(codes))
				db.AppendNull()
				codes["\x00null"] = c
			}
			ib.Append(c)
		}
		d, ix := db.NewArray(), ib.NewArray()
		defer d.Release()
		defer ix.Release()
		return array.NewDictionaryArray(dt, ix, d)
	}
	vin := enc(func(r row) string { return r.subj }, -1)
	defer vin.Release()
	seg := enc(func(r row) string { return r.key }, nullKeyRow)
	defer seg.Release()
	fb := array.NewFloat64Builder(mem)
	defer fb.Release()
	for _, r := range rows {
		fb.Append(r.v)
	}
	temp := fb.NewArray()
	defer temp.Release()
	return array.NewRecordBatch(schema, []arrow.Array{vin, seg, temp}, int64(len(rows)))
}

// TestFastPathMatchesGeneralPath: dictionary-coded input (the parallel fast
// path) gives the same partial as plain strings (the general path), with and
// without a public list; bad rows are reported with column and row.
func TestFastPathMatchesGeneralPath(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var rows []row
	for s := range 200 {
		for j := range 2 {
			rows = append(rows, row{fmt.Sprintf("v%d", s), fmt.Sprintf("k%d", (s*3+j)%17), float64((s*13 + j) % 100)})
		}
	}
	pl, _ := NewPartitionList("seg")
	for k := range 10 {
		pl.Add(fmt.Sprintf("k%d", k))
	}
	for ci, public := range []*PartitionList{nil, pl, nil} {
		opts := baseOpts()
		opts.Public = public
		if ci == 2 {
			opts.MaxPerPartition = 12 // larger records (2 + 12 words)
		}
		slow := partialOf(t, mem, opts, rows, 128)
		ag, err := NewAggregator(opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(rows); i += 150 {
			rec := dictBatch(t, mem, rows[i:min(len(rows), i+150)], -1)
			err := ag.Add(context.Background(), rec)
			rec.Release()
			if err != nil {
				t.Fatal(err)
			}
		}
		fast, err := ag.Partial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if fast.Stats != slow.Stats || len(fast.Partitions) != len(slow.Partitions) {
			t.Fatalf("public=%v: stats %+v vs %+v, %d vs %d partitions", public != nil, fast.Stats, slow.Stats, len(fast.Partitions), len(slow.Partitions))
		}
		for k, w := range slow.Partitions {
			g := fast.Partitions[k]
			if g == nil || g.Subjects != w.Subjects || g.Rows != w.Rows || !slices.Equal(g.Sums, w.Sums) || !slices.Equal(g.SumSquares, w.SumSquares) {
				t.Errorf("public=%v partition %q: fast %+v, general %+v", public != nil, k, g, w)
			}
		}
	}
	for _, c := range []struct {
		rows    []row
		nullKey int
		want    string
	}{
		{[]row{{"a", "x", 1}, {"b", "x", 2}, {"c", "y", math.Inf(-1)}}, -1, `row 3, column "temp": value -Inf is not finite`},
		{[]row{{"a", "x", 1}, {"b", "x", 2}}, 1, `row 2, column "seg": null value`},
	} {
		ag, _ := NewAggregator(baseOpts())
		rec := dictBatch(t, mem, c.rows, c.nullKey)
		err := ag.Add(context.Background(), rec)
		rec.Release()
		ag.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// TestBoundedDrawsUniform: the reservoir's and the L0 shuffle's bounded
// draws (16- and 32-bit Lemire on ChaCha8) are uniform over [0, n): for
// small n a chi-square test over 70,000 draws at α = 1e-4 (false rejection
// ≤ 6·1e-4 over the six cases); for large n every draw is in range.
func TestBoundedDrawsUniform(t *testing.T) {
	r, err := newRand()
	if err != nil {
		t.Fatal(err)
	}
	s := &shard{rng: r}
	draws := map[string]func(n uint64) uint64{
		"16-bit": func(n uint64) uint64 { return uint64(s.uintN16(uint16(n))) },
		"32-bit": func(n uint64) uint64 { return uint64(s.uintN32(uint32(n))) },
	}
	for name, draw := range draws {
		for _, c := range []struct {
			n    uint64
			crit float64 // chi-square critical value, n-1 degrees of freedom, α = 1e-4
		}{{3, 18.42}, {7, 27.86}, {10, 33.72}} {
			const trials = 70000
			hits := make([]float64, c.n)
			for range trials {
				hits[draw(c.n)]++
			}
			exp := float64(trials) / float64(c.n)
			var chi float64
			for _, h := range hits {
				chi += (h - exp) * (h - exp) / exp
			}
			if chi > c.crit {
				t.Errorf("%s n=%d: chi-square %.1f > %.2f (%v)", name, c.n, chi, c.crit, hits)
			}
		}
		for _, n := range []uint64{1, 2, 65535, 65536, 1 << 31, 1<<32 - 1} {
			if name == "16-bit" && n >= 1<<16 {
				continue
			}
			for range 1000 {
				if v := draw(n); v >= n {
					t.Fatalf("%s n=%d: drew %d", name, n, v)
				}
			}
		}
	}
}

// TestErrorLocation: errors about data locate it as package rowerr does —
// rows counted from 1 over the whole stream (not per batch), the column
// named, the chain kept for errors.As — and carry one dp prefix only.
func TestErrorLocation(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good := []row{{"v1", "a", 1}, {"v2", "a", 2}, {"v3", "b", 3}}
	addBoth := func(second arrow.RecordBatch) error {
		defer second.Release()
		ag, err := NewAggregator(baseOpts())
		if err != nil {
			t.Fatal(err)
		}
		defer ag.Close()
		first := makeBatch(t, mem, good)
		if second.Schema().Field(0).Type.ID() == arrow.DICTIONARY {
			first.Release()
			first = dictBatch(t, mem, good, -1)
		}
		err = ag.Add(context.Background(), first)
		first.Release()
		if err != nil {
			t.Fatal(err)
		}
		return ag.Add(context.Background(), second)
	}
	nullSeg := func() error {
		pl, _ := NewPartitionList("seg")
		b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "seg", Type: arrow.BinaryTypes.String, Nullable: true}}, nil))
		defer b.Release()
		b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "b"}, nil)
		r1 := b.NewRecordBatch()
		defer r1.Release()
		b.Field(0).(*array.StringBuilder).Append("c")
		b.Field(0).(*array.StringBuilder).AppendNull()
		r2 := b.NewRecordBatch()
		defer r2.Release()
		if err := pl.AddRecord(r1); err != nil {
			t.Fatal(err)
		}
		return pl.AddRecord(r2)
	}
	for _, c := range []struct {
		name string
		err  func() error
		row  int64
		col  string
		msg  string
	}{
		{"general path NaN", func() error {
			return addBoth(makeBatch(t, mem, []row{{"v4", "a", 1}, {"v5", "a", math.NaN()}}))
		}, 5, "temp", `dp.Aggregator.Add: row 5, column "temp": value NaN is not finite`},
		{"fast path -Inf", func() error {
			return addBoth(dictBatch(t, mem, []row{{"v4", "a", math.Inf(-1)}}, -1))
		}, 4, "temp", `dp.Aggregator.Add: row 4, column "temp": value -Inf is not finite`},
		{"fast path null key", func() error {
			return addBoth(dictBatch(t, mem, []row{{"v4", "a", 1}, {"v5", "b", 1}}, 1))
		}, 5, "seg", `dp.Aggregator.Add: row 5, column "seg": null value`},
		{"missing column", func() error {
			o := baseOpts()
			o.Aggregates[1].Column = "speed"
			ag, _ := NewAggregator(o)
			defer ag.Close()
			rec := makeBatch(t, mem, good)
			defer rec.Release()
			return ag.Add(context.Background(), rec)
		}, 0, "speed", `dp.Aggregator.Add: column "speed": value column not found`},
		{"public list null key", nullSeg, 4, "seg", `dp.PartitionList.AddRecord: row 4, column "seg": null key`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			var re *rowerr.Error
			if err == nil || !errors.As(err, &re) {
				t.Fatalf("error %v is not a *rowerr.Error", err)
			}
			if re.Row != c.row || re.Column != c.col || !strings.HasPrefix(err.Error(), c.msg) {
				t.Errorf("error %q (row %d, column %q), want %q (row %d, column %q)", err, re.Row, re.Column, c.msg, c.row, c.col)
			}
			if n := strings.Count(err.Error(), "dp."); n != 1 {
				t.Errorf("error %q names package dp %d times", err, n)
			}
		})
	}
}
