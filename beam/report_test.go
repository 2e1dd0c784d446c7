package beam

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

// TestPrismReportMatchesSingleMachine runs the demo policy (every block:
// opt-out, mobility with utility and the trace gate, kanon, a DP release)
// through both engines and compares the two reports field by field: the
// same JSON fields must be present (Beam's report once lacked the column
// details), with equal values wherever the engines must agree.
func TestPrismReportMatchesSingleMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	f := newDemoFixture(t, 100, 8_000, 2048)
	want := f.single(t, f.dir+"/single.parquet")
	got, err := runPrism(t, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	compareReports(t, got, want)
	if want.KAnon == nil || want.Mobility == nil || want.Mobility.Utility == nil || want.DP == nil || want.OptOut == nil {
		t.Fatalf("the fixture should fill every block: %+v", want)
	}
	if g, w := strings.ReplaceAll(got.KAnon.VerifyCommand, got.Output, "OUT"), strings.ReplaceAll(want.KAnon.VerifyCommand, want.Output, "OUT"); g != w {
		t.Errorf("kanon.verify_command: beam %q, single machine %q", g, w)
	}
}

// Report fields whose values the engines need not share: names and times of
// the run (kanon.verify_command names the output; the test checks it
// with the output's name replaced), how the input was read (Beam sorts per
// subject shard), and the DP release's values, intervals and verdict
// (another noise draw).
var engineFields = regexp.MustCompile(`^(tool|input|output|started|duration_seconds|dp\.output|kanon\.verify_command|outputs\[\d\]\.file|input_details\.(order|sort_runs)|dp\.verdict\..*|dp\.partition_values\[\d+\]\.values\..*)$`)

// Report fields present only when a noise draw puts them there (a mean on a
// clamp bound).
var drawnFields = regexp.MustCompile(`^dp\.verdict\.aggregates\[\d+\]\.at_bound$`)

// Report fields of the linkage and unicity measures, which Beam does not
// compute: the single machine has them (and lists them as measured beside
// the anonymised data's guarantees), Beam says why not (risk.not_computed;
// checkRiskNotComputed).
var runnerOnlyFields = regexp.MustCompile(`^(risk\.(method\..*|unicity_note|(before|after)\.(unicity|linkage)[a-z_]*(\[\d\])?)|outputs\[0\]\.measured\[\d+\])$`)

// Report fields equal up to the order of floating-point additions.
var sumFields = regexp.MustCompile(`^(mobility\.utility\.(max_rel_err|mean_rel_err|within_fraction)|kanon\.(information_loss|column_loss)\..*)$`)

// compareReports checks that both reports hold the same fields (arrays
// compared element by element) with equal values, but for engineFields
// (present, any value) and sumFields (within 1e-9).
func compareReports(t *testing.T, got, want *anonymize.Report) {
	t.Helper()
	g, w := reportFields(t, got), reportFields(t, want)
	var missing, extra []string
	for p := range w {
		if _, ok := g[p]; !ok && !runnerOnlyFields.MatchString(p) && !drawnFields.MatchString(p) {
			missing = append(missing, p)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok && p != "risk.not_computed" && !drawnFields.MatchString(p) {
			extra = append(extra, p)
		}
	}
	checkRiskNotComputed(t, got, want)
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("report fields: beam lacks %q, has in addition %q", missing, extra)
	}
	for p, wv := range w {
		gv, ok := g[p]
		if !ok || engineFields.MatchString(p) {
			continue
		}
		if sumFields.MatchString(p) {
			gf, gok := gv.(float64)
			wf, wok := wv.(float64)
			if !gok || !wok || math.Abs(gf-wf) > 1e-9*math.Max(1, math.Abs(wf)) {
				t.Errorf("report %s: beam %v, single machine %v", p, gv, wv)
			}
			continue
		}
		if !reflect.DeepEqual(gv, wv) {
			t.Errorf("report %s: beam %v, single machine %v", p, gv, wv)
		}
	}
}

// reportFields flattens a report's JSON into its leaf fields: the dotted
// path of each (array elements as [i]) to its value.
func reportFields(t *testing.T, rep *anonymize.Report) map[string]any {
	t.Helper()
	var sb strings.Builder
	if err := rep.WriteJSON(&sb); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(sb.String()), &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if path != "" {
					k = path + "." + k
				}
				walk(k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		default:
			out[path] = v
		}
	}
	walk("", v)
	return out
}

// checkRiskNotComputed: Beam's report has no linkage or unicity figure and
// says why; the single machine's has them (with a mobility block).
func checkRiskNotComputed(t *testing.T, got, want *anonymize.Report) {
	t.Helper()
	if want.Mobility == nil {
		return
	}
	if want.Risk == nil || want.Risk.After.Linkage == nil || want.Risk.Before.Unicity == nil || want.Risk.NotComputed != "" {
		t.Errorf("single machine: linkage and unicity missing: %+v", want.Risk)
	}
	if got.Risk == nil || got.Risk.NotComputed == "" || got.Risk.After.Linkage != nil || got.Risk.Before.Unicity != nil || got.Risk.Method != nil {
		t.Errorf("beam: want risk.not_computed and no linkage or unicity figure, got %+v", got.Risk)
	}
}
