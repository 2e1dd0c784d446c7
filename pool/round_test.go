package pool

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/dp"
)

// runFiles runs a whole round through files, as the CLI does: members write
// their uploads into a directory, each aggregator reads it and writes its
// prep file and private state, then its share, and the collector reads the
// two shares.
func (tp *testPool) runFiles(t *testing.T, contribs []*Contribution, noise [2]noiseSource) (*Result, string, error) {
	t.Helper()
	round := filepath.Join(tp.dir, "round")
	uploads := filepath.Join(round, "uploads")
	for _, d := range []string{uploads, filepath.Join(round, "prep"), filepath.Join(round, "shares")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range contribs {
		if err := c.WriteFiles(uploads); err != nil {
			t.Fatal(err)
		}
	}
	statePath := func(agg int) string { return filepath.Join(tp.dir, "state", roleNames[agg], "round.state") }
	for agg := range 2 {
		ups, err := ReadUploads(tp.cfg, tp.aggs[agg], uploads)
		if err != nil {
			return nil, round, err
		}
		var peer []byte
		if agg == helper {
			if peer, err = ReadSigned(filepath.Join(round, "prep", PrepFileName("leader"))); err != nil {
				return nil, round, err
			}
		}
		p, err := Prepare(tp.cfg, tp.aggs[agg], ups, PrepareOptions{Peer: peer, Ledger: tp.ledgers[agg]})
		if err != nil {
			return nil, round, err
		}
		if err := WriteFile(filepath.Join(round, "prep", PrepFileName(roleNames[agg])), p.File, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(statePath(agg), p.State, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for agg := range 2 {
		lp, err1 := ReadSigned(filepath.Join(round, "prep", PrepFileName("leader")))
		hp, err2 := ReadSigned(filepath.Join(round, "prep", PrepFileName("helper")))
		st, err3 := os.ReadFile(statePath(agg))
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatal(err1, err2, err3)
		}
		s, err := Aggregate(tp.cfg, tp.aggs[agg], AggregateOptions{Leader: lp, Helper: hp, State: st, Ledger: tp.ledgers[agg], noise: noise[agg]})
		if err != nil {
			return nil, round, err
		}
		if err := WriteFile(filepath.Join(round, "shares", ShareFileName(roleNames[agg])), s.File, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ls, err1 := ReadSigned(filepath.Join(round, "shares", ShareFileName("leader")))
	hs, err2 := ReadSigned(filepath.Join(round, "shares", ShareFileName("helper")))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	res, err := Collect(tp.cfg, tp.collector, ls, hs, CollectOptions{Mem: tp.mem})
	return res, round, err
}

// unionPartial is the plain dp path: one Aggregator over every member's rows.
func (tp *testPool) unionPartial(t *testing.T, mem memory.Allocator, recs []arrow.RecordBatch) *dp.Partial {
	t.Helper()
	rd, err := array.NewRecordReader(recs[0].Schema(), recs)
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

// TestRoundEqualsUnion: three members and two aggregators through files;
// with the no-noise double, the unsharded totals equal the bounded totals
// package dp computes on the union of the members' data (exactly: the values
// lie on the encoding's grid and the bounds do not bind, so bounding draws
// no random choices).
func TestRoundEqualsUnion(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rel := testRelease()
	rel.MaxPartitions, rel.MaxPerPartition = 4, 4 // a vehicle has at most 4 readings
	tp := newTestPool(t, 3, rel, testSegs(8), nil)
	tp.mem = mem
	var recs []arrow.RecordBatch
	var contribs []*Contribution
	for i, m := range tp.members {
		rec := fleetRows(t, mem, m.ID(), 40+30*i, 6, uint64(i)) // segments s06, s07 stay empty
		defer rec.Release()
		recs = append(recs, rec)
		c, err := Contribute(tp.cfg, m, tp.partialOf(t, mem, rec))
		if err != nil {
			t.Fatal(err)
		}
		contribs = append(contribs, c)
	}
	res, _, err := tp.runFiles(t, contribs, [2]noiseSource{zeroNoise{}, zeroNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	union := tp.unionPartial(t, mem, recs)
	if got := res.Report.Members.Counted; len(got) != 3 || len(res.Report.Members.Rejected) != 0 || len(res.Report.Members.Missing) != 0 {
		t.Fatalf("members %+v", res.Report.Members)
	}
	rec := res.Record
	if rec.NumRows() != 8 {
		t.Fatalf("%d partitions released, want all 8 public ones", rec.NumRows())
	}
	seg := rec.Column(0).(*array.String)
	count := rec.Column(1).(*array.Int64)
	sum := rec.Column(4).(*array.Float64)
	mean := rec.Column(7).(*array.Float64)
	for i := range int(rec.NumRows()) {
		ps := union.Partitions[canonicalKey([]string{seg.Value(i)})]
		var rows int64
		var s float64
		if ps != nil {
			rows, s = ps.Rows, ps.Sums[1]
		}
		if count.Value(i) != rows || sum.Value(i) != s {
			t.Errorf("%s: pool count %d sum %v, dp on the union %d, %v", seg.Value(i), count.Value(i), sum.Value(i), rows, s)
		}
		want := 50.0 // an empty partition's mean is the midpoint, as dp's
		if rows > 0 {
			want = clamp(s/float64(rows), 0, 100)
		}
		if math.Abs(mean.Value(i)-want) > 1e-12 {
			t.Errorf("%s: pool mean %v, dp on the union %v", seg.Value(i), mean.Value(i), want)
		}
	}
}

// TestRoundEqualsMergedPartials: with binding bounds, bounding draws random
// choices per member; the pool's totals equal the members' partials merged
// (package dp's Merge: the union's bounded state for disjoint subjects).
func TestRoundEqualsMergedPartials(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tp := newTestPool(t, 3, testRelease(), testSegs(6), nil)
	tp.mem = mem
	var merged *dp.Partial
	var contribs []*Contribution
	for i, m := range tp.members {
		rec := fleetRows(t, mem, m.ID(), 50, 6, uint64(10+i))
		part := tp.partialOf(t, mem, rec)
		rec.Release()
		c, err := Contribute(tp.cfg, m, part)
		if err != nil {
			t.Fatal(err)
		}
		contribs = append(contribs, c)
		if merged == nil {
			merged = part
		} else if err := merged.Merge(part); err != nil {
			t.Fatal(err)
		}
	}
	if merged.Stats.RowsDroppedL0 == 0 {
		t.Fatal("the bounds do not bind: the test would not test bounding")
	}
	res, err := tp.roundInMemory(t, contribs, [2]noiseSource{zeroNoise{}, zeroNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	na := len(tp.cfg.plan.aggs)
	for i, row := range tp.cfg.plan.rows {
		ps := merged.Partitions[canonicalKey(row)]
		if ps == nil {
			ps = &dp.PartitionState{Sums: make([]float64, 3)}
		}
		sumUnits := int64(math.Round(ps.Sums[1] / 0.125))
		if got := res.totals[i*na]; got != ps.Rows {
			t.Errorf("%v: count %d, merged partial %d", row, got, ps.Rows)
		}
		if got := res.totals[i*na+1]; got != sumUnits {
			t.Errorf("%v: sum %d units, merged partial %d", row, got, sumUnits)
		}
		// The mean's numerator is Σ(v − 50) in units of 1/8.
		if got, want := res.totals[i*na+2], sumUnits-400*ps.Rows; got != want {
			t.Errorf("%v: mean numerator %d units, want %d", row, got, want)
		}
	}
}
