package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// TestRunPrism runs the command on prism over a small fleet with the
// example policy (as the demo and examples/beam/README.md run it:
// microaggregation, the linkage measure and its limit) and checks the
// files and report fields.
func TestRunPrism(t *testing.T) {
	var stderr bytes.Buffer
	if code := realMain(nil, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage") {
		t.Fatalf("no arguments: exit %d, stderr %q", code, stderr.String())
	}
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "fleet.parquet")
	if err := brakedisc.WriteFile(context.Background(), in, brakedisc.Config{Vehicles: 300, Rows: 30_000, Seed: 3}, memory.NewGoAllocator()); err != nil {
		t.Fatal(err)
	}
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.WriteFile(filepath.Join(dir, "keys.json"), false); err != nil {
		t.Fatal(err)
	}
	kr.Destroy()
	os.WriteFile(filepath.Join(dir, "optout.txt"), nil, 0o600)
	// The example policy, as the demo runs it (mobility.max_linkage
	// included: the fleet is large enough for its sample's interval).
	os.WriteFile(filepath.Join(dir, "policy.yaml"), brakedisc.DemoPolicy(), 0o600)
	out := filepath.Join(dir, "out.parquet")
	report := filepath.Join(dir, "report.json")
	stderr.Reset()
	code := realMain([]string{"run", "--runner", "prism", "--policy", filepath.Join(dir, "policy.yaml"), "--in", in, "--out", out, "--report", report}, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, p := range []string{out, filepath.Join(dir, "out.release.parquet"), report} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	var rep struct {
		Rows struct{ In, Out, Suppressed, Filtered int64 }
		Keys map[string]string
		DP   struct {
			EpsilonSpent float64 `json:"epsilon_spent"`
			Selection    string
		}
		Mobility struct {
			Trips          int64
			TripsPublished int64 `json:"trips_published"`
		}
		Risk struct {
			After struct{ Linkage *float64 }
		}
	}
	raw, _ := os.ReadFile(report)
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Rows.In != 30_000 || rep.Rows.In != rep.Rows.Out+rep.Rows.Suppressed+rep.Rows.Filtered {
		t.Errorf("rows: %+v", rep.Rows)
	}
	if rep.Risk.After.Linkage == nil || *rep.Risk.After.Linkage > 0.05 || rep.Keys["optout"] == "" || rep.DP.EpsilonSpent <= 0 ||
		rep.DP.Selection != "public" || rep.Mobility.Trips == 0 || rep.Mobility.TripsPublished == 0 {
		t.Errorf("report: %s", raw)
	}
	if !strings.Contains(stderr.String(), "rows in 30000") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
