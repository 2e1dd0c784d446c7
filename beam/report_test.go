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

// Report fields that depend on the trip ids (random in both engines,
// crypto/rand): under scope trip the linkage measure's keyed draws — which
// published trips are sampled (when there are more than the sample), which
// of them are diagnosed per column (the first 300 by priority) and which
// points the unicity draws — are keyed by the trip's id, so each engine
// draws another sample of the same design. They must be present in both;
// equal when the sample is every published trip and all are diagnosed
// (tripDrawnFields picks which apply).
var (
	tripUnicityFields = regexp.MustCompile(`^risk\.after\.unicity(_ci\[\d\])?$`)
	tripDiagFields    = regexp.MustCompile(`^risk\.method\.linkage_(diagnosed|drivers|without).*$`)
	tripSampleFields  = regexp.MustCompile(`^(risk\.(after\.linkage.*|method\.traces_(sampled|census|evicted)|unicity_note)|outputs\[\d\]\.measured\[\d+\])$`)
)

// tripDrawnFields reports whether field p of the single machine's report
// want depends on which trips the engine's random ids drew.
func tripDrawnFields(want *anonymize.Report, p string) bool {
	if want.Mobility == nil || want.Mobility.Scope != "trip" || want.Risk == nil || want.Risk.Method == nil {
		return false
	}
	m := want.Risk.Method
	switch {
	case tripUnicityFields.MatchString(p):
		return true
	case tripDiagFields.MatchString(p):
		return m.TracesSampled > 300 || !m.TracesCensus
	case tripSampleFields.MatchString(p):
		return !m.TracesCensus
	}
	return false
}

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
		if _, ok := g[p]; !ok && !drawnFields.MatchString(p) && !(tripDiagFields.MatchString(p) && tripDrawnFields(want, p)) {
			missing = append(missing, p)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok && !drawnFields.MatchString(p) && !(tripDiagFields.MatchString(p) && tripDrawnFields(want, p)) {
			extra = append(extra, p)
		}
	}
	checkRiskComputed(t, got, want)
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("report fields: beam lacks %q, has in addition %q", missing, extra)
	}
	for p, wv := range w {
		gv, ok := g[p]
		if !ok || engineFields.MatchString(p) || tripDrawnFields(want, p) {
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

// checkRiskComputed: with a mobility block both reports hold the linkage
// and unicity figures (compareReports compares them field by field: the
// same keyed samples, merged exactly on Beam, give the same figures).
func checkRiskComputed(t *testing.T, got, want *anonymize.Report) {
	t.Helper()
	if want.Mobility == nil {
		return
	}
	for name, r := range map[string]*anonymize.Report{"single machine": want, "beam": got} {
		if r.Risk == nil || r.Risk.After.Linkage == nil || r.Risk.Before.Unicity == nil || r.Risk.Before.UnicityRawGPS == nil ||
			r.Risk.After.Unicity == nil || r.Risk.NotComputed != "" || r.Risk.Method == nil {
			t.Errorf("%s: linkage and unicity missing: %+v", name, r.Risk)
		}
	}
}
