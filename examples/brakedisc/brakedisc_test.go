package brakedisc

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

func smallConfig(vehicles int, rows int64) Config {
	cfg := DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.BatchSize = vehicles, rows, 4096
	return cfg
}

// row is one reading, decoded for the tests.
type row struct {
	vin                                  string
	ts                                   int64
	lat, lon, speed, pressure, temp, pad float64
	make, model, postcode, sex           string
	modelYear, birthYear                 int64
}

func readRows(t *testing.T, cfg Config) []row {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rr, err := NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	if !rr.Schema().Equal(Schema()) {
		t.Fatalf("schema %s, want %s", rr.Schema(), Schema())
	}
	var out []row
	for rr.Next() {
		rec := rr.RecordBatch()
		if rec.NumRows() > int64(cfg.BatchSize) {
			t.Fatalf("batch of %d rows > BatchSize %d", rec.NumRows(), cfg.BatchSize)
		}
		for c, col := range rec.Columns() {
			if col.NullN() != 0 {
				t.Fatalf("column %s has %d nulls", rec.ColumnName(c), col.NullN())
			}
		}
		str := func(c int, i int) string {
			d := rec.Column(c).(*array.Dictionary)
			return d.Dictionary().(*array.String).Value(d.GetValueIndex(i))
		}
		f := func(c, i int) float64 { return rec.Column(c).(*array.Float64).Value(i) }
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, row{
				vin: str(0, i), ts: int64(rec.Column(1).(*array.Timestamp).Value(i)),
				lat: f(2, i), lon: f(3, i), speed: f(4, i), pressure: f(5, i), temp: f(6, i), pad: f(7, i),
				make: str(8, i), model: str(9, i), modelYear: rec.Column(10).(*array.Int64).Value(i),
				postcode: str(11, i), birthYear: rec.Column(12).(*array.Int64).Value(i), sex: str(13, i),
			})
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRowCountExact(t *testing.T) {
	for _, tc := range []struct {
		vehicles, batch int
		rows            int64
	}{{1, 10, 0}, {1, 10, 1}, {3, 7, 100}, {50, 4096, 4096}, {50, 1000, 12_345}, {500, 65536, 70_001}} {
		cfg := smallConfig(tc.vehicles, tc.rows)
		cfg.BatchSize = tc.batch
		if got := len(readRows(t, cfg)); int64(got) != tc.rows {
			t.Errorf("%+v: got %d rows", tc, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"no vehicles", func(c *Config) { c.Vehicles = 0 }, "Vehicles"},
		{"too many vehicles", func(c *Config) { c.Vehicles = maxVehicles + 1 }, "Vehicles"},
		{"negative rows", func(c *Config) { c.Rows = -1 }, "Rows"},
		{"negative batch", func(c *Config) { c.BatchSize = -5 }, "BatchSize"},
		{"negative days", func(c *Config) { c.Days = -1 }, "Days"},
		{"ancient start", func(c *Config) { c.Start = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }, "Start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(10, 10)
			tc.mod(&cfg)
			_, err := NewReader(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), "brakedisc.NewReader: "+tc.field) {
				t.Errorf("error %v does not name %s", err, tc.field)
			}
		})
	}
	// Zero BatchSize, Days and Start take the documented defaults.
	rr, err := NewReader(Config{Vehicles: 2, Rows: 3, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	if !rr.Next() || rr.RecordBatch().NumRows() != 3 {
		t.Fatal("zero-value defaults do not work")
	}
	if ts := rr.RecordBatch().Column(1).(*array.Timestamp).Value(0); time.UnixMilli(int64(ts)).UTC().Format("2006-01-02") != "2026-03-02" {
		t.Errorf("default start not 2026-03-02: %v", time.UnixMilli(int64(ts)).UTC())
	}
}

// Same seed and sizes give byte-identical Parquet; another seed does not.
func TestDeterministicParquet(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	cfg := smallConfig(200, 30_000)
	var files [3][]byte
	for i := range files {
		c := cfg
		if i == 2 {
			c.Seed = 2
		}
		p := filepath.Join(dir, "f"+string(rune('a'+i))+".parquet")
		if err := WriteFile(context.Background(), p, c, mem); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("same seed gave different Parquet bytes")
	}
	if bytes.Equal(files[0], files[2]) {
		t.Error("different seeds gave identical files")
	}
}

func TestWriteFileCancelledLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WriteFile(ctx, filepath.Join(dir, "x.parquet"), smallConfig(10, 100), nil)
	if err == nil {
		t.Fatal("cancelled WriteFile succeeded")
	}
	if e, _ := os.ReadDir(dir); len(e) != 0 {
		t.Errorf("left behind: %v", e)
	}
	if err := WriteFile(context.Background(), filepath.Join(dir, "x.txt"), smallConfig(10, 100), nil); err == nil {
		t.Error("unknown extension accepted")
	}
}

func TestVINCheckDigit(t *testing.T) {
	for _, tc := range []struct {
		vin   string
		valid bool
	}{
		{"1M8GDM9AXKP042788", true}, // the textbook example, check digit X
		{"11111111111111111", true},
		{"1M8GDM9A1KP042788", false}, // wrong check digit
		{"WVWZZZ1JZ3W386752", false}, // a European VIN: no check digit
		{"1M8GDM9AXKP04278", false},  // 16 characters
		{"1M8GDM9AXKP04278I", false}, // I is not in the alphabet
		{"1M8GDM9AXKP0427O8", false}, // nor O
	} {
		if got := pseudonym.ValidVINCheckDigit(tc.vin); got != tc.valid {
			t.Errorf("ValidVINCheckDigit(%q) = %v, want %v", tc.vin, got, tc.valid)
		}
	}
	if modelYearCode(2026) != 'T' || modelYearCode(2010) != 'A' || modelYearCode(2009) != '9' || modelYearCode(1999) != 'X' {
		t.Error("model year codes wrong")
	}
}

func TestCatalogueInVINAlphabet(t *testing.T) {
	ok := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if !strings.ContainsRune(pseudonym.VINAlphabet, rune(s[i])) {
				return false
			}
		}
		return true
	}
	for _, m := range catalogue() {
		for _, w := range m.wmis {
			if len(w) != 3 || !ok(w) {
				t.Errorf("%s: WMI %q", m.name, w)
			}
		}
		if !ok(m.plants) {
			t.Errorf("%s: plants %q", m.name, m.plants)
		}
		for _, mo := range m.models {
			if len(mo.vds) != 5 || !ok(mo.vds) {
				t.Errorf("%s %s: VDS %q", m.name, mo.name, mo.vds)
			}
		}
	}
	for _, a := range areas() {
		if len(a.plz) != 5 || a.lat < minLat || a.lat > maxLat || a.lon < minLon || a.lon > maxLon {
			t.Errorf("area %+v outside the region or not a PLZ", a)
		}
	}
}

// The properties the anonymisation stages rely on, over one run.
func TestFleetRealism(t *testing.T) {
	cfg := smallConfig(300, 150_000)
	rows := readRows(t, cfg)
	dt := emitInterval(cfg)

	wmis := map[string]string{}
	for _, m := range catalogue() {
		for _, w := range m.wmis {
			wmis[w] = m.name
		}
	}
	type vstat struct {
		rows, trips int
		last        row
		starts      map[[2]int]int
		static      row
	}
	per := map[string]*vstat{}
	var prevTS int64
	switches, braking, hotAfterBraking := 0, 0, 0
	var maxTemp float64
	for i, r := range rows {
		if r.ts < prevTS {
			t.Fatalf("row %d: timestamp %d before %d: rows must come in time order", i, r.ts, prevTS)
		}
		prevTS = r.ts
		if i > 0 && rows[i-1].vin != r.vin {
			switches++
		}
		if r.speed < 0 || r.speed > 130 {
			t.Fatalf("row %d: speed %.1f km/h", i, r.speed)
		}
		if r.lat < minLat || r.lat > maxLat || r.lon < minLon || r.lon > maxLon {
			t.Fatalf("row %d: position %.5f,%.5f outside the Munich region", i, r.lat, r.lon)
		}
		if r.pressure < 0 || r.pressure > 160 || r.temp < -25 || r.temp > 800 || r.pad < padMinMM || r.pad > 12 {
			t.Fatalf("row %d: implausible brakes %+v", i, r)
		}
		if r.pressure > 20 {
			braking++
			if r.temp > 25 {
				hotAfterBraking++
			}
		}
		maxTemp = max(maxTemp, r.temp)
		s := per[r.vin]
		if s == nil {
			if !pseudonym.ValidVINCheckDigit(r.vin) {
				t.Fatalf("VIN %q has an invalid check digit", r.vin)
			}
			if wmis[r.vin[:3]] != r.make {
				t.Fatalf("VIN %q: WMI does not belong to %s", r.vin, r.make)
			}
			s = &vstat{starts: map[[2]int]int{}, static: r}
			per[r.vin] = s
		} else {
			st := s.static
			if st.make != r.make || st.model != r.model || st.postcode != r.postcode || st.sex != r.sex ||
				st.modelYear != r.modelYear || st.birthYear != r.birthYear {
				t.Fatalf("VIN %s: static attributes changed", r.vin)
			}
			gap := r.ts - s.last.ts
			if gap < int64(dt)*1000 {
				t.Fatalf("VIN %s: readings %d ms apart, interval is %d s", r.vin, gap, dt)
			}
			if r.pad > s.last.pad {
				t.Fatalf("VIN %s: pad grew from %.3f to %.3f", r.vin, s.last.pad, r.pad)
			}
			d := haversine(s.last.lat, s.last.lon, r.lat, r.lon)
			if gap == int64(dt)*1000 {
				// Same trip: the vehicle moved along a path, no teleporting.
				if limit := 130/3.6*float64(dt) + 30; d > limit {
					t.Fatalf("VIN %s: jumped %.0f m in %d s", r.vin, d, dt)
				}
			} else {
				s.trips++
				s.starts[[2]int{int(r.lat * 300), int(r.lon * 200)}]++ // ~370 m cells
			}
		}
		s.rows++
		s.last = r
	}
	if float64(switches) < 0.9*float64(len(rows)) {
		t.Errorf("only %d vehicle switches in %d rows: rows must interleave vehicles", switches, len(rows))
	}
	if braking == 0 || float64(hotAfterBraking) < 0.5*float64(braking) || maxTemp < 80 {
		t.Errorf("brakes do not heat the disc: %d braking readings, %d warm, max %.1f °C", braking, hotAfterBraking, maxTemp)
	}
	// Anchors: a vehicle's trips mostly start at a few places (home, work).
	anchored, tested := 0, 0
	counts := make([]int, 0, len(per))
	females := 0
	for _, s := range per {
		counts = append(counts, s.rows)
		if s.static.sex == "F" {
			females++
		}
		if s.trips < 8 {
			continue
		}
		tested++
		top := 0
		for _, c := range s.starts {
			top = max(top, c)
		}
		if float64(top) >= 0.3*float64(s.trips) {
			anchored++
		}
	}
	t.Logf("anchored %d/%d, braking %d warm %d max %.1f", anchored, tested, braking, hotAfterBraking, maxTemp)
	if tested < 50 || float64(anchored) < 0.8*float64(tested) {
		t.Errorf("only %d of %d vehicles start most trips at a home/work anchor", anchored, tested)
	}
	// Skew: the busiest tenth of the vehicles produce far more than a tenth
	// of the rows.
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	top := 0
	for _, c := range counts[:len(counts)/10] {
		top += c
	}
	t.Logf("top10%% share %.2f, vehicles %d", float64(top)/float64(len(rows)), len(per))
	if float64(top) < 0.2*float64(len(rows)) { // equal activity gives ~0.13
		t.Errorf("busiest 10%% of vehicles produce only %d of %d rows: activity not skewed", top, len(rows))
	}
	if f := float64(females) / float64(len(per)); f < 0.25 || f > 0.5 {
		t.Errorf("share of female owners %.2f", f)
	}
}

func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6_371_000
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

// The default fleet spreads its million rows over about the 14 days.
func TestDefaultSpan(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates the full default fleet")
	}
	cfg := DefaultConfig()
	rr, err := NewReader(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var last int64
	var n int64
	for rr.Next() {
		rec := rr.RecordBatch()
		n += rec.NumRows()
		last = int64(rec.Column(1).(*array.Timestamp).Value(int(rec.NumRows()) - 1))
	}
	days := time.UnixMilli(last).Sub(cfg.Start).Hours() / 24
	if n != cfg.Rows || days < 12 || days > 16 {
		t.Errorf("%d rows over %.1f days, want %d over about 14", n, days, cfg.Rows)
	}
	_ = arrow.Timestamp(0)
}

// BenchmarkNewReader measures the simulation alone (no file): one op is the
// whole stream of cfg.Rows rows at the 30 s interval.
func BenchmarkNewReader(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Rows = 1_000_000 // the default fleet: 2,000 vehicles, 30 s interval
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		rr, err := NewReader(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		for rr.Next() {
		}
		rr.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*cfg.Rows), "ns/row")
	b.ReportMetric(float64(int64(b.N)*cfg.Rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(int64(b.N)*cfg.Rows), "cpu-ns/row")
}

// The interval shrinks when more rows are asked of the window, never below
// 1 s; beyond that the readings run past Start+Days.
func TestEmitIntervalAndWindow(t *testing.T) {
	def := DefaultConfig()
	for _, tc := range []struct {
		vehicles int
		rows     int64
		want     int
	}{{2000, 1_000_000, 29}, {2000, 0, 30}, {2000, 100, 30}, {2000, 10_000_000, 2}, {20_000, 10_000_000, 29}, {10, 100_000_000, 1}} {
		cfg := def
		cfg.Vehicles, cfg.Rows = tc.vehicles, tc.rows
		if got := emitInterval(cfg); got != tc.want {
			t.Errorf("%d vehicles, %d rows: interval %d s, want %d", tc.vehicles, tc.rows, got, tc.want)
		}
	}
	cfg := smallConfig(5, 20_000)
	cfg.Days = 1
	rows := readRows(t, cfg)
	if last := time.UnixMilli(rows[len(rows)-1].ts).UTC(); !last.After(cfg.Start.Add(48 * time.Hour)) {
		t.Errorf("20,000 rows of 5 vehicles should run well past one day, last reading %v", last)
	}
}

// Releasing a reader part-way (and retaining a batch beyond Next) leaks
// nothing.
func TestReleaseEarly(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rr, err := NewReader(smallConfig(20, 50_000), mem)
	if err != nil {
		t.Fatal(err)
	}
	rr.Retain()
	if !rr.Next() {
		t.Fatal(rr.Err())
	}
	kept := rr.RecordBatch()
	kept.Retain()
	rr.Next()
	rr.Release()
	rr.Release()
	if kept.NumRows() != 4096 || kept.Column(0).(*array.Dictionary).Dictionary().Len() != 20 {
		t.Errorf("retained batch damaged: %d rows", kept.NumRows())
	}
	kept.Release()
	if rr.Next() {
		t.Error("Next after Release returned a batch")
	}
}
