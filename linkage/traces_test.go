package linkage

import (
	"math"
	"testing"
)

func testKey(t testing.TB, b byte) *Key {
	t.Helper()
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = b + byte(i)
	}
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// reading is one row: its trace or subject and its point (cell, hour,
// value), as small numbers the tests turn into keys.
type reading struct {
	id                uint64
	cell, hour, value uint64
}

// cols turns readings into point column keys (cell, hour, value) and ids.
func cols(rs []reading) (ids []uint64, c [][]uint64) {
	c = make([][]uint64, 3)
	for _, r := range rs {
		ids = append(ids, r.id)
		c[0] = append(c[0], 1000+r.cell)
		c[1] = append(c[1], 2000+r.hour)
		c[2] = append(c[2], 3000+r.value)
	}
	return ids, c
}

// attack runs Traces over raw readings (subjects 1, 2, …) and published
// readings (traces 101, 102, …), with truth mapping a trace to its subject
// (nil: unknown) and published choosing the traces that were published.
func attack(t *testing.T, opts TraceOptions, raw, pub []reading, truth map[uint64]uint64, published func(uint64) bool) TraceResult {
	t.Helper()
	if opts.Key == nil {
		opts.Key = testKey(t, 1)
	}
	opts.Columns = []string{"cell", "hour", "value"}
	opts.Block = []int{0, 1}
	tr, err := NewTraces(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Phase 1 sees every trace's rows (here: the published readings and
	// those of unpublished traces alike).
	units, c := cols(pub)
	truths := make([]uint64, len(units))
	for i, u := range units {
		truths[i] = truth[u]
	}
	if err := tr.Offer(units, truths, [][]uint64{c[0], c[1]}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Seal(published); err != nil {
		t.Fatal(err)
	}
	subs, rc := cols(raw)
	if err := tr.Raw(subs, rc); err != nil {
		t.Fatal(err)
	}
	var pubRows []reading
	for _, r := range pub {
		if published == nil || published(r.id) {
			pubRows = append(pubRows, r)
		}
	}
	units, c = cols(pubRows)
	if err := tr.Published(units, c); err != nil {
		t.Fatal(err)
	}
	res, err := tr.Result()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestTracesAttack is the attack on a small case worked out by hand.
func TestTracesAttack(t *testing.T) {
	raw := []reading{
		{1, 1, 1, 50}, {1, 1, 1, 52}, {1, 2, 2, 60},
		{2, 1, 1, 50}, {2, 1, 1, 52}, {2, 2, 2, 60}, {2, 3, 3, 10},
		{3, 1, 1, 51}, {3, 2, 2, 60},
	}
	pub := []reading{
		{101, 1, 1, 50}, {101, 2, 2, 60}, // subjects 1 and 2 hold both: not linked
		{102, 3, 3, 10},                  // only subject 2: linked
		{103, 1, 1, 51},                  // only subject 3: linked
		{104, 1, 1, 52},                  // not published
		{105, 2, 2, 60}, {105, 1, 1, 50}, // 101's points again: 101 and 105 not unique
	}
	truth := map[uint64]uint64{101: 1, 102: 2, 103: 3, 104: 1, 105: 2}
	published := func(u uint64) bool { return u != 104 }
	res := attack(t, TraceOptions{}, raw, pub, truth, published)
	if res.Traces != 4 || !res.Census {
		t.Fatalf("traces %d census %v, want 4 true", res.Traces, res.Census)
	}
	if res.Linkage.Count != 2 || res.Linkage.Share != 0.5 {
		t.Errorf("linkage %+v, want 2 of 4", res.Linkage)
	}
	if res.Correct == nil || res.Correct.Count != 2 {
		t.Errorf("correct %+v, want 2", res.Correct)
	}
	if res.Unicity.Count != 2 {
		t.Errorf("unicity %+v, want 2 of 4 (102 and 103)", res.Unicity)
	}
	if res.Short != 4 {
		t.Errorf("short %d, want 4 (every trace has fewer than 4 points)", res.Short)
	}
	if !(res.Linkage.Lower < 0.5 && res.Linkage.Upper > 0.5) {
		t.Errorf("interval %v–%v does not hold the share", res.Linkage.Lower, res.Linkage.Upper)
	}
	// The value column drives the linkage: without it, every point of
	// 102 and 103 is held by another subject too... but 102's cell-hour
	// (3, 3) is subject 2's alone, so one trace stays linked.
	var without float64 = -1
	for _, w := range res.Without {
		if w.Column == "value" {
			without = w.Linkage
		}
	}
	if without != 0.25 {
		t.Errorf("linkage without value %v, want 0.25 (%+v)", without, res.Without)
	}
	if len(res.Drivers) != 1 || res.Drivers[0].Column != "value" {
		t.Errorf("drivers %+v, want value", res.Drivers)
	}

	// Truth unknown: no correct share.
	res = attack(t, TraceOptions{}, raw, pub, nil, published)
	if res.Correct != nil || res.TruthKnown {
		t.Errorf("correct %+v without truth", res.Correct)
	}
	if res.Linkage.Count != 2 {
		t.Errorf("linkage %+v without truth, want 2", res.Linkage)
	}
}

// TestTracesWrongTruth: a trace linked to a subject other than its own
// counts in the linkage but not in the correct share (what a perturbed
// release would show).
func TestTracesWrongTruth(t *testing.T) {
	raw := []reading{{1, 1, 1, 50}, {2, 1, 1, 51}}
	pub := []reading{{101, 1, 1, 51}}
	res := attack(t, TraceOptions{}, raw, pub, map[uint64]uint64{101: 1}, nil)
	if res.Linkage.Count != 1 || res.Correct.Count != 0 {
		t.Errorf("linkage %+v correct %+v, want 1 and 0", res.Linkage, res.Correct)
	}
}

// fleet builds raw readings of n subjects, each in its own cell-hours
// with a few shared ones, and one published trace per subject made of two
// of its readings.
func fleet(n int) (raw, pub []reading, truth map[uint64]uint64) {
	truth = map[uint64]uint64{}
	for s := 1; s <= n; s++ {
		sub := uint64(s)
		for j := range 3 {
			raw = append(raw, reading{sub, uint64(s % 50), uint64(j), uint64(s % 7)})
		}
		u := uint64(100_000 + s)
		truth[u] = sub
		pub = append(pub, reading{u, uint64(s % 50), 0, uint64(s % 7)}, reading{u, uint64(s % 50), 1, uint64(s % 7)})
	}
	return raw, pub, truth
}

// TestTracesSampleAndBound: a sample smaller than the traces is not a
// census and estimates the census figure; a small MaxPairs evicts traces
// and the rest is still measured.
func TestTracesSampleAndBound(t *testing.T) {
	raw, pub, truth := fleet(5000)
	census := attack(t, TraceOptions{Traces: 10_000}, raw, pub, truth, nil)
	if !census.Census || census.Traces != 5000 {
		t.Fatalf("census %+v", census)
	}
	// Subjects s and s+350 share cell, value and hours (350 = lcm(50, 7)).
	if census.Linkage.Count != 0 {
		t.Fatalf("census linkage %+v, want 0", census.Linkage)
	}
	sample := attack(t, TraceOptions{Traces: 500}, raw, pub, truth, nil)
	if sample.Census || sample.Traces != 500 {
		t.Fatalf("sample %+v", sample)
	}
	small := attack(t, TraceOptions{Traces: 500, MaxPairs: 2000}, raw, pub, truth, nil)
	if small.Evicted == 0 || small.Traces == 0 || small.Traces+small.Evicted != 500 {
		t.Fatalf("bounded: traces %d evicted %d", small.Traces, small.Evicted)
	}
	if small.Linkage.Count != 0 || small.Correct.Count != 0 {
		t.Errorf("bounded linkage %+v", small.Linkage)
	}
}

// TestTracesSampleUniform: the keyed sample is uniform over the published
// traces. Trace i is published unless i % 3 == 0, and linked when i is
// even: the sampled share of linked traces must match the census (half of
// the published ones) within 4.4 standard errors (two-sided false
// rejection about 1e-5 per key; five keys).
func TestTracesSampleUniform(t *testing.T) {
	const n = 30_000
	var raw, pub []reading
	truth := map[uint64]uint64{}
	for i := 1; i <= n; i++ {
		u, s := uint64(1_000_000+i), uint64(i)
		truth[u] = s
		v := uint64(i % 2) // odd traces share their point with subject 0
		pub = append(pub, reading{u, 1, 1, v*uint64(i) + 1})
		raw = append(raw, reading{s, 1, 1, v*uint64(i) + 1})
	}
	raw = append(raw, reading{n + 1, 1, 1, 1})
	published := func(u uint64) bool { return (u-1_000_000)%3 != 0 }
	for key := byte(1); key <= 5; key++ {
		res := attack(t, TraceOptions{Traces: 1000, Key: testKey(t, key*31), Diagnose: -1}, raw, pub, truth, published)
		if res.Traces != 1000 {
			t.Fatalf("key %d: sample of %d", key, res.Traces)
		}
		se := math.Sqrt(0.25 / 1000)
		if d := math.Abs(res.Linkage.Share - 0.5); d > 4.4*se {
			t.Errorf("key %d: sampled linkage %.3f, census 0.5 (%.1f standard errors)", key, res.Linkage.Share, d/se)
		}
	}
}

// TestTracesPhases: the phases are enforced and options validated.
func TestTracesPhases(t *testing.T) {
	k := testKey(t, 3)
	for _, o := range []TraceOptions{
		{Block: []int{0}, Key: k},
		{Columns: []string{"a"}, Key: k},
		{Columns: []string{"a"}, Block: []int{1}, Key: k},
		{Columns: []string{"a"}, Block: []int{0}},
		{Columns: []string{"a"}, Block: []int{0}, Key: k, Confidence: 1},
	} {
		if _, err := NewTraces(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	tr, err := NewTraces(TraceOptions{Columns: []string{"a", "b"}, Block: []int{0}, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Raw([]uint64{1}, [][]uint64{{1}, {1}}); err == nil {
		t.Error("Raw before Seal accepted")
	}
	if err := tr.Seal(nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.Offer([]uint64{1}, []uint64{1}, [][]uint64{{1}}); err == nil {
		t.Error("Offer after Seal accepted")
	}
	if err := tr.Raw([]uint64{1}, [][]uint64{{1}}); err == nil {
		t.Error("a missing column accepted")
	}
	res, err := tr.Result()
	if err != nil || res.Traces != 0 {
		t.Fatalf("empty result %+v, %v", res, err)
	}
	if _, err := tr.Result(); err == nil {
		t.Error("Result twice accepted")
	}
}

// TestSubjectsUnicity: subject 1's trace lies inside 2's (not unique), 2
// has a point of its own, 3 is alone; with point sampling (MaxPairs far
// below the points) the all-unique fleet stays all unique.
func TestSubjectsUnicity(t *testing.T) {
	s, err := NewSubjects(SubjectOptions{Key: testKey(t, 5), Points: 10})
	if err != nil {
		t.Fatal(err)
	}
	rows := []reading{{1, 1, 1, 0}, {2, 1, 1, 0}, {3, 9, 1, 0}, {1, 2, 2, 0}, {2, 2, 2, 0}, {2, 3, 3, 0}}
	ids, c := cols(rows)
	pts := make([]uint64, len(ids))
	CombineColumns(c, pts)
	if err := s.Add(ids, pts); err != nil {
		t.Fatal(err)
	}
	res, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Unicity.Of != 3 || res.Unicity.Count != 2 || !res.Census || res.Short != 3 || res.PointShare != 1 {
		t.Errorf("result %+v, want 2 of 3 unique, census, 3 short", res)
	}

	s, _ = NewSubjects(SubjectOptions{Key: testKey(t, 6), Subjects: 200, MaxPairs: 3000})
	var subs, points []uint64
	for sub := uint64(1); sub <= 1000; sub++ {
		for j := range 40 {
			subs = append(subs, sub)
			points = append(points, Combine(sub, uint64(j)))
		}
	}
	if err := s.Add(subs, points); err != nil {
		t.Fatal(err)
	}
	res, err = s.Result()
	if err != nil {
		t.Fatal(err)
	}
	// 40 points a subject, 1 in 16 eligible: about 8% of subjects have
	// none (left out of the denominator), most fewer than 4 (short).
	if res.PointShare != 1.0/16 || res.Census || res.Unicity.Of < 160 || res.Unicity.Count != res.Unicity.Of || res.Short == 0 {
		t.Errorf("sampled points: %+v", res)
	}
}

// TestMerge: two measurements over halves of the rows, merged through their
// states, give exactly the figures of one measurement over all of them.
func TestMerge(t *testing.T) {
	raw, pub, truth := fleet(3000)
	for s := 4; s <= 3000; s += 4 {
		// every fourth trip gets a point only its own subject holds
		u := uint64(100_000 + s)
		raw = append(raw, reading{uint64(s), uint64(s % 50), 2, uint64(5000 + s)})
		pub = append(pub, reading{u, uint64(s % 50), 2, uint64(5000 + s)})
	}
	opts := TraceOptions{Traces: 400, Key: testKey(t, 9), Columns: []string{"cell", "hour", "value"}, Block: []int{0, 1}}
	whole := attack(t, opts, raw, pub, truth, nil)
	if whole.Linkage.Count == 0 {
		t.Fatal("the fixture links nothing: the comparison would say little")
	}
	half := func(rs []reading, i int) []reading {
		var out []reading
		for j, r := range rs {
			if j%2 == i {
				out = append(out, r)
			}
		}
		return out
	}
	newT := func() *Traces {
		tr, err := NewTraces(opts)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	// Phase 1 on two workers, merged.
	var cands [][]byte
	for i := range 2 {
		tr := newT()
		units, c := cols(half(pub, i))
		truths := make([]uint64, len(units))
		for j, u := range units {
			truths[j] = truth[u]
		}
		if err := tr.Offer(units, truths, [][]uint64{c[0], c[1]}); err != nil {
			t.Fatal(err)
		}
		b, err := tr.Candidates()
		if err != nil {
			t.Fatal(err)
		}
		cands = append(cands, b)
	}
	sealed := func() *Traces {
		tr := newT()
		for _, b := range cands {
			if err := tr.MergeCandidates(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Seal(nil); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	// Phase 2: two workers index half of the raw rows each.
	final := sealed()
	for i := range 2 {
		tr := sealed()
		subs, rc := cols(half(raw, i))
		if err := tr.Raw(subs, rc); err != nil {
			t.Fatal(err)
		}
		st, err := tr.RawState()
		if err != nil {
			t.Fatal(err)
		}
		if err := final.MergeRaw(st); err != nil {
			t.Fatal(err)
		}
	}
	units, c := cols(pub)
	if err := final.Published(units, c); err != nil {
		t.Fatal(err)
	}
	merged, err := final.Result()
	if err != nil {
		t.Fatal(err)
	}
	if merged.Traces != whole.Traces || merged.Linkage != whole.Linkage || merged.Unicity != whole.Unicity || *merged.Correct != *whole.Correct ||
		merged.Census != whole.Census || len(merged.Without) != len(whole.Without) {
		t.Errorf("merged %+v\nwhole %+v", merged, whole)
	}

	// Subjects: halves merged give the same unicity, also when the points
	// are sampled (MaxPairs far below them).
	for _, maxPairs := range []int{0, 500} {
		so := SubjectOptions{Key: testKey(t, 10), Subjects: 300, MaxPairs: maxPairs}
		one, _ := NewSubjects(so)
		a, _ := NewSubjects(so)
		b, _ := NewSubjects(so)
		ids, rc := cols(raw)
		pts := make([]uint64, len(ids))
		CombineColumns(rc, pts)
		one.Add(ids, pts)
		a.Add(ids[:len(ids)/2], pts[:len(ids)/2])
		b.Add(ids[len(ids)/2:], pts[len(ids)/2:])
		sb, err := b.State()
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Merge(sb); err != nil {
			t.Fatal(err)
		}
		r1, _ := one.Result()
		r2, _ := a.Result()
		if r1 != r2 {
			t.Errorf("MaxPairs %d: merged %+v, whole %+v", maxPairs, r2, r1)
		}
	}
	if err := newT().MergeCandidates([]byte("junk")); err == nil {
		t.Error("junk candidates accepted")
	}
}
