package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestRound runs the example end to end with the real CLI on small fleets:
// three carmakers are counted, every public partition is released, the
// budget is spent once, and the separate releases are made for comparison.
// (At this size nearly every interval is clamped to the bounds; the accuracy
// gain is measured at scale in benchmarks/pool.)
func TestRound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs a whole round (about 10 s)")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build tarnkappe")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tarnkappe")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/tarnkappe/tarnkappe/cmd/tarnkappe")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tarnkappe: %v\n%s", err, out)
	}
	var log bytes.Buffer
	s, err := Run(context.Background(), Config{Dir: filepath.Join(dir, "work"), Tarnkappe: bin, Vehicles: 600, Rows: 60_000}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	pol, err := anonymize.ParsePolicy("policy.yaml", brakedisc.DemoPolicy())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := anonymize.PublicPartitionRows(pol)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Counted, []string{"bmw", "mercedes", "volkswagen"}) || s.Partitions != len(parts) || s.EpsilonLeft != 2 {
		t.Errorf("summary %+v", s)
	}
	for i, n := range s.MemberRows {
		if n == 0 || n > 30_000 {
			t.Errorf("member %d holds %d rows: the make filter did not work", i, n)
		}
	}
	agg := pol.Release.Aggregates[0]
	if len(s.SeparateWidths) != 3 || !(s.PooledWidth > 0 && s.PooledWidth <= agg.Upper-agg.Lower) {
		t.Errorf("interval widths: pooled %v, separate %v", s.PooledWidth, s.SeparateWidths)
	}
	for _, want := range []string{"$ tarnkappe pool contribute", "$ tarnkappe pool collect", "× narrower"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the example's output lacks %q", want)
		}
	}
}
