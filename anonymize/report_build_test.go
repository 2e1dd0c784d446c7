package anonymize

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestReportMatchesWrittenFile runs the demo policy (with variants) to real
// files, reads the written Parquet file back and checks every figure of the
// report's rows and mobility blocks against it, the input, or each other
// where neither can see it (issue #12 item 8: rows detached at trip ends
// were in no figure, rows that keep a trip id were not reported, and the
// trips said to keep an id were counted before k-anonymity suppressed some
// of them); then every figure the HTML page shows against the JSON.
func TestReportMatchesWrittenFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy func([]byte) []byte
	}{
		{"demo policy", func(p []byte) []byte { return p }},
		{"trip ends dropped", func(p []byte) []byte {
			return bytes.Replace(p, []byte("endpoints: detach"), []byte("endpoints: drop"), 1)
		}},
		{"no trace gate", func(p []byte) []byte {
			// Without it the demo fleet's traces link (the run would fail
			// the linkage limit): the limit is lifted for this variant.
			p = bytes.Replace(p, []byte("  max_linkage: 0.05\n"), []byte("  max_linkage: 0.99\n"), 1)
			return bytes.Replace(p, []byte("  trace_k: 5\n"), nil, 1)
		}},
		// The policy before issue #12: quasi-identifiers published under a
		// kanon block.
		{"attributes policy", func([]byte) []byte { return brakedisc.AttributesPolicy() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkReportAgainstFile(t, tc.policy(brakedisc.DemoPolicy()))
		})
	}
}

func checkReportAgainstFile(t *testing.T, policy []byte) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.BatchSize = 300, 60_000, 8192
	optout, optRows := firstVINs(t, cfg, mem, 3)
	src, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	dir := t.TempDir()
	dataPath, relPath := filepath.Join(dir, "anonymized.parquet"), filepath.Join(dir, "release.parquet")
	create := func(path string) CreateFunc {
		return func(schema *arrow.Schema) (Sink, error) {
			return arrowio.Create(path, schema, arrowio.CreateOptions{Mem: mem})
		}
	}
	r, err := NewRunner(Options{Policy: writePolicy(t, string(policy), optout...), Keyring: newKeyring(t), Mem: mem, Workers: 2,
		Release: create(relPath), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), src, create(dataPath))
	if err != nil {
		t.Fatal(err)
	}
	var js, page bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	f := readFileFigures(t, dataPath, mem)
	num := func(path string) int64 { return jsonInt(t, doc, path) }

	// rows: what came in, what the file holds, and the identity.
	for _, c := range []struct {
		path string
		want int64
	}{
		{"rows.in", cfg.Rows},
		{"rows.out", f.rows},
		{"rows.filtered_by.opt_out", optRows},
		{"opt_out.rows", optRows},
		{"opt_out.subjects", int64(len(optout))},
		{"rows.filtered", num("rows.filtered_by.opt_out") + num("rows.filtered_by.trip_trim")},
		{"rows.in", num("rows.out") + num("rows.suppressed") + num("rows.filtered")},
		{"mobility.trimmed_rows", num("rows.filtered_by.trip_trim")},
		// mobility: the trip ids the file holds.
		{"mobility.rows_with_trip_id", f.withTrip},
		{"mobility.rows_without_trip_id", f.rows - f.withTrip},
		{"mobility.trips_published", f.trips},
		{"mobility.rows_without_trip_id", num("mobility.rows_detached_ends") + num("mobility.rows_detached")},
		{"mobility.output_groups", f.cellHours},
		{"mobility.output_groups_below_k", 0},
	} {
		if got := num(c.path); got != c.want {
			t.Errorf("%s = %d, want %d", c.path, got, c.want)
		}
	}
	if _, ok := doc["kanon"]; ok {
		if got := num("kanon.classes"); got != f.classes {
			t.Errorf("kanon.classes = %d, want %d", got, f.classes)
		}
	}
	m := rep.Mobility
	switch {
	case m.SuppressedRows > rep.Rows.Suppressed || m.SuppressedRows == 0:
		t.Errorf("cell-hour k suppressed %d rows of %d suppressed", m.SuppressedRows, rep.Rows.Suppressed)
	case m.Trips < int64(m.TripsPublished):
		t.Errorf("%d trips published of %d", m.TripsPublished, m.Trips)
	}
	p, _ := ParsePolicy("policy.yaml", policy)
	if detach := p.Mobility.Endpoints == "detach"; detach != (m.RowsDetachedEnds > 0) || detach == (m.TrimmedRows > 0) {
		t.Errorf("endpoints %s: %d trip ends detached, %d trimmed", p.Mobility.Endpoints, m.RowsDetachedEnds, m.TrimmedRows)
	}
	if gate := p.Mobility.TraceK > 0; gate != (m.RowsDetached > 0) {
		t.Errorf("trace_k %d: %d rows of unpublished trips", p.Mobility.TraceK, m.RowsDetached)
	}
	checkHTMLFigures(t, page.String(), doc, []string{"rows.in", "rows.out", "rows.suppressed", "rows.filtered",
		"mobility.trips", "mobility.rows_with_trip_id", "mobility.rows_without_trip_id", "mobility.trips_published", "mobility.rows_detached_ends"})
}

// fileFigures are what the written file shows.
type fileFigures struct {
	rows, withTrip, trips, cellHours, classes int64
}

func readFileFigures(t *testing.T, path string, mem memory.Allocator) fileFigures {
	t.Helper()
	src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var f fileFigures
	trips, cellHours, classes := map[int64]bool{}, map[string]bool{}, map[string]bool{}
	qi := []string{"model_year", "postcode", "owner_birth_year", "owner_sex"}
	for src.Next() {
		rec := src.RecordBatch()
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		trip, ts, cell := col("trip").(*array.Int64), col("ts").(*array.Timestamp), col("cell")
		for i := range int(rec.NumRows()) {
			f.rows++
			if trip.IsValid(i) {
				f.withTrip++
				trips[trip.Value(i)] = true
			}
			c, _ := valueText(cell, i)
			cellHours[fmt.Sprint(c, ts.Value(i))] = true
			var k []string
			for _, q := range qi {
				if rec.Schema().HasField(q) { // published under a kanon block
					v, _ := valueText(col(q), i)
					k = append(k, v)
				}
			}
			classes[strings.Join(k, "\x00")] = true
		}
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	f.trips, f.cellHours, f.classes = int64(len(trips)), int64(len(cellHours)), int64(len(classes))
	return f
}

// firstVINs are n VINs of the fleet's first batch, and the rows of the
// fleet they have.
func firstVINs(t *testing.T, cfg brakedisc.Config, mem memory.Allocator, n int) ([]string, int64) {
	t.Helper()
	src, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	picked := map[string]bool{}
	var vins []string
	var rows int64
	for src.Next() {
		rec := src.RecordBatch()
		vin := rec.Column(rec.Schema().FieldIndices(brakedisc.ColVIN)[0])
		for i := range int(rec.NumRows()) {
			v, _ := valueText(vin, i)
			if len(vins) < n && !picked[v] {
				picked[v] = true
				vins = append(vins, v)
			}
			if picked[v] {
				rows++
			}
		}
	}
	return vins, rows
}

// checkHTMLFigures: every figure the page marks (data-field) equals the
// JSON's at that path, and the page marks every path in want.
func checkHTMLFigures(t *testing.T, page string, doc map[string]any, want []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`data-field="([^"]+)">([^<]*)<`).FindAllStringSubmatch(page, -1) {
		path, text := m[1], m[2]
		seen[path] = true
		got, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			t.Errorf("HTML %s: %q is not a count", path, text)
			continue
		}
		if w := jsonInt(t, doc, path); got != w {
			t.Errorf("HTML %s = %d, JSON %d", path, got, w)
		}
	}
	for _, p := range want {
		if !seen[p] {
			t.Errorf("the HTML page does not show %s", p)
		}
	}
}

// jsonInt is the integer at a dotted path of a decoded JSON report; an
// absent field (omitempty) is 0.
func jsonInt(t *testing.T, doc map[string]any, path string) int64 {
	t.Helper()
	var v any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("JSON %s: %s is not an object", path, k)
		}
		if v, ok = m[k]; !ok {
			return 0
		}
	}
	x, ok := v.(float64)
	if !ok || x != float64(int64(x)) {
		t.Fatalf("JSON %s: %v is not an integer", path, v)
	}
	return int64(x)
}
