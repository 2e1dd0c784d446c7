package pool

import (
	"context"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"

	"github.com/tarnkappe/tarnkappe/dp"
)

func TestSignedFieldRoundTrip(t *testing.T) {
	for _, x := range []int64{0, 1, -1, 12345, -12345, 1 << 62, -(1 << 62), math.MaxInt64, math.MinInt64 + 1} {
		f := fieldFromInt(x)
		got, err := intFromField(&f)
		if err != nil || got != x {
			t.Errorf("%d → %d, %v", x, got, err)
		}
	}
	// Half the field decodes to nothing: it is no sum of valid shares.
	half := new(big.Int).Rsh(new(big.Int).SetBytes(fp128.Fp{}.Order()), 1)
	b := half.FillBytes(make([]byte, 16))
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	var f fp128.Fp
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if _, err := intFromField(&f); !errors.Is(err, errOutOfRange) {
		t.Errorf("p/2 decoded: %v", err)
	}
}

func TestSlotGrid(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		exp    int
	}{{0, 100, -3}, {-40, 200, -2}, {0.1, 0.3, -12}, {1e6, 1e6 + 1, -10}, {-5, -1, -8}} {
		s, err := newSlot(AggregateSpec{Kind: "sum", Column: "x", Lower: c.lo, Upper: c.hi}, 10)
		if err != nil {
			t.Fatal(err)
		}
		q := s.unit()
		if s.exp != c.exp || float64(s.lo)*q > c.lo || float64(s.hi)*q < c.hi || s.hi-s.lo > 1024+2 || s.hi-s.lo < 512 {
			t.Errorf("[%v, %v]: q=2^%d, grid [%d, %d]", c.lo, c.hi, s.exp, s.lo, s.hi)
		}
	}
}

// TestMeasurementChecks: a partial that was not bounded with the pool's
// parameters is refused, naming what differs.
func TestMeasurementChecks(t *testing.T) {
	mem := memory.NewGoAllocator()
	tp := newTestPool(t, 1, testRelease(), testSegs(6), func(o *InitOptions) { o.Release.MaxRows = 8 })
	rec := fleetRows(t, mem, "m", 20, 6, 1)
	defer rec.Release()
	bound := func(mod func(*dp.Options)) *dp.Partial {
		opts, err := tp.cfg.DPOptions(mem)
		if err != nil {
			t.Fatal(err)
		}
		mod(&opts)
		ag, err := dp.NewAggregator(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := ag.Add(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		p, err := ag.Partial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	other, _ := dp.NewPartitionList("seg")
	other.Add("s00")
	for _, c := range []struct {
		name string
		mod  func(*dp.Options)
		want string
	}{
		{"L0", func(o *dp.Options) { o.MaxPartitions = 3 }, "the pool needs L0=2"},
		{"private partitions", func(o *dp.Options) { o.Public = nil; o.Selection = dp.Budget{Epsilon: 1, Delta: 1e-6} }, "not public"},
		{"other partitions", func(o *dp.Options) { o.Public = other }, "are not the pool's 6"},
		{"bounds", func(o *dp.Options) { o.Aggregates[1].Upper = 99; o.Aggregates[2].Upper = 99 }, `no sum or mean of "temp" clamped to [0, 100]`},
		{"max rows", func(*dp.Options) {}, "more than release.max_rows=8"},
	} {
		_, err := Contribute(tp.cfg, tp.members[0], bound(c.mod))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func FuzzPoolFiles(f *testing.F) {
	tp := newTestPool(f, 2, testRelease(), testSegs(3), nil)
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "vin", Type: arrow.BinaryTypes.String}, {Name: "seg", Type: arrow.BinaryTypes.String}, {Name: "temp", Type: arrow.PrimitiveTypes.Float64}}, nil)
	var cs []*Contribution
	for _, m := range tp.members {
		b := array.NewRecordBuilder(mem, schema)
		b.Field(0).(*array.StringBuilder).Append("v")
		b.Field(1).(*array.StringBuilder).Append("s00")
		b.Field(2).(*array.Float64Builder).Append(10)
		rec := b.NewRecordBatch()
		b.Release()
		c, err := Contribute(tp.cfg, m, tp.partialOf(f, mem, rec))
		rec.Release()
		if err != nil {
			f.Fatal(err)
		}
		cs = append(cs, c)
	}
	ups := []Upload{{Manifest: cs[0].Manifest, Share: cs[0].Uploads[leader]}, {Manifest: cs[1].Manifest, Share: cs[1].Uploads[leader]}}
	lp, err := Prepare(tp.cfg, tp.aggs[leader], ups, PrepareOptions{Ledger: tp.ledgers[leader]})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cs[0].Manifest, cs[0].Uploads[leader])
	f.Add(lp.File, lp.State)
	f.Add([]byte(`{"kind":"share","body":{},"blob":"","signature":""}`), []byte(uploadMagic))
	sk, _ := tp.collector.hpkePrivate()
	f.Fuzz(func(t *testing.T, a, b []byte) {
		// Every parser of files from other parties: errors, never panics.
		checkUploads(tp.cfg, leader, []Upload{{Manifest: a, Share: b}}, tp.ledgers[leader])
		readPrepFile(tp.cfg, a, leader)
		readShare(tp.cfg, sk, a, helper)
		unmarshalSealed(uploadMagic, b)
		combine(tp.cfg, leader, a, a, b)
	})
}
