package poolbench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pool"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

const members = 10

// scenario is one benchmark round: how each member gets its bounded
// partial, and the pool's release.
type scenario struct {
	rel        pool.ReleaseSpec
	partitions [][]string
	// partial bounds member i's data (timed as the member's own work).
	partial func(b *testing.B, i int) *dp.Partial
	// accuracy: report the pooled release's interval widths against the
	// members' separate releases (the demo's data has the signal for it;
	// the 10k scenario's partitions hold a handful of rows each).
	accuracy bool
}

// BenchmarkPoolDemo: 10 members, each a synthetic fleet of 200 vehicles and
// 100,000 rows (seeds 1..10: together the demo's 2,000 vehicles and 1M
// rows) run through the demo policy, its release as the policy declares it
// (public partitions, grouping, L0, L∞, the count and every aggregate with
// its bounds) with a sum added beside each mean, ε = 1.
func BenchmarkPoolDemo(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), brakedisc.DemoPolicy(), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	p, err := anonymize.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	// The pool's aggregates are the policy's, plus a sum beside each mean
	// (same column and bounds: the pool encodes them in one slot), so the
	// members' partials carry the sums the pool asks for.
	aggs := []pool.AggregateSpec{{Kind: "count"}}
	var extra []anonymize.AggregateSpec
	for _, a := range p.Release.Aggregates {
		aggs = append(aggs, pool.AggregateSpec{Kind: a.Kind, Column: a.Column, Lower: a.Lower, Upper: a.Upper})
		if a.Kind == "mean" {
			aggs = append(aggs, pool.AggregateSpec{Kind: "sum", Column: a.Column, Lower: a.Lower, Upper: a.Upper})
			extra = append(extra, anonymize.AggregateSpec{Kind: "sum", Column: a.Column, Lower: a.Lower, Upper: a.Upper})
		}
	}
	p.Release.Aggregates = append(p.Release.Aggregates, extra...)
	parts, err := anonymize.PublicPartitionRows(p)
	if err != nil {
		b.Fatal(err)
	}
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Destroy()
	// The members' data, generated before the clock runs.
	mem := memory.NewGoAllocator()
	data := make([][]arrow.RecordBatch, members)
	var schema *arrow.Schema
	for i := range members {
		rd, err := brakedisc.NewReader(brakedisc.Config{Vehicles: 200, Rows: 100_000, Seed: int64(i + 1)}, mem)
		if err != nil {
			b.Fatal(err)
		}
		schema = rd.Schema()
		for rd.Next() {
			rec := rd.RecordBatch()
			rec.Retain()
			data[i] = append(data[i], rec)
		}
		rd.Release()
	}
	defer func() {
		for _, d := range data {
			for _, r := range d {
				r.Release()
			}
		}
	}()
	s := scenario{partitions: parts, accuracy: true,
		rel: pool.ReleaseSpec{Subject: "vin", By: p.Release.By, MaxPartitions: int64(p.Release.MaxPartitions), MaxPerPartition: int64(p.Release.MaxPerPartition),
			MaxRows: 1 << 16, Epsilon: 1, Aggregates: aggs},
		partial: func(b *testing.B, i int) *dp.Partial {
			r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Mem: mem,
				Release: func(*arrow.Schema) (anonymize.Sink, error) { return nil, fmt.Errorf("unused") }})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			rd, err := array.NewRecordReader(schema, data[i])
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Release()
			part, _, err := pool.PolicyPartial(context.Background(), r, rd)
			if err != nil {
				b.Fatal(err)
			}
			return part
		}}
	runRounds(b, s)
}

// BenchmarkPool10k: 10 members over 10,000 public partitions: each member
// has 2,000 vehicles with 50 readings on partitions near a home partition
// (1M rows in all), count, sum and mean of a value in [0, 200].
func BenchmarkPool10k(b *testing.B) {
	const partitions, vehicles, readings = 10_000, 2_000, 50
	var parts [][]string
	for i := range partitions {
		parts = append(parts, []string{fmt.Sprintf("p%05d", i)})
	}
	mem := memory.NewGoAllocator()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: dt}, {Name: "part", Type: dt}, {Name: "disc_temp_c", Type: arrow.PrimitiveTypes.Float64}}, nil)
	partDict := func() arrow.Array {
		sb := array.NewStringBuilder(mem)
		defer sb.Release()
		for _, p := range parts {
			sb.Append(p[0])
		}
		return sb.NewArray()
	}()
	defer partDict.Release()
	data := make([]arrow.RecordBatch, members)
	for m := range members {
		r := rand.New(rand.NewPCG(uint64(m), 9)) // benchmark data only
		vb := array.NewStringBuilder(mem)
		for v := range vehicles {
			vb.Append(fmt.Sprintf("M%02dV%06d", m, v))
		}
		vins := vb.NewArray()
		vb.Release()
		vi, pi := array.NewInt32Builder(mem), array.NewInt32Builder(mem)
		tb := array.NewFloat64Builder(mem)
		for v := range vehicles {
			home := r.IntN(partitions)
			for range readings {
				vi.Append(int32(v))
				pi.Append(int32((home + r.IntN(8)) % partitions))
				tb.Append(20 + 160*r.Float64())
			}
		}
		va, pa, ta := vi.NewArray(), pi.NewArray(), tb.NewArray()
		vd := array.NewDictionaryArray(dt, va, vins)
		pd := array.NewDictionaryArray(dt, pa, partDict)
		data[m] = array.NewRecordBatch(schema, []arrow.Array{vd, pd, ta}, int64(vehicles*readings))
		for _, a := range []arrow.Array{vins, va, pa, ta, vd, pd} {
			a.Release()
		}
		vi.Release()
		pi.Release()
		tb.Release()
	}
	defer func() {
		for _, d := range data {
			d.Release()
		}
	}()
	var cfg *pool.Config
	s := scenario{partitions: parts,
		rel: pool.ReleaseSpec{Subject: "vin", By: []string{"part"}, MaxPartitions: 4, MaxPerPartition: 10, MaxRows: 1 << 14, Epsilon: 1,
			Aggregates: []pool.AggregateSpec{{Kind: "count"}, {Kind: "sum", Column: "disc_temp_c", Lower: 0, Upper: 200}, {Kind: "mean", Column: "disc_temp_c", Lower: 0, Upper: 200}}},
	}
	s.partial = func(b *testing.B, i int) *dp.Partial {
		rd, err := array.NewRecordReader(schema, data[i:i+1])
		if err != nil {
			b.Fatal(err)
		}
		defer rd.Release()
		part, err := cfg.ReaderPartial(context.Background(), rd, mem)
		if err != nil {
			b.Fatal(err)
		}
		return part
	}
	runRounds(b, s, func(c *pool.Config) { cfg = c })
}

// cpuSeconds is the process's CPU time (user + system, all threads).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// cost is one step's wall and CPU time in seconds.
type cost struct{ wall, cpu float64 }

func (c cost) add(o cost) cost { return cost{c.wall + o.wall, c.cpu + o.cpu} }
func (c cost) max(o cost) cost { return cost{max(c.wall, o.wall), max(c.cpu, o.cpu)} }

// phase times one step. On a machine shared with other jobs the CPU time is
// the figure to compare: the wall time says how much of the cores the
// others left.
func phase(f func()) cost {
	t, c := time.Now(), cpuSeconds()
	f()
	return cost{time.Since(t).Seconds(), cpuSeconds() - c}
}

// runRounds runs b.N whole rounds of s and reports each role's time and
// bytes, the single-machine dp path on the same data and the accuracy of
// the pooled release against the members' separate releases.
func runRounds(b *testing.B, s scenario, onConfig ...func(*pool.Config)) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		var ids []string
		for i := range members {
			ids = append(ids, fmt.Sprintf("m%02d", i))
		}
		cfg, _, err := pool.Init(dir, pool.InitOptions{Pool: "bench", Members: ids, Leader: "authority", Helper: "trustee", Collector: "analyst",
			Release: s.rel, Partitions: s.partitions, Budget: pool.BudgetSpec{Period: "p", Epsilon: 1000}})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range onConfig {
			f(cfg)
		}
		key := func(id string) *pool.Key {
			k, err := pool.LoadKey(filepath.Join(dir, "keys", id+".key"))
			if err != nil {
				b.Fatal(err)
			}
			return k
		}
		b.StartTimer()

		// Members (each at its own company: the phase takes the slowest).
		var bound, boundSum, shard cost
		var upBytes float64
		var partials []*dp.Partial
		var ups [2][]pool.Upload
		for i, id := range ids {
			var part *dp.Partial
			t := phase(func() { part = s.partial(b, i) })
			bound, boundSum = bound.max(t), boundSum.add(t)
			var c *pool.Contribution
			shard = shard.max(phase(func() {
				if c, err = pool.Contribute(cfg, key(id), part); err != nil {
					b.Fatal(err)
				}
			}))
			partials = append(partials, part)
			upBytes = float64(len(c.Manifest) + len(c.Uploads[0]) + len(c.Uploads[1]))
			for agg := range 2 {
				ups[agg] = append(ups[agg], pool.Upload{Name: id, Manifest: c.Manifest, Share: c.Uploads[agg]})
			}
		}
		// Aggregators.
		var ledgers [2]*pool.Ledger
		var preps [2]*pool.Prepared
		var aggTime, prepTime [2]cost
		for agg, id := range []string{"authority", "trustee"} {
			if ledgers[agg], err = pool.OpenLedger(filepath.Join(dir, "state", id)); err != nil {
				b.Fatal(err)
			}
			opts := pool.PrepareOptions{Ledger: ledgers[agg]}
			if agg == 1 {
				opts.Peer = preps[0].File
			}
			k := key(id)
			prepTime[agg] = phase(func() {
				if preps[agg], err = pool.Prepare(cfg, k, ups[agg], opts); err != nil {
					b.Fatal(err)
				}
			})
			aggTime[agg] = aggTime[agg].add(prepTime[agg])
		}
		var shares [2]*pool.Share
		for agg, id := range []string{"authority", "trustee"} {
			k := key(id)
			aggTime[agg] = aggTime[agg].add(phase(func() {
				if shares[agg], err = pool.Aggregate(cfg, k, pool.AggregateOptions{Leader: preps[0].File, Helper: preps[1].File, State: preps[agg].State, Ledger: ledgers[agg]}); err != nil {
					b.Fatal(err)
				}
			}))
			ledgers[agg].Close()
		}
		// Collector.
		var res *pool.Result
		collect := phase(func() {
			if res, err = pool.Collect(cfg, key("analyst"), shares[0].File, shares[1].File, pool.CollectOptions{}); err != nil {
				b.Fatal(err)
			}
		})
		b.StopTimer()

		// The single-machine dp path on the same union: the members'
		// bounding (the same code on the same rows: the sum of the member
		// times above) and one release of the merged partial. Each member's
		// separate release at the same ε (of a copy of its partial) for the
		// accuracy comparison.
		single := boundSum
		var merged *dp.Partial
		var sepWidth, sepBusy, sepNarrow float64
		pooledWidth, pooledBusy, pooledNarrow, busy := widths(res.Record, nil)
		for _, part := range partials {
			raw, err := part.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			var sep dp.Partial
			if err := sep.UnmarshalBinary(raw); err != nil {
				b.Fatal(err)
			}
			acct, _ := dp.NewAccountant(s.rel.Epsilon, 0)
			r, err := sep.Release(ctx, acct, dp.ReleaseOptions{})
			if err != nil {
				b.Fatal(err)
			}
			w, wb, wn, _ := widths(r.Record, busy)
			sepWidth += w / members
			sepBusy += wb / members
			sepNarrow += wn / members
			r.Release()
			single = single.add(phase(func() {
				if merged == nil {
					merged = part
				} else if err := merged.Merge(part); err != nil {
					b.Fatal(err)
				}
			}))
		}
		acct, _ := dp.NewAccountant(s.rel.Epsilon, 0)
		var dpRes *dp.Result
		release := phase(func() {
			if dpRes, err = merged.Release(ctx, acct, dp.ReleaseOptions{}); err != nil {
				b.Fatal(err)
			}
		})
		single = single.add(release)
		unionWidth, unionBusy, unionNarrow, _ := widths(dpRes.Record, busy)
		dpRes.Release()
		res.Release()
		b.StartTimer()

		agg := aggTime[0].max(aggTime[1])
		for _, m := range []struct {
			name string
			c    cost
		}{{"member-bound", bound}, {"member-share", shard}, {"leader", aggTime[0]}, {"leader-prepare", prepTime[0]}, {"helper", aggTime[1]},
			{"collector", collect}, {"dp-single", single}, {"dp-release", release}} {
			b.ReportMetric(m.c.wall, m.name+"-s")
			b.ReportMetric(m.c.cpu, m.name+"-cpu-s")
		}
		b.ReportMetric(upBytes, "member-upload-B")
		b.ReportMetric(float64(len(preps[0].File)+len(shares[0].File)), "leader-sends-B")
		b.ReportMetric(float64(len(preps[1].File)+len(shares[1].File)), "helper-sends-B")
		// The round's critical path (members and aggregators each in
		// parallel at their own organisations) against the single machine.
		b.ReportMetric((bound.cpu+shard.cpu+agg.cpu+collect.cpu)/single.cpu, "pool/dp-cpu")
		if !s.accuracy {
			continue
		}
		b.ReportMetric(pooledWidth, "pooled-mean-ci")
		b.ReportMetric(sepWidth, "separate-mean-ci")
		b.ReportMetric(float64(len(busy)), "busy-partitions")
		b.ReportMetric(pooledBusy, "pooled-busy-ci")
		b.ReportMetric(sepBusy, "separate-busy-ci")
		b.ReportMetric(sepBusy/pooledBusy, "busy-gain-x")
		b.ReportMetric(pooledNarrow, "pooled-narrow-frac")
		// The single machine's release of the union (one noise draw, but
		// every member's data in one place): what pooling costs in accuracy.
		b.ReportMetric(unionWidth, "union-mean-ci")
		b.ReportMetric(unionBusy, "union-busy-ci")
		b.ReportMetric(unionNarrow, "union-narrow-frac")
		b.ReportMetric(sepNarrow, "separate-narrow-frac")
	}
}

// widths is the average width of the mean's interval over a release, and
// over its busy partitions: those in busy, or (when busy is nil) those
// whose released count is at least 500 (chosen from the release alone);
// and the share of partitions whose interval spans less than half the
// bounds.
func widths(rec arrow.RecordBatch, busy map[string]bool) (all, overBusy, narrow float64, chosen map[string]bool) {
	s := rec.Schema()
	col := func(name string) arrow.Array { return rec.Column(s.FieldIndices(name)[0]) }
	lo := col("mean_disc_temp_c_ci_low").(*array.Float64)
	hi := col("mean_disc_temp_c_ci_high").(*array.Float64)
	count := col("count").(*array.Int64)
	key := func(i int) string {
		var parts []string
		for c := range s.NumFields() {
			switch a := rec.Column(c).(type) {
			case *array.String:
				if s.Field(c).Name != "delta" {
					parts = append(parts, a.Value(i))
				}
			case *array.Int64:
				if s.Field(c).Name == "hour_of_day" {
					parts = append(parts, fmt.Sprint(a.Value(i)))
				}
			}
		}
		return strings.Join(parts, "/")
	}
	if busy == nil {
		chosen = map[string]bool{}
		for i := range int(rec.NumRows()) {
			if count.Value(i) >= 500 {
				chosen[key(i)] = true
			}
		}
		busy = chosen
	}
	var n, nb int
	for i := range int(rec.NumRows()) {
		w := hi.Value(i) - lo.Value(i)
		all += w
		n++
		if w < 100 { // half the bounds [0, 200]
			narrow++
		}
		if busy[key(i)] {
			overBusy += w
			nb++
		}
	}
	all /= float64(n)
	narrow /= float64(n)
	if nb > 0 {
		overBusy /= float64(nb)
	} else {
		overBusy = math.NaN()
	}
	return all, overBusy, narrow, chosen
}
