package beam

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// withPolicyEdits replaces text in the fixture's policy (each edit must
// apply) and writes it.
func (f *fixture) withPolicyEdits(t testing.TB, edits ...[2]string) {
	t.Helper()
	pol := f.cfg.Policy
	for _, e := range edits {
		np := bytes.Replace(pol, []byte(e[0]), []byte(e[1]), 1)
		if bytes.Equal(np, pol) {
			t.Fatalf("policy: %q not found", e[0])
		}
		pol = np
	}
	if err := os.WriteFile(f.policy, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	f.cfg.Policy = pol
}

// singleRun runs the single-machine Runner on input (the fixture's keyring,
// policy and unicity cap) and returns its report or error (the output goes
// to out).
func (f *fixture) singleRun(t testing.TB, input, out string) (*anonymize.Report, error) {
	t.Helper()
	ctx := context.Background()
	p, err := anonymize.LoadPolicy(f.policy)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := pseudonym.LoadKeyring(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Destroy()
	create := func(path string) anonymize.CreateFunc {
		return func(s *arrow.Schema) (anonymize.Sink, error) { return arrowio.Create(path, s, arrowio.CreateOptions{}) }
	}
	rel := strings.TrimSuffix(out, ".parquet") + ".release.parquet"
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Release: create(rel), Workers: 1,
		Input: input, InputFile: input, Output: out, ReleaseOutput: rel, Measure: anonymize.MeasureOptions{Key: f.cfg.MeasureKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src, err := arrowio.Open(ctx, input, arrowio.OpenOptions{BatchSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return r.Run(ctx, src, create(out))
}

var supp20 = [2]string{"suppression: 0.05 ", "suppression: 0.2 "}

// TestPrismMatchesSingleMachineDiversity runs the vehicle-level policy
// (testdata/policy.yaml, no mobility block) with l-diversity and
// t-closeness blocks on prism and on the single-machine Runner with the same
// keyring, and compares the written rows (in input order), the row counts
// and the whole kanon block: transformation, classes, suppressed classes,
// class sizes, l, t, sensitive_counted and diversity_suppressed_classes.
func TestPrismMatchesSingleMachineDiversity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	for _, tc := range []struct {
		name  string
		edits [][2]string
		// the fixture must suppress classes for l/t alone (else the
		// comparison of that decision would be vacuous)
		divSuppressed bool
	}{
		// k 4 and a 20% suppression limit leave classes that have k
		// vehicles but fail l/t: suppressed for l/t alone.
		{"l distinct per vehicle", [][2]string{{"  k: 10\n", "  k: 4\n  l: {sensitive: make, l: 6, variant: distinct}\n"}, supp20}, true},
		{"l recursive per vehicle", [][2]string{{"  k: 10\n", "  k: 4\n  l: {sensitive: make, l: 3, variant: recursive, c: 1}\n"}, supp20}, true},
		{"t equal per vehicle", [][2]string{{"  k: 10\n", "  k: 4\n  t: {sensitive: make, t: 0.5, distance: equal}\n"}, supp20}, true},
		{"l entropy and t ordered in rows", [][2]string{{"  k: 10\n", "  k: 10\n  per_subject: false\n" +
			"  l: {sensitive: disc_temp_c, l: 3, variant: entropy}\n  t: {sensitive: disc_temp_c, t: 0.2, distance: ordered}\n"}, supp20}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 200, 12_000, 4096)
			f.withPolicyEdits(t, tc.edits...)
			want, err := f.singleRun(t, f.input, filepath.Join(f.dir, "single.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := runPrism(t, f.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Rows, want.Rows) {
				t.Errorf("rows: beam %+v, single machine %+v", got.Rows, want.Rows)
			}
			if got.KAnon == nil || want.KAnon == nil {
				t.Fatal("kanon block missing")
			}
			gk, wk := *got.KAnon, *want.KAnon
			if wk.LDiversity == nil && wk.TCloseness == nil || !wk.Verified {
				t.Fatalf("single machine kanon block without l/t: %+v", wk)
			}
			if tc.divSuppressed && wk.DiversitySuppressedClasses == 0 {
				t.Errorf("the fixture should suppress classes for l/t: %+v", wk)
			}
			for m, w := range wk.InformationLoss {
				if g := gk.InformationLoss[m]; math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
					t.Errorf("information loss %s: beam %v, single machine %v", m, g, w)
				}
			}
			for m, w := range wk.ColumnLoss {
				if g := gk.ColumnLoss[m]; math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
					t.Errorf("column loss %s: beam %v, single machine %v", m, g, w)
				}
			}
			gk.InformationLoss, wk.InformationLoss, gk.ColumnLoss, wk.ColumnLoss = nil, nil, nil, nil
			// verify_command names each engine's own output.
			if g, w := strings.ReplaceAll(gk.VerifyCommand, got.Output, "OUT"), strings.ReplaceAll(wk.VerifyCommand, want.Output, "OUT"); g != w {
				t.Errorf("kanon.verify_command: beam %q, single machine %q", g, w)
			}
			gk.VerifyCommand, wk.VerifyCommand = "", ""
			if !reflect.DeepEqual(gk, wk) {
				t.Errorf("kanon:\nbeam   %+v\nsingle %+v", gk, wk)
			}
			compareRisk(t, got, want)
			ws, wc := readText(t, filepath.Join(f.dir, "single.parquet"))
			gs, gc := readText(t, f.cfg.Output)
			if !ws.Equal(gs) {
				t.Fatalf("schema:\nbeam   %s\nsingle %s", gs, ws)
			}
			wc, gc = sortedRows(wc), sortedRows(gc)
			for j := range wc {
				if !slices.Equal(gc[j], wc[j]) {
					t.Fatalf("column %s differs: beam %d rows, single machine %d", ws.Field(j).Name, len(gc[j]), len(wc[j]))
				}
			}
			t.Logf("rows %+v; kanon %v classes %d suppressed %d (l/t %d), counted %s", want.Rows, wk.Transformation, wk.Classes,
				wk.SuppressedClasses, wk.DiversitySuppressedClasses, wk.SensitiveCounted)
		})
	}
}

// TestPrismDiversityBadData: sensitive data the models cannot judge (a
// vehicle with two values, counted per vehicle; a null) fails the job with
// the error the single machine gives (column and row), naming the input
// file, and leaves no output, release or shards.
func TestPrismDiversityBadData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	for _, tc := range []struct {
		name, block, null string
		want              string
		demo              bool
	}{
		{"two values per vehicle", "  l: {sensitive: disc_temp_c, l: 2, variant: distinct}\n", "", "another value", false},
		{"null", "  l: {sensitive: make, l: 2, variant: distinct}\n", "make", "null value", false},
		// With a mobility block the rows are regrouped into trips: the
		// same data fails with the same message, which names no row.
		{"two values per vehicle on the demo policy", "  l: {sensitive: disc_temp_c, l: 2, variant: distinct}\n", "", "another value", true},
		{"null on the demo policy", "  l: {sensitive: make, l: 2, variant: distinct}\n", "make", "null value", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 50, 3000, 1000)
			if tc.demo {
				f = newDemoFixture(t, 50, 3000, 1000)
			}
			f.withPolicyEdits(t, [2]string{"  k: 10\n", "  k: 10\n" + tc.block})
			input := f.input
			if tc.null != "" {
				input = writeWithNull(t, f, tc.null, 1234)
			}
			_, serr := f.singleRun(t, input, filepath.Join(f.dir, "single.parquet"))
			if serr == nil || !strings.Contains(serr.Error(), tc.want) {
				t.Fatalf("single machine: %v, want an error with %q", serr, tc.want)
			}
			i := strings.Index(serr.Error(), "kanon: ")
			if i < 0 {
				t.Fatalf("single machine error %q has no kanon stage", serr)
			}
			cfg := f.cfg
			cfg.Inputs = []string{input}
			_, err := runPrism(t, cfg)
			if err == nil {
				t.Fatal("bad sensitive data should fail the job")
			}
			msg := serr.Error()[i:]
			wants := []string{msg, filepath.Base(input)}
			if tc.null != "" && !tc.demo {
				// Both name the data row of the null (row 1234 from 0).
				wants = append(wants, `kanon: row 1235, column "make": null value`)
			}
			if tc.demo {
				// Trips regroup the rows: neither engine names a data row
				// (the Runner says after which one the trip was emitted).
				if j := strings.Index(msg, " (in a trip"); j >= 0 {
					msg = msg[:j]
				}
				wants = []string{msg, "trips of subject shard"}
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, p := range []string{cfg.Output, cfg.ReleaseOutput, cfg.Report, cfg.TempDir} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failed job", p)
				}
			}
		})
	}
}
