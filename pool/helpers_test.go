package pool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/dp"
)

// testPool is a pool with every party's keys in memory.
type testPool struct {
	dir       string
	cfg       *Config
	members   []*Key
	aggs      [2]*Key
	collector *Key
	ledgers   [2]*Ledger
	mem       memory.Allocator // allocates releases (a checked allocator where a test asserts)
}

// testRelease is the tests' release: count, sum and mean of temp per seg.
func testRelease() ReleaseSpec {
	return ReleaseSpec{Subject: "vin", By: []string{"seg"}, MaxPartitions: 2, MaxPerPartition: 3, MaxRows: 1 << 12,
		Aggregates: []AggregateSpec{{Kind: "count"}, {Kind: "sum", Column: "temp", Lower: 0, Upper: 100}, {Kind: "mean", Column: "temp", Lower: 0, Upper: 100}},
		Epsilon:    1}
}

func testSegs(n int) [][]string {
	var out [][]string
	for i := range n {
		out = append(out, []string{fmt.Sprintf("s%02d", i)})
	}
	return out
}

// newTestPool makes a pool of n members over the given partitions in a
// temporary directory, with open ledgers for both aggregators.
func newTestPool(t testing.TB, n int, rel ReleaseSpec, parts [][]string, mod func(*InitOptions)) *testPool {
	t.Helper()
	dir := t.TempDir()
	o := InitOptions{Pool: "test-pool", Leader: "authority", Helper: "trustee", Collector: "analyst",
		Release: rel, Partitions: parts, Budget: BudgetSpec{Period: "2026-03", Epsilon: 1000}}
	for i := range n {
		o.Members = append(o.Members, fmt.Sprintf("oem-%c", 'a'+i))
	}
	if mod != nil {
		mod(&o)
	}
	cfg, _, err := Init(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPool{dir: dir, cfg: cfg, mem: memory.NewGoAllocator()}
	load := func(id string) *Key {
		k, err := LoadKey(filepath.Join(dir, "keys", id+".key"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Destroy)
		return k
	}
	for _, m := range o.Members {
		tp.members = append(tp.members, load(m))
	}
	tp.aggs = [2]*Key{load(o.Leader), load(o.Helper)}
	tp.collector = load(o.Collector)
	for i := range tp.ledgers {
		l, err := OpenLedger(filepath.Join(dir, "state", roleNames[i]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		tp.ledgers[i] = l
	}
	return tp
}

// fleetRows makes one member's rows: vehicles with ids prefix-<i>, each
// with a few readings (temp on the 1/8 grid so sums are exact) in a few
// segments.
func fleetRows(t testing.TB, mem memory.Allocator, prefix string, vehicles, segs int, seed uint64) arrow.RecordBatch {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: arrow.BinaryTypes.String}, {Name: "seg", Type: arrow.BinaryTypes.String}, {Name: "temp", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for v := range vehicles {
		vin := fmt.Sprintf("%s-%04d", prefix, v)
		for range 1 + r.IntN(4) {
			b.Field(0).(*array.StringBuilder).Append(vin)
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("s%02d", r.IntN(segs)))
			b.Field(2).(*array.Float64Builder).Append(float64(r.IntN(8*120)) / 8) // up to 120: some values clamp at 100
		}
	}
	return b.NewRecordBatch()
}

// partialOf bounds rec with the pool's release.
func (tp *testPool) partialOf(t testing.TB, mem memory.Allocator, rec arrow.RecordBatch) *dp.Partial {
	t.Helper()
	rd, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	p, err := tp.cfg.ReaderPartial(context.Background(), rd, mem)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// zeroNoise is the no-noise double: the arithmetic is then exact.
type zeroNoise struct{}

func (zeroNoise) draw(int64, int64, float64, float64) (int64, error) { return 0, nil }

// countingNoise counts the draws it passes on.
type countingNoise struct {
	n     noiseSource
	calls int
}

func (c *countingNoise) draw(l0, lInf int64, eps, delta float64) (int64, error) {
	c.calls++
	return c.n.draw(l0, lInf, eps, delta)
}

// roundInMemory runs prepare, aggregate and collect on contributions,
// without files; noise[i] is aggregator i's noise (nil: the library's).
func (tp *testPool) roundInMemory(t testing.TB, contribs []*Contribution, noise [2]noiseSource) (*Result, error) {
	t.Helper()
	var preps [2]*Prepared
	for agg := range 2 {
		var ups []Upload
		for _, c := range contribs {
			ups = append(ups, Upload{Name: manifestName(c.Member), Manifest: c.Manifest, Share: c.Uploads[agg]})
		}
		var peer []byte
		if agg == helper {
			peer = preps[leader].File
		}
		p, err := Prepare(tp.cfg, tp.aggs[agg], ups, PrepareOptions{Peer: peer, Ledger: tp.ledgers[agg]})
		if err != nil {
			return nil, err
		}
		preps[agg] = p
	}
	var shares [2]*Share
	for agg := range 2 {
		s, err := Aggregate(tp.cfg, tp.aggs[agg], AggregateOptions{Leader: preps[leader].File, Helper: preps[helper].File, State: preps[agg].State, Ledger: tp.ledgers[agg], noise: noise[agg]})
		if err != nil {
			return nil, err
		}
		shares[agg] = s
	}
	return Collect(tp.cfg, tp.collector, shares[leader].File, shares[helper].File, CollectOptions{Mem: tp.mem})
}
