package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

func TestRelease(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fleet := brakedisc.DefaultConfig()
	fleet.Rows = 300_000
	var out bytes.Buffer
	res, err := Release(context.Background(), Config{Fleet: fleet, CellDegrees: 0.1, WindowHours: 3, Epsilon: 1, Delta: 1e-6}, mem, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	s := res.Stats
	if s.RowsIn != 300_000 || s.RowsIn != s.RowsUsed+s.RowsNotPublic+s.RowsDroppedL0+s.RowsDroppedLInf {
		t.Errorf("rows not accounted for: %+v", s)
	}
	if res.Spent.EpsilonSpent != 1 || res.Spent.DeltaSpent != 1e-6 {
		t.Errorf("spent %+v, want ε=1 δ=1e-6", res.Spent)
	}
	if int64(res.Record.NumRows()) != res.PartitionsKept || !strings.Contains(out.String(), "verdict: ") || !strings.Contains(out.String(), "plan: 300 vehicles") {
		t.Errorf("record has %d rows, %d kept; output:\n%s", res.Record.NumRows(), res.PartitionsKept, out.String())
	}
	// No exact count of the input is printed: those differ between
	// neighbouring inputs (ε = ∞ for whoever reads them). Every figure
	// checked is large enough not to occur in the output by chance.
	for name, v := range map[string]int64{"rows in": s.RowsIn, "rows used": s.RowsUsed, "vehicles": s.Subjects, "rows over L0": s.RowsDroppedL0, "rows over L∞": s.RowsDroppedLInf} {
		if v < 100 {
			t.Fatalf("exact %s = %d: not distinctive enough to test", name, v)
		}
		if regexp.MustCompile(`(^|[^0-9.])` + strconv.FormatInt(v, 10) + `([^0-9.]|$)`).MatchString(out.String()) {
			t.Errorf("exact %s (%d) printed:\n%s", name, v, out.String())
		}
	}
	if _, err := Release(context.Background(), Config{Fleet: fleet, CellDegrees: 0.1, WindowHours: 5, Epsilon: 1}, mem, &out); err == nil {
		t.Error("a window that does not divide 24 was accepted")
	}
}

func TestCell(t *testing.T) {
	for _, c := range []struct {
		lat, lon, deg float64
		want          string
	}{
		{48.137, 11.575, 0.1, "48.1,11.5"},
		{48.137, 11.575, 0.01, "48.13,11.57"},
		{47.95, 11.25, 0.5, "47.5,11.0"},
		{-0.05, -0.05, 0.1, "-0.1,-0.1"},
	} {
		if got := Cell(c.lat, c.lon, c.deg); got != c.want {
			t.Errorf("Cell(%v, %v, %v) = %q, want %q", c.lat, c.lon, c.deg, got, c.want)
		}
	}
}
