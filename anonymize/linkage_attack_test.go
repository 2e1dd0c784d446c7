package anonymize

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// TestLinkageAttack is the attack of issue #12 item 2, written apart from
// the linkage measure: the adversary holds the raw readings of the whole
// fleet and the policy (and the report's generalisation levels), projects
// every raw reading to the published precision of every published column,
// and links a published trip to the vehicles whose readings contain all of
// its published rows. The policy before issue #12 (per-reading values and
// owner columns beside the trips) fails the 5% bound; the example policy
// meets it, on the demo fleet's shape and on a taxi fleet of one city. The
// run's own measure (risk.after.linkage) must agree with the attack.
func TestLinkageAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("four runs of the example policies; skipped with -short")
	}
	cars := brakedisc.DefaultConfig()
	cars.Vehicles, cars.Rows, cars.Days, cars.BatchSize = 400, 60_000, 2, 8192
	taxis := brakedisc.DefaultConfig()
	taxis.Vehicles, taxis.Rows, taxis.Days, taxis.Interval, taxis.Taxis, taxis.BatchSize = 100, 36_000, 1, time.Minute, true, 8192
	for _, tc := range []struct {
		name   string
		fleet  brakedisc.Config
		policy []byte
		linked func(float64) bool
		want   string
	}{
		{"cars, policy before issue 12", cars, brakedisc.AttributesPolicy(), func(l float64) bool { return l > 0.5 }, "> 50%"},
		{"cars, example policy", cars, brakedisc.DemoPolicy(), func(l float64) bool { return l <= 0.05 }, "<= 5%"},
		{"taxis, policy before issue 12", taxis, brakedisc.AttributesPolicy(), func(l float64) bool { return l > 0.5 }, "> 50%"},
		{"taxis, example policy", taxis, brakedisc.DemoPolicy(), func(l float64) bool { return l <= 0.05 }, "<= 5%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := runAttack(t, tc.fleet, tc.policy)
			t.Logf("%d published trips, %d linked (%.1f%%); report: linkage %.3f %v, unicity after %.3f",
				a.trips, a.linked, 100*a.share(), *a.rep.Risk.After.Linkage, a.rep.Risk.After.LinkageCI, *a.rep.Risk.After.Unicity)
			if a.trips < 50 {
				t.Fatalf("only %d published trips: the fleet is too small to tell", a.trips)
			}
			if !tc.linked(a.share()) {
				t.Errorf("the attack links %.1f%% of published trips, want %s", 100*a.share(), tc.want)
			}
			// The measure runs the same attack on a sample (and only over
			// the rows the run kept: the opt-out's are not candidates), so
			// the attack's figure lies within its interval, give or take.
			ci := a.rep.Risk.After.LinkageCI
			if s := a.share(); s < ci[0]-0.05 || s > ci[1]+0.05 {
				t.Errorf("attack %.3f, report's interval %v", s, ci)
			}
		})
	}
}

type attackResult struct {
	trips, linked int
	rep           *Report
}

func (a attackResult) share() float64 { return float64(a.linked) / float64(max(a.trips, 1)) }

// runAttack runs policy over the fleet, then the attack on its output.
func runAttack(t *testing.T, cfg brakedisc.Config, policy []byte) attackResult {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	// The policy without max_linkage: the attack must see the output of
	// a policy that fails it too.
	src := strings.Replace(string(policy), "  max_linkage: 0.05\n", "", 1)
	p := writePolicy(t, src)
	out, rel := &memSink{}, &memSink{}
	t.Cleanup(out.release)
	t.Cleanup(rel.release)
	rd, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem, Release: sinkFor(rel), TempDir: t.TempDir(),
		Measure: MeasureOptions{Key: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), rd, sinkFor(out))
	if err != nil {
		t.Fatal(err)
	}

	// The adversary's view of the published file: each published trip's
	// rows, every column but the trip id as text; and, per (cell, hour), the
	// published value of each microaggregated column.
	m := p.Mobility
	var cols []string
	for _, f := range out.schema.Fields() {
		if f.Name != m.TripIDColumn {
			cols = append(cols, f.Name)
		}
	}
	trips := map[string]map[string]bool{}
	groupValue := map[string]string{} // column \x00 cell \x00 hour → published text
	for _, rec := range out.recs {
		trip := rec.Column(rec.Schema().FieldIndices(m.TripIDColumn)[0])
		cell := rec.Column(rec.Schema().FieldIndices(m.CellColumn)[0])
		ts := rec.Column(rec.Schema().FieldIndices(m.Time)[0])
		for i := range int(rec.NumRows()) {
			vals := make([]string, len(cols))
			for j, c := range cols {
				vals[j] = text(t, rec.Column(rec.Schema().FieldIndices(c)[0]), i)
				if rule, _ := p.Columns.Lookup(c); rule.Action == ActionMicroaggregate {
					groupValue[c+"\x00"+text(t, cell, i)+"\x00"+text(t, ts, i)] = vals[j]
				}
			}
			if trip.IsNull(i) {
				continue
			}
			id := text(t, trip, i)
			if trips[id] == nil {
				trips[id] = map[string]bool{}
			}
			trips[id][strings.Join(vals, "\x00")] = true
		}
	}

	// The adversary's index: every raw reading at published precision →
	// the vehicles that have it.
	levels := map[string]int{}
	if rep.KAnon != nil {
		levels = rep.KAnon.Transformation
	}
	index := map[string]map[string]bool{}
	raw, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Release()
	for raw.Next() {
		rec := raw.RecordBatch()
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		vin, lat, lon, ts := col("vin"), col(m.Lat).(*array.Float64), col(m.Lon).(*array.Float64), col(m.Time).(*array.Timestamp)
		for i := range int(rec.NumRows()) {
			cell, err := mobility.CellOf(lat.Value(i), lon.Value(i), m.CellResolution)
			if err != nil {
				t.Fatal(err)
			}
			hour := strconv.FormatInt(int64(ts.Value(i))/3_600_000*3_600_000, 10)
			vals := make([]string, len(cols))
			for j, c := range cols {
				rule, _ := p.Columns.Lookup(c)
				switch {
				case c == m.CellColumn:
					vals[j] = cell
				case c == m.Time:
					vals[j] = hour
				case rule.Action == ActionKeep:
					vals[j] = text(t, col(c), i)
				case rule.Action == ActionMicroaggregate:
					vals[j] = groupValue[c+"\x00"+cell+"\x00"+hour] // "" where the cell-hour is not published
				case rule.Action == ActionGeneralize:
					g, err := r.Hierarchy(c).Generalize(text(t, col(c), i), levels[c])
					if err != nil {
						t.Fatal(err)
					}
					vals[j] = g
				default:
					t.Fatalf("the attack does not project action %s (column %q)", rule.Action, c)
				}
			}
			k := strings.Join(vals, "\x00")
			if index[k] == nil {
				index[k] = map[string]bool{}
			}
			index[k][vin.ValueStr(i)] = true
		}
	}
	if err := raw.Err(); err != nil {
		t.Fatal(err)
	}

	res := attackResult{trips: len(trips), rep: rep}
	for _, points := range trips {
		var cands map[string]bool
		for pt := range points {
			vins := index[pt]
			if cands == nil {
				cands = map[string]bool{}
				for v := range vins {
					cands[v] = true
				}
				continue
			}
			for v := range cands {
				if !vins[v] {
					delete(cands, v)
				}
			}
		}
		if len(cands) == 1 {
			res.linked++
		}
	}
	return res
}

// text is a value as the attack compares it: numbers by value, times in
// milliseconds, strings as they are.
func text(t *testing.T, a arrow.Array, i int) string {
	t.Helper()
	if a.IsNull(i) {
		return "\x00null"
	}
	switch c := a.(type) {
	case *array.Float64:
		v := c.Value(i)
		if v == math.Trunc(v) {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10)
	case *array.Timestamp:
		return strconv.FormatInt(int64(c.Value(i)), 10)
	case *array.String:
		return c.Value(i)
	case *array.Dictionary:
		return text(t, c.Dictionary(), c.GetValueIndex(i))
	}
	t.Fatalf("the attack does not read %s", a.DataType())
	return ""
}
