package pool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// contributions makes one contribution per member from fresh data.
func (tp *testPool) contributions(t *testing.T, seed uint64) []*Contribution {
	t.Helper()
	contribs, _ := tp.contributeFleets(t, memory.NewGoAllocator(), 30, 6, seed)
	return contribs
}

// contributeFleets makes one contribution per member from a fleet of
// vehicles over segs partitions (member i's seed is seed+i) and returns,
// beside the contributions, the members' measurements: the exact inputs
// the tests' expectations are computed from.
func (tp *testPool) contributeFleets(t *testing.T, mem memory.Allocator, vehicles, segs int, seed uint64) ([]*Contribution, [][]uint64) {
	t.Helper()
	var contribs []*Contribution
	var meas [][]uint64
	for i, m := range tp.members {
		rec := fleetRows(t, mem, m.ID(), vehicles, segs, seed+uint64(i))
		part := tp.partialOf(t, mem, rec)
		rec.Release()
		ms, err := tp.cfg.measurement(part)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Contribute(tp.cfg, m, part)
		if err != nil {
			t.Fatal(err)
		}
		contribs = append(contribs, c)
		meas = append(meas, ms)
	}
	return contribs, meas
}

// noShares asserts that a failed round left no share or release behind.
func noShares(t *testing.T, round string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(round, "shares"))
	for _, e := range ents {
		t.Errorf("a failed round left %s behind", e.Name())
	}
}

// TestFailures: every way a round can go wrong fails loudly, with an error
// that says what happened, and writes no share (hence no release).
func TestFailures(t *testing.T) {
	cases := []struct {
		name string
		// prepare returns the round's contributions, possibly spoiled.
		prepare func(t *testing.T, tp *testPool) []*Contribution
		want    []string
		is      error
	}{
		{
			name: "missing member",
			prepare: func(t *testing.T, tp *testPool) []*Contribution {
				return tp.contributions(t, 1)[:2]
			},
			want: []string{"2 of 3", "missing: oem-c (no upload)"},
			is:   ErrQuorum,
		},
		{
			name: "bad proof",
			prepare: func(t *testing.T, tp *testPool) []*Contribution {
				cs := tp.contributions(t, 1)
				mem := memory.NewGoAllocator()
				rec := fleetRows(t, mem, "oem-b", 30, 6, 99)
				meas, err := tp.cfg.measurement(tp.partialOf(t, mem, rec))
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
				// A cheating member alters its proof after sharding: the
				// first byte of the leader's first proof element.
				p := tp.cfg.plan
				off := int(p.length * p.bits * 16)
				cs[1], err = contribute(tp.cfg, tp.members[1], "oem-b", meas, func(s [][]byte) { s[leader][off] ^= 1 })
				if err != nil {
					t.Fatal(err)
				}
				return cs
			},
			want: []string{"oem-b (rejected by both): invalid proof"},
			is:   ErrQuorum,
		},
		{
			name: "tampered upload",
			prepare: func(t *testing.T, tp *testPool) []*Contribution {
				cs := tp.contributions(t, 1)
				cs[2].Uploads[helper][len(cs[2].Uploads[helper])-1] ^= 0x80
				return cs
			},
			want: []string{"oem-c (rejected by helper): the upload file does not match the signed manifest"},
			is:   ErrQuorum,
		},
		{
			name: "tampered manifest",
			prepare: func(t *testing.T, tp *testPool) []*Contribution {
				cs := tp.contributions(t, 1)
				cs[0].Manifest = []byte(strings.Replace(string(cs[0].Manifest), `"reports":1`, `"reports":2`, 1))
				return cs
			},
			want: []string{"oem-a (rejected by leader): manifest signature does not verify"},
			is:   ErrQuorum,
		},
		{
			name: "wrong config hash",
			prepare: func(t *testing.T, tp *testPool) []*Contribution {
				cs := tp.contributions(t, 1)
				// The same parties and keys, another ε: another pool.
				other := tp.otherConfig(t, func(o *InitOptions) { o.Release.Epsilon = 2 })
				mem := memory.NewGoAllocator()
				rec := fleetRows(t, mem, "oem-a", 30, 6, 5)
				c, err := Contribute(other, tp.members[0], tp.partialOf(t, mem, rec))
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
				cs[0] = c
				return cs
			},
			want: []string{"oem-a (rejected by leader): made for another configuration"},
			is:   ErrQuorum,
		},
		{
			name: "wrong member key",
			prepare: func(t *testing.T, tp *testPool) []*Contribution {
				cs := tp.contributions(t, 1)
				forged, err := GenerateKey(RoleMember, "oem-b")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Contribute(tp.cfg, forged, nil); err == nil {
					t.Fatal("Contribute accepted a nil partial")
				}
				meas := make([]uint64, tp.cfg.plan.length)
				if cs[1], err = contribute(tp.cfg, forged, "oem-b", meas, nil); err != nil {
					t.Fatal(err)
				}
				return cs
			},
			want: []string{"oem-b (rejected by leader): manifest signature does not verify with the member's key"},
			is:   ErrQuorum,
		},
		{
			name: "duplicate member",
			prepare: func(t *testing.T, tp *testPool) []*Contribution {
				cs := tp.contributions(t, 1)
				again := tp.contributions(t, 50)
				again[0].Member = "oem-a-again" // another file name, the same signed member
				return append(cs, again[0])
			},
			want: []string{"oem-a (rejected by leader): the member uploaded 2 reports for one round"},
			is:   ErrQuorum,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := newTestPool(t, 3, testRelease(), testSegs(6), nil)
			_, round, err := tp.runFiles(t, c.prepare(t, tp), [2]noiseSource{})
			if err == nil {
				t.Fatal("the round succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			noShares(t, round)
		})
	}
}

// otherConfig is a configuration with the same parties and keys as tp's
// but changed by mod.
func (tp *testPool) otherConfig(t *testing.T, mod func(*InitOptions)) *Config {
	t.Helper()
	o := InitOptions{Pool: tp.cfg.Pool, Leader: "authority", Helper: "trustee", Collector: "analyst",
		Release: testRelease(), Partitions: tp.cfg.plan.rows, Budget: tp.cfg.Budget, Public: map[string]PublicKeys{}}
	for _, m := range tp.members {
		o.Members = append(o.Members, m.ID())
		o.Public[m.ID()] = m.Public()
	}
	for _, k := range append([]*Key{tp.aggs[0], tp.aggs[1]}, tp.collector) {
		o.Public[k.ID()] = k.Public()
	}
	mod(&o)
	cfg, written, err := Init(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 0 {
		t.Fatalf("Init generated keys %v for parties with public keys", written)
	}
	return cfg
}

// TestReplay: an upload aggregated once is rejected in any later round.
func TestReplay(t *testing.T) {
	tp := newTestPool(t, 2, testRelease(), testSegs(6), nil)
	first := tp.contributions(t, 1)
	res, err := tp.roundInMemory(t, first, [2]noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	second := tp.contributions(t, 2)
	second[1] = first[1]
	_, err = tp.roundInMemory(t, second, [2]noiseSource{})
	if err == nil || !strings.Contains(err.Error(), "oem-b (rejected by leader): replayed report") {
		t.Fatalf("a replayed upload was not rejected: %v", err)
	}
	// The same report twice in one round is rejected as well.
	third := tp.contributions(t, 3)
	_, err = tp.roundInMemory(t, append(third, third[0]), [2]noiseSource{})
	if err == nil || !strings.Contains(err.Error(), "oem-a (rejected by leader)") {
		t.Fatalf("a duplicated upload was not rejected: %v", err)
	}
}

// TestBudgetExhausted: the ledger refuses a release beyond the period's
// budget, before any noise is drawn; nothing is written or spent.
func TestBudgetExhausted(t *testing.T) {
	tp := newTestPool(t, 2, testRelease(), testSegs(6), func(o *InitOptions) { o.Budget.Epsilon = 1.5 })
	res, _, err := tp.runFiles(t, tp.contributions(t, 1), [2]noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	if res.Report.EpsilonLeft != 0.5 {
		t.Errorf("ε left %v, want 0.5", res.Report.EpsilonLeft)
	}
	before, err := os.ReadFile(filepath.Join(tp.dir, "state", "leader", ledgerFile))
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(tp.dir, "round"))
	os.Remove(filepath.Join(tp.dir, "state", "leader", "round.state"))
	os.Remove(filepath.Join(tp.dir, "state", "helper", "round.state"))
	n := &countingNoise{n: tp.cfg.plan.libraryNoise()}
	_, round, err := tp.runFiles(t, tp.contributions(t, 2), [2]noiseSource{n, n})
	if !errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), "spent ε=1 of 1.5, this release needs ε=1") {
		t.Fatalf("want the budget refused, got %v", err)
	}
	if n.calls != 0 {
		t.Errorf("%d noise draws after the budget was refused", n.calls)
	}
	noShares(t, round)
	after, _ := os.ReadFile(filepath.Join(tp.dir, "state", "leader", ledgerFile))
	if string(before) != string(after) {
		t.Error("a refused release changed the ledger")
	}
}

// TestWrongKeys: an aggregator or collector key that is not the one the
// configuration lists is refused before anything is read.
func TestWrongKeys(t *testing.T) {
	tp := newTestPool(t, 2, testRelease(), testSegs(6), nil)
	fakeAgg, _ := GenerateKey(RoleAggregator, "authority")
	if _, err := Prepare(tp.cfg, fakeAgg, nil, PrepareOptions{Ledger: tp.ledgers[0]}); err == nil || !strings.Contains(err.Error(), "is not the one the pool configuration lists for the leader") {
		t.Errorf("a leader with the wrong keys: %v", err)
	}
	if _, err := Prepare(tp.cfg, tp.members[0], nil, PrepareOptions{Ledger: tp.ledgers[0]}); err == nil || !strings.Contains(err.Error(), "want an aggregator key") {
		t.Errorf("a member key as aggregator: %v", err)
	}
	fakeCol, _ := GenerateKey(RoleCollector, "analyst")
	if _, err := Collect(tp.cfg, fakeCol, nil, nil, CollectOptions{}); err == nil || !strings.Contains(err.Error(), "not the one the pool configuration lists for the collector") {
		t.Errorf("a collector with the wrong key: %v", err)
	}
	fakeMember, _ := GenerateKey(RoleMember, "oem-a")
	if _, err := Contribute(tp.cfg, fakeMember, tp.partialOf(t, memory.NewGoAllocator(), fleetRows(t, memory.NewGoAllocator(), "x", 3, 6, 1))); err == nil || !strings.Contains(err.Error(), "wrong key file") {
		t.Errorf("a member with the wrong key: %v", err)
	}
	// A share encrypted to the collector cannot be opened with another
	// collector's key even if the configuration is changed to list it.
	cs := tp.contributions(t, 1)
	var preps [2]*Prepared
	for agg := range 2 {
		var ups []Upload
		for _, c := range cs {
			ups = append(ups, Upload{Name: c.Member, Manifest: c.Manifest, Share: c.Uploads[agg]})
		}
		var peer []byte
		if agg == helper {
			peer = preps[leader].File
		}
		p, err := Prepare(tp.cfg, tp.aggs[agg], ups, PrepareOptions{Peer: peer, Ledger: tp.ledgers[agg]})
		if err != nil {
			t.Fatal(err)
		}
		preps[agg] = p
	}
	// The helper cannot prepare with another round's leader file.
	other := *preps[leader]
	if _, err := Aggregate(tp.cfg, tp.aggs[helper], AggregateOptions{Leader: preps[helper].File, Helper: other.File, State: preps[helper].State, Ledger: tp.ledgers[helper]}); err == nil {
		t.Error("prep files in the wrong places were accepted")
	}
}

// TestReportHTML: the HTML report names every rejection and escapes what a
// member could write into it.
func TestReportHTML(t *testing.T) {
	r := &Report{Pool: "p", Round: "r", Members: ReportMembers{Configured: 2, Quorum: 1, Counted: []string{"a"},
		Rejected: []Rejection{{Member: "b", By: "leader", Reason: "<script>alert(1)</script>"}}}}
	b, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	h := string(b)
	if strings.Contains(h, "<script>") || !strings.Contains(h, "&lt;script&gt;") || !strings.Contains(h, "Rejected reports") {
		t.Errorf("report HTML does not list the rejection escaped:\n%s", h)
	}
}
