package beam

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// newDemoFixture is newFixture with the current demo policy
// (examples/brakedisc/policy.yaml: trip scope, mobility block, trace k,
// public DP partitions per cell and hour of day).
func newDemoFixture(t testing.TB, vehicles int, rows int64, batch int) *fixture {
	f := newFixture(t, vehicles, rows, batch)
	pol := brakedisc.DemoPolicy()
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
		{"demo with trip ends dropped", true, [][2]string{{"endpoints: detach", "endpoints: drop"}}},
		// Classes counted in rows lose members to every cell suppression:
		// the fixed point takes 7 rounds and suppresses classes too.
		{"demo with classes in rows, settling in 7 rounds", true, [][2]string{
			{"  k: 10\n", "  k: 50\n"}, {"  k: 5\n  # The", "  k: 8\n  # The"},
			{"suppression: 0.05", "suppression: 0.2\n  per_subject: false"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDemoFixture(t, 300, 30_000, 4096)
			if !tc.kanon {
				f.withoutKAnon(t)
			}
			pol := f.cfg.Policy
			for _, e := range tc.edits {
				np := bytes.Replace(pol, []byte(e[0]), []byte(e[1]), 1)
				if bytes.Equal(np, pol) {
					t.Fatalf("demo policy: %q not found", e[0])
				}
				pol = np
			}
			if err := os.WriteFile(f.policy, pol, 0o600); err != nil {
				t.Fatal(err)
			}
			f.cfg.Policy = pol
			want := compareDemo(t, f, tc.kanon)
			if strings.Contains(tc.name, "7 rounds") && (want.Mobility.SettleRounds != 7 || want.Mobility.SettleClasses == 0) {
				t.Errorf("the fixture should settle in 7 rounds with classes added: %+v", *want.Mobility)
			}
		})
	}
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
	// Utility is a measurement the Beam path does not make (said in the
	// report); everything else must match.
	if gm.Utility != nil {
		t.Error("beam reported a utility figure it does not measure")
	}
	wmc := *wm
	wmc.Utility = nil
	if *gm != wmc {
		t.Errorf("mobility:\nbeam   %+v\nsingle %+v", *gm, wmc)
	}
	if wm.SuppressedRows == 0 || wm.TripsPublished == 0 || wm.RowsDetached == 0 || kanon == (want.Rows.Suppressed == wm.SuppressedRows) {
		t.Errorf("the fixture should exercise cell suppression, the trace gate and class suppression: %+v", wmc)
	}
	if got.Risk == nil || !strings.Contains(got.Risk.UnicityNote, "not measured") || got.Risk.After.Unicity != nil {
		t.Errorf("beam should say that it does not measure unicity: %+v", got.Risk)
	}
	if !reflect.DeepEqual(got.Keys, want.Keys) || !reflect.DeepEqual(got.Columns, want.Columns) {
		t.Errorf("keys/columns: beam %v %v, single machine %v %v", got.Keys, got.Columns, want.Keys, want.Columns)
	}
	compareOutput(t, f)
	if got.DP == nil || want.DP == nil {
		t.Fatal("dp block missing")
	}
	gd, wd := *got.DP, *want.DP
	gd.Output, wd.Output = "", ""
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
	for m, w := range want.KAnon.InformationLoss {
		if g := got.KAnon.InformationLoss[m]; math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
			t.Errorf("information loss %s: beam %v, single machine %v", m, g, w)
		}
	}
	compareRisk(t, got, want)
	t.Logf("rows %+v\nmobility %+v\nkanon %v classes %d suppressed %d; dp %d partitions", want.Rows, wmc, want.KAnon.Transformation, want.KAnon.Classes, want.KAnon.SuppressedClasses, want.DP.Partitions)
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
	// The release has the same (public) partitions on both sides.
	_, wrel := readText(t, filepath.Join(f.dir, "single.release.parquet"))
	_, grel := readText(t, f.cfg.ReleaseOutput)
	key := func(cols [][]string) []string {
		var k []string
		for i := range cols[0] {
			k = append(k, cols[0][i]+"|"+cols[1][i])
		}
		slices.Sort(k)
		return k
	}
	if !slices.Equal(key(wrel), key(grel)) {
		t.Errorf("released partitions differ: beam %d, single machine %d", len(grel[0]), len(wrel[0]))
	}
}
