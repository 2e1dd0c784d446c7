package anonymize

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestReportSeparatesExactFromPublished: the report marks itself as exact
// and for the data owner, says which guarantee covers each output, and
// presents no exact count beside the DP block as if ε covered it.
func TestReportSeparatesExactFromPublished(t *testing.T) {
	rep, _, err := runFleetWith(t, string(brakedisc.DemoPolicy()), smallFleet())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.NotPrivate || !strings.Contains(rep.Audience, "data owner only") {
		t.Errorf("not_private %v, audience %q", rep.NotPrivate, rep.Audience)
	}
	kinds := map[string]OutputGuarantee{}
	for _, o := range rep.Outputs {
		kinds[o.Kind] = o
	}
	data, rel, self := kinds["data"], kinds["release"], kinds["report"]
	if !data.Published || !rel.Published || self.Published || len(rep.Outputs) != 3 {
		t.Fatalf("outputs %+v", rep.Outputs)
	}
	for _, want := range []string{"cell-hour k", "trace k", "random id per trip", "opt-out", "max_linkage"} {
		if !slices.ContainsFunc(data.Guarantees, func(g string) bool { return strings.Contains(g, want) }) {
			t.Errorf("data guarantees %q do not mention %q", data.Guarantees, want)
		}
	}
	if len(data.Measured) == 0 || !strings.Contains(data.Measured[0], "linkage") || !strings.Contains(data.Excluded, "not differentially private") {
		t.Errorf("data measured %q, excluded %q", data.Measured, data.Excluded)
	}
	if len(rel.Guarantees) != 1 || !strings.Contains(rel.Guarantees[0], "differential privacy") || !strings.Contains(rel.Excluded, "this file only") {
		t.Errorf("release %+v", rel)
	}
	if len(self.Guarantees) != 0 || !strings.Contains(self.Excluded, "0600") {
		t.Errorf("report %+v", self)
	}

	// The DP block holds the release's public parameters and what it
	// published, never a count of the raw data.
	var raw struct {
		DP map[string]any `json:"dp"`
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil || len(raw.DP) == 0 {
		t.Fatal(err, raw)
	}
	allowed := []string{"epsilon_spent", "delta_spent", "by", "partitions", "aggregates", "output", "selection", "public_partitions",
		"hour_of_day", "cell_resolution", "epsilon_budget", "delta_budget", "max_partitions", "max_per_partition",
		// What the release file publishes (noised values, intervals) and
		// the verdict dp computes from those alone (post-processing).
		"partition_values", "verdict"}
	for k := range raw.DP {
		if !slices.Contains(allowed, k) {
			t.Errorf("dp block field %q: an exact figure beside the DP release?", k)
		}
	}
	buf.Reset()
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{"For the data owner only", "Outputs and what covers them", "ε and δ cover the release file only", "linkage"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// The DP section holds no exact figure of the run.
	dp := html[strings.Index(html, "<h2>Differentially private release</h2>"):]
	dp = dp[:strings.Index(dp, "</p>")]
	words := strings.FieldsFunc(dp, func(r rune) bool { return r < '0' || r > '9' })
	for _, exact := range []int64{rep.Rows.In, rep.Rows.Out, rep.Rows.Suppressed, rep.Rows.Filtered, rep.Mobility.Trips,
		int64(rep.Mobility.TripsPublished), rep.Mobility.RowsDetached, int64(rep.OptOut.Subjects), rep.OptOut.Rows} {
		if exact > 10 && slices.Contains(words, strconv.FormatInt(exact, 10)) {
			t.Errorf("the DP section shows the exact figure %d: %s", exact, dp)
		}
	}
}
