package anonymize

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/internal/h3"
)

// publicRelease replaces testPolicy's release block.
func publicRelease(block string) string {
	i := strings.Index(testPolicy, "release:")
	return testPolicy[:i] + block
}

// runPublic runs the test fleet through policy and returns the report and
// the release rows as (cell, hour) pairs.
func runPublic(t *testing.T, policy string, files map[string]string) (*Report, []string) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 60, trips: 4, readings: 20, batch: 500})
	rdr, err := array.NewRecordReader(schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	defer rdr.Release()
	p := writePolicy(t, policy)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(filepath.Dir(p.File()), name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, rel := &memSink{}, &memSink{}
	defer out.release()
	defer rel.release()
	r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem, Workers: 2, Release: sinkFor(rel), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), rdr, sinkFor(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Rows.Check(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, rec := range rel.recs {
		cell := rec.Column(rec.Schema().FieldIndices("cell")[0])
		hour := rec.Column(rec.Schema().FieldIndices("hour_of_day")[0])
		for i := range int(rec.NumRows()) {
			keys = append(keys, cell.ValueStr(i)+"/"+hour.ValueStr(i))
		}
	}
	return rep, keys
}

// TestReleasePublicBBox: partitions generated from the policy alone (cells
// covering a box × 24 hours) are all released, with no budget spent on
// selection, and the data's partitions are among them.
func TestReleasePublicBBox(t *testing.T) {
	rep, keys := runPublic(t, publicRelease(`release:
  by: [cell, hour_of_day]
  hour_of_day: ts
  cell_resolution: 5
  public: {bbox: [48.0, 11.4, 48.3, 11.7]}
  epsilon: 1
  max_partitions: 10
  max_per_partition: 5
  count: true
  aggregates:
    - {column: disc_temp_c, kind: mean, lower: 0, upper: 500}
`), nil)
	d := rep.DP
	cells := coverBBox(48.0, 11.4, 48.3, 11.7, 5)
	if d.Selection != "public" || d.PublicPartitions != 24*len(cells) || d.Partitions != d.PublicPartitions || len(keys) != d.Partitions {
		t.Fatalf("dp report %+v with %d rows; want all %d public partitions", d, len(keys), 24*len(cells))
	}
	if d.EpsilonSpent > 1 || d.DeltaSpent != 0 {
		t.Errorf("spent ε=%g δ=%g; want <= 1 and 0 (no selection)", d.EpsilonSpent, d.DeltaSpent)
	}
	// The test fleet drives at 48.1-48.2 N, 11.5-11.6 E, from 06:00 UTC
	// on: its partitions are listed and released.
	want := h3.LatLngToCell(h3.LatLng{Lat: 48.15, Lng: 11.55}, 5).String() + "/6"
	if !slices.Contains(keys, want) {
		t.Errorf("partition %s of the data not released", want)
	}
	for _, k := range keys {
		c := h3.Cell(h3.IndexFromString(strings.Split(k, "/")[0]))
		if !c.IsValid() || c.Resolution() != 5 {
			t.Fatalf("released key %q is not a resolution-5 cell", k)
		}
	}
}

// TestReleasePublicFile: a partitions file (columns in any order) is the
// exact list released; data outside it is not.
func TestReleasePublicFile(t *testing.T) {
	c := h3.LatLngToCell(h3.LatLng{Lat: 48.15, Lng: 11.55}, 7).String()
	rep, keys := runPublic(t, publicRelease(`release:
  by: [cell, hour_of_day]
  hour_of_day: ts
  public_partitions: parts.csv
  epsilon: 1
  max_partitions: 10
  max_per_partition: 5
  count: true
`), map[string]string{"parts.csv": "# public list\nhour_of_day,cell\n6," + c + "\n7,8a1f8d000000fff\n"})
	slices.Sort(keys)
	want := []string{"8a1f8d000000fff/7", c + "/6"}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("released %v, want %v", keys, want)
	}
	if rep.DP.Selection != "public" || rep.DP.PublicPartitions != 2 {
		t.Errorf("dp report %+v", rep.DP)
	}
}

func TestReleasePublicFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"empty", "", "empty file"},
		{"wrong header", "cell,hour\n", `lacks column "hour_of_day"`},
		{"extra column", "cell,hour_of_day,x\n", "not in by"},
		{"no rows", "cell,hour_of_day\n", "no partitions"},
		{"ragged", "cell,hour_of_day\na,1\nb\n", "wrong number of fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := newTestList()
			if err != nil {
				t.Fatal(err)
			}
			err = readPartitions("parts.csv", strings.NewReader(tc.body), []string{"cell", "hour_of_day"}, l)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "parts.csv") {
				t.Fatalf("error %v, want %q naming the file", err, tc.want)
			}
		})
	}
}

// TestCoverBBox: every point of the box lies in a listed cell.
func TestCoverBBox(t *testing.T) {
	for _, res := range []int{4, 5, 6} {
		cells := coverBBox(47.95, 11.25, 48.35, 11.85, res)
		rng := rand.New(rand.NewPCG(1, uint64(res)))
		for range 5000 {
			lat, lon := 47.95+0.4*rng.Float64(), 11.25+0.6*rng.Float64()
			if c := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lon}, res).String(); !slices.Contains(cells, c) {
				t.Fatalf("res %d: (%g, %g) in cell %s, not in the %d-cell cover", res, lat, lon, c, len(cells))
			}
		}
	}
	// A box inside one cell still gets that cell.
	if got := coverBBox(48.1, 11.5, 48.1001, 11.5001, 3); len(got) == 0 {
		t.Error("tiny box: no cells")
	}
}

func newTestList() (*dp.PartitionList, error) { return dp.NewPartitionList("cell", "hour_of_day") }
