package beam

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// newDemoFixture is newFixture with the demo policy before issue #12
// (examples/brakedisc/policy-attributes.yaml: trip scope, mobility block,
// trace k, kanon on the vehicle and owner columns, public DP partitions
// per cell and hour of day): the tests of k-anonymity beside movement data
// (the settle fixed point, l/t) and of a linkage over the limit use it;
// the example policy has no kanon block (newExampleFixture).
func newDemoFixture(t testing.TB, vehicles int, rows int64, batch int) *fixture {
	return newPolicyFixture(t, brakedisc.AttributesPolicy(), vehicles, rows, batch)
}

// newExampleFixture is newFixture with the current example policy
// (examples/brakedisc/policy.yaml, the one the demo runs: microaggregated
// readings, no vehicle or owner column, no kanon block).
func newExampleFixture(t testing.TB, vehicles int, rows int64, batch int) *fixture {
	return newPolicyFixture(t, brakedisc.DemoPolicy(), vehicles, rows, batch)
}

func newPolicyFixture(t testing.TB, pol []byte, vehicles int, rows int64, batch int) *fixture {
	f := newFixture(t, vehicles, rows, batch)
	if err := os.WriteFile(f.policy, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	f.cfg.Policy = pol
	return f
}

// tripRows reads an output file into comparable rows: every column's text,
// the trip id replaced by whether there is one (ids are random per run), and
// the trips as sets of rows (which rows share an id).
func tripRows(t testing.TB, path, tripCol string) (rows []string, trips []string) {
	t.Helper()
	schema, cols := readText(t, path)
	ti := schema.FieldIndices(tripCol)
	if len(ti) != 1 {
		t.Fatalf("%s: no trip column %q", path, tripCol)
	}
	byTrip := map[string][]string{}
	for i := range cols[0] {
		var b strings.Builder
		for j := range cols {
			v := cols[j][i]
			if j == ti[0] && v != "<null>" {
				v = "<trip>"
			}
			b.WriteString(v)
			b.WriteByte('|')
		}
		rows = append(rows, b.String())
		if id := cols[ti[0]][i]; id != "<null>" {
			byTrip[id] = append(byTrip[id], b.String())
		}
	}
	for _, r := range byTrip {
		slices.Sort(r)
		trips = append(trips, strings.Join(r, "\n"))
	}
	slices.Sort(rows)
	slices.Sort(trips)
	return rows, trips
}

// TestPrismMatchesSingleMachineDemo runs the demo policy (mobility block
// included) on a generated fleet on prism and on the single-machine Runner
// with the same keyring, and compares: the written rows (as a multiset:
// trips come out in another order) and which rows share a trip id, the
// trips, trimmed, detached and suppressed counts, the fixed point of cell-hour
// k and k-anonymity, the k-anonymity transformation and classes, and the
// DP release's partitions and budget.
func TestPrismMatchesSingleMachineDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	for _, tc := range []struct {
		name  string
		kanon bool
		edits [][2]string // policy text replaced
	}{
		{"demo", true, nil},
		{"demo without kanon", false, nil},
		// Raw means from the input rows (H3 cells of the raw positions,
		// no window).
		{"demo with trip ends dropped", true, [][2]string{{"endpoints: detach", "endpoints: drop"}}},
		{"demo without trace_k", true, [][2]string{{"  trace_k: 5\n", ""}}},
		// Classes counted in rows lose members to every cell suppression:
		// the fixed point takes 7 rounds and suppresses classes too.
		// l-diversity and t-closeness: the search with the sensitive
		// value, and every settle round re-checks l/t on the survivors.
		{"demo with l", true, [][2]string{{"  k: 10\n", "  k: 10\n  l: {sensitive: make, l: 3, variant: distinct}\n"}}},
		{"demo with t in rows", true, [][2]string{{"  k: 10\n", "  k: 10\n  t: {sensitive: make, t: 0.3, distance: equal}\n"},
			{"suppression: 0.05", "suppression: 0.2\n  per_subject: false"}}},
		{"demo with classes in rows, settling in 7 rounds", true, [][2]string{
			{"  k: 10\n", "  k: 50\n"}, {"  k: 5\n  # The", "  k: 8\n  # The"},
			{"suppression: 0.05", "suppression: 0.2\n  per_subject: false"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDemoFixture(t, 300, 30_000, 4096)
			if !tc.kanon {
				f.withoutKAnon(t)
			}
			f.withPolicyEdits(t, tc.edits...)
			want := compareDemo(t, f, tc.kanon)
			if want.KAnon != nil {
				t.Logf("settle %d rounds, %d classes; l/t suppressed %d classes", want.Mobility.SettleRounds, want.Mobility.SettleClasses, want.KAnon.DiversitySuppressedClasses)
			}
			if strings.Contains(tc.name, "7 rounds") && (want.Mobility.SettleRounds != 7 || want.Mobility.SettleClasses == 0) {
				t.Errorf("the fixture should settle in 7 rounds with classes added: %+v", *want.Mobility)
			}
		})
	}
}

// TestPrismMatchesSingleMachineExample runs the example policy as the demo
// runs it (microaggregated readings, trip scope, trace k,
// mobility.max_linkage, a DP release) on prism and on the single-machine
// Runner and compares as TestPrismMatchesSingleMachineDemo does: the
// written rows (the microaggregated means bit for bit), the trips, the
// counts and every report field, the risk block included (linkage, its
// interval and drivers, unicity before, after and at raw GPS precision).
func TestPrismMatchesSingleMachineExample(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	f := newExampleFixture(t, 300, 30_000, 4096)
	want := compareDemo(t, f, false)
	r := want.Risk
	t.Logf("rows %+v; linkage %v %v, unicity before %v after %v raw GPS %v; %d traces, %d subjects sampled", want.Rows, *r.After.Linkage, r.After.LinkageCI,
		*r.Before.Unicity, *r.After.Unicity, *r.Before.UnicityRawGPS, r.Method.TracesSampled, r.Method.SubjectsSampled)
}

// withoutKAnon removes the kanon block from the fixture's policy (the
// quasi-identifiers are kept as they are).
func (f *fixture) withoutKAnon(t testing.TB) {
	pol := string(f.cfg.Policy)
	a, b := strings.Index(pol, "\nkanon:\n"), strings.Index(pol, "\n# Movement profiles")
	if a < 0 || b < a {
		t.Fatal("demo policy: kanon block not found")
	}
	pol = pol[:a] + pol[b:]
	for _, q := range []string{"model_year", "postcode", "owner_birth_year", "owner_sex"} {
		pol = strings.Replace(pol, "  "+q+": generalize\n", "  "+q+": keep\n", 1)
	}
	if err := os.WriteFile(f.policy, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	f.cfg.Policy = []byte(pol)
}

func compareDemo(t *testing.T, f *fixture, kanon bool) *anonymize.Report {
	want := f.single(t, filepath.Join(f.dir, "single.parquet"))
	got, err := runPrism(t, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	compareReports(t, got, want)
	if !reflect.DeepEqual(got.Rows, want.Rows) {
		t.Errorf("rows: beam %+v, single machine %+v", got.Rows, want.Rows)
	}
	if got.OptOut == nil || want.OptOut == nil || *got.OptOut != *want.OptOut {
		t.Errorf("opt-out: beam %+v, single machine %+v", got.OptOut, want.OptOut)
	}
	gm, wm := got.Mobility, want.Mobility
	if gm == nil || wm == nil {
		t.Fatal("mobility block missing")
	}
	if gm.Utility == nil || wm.Utility == nil {
		t.Fatalf("utility: beam %+v, single machine %+v", gm.Utility, wm.Utility)
	}
	compareUtility(t, *gm.Utility, *wm.Utility)
	wmc, gmc := *wm, *gm
	wmc.Utility, gmc.Utility = nil, nil
	if gmc != wmc {
		t.Errorf("mobility:\nbeam   %+v\nsingle %+v", gmc, wmc)
	}
	if wm.SuppressedRows == 0 || (wm.TraceK > 0 && (wm.TripsPublished == 0 || wm.RowsDetached == 0)) || kanon == (want.Rows.Suppressed == wm.SuppressedRows) {
		t.Errorf("the fixture should exercise cell suppression, the trace gate and class suppression: %+v", wmc)
	}
	if !reflect.DeepEqual(got.Keys, want.Keys) || !reflect.DeepEqual(got.Columns, want.Columns) {
		t.Errorf("keys/columns: beam %v %v, single machine %v %v", got.Keys, got.Columns, want.Keys, want.Columns)
	}
	compareOutput(t, f)
	checkWrittenOrder(t, f.cfg.Output)
	if got.DP == nil || want.DP == nil {
		t.Fatal("dp block missing")
	}
	gd, wd := *got.DP, *want.DP
	gd.Output, wd.Output = "", ""
	// The values, intervals and verdict come from each engine's own noise
	// draw: both must have them, for the same partitions.
	if gd.Verdict == nil || wd.Verdict == nil {
		t.Errorf("dp verdict: beam %v, single machine %v", gd.Verdict, wd.Verdict)
	}
	if gk, wk := dpKeys(gd.PartitionValues), dpKeys(wd.PartitionValues); !reflect.DeepEqual(gk, wk) || len(wk) != wd.Partitions {
		t.Errorf("dp partition values: beam %d partitions, single machine %d (of %d released), keys equal: %v", len(gk), len(wk), wd.Partitions, reflect.DeepEqual(gk, wk))
	}
	gd.Verdict, wd.Verdict, gd.PartitionValues, wd.PartitionValues = nil, nil, nil, nil
	if !reflect.DeepEqual(gd, wd) {
		t.Errorf("dp:\nbeam   %+v\nsingle %+v", gd, wd)
	}
	if !kanon {
		if got.KAnon != nil {
			t.Error("beam reported k-anonymity without a kanon block")
		}
		return want
	}
	if got.KAnon == nil || want.KAnon == nil {
		t.Fatal("kanon block missing")
	}
	if !reflect.DeepEqual(got.KAnon.Transformation, want.KAnon.Transformation) || got.KAnon.Classes != want.KAnon.Classes ||
		got.KAnon.SuppressedClasses != want.KAnon.SuppressedClasses || !reflect.DeepEqual(got.KAnon.ClassSizes, want.KAnon.ClassSizes) {
		t.Errorf("kanon:\nbeam   %+v\nsingle %+v", *got.KAnon, *want.KAnon)
	}
	if !reflect.DeepEqual(got.KAnon.LDiversity, want.KAnon.LDiversity) || !reflect.DeepEqual(got.KAnon.TCloseness, want.KAnon.TCloseness) ||
		got.KAnon.SensitiveCounted != want.KAnon.SensitiveCounted || got.KAnon.DiversitySuppressedClasses != want.KAnon.DiversitySuppressedClasses {
		t.Errorf("kanon l/t: beam %+v %+v %q %d, single machine %+v %+v %q %d", got.KAnon.LDiversity, got.KAnon.TCloseness, got.KAnon.SensitiveCounted,
			got.KAnon.DiversitySuppressedClasses, want.KAnon.LDiversity, want.KAnon.TCloseness, want.KAnon.SensitiveCounted, want.KAnon.DiversitySuppressedClasses)
	}
	for m, w := range want.KAnon.InformationLoss {
		if g := got.KAnon.InformationLoss[m]; math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
			t.Errorf("information loss %s: beam %v, single machine %v", m, g, w)
		}
	}
	compareRisk(t, got, want)
	t.Logf("rows %+v\nmobility %+v\nutility %+v\nkanon %v classes %d suppressed %d; dp %d partitions", want.Rows, wmc, *wm.Utility,
		want.KAnon.Transformation, want.KAnon.Classes, want.KAnon.SuppressedClasses, want.DP.Partitions)
	return want
}

// compareOutput compares the written rows and trips, and the released
// partitions, of both runs of f.
func compareOutput(t *testing.T, f *fixture) {
	tripCol := "trip"
	wr, wt := tripRows(t, filepath.Join(f.dir, "single.parquet"), tripCol)
	gr, gt := tripRows(t, f.cfg.Output, tripCol)
	if len(wr) != len(gr) {
		t.Fatalf("rows written: beam %d, single machine %d", len(gr), len(wr))
	}
	for i := range wr {
		if wr[i] != gr[i] {
			t.Fatalf("written rows differ (sorted, row %d):\nbeam   %s\nsingle %s", i, gr[i], wr[i])
		}
	}
	if len(wt) == 0 || !slices.Equal(wt, gt) {
		t.Errorf("trips: beam %d, single machine %d, or their rows differ", len(gt), len(wt))
	}
	// The release has the same (public) partitions on both sides: its key
	// columns (the policy's release.by, first in the record) are equal.
	p, err := anonymize.LoadPolicy(f.policy)
	if err != nil {
		t.Fatal(err)
	}
	nKeys := len(p.Release.By)
	_, wrel := readText(t, filepath.Join(f.dir, "single.release.parquet"))
	_, grel := readText(t, f.cfg.ReleaseOutput)
	key := func(cols [][]string) []string {
		var k []string
		for i := range cols[0] {
			parts := make([]string, nKeys)
			for j := range parts {
				parts[j] = cols[j][i]
			}
			k = append(k, strings.Join(parts, "|"))
		}
		slices.Sort(k)
		return k
	}
	if !slices.Equal(key(wrel), key(grel)) {
		t.Errorf("released partitions differ: beam %d, single machine %d", len(grel[0]), len(wrel[0]))
	}
}

// compareUtility compares the utility figures: the groups and counts
// exactly, the relative errors up to the order of float additions (sums per
// group are added in another order on Beam).
func compareUtility(t *testing.T, got, want anonymize.UtilityReport) {
	t.Helper()
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	g, w := got, want
	g.MaxRelErr, g.MeanRelErr, g.WithinFraction = w.MaxRelErr, w.MeanRelErr, w.WithinFraction
	if g != w || !close(got.MaxRelErr, want.MaxRelErr) || !close(got.MeanRelErr, want.MeanRelErr) || !close(got.WithinFraction, want.WithinFraction) {
		t.Errorf("utility:\nbeam   %+v\nsingle %+v", got, want)
	}
	if want.Groups == 0 || want.Released == 0 {
		t.Errorf("the fixture should have utility groups: %+v", want)
	}
}

// TestPrismMeasuresScopeSubject runs the demo policy under scope subject
// with endpoints drop: the raw utility comes from the input rows, and the
// linkage measure's traces are the vehicles (the truth known:
// linkage_correct), with the VIN pseudonymised and with it dropped (the
// written rows then hold no trace unit: both engines tie them to their
// vehicle before the column goes).
func TestPrismMeasuresScopeSubject(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	f := newDemoFixture(t, 100, 5_000, 4096)
	f.withPolicyEdits(t, [2]string{"scope: trip", "scope: subject"}, [2]string{"  trip_id_column: trip\n", ""}, [2]string{"endpoints: detach", "endpoints: drop"},
		[2]string{"  trace_k: 5\n", ""}, [2]string{"min_subjects: 20", "min_subjects: 3"}) // a small fleet
	for _, vin := range []string{"  vin: {pseudonymize: {method: hmac, domain: vin}}\n", "  vin: drop\n"} {
		if vin != "  vin: drop\n" {
			f.withPolicyEdits(t, [2]string{"  vin: drop\n", vin})
		}
		want := f.single(t, filepath.Join(f.dir, "single.parquet"))
		got, err := runPrism(t, f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mobility == nil || got.Mobility.Utility == nil || want.Mobility.Utility == nil {
			t.Fatal("utility missing")
		}
		compareUtility(t, *got.Mobility.Utility, *want.Mobility.Utility)
		compareReports(t, got, want)
		if want.Risk.After.LinkageCorrect == nil {
			t.Fatalf("%s: linkage_correct missing", strings.TrimSpace(vin))
		}
		t.Logf("%s: utility %+v; linkage %v, correct %v", strings.TrimSpace(vin), *want.Mobility.Utility, *want.Risk.After.Linkage, *want.Risk.After.LinkageCorrect)
		if vin != "  vin: drop\n" {
			f.withPolicyEdits(t, [2]string{vin, "  vin: drop\n"})
		}
	}
}

// checkWrittenOrder: Beam writes its rows in the Runner's output order
// (anonymize.OutputOrder), not in the order of its shards (subject shards,
// trips): hours never go back, and a trip's rows are neighbours about as
// often as in an order random within each hour (within 6 standard
// deviations of the mean over 20 such orders; false rejection about 2e-9
// under normality). In shard order nearly every row of a trip follows
// another of the same trip.
func checkWrittenOrder(t *testing.T, path string) {
	t.Helper()
	schema, cols := readText(t, path)
	ts, trip := cols[schema.FieldIndices("ts")[0]], cols[schema.FieldIndices("trip")[0]]
	for i := 1; i < len(ts); i++ {
		if ts[i] < ts[i-1] {
			t.Fatalf("%s, row %d: hour %s after %s", path, i, ts[i], ts[i-1])
		}
	}
	adj := func(id []string) int {
		a := 0
		for i := 1; i < len(id); i++ {
			if id[i] != "<null>" && id[i] == id[i-1] {
				a++
			}
		}
		return a
	}
	a := adj(trip)
	rng := rand.New(rand.NewPCG(1, 2))
	perm := slices.Clone(trip)
	var sum, sum2 float64
	const draws = 20
	for range draws {
		copy(perm, trip)
		for lo := 0; lo < len(perm); {
			hi := lo + 1
			for hi < len(perm) && ts[hi] == ts[lo] {
				hi++
			}
			run := perm[lo:hi]
			rng.Shuffle(len(run), func(i, j int) { run[i], run[j] = run[j], run[i] })
			lo = hi
		}
		x := float64(adj(perm))
		sum, sum2 = sum+x, sum2+x*x
	}
	mean := sum / draws
	sd := math.Sqrt(max(sum2/draws-mean*mean, 0))
	if math.Abs(float64(a)-mean) > 6*sd {
		t.Errorf("%s: a trip's rows are neighbours %d times; a random order within the hour gives %.1f ± %.1f", path, a, mean, sd)
	}
}

// dpKeys returns the keys of a release's partitions, sorted, each as text.
func dpKeys(ps []anonymize.DPPartitionValues) []string {
	keys := make([]string, 0, len(ps))
	for _, p := range ps {
		keys = append(keys, fmt.Sprint(p.Key))
	}
	slices.Sort(keys)
	return keys
}
