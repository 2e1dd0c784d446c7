package anonymize

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/mobility"
)

func sampleReport() *Report {
	return &Report{
		Tool:         "tarnkappe test",
		Version:      "v0.0.0-test",
		Policy:       "policy.yaml",
		PolicySHA256: "23b56a06aa984d0e5d49b2ae7da0b2e557dc8d606806996a8b7228dad254fc7f",
		InputDetails: &InputReport{Order: "sorted", SortRuns: 3, Bytes: 22696331, SchemaSHA256: "1df3127a59a761e570c651e8ac326d6acb3fc0b98b002913acf4929efac39d30",
			Fingerprint: "7952b3f4b0d4b58e987d9b1da0290030a7e86911a133815dd001c0ca246f97b2", FingerprintKeyID: "ff12d44c"},
		Started: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC),
		Rows:    RowCounts{In: 1000, Out: 900, Suppressed: 40, Filtered: 60, FilteredBy: map[string]int64{"opt_out": 10, "trip_trim": 50}},
		Columns: map[string]string{"vin": "pseudonymize", "postcode": "generalize", "lat": "drop"},
		Keys:    map[string]string{"vin": "k1-3f2a9c"},
		OptOut:  &OptOutReport{Listed: 3, Subjects: 2, Rows: 10},
		KAnon: &KAnonReport{
			K: 10, QuasiIdentifiers: []string{"postcode", "owner_birth_year"}, PerSubject: true,
			Transformation:  map[string]int{"postcode": 2, "owner_birth_year": 1},
			InformationLoss: map[string]float64{"loss": 0.31},
			ColumnLoss:      map[string]float64{"postcode": 0.4, "owner_birth_year": 0.22},
			Classes:         17,
			SmallestClass:   10,
			ClassSizes:      []SizeBin{{10, 19, 9}, {20, 39, 6}, {40, 79, 2}},
			Verified:        true,
		},
		Risk: &RiskReport{
			Before: RiskMeasures{Prosecutor: ptr(1), Journalist: ptr(1), Marketer: ptr(0.93), Unicity: ptr(0.97)},
			After:  RiskMeasures{Prosecutor: ptr(0.1), Journalist: ptr(0.1), Marketer: ptr(0.04), Unicity: ptr(0.03)},
		},
		DP: &DPReport{EpsilonSpent: 1, DeltaSpent: 0, By: []string{"cell", "hour_of_day"}, Partitions: 504, Aggregates: []string{"count", "mean(disc_temp_c)"},
			Selection: "public", PublicPartitions: 504, HourOfDay: "ts", CellResolution: 5, EpsilonBudget: 1, DeltaBudget: 1e-6, MaxPartitions: 4, MaxPerPartition: 10,
			Verdict: &dp.Verdict{Level: dp.Uninformative, Text: "most intervals span the value range: this release carries little information at this fleet size",
				Aggregates: []dp.AggregateVerdict{{Name: "count", Kind: "count", Intervals: 2, Narrow: 2, Share: 1}, {Name: "mean_disc_temp_c", Kind: "mean", Intervals: 2, Narrow: 0, Share: 0, AtBound: 1}}},
			PartitionValues: []DPPartitionValues{
				{Key: map[string]string{"cell": "851f8d0bfffffff", "hour_of_day": "7"}, Values: map[string]DPInterval{"count": {1585, 1465, 1705}, "mean_disc_temp_c": {25.7, -10, 150}}},
				{Key: map[string]string{"cell": "851f8d43fffffff", "hour_of_day": "8"}, Values: map[string]DPInterval{"count": {13230, 13110, 13350}, "mean_disc_temp_c": {150, 12, 150}}},
			}},
		Mobility: &MobilityReport{Trips: 51431, CellColumn: "cell", CellResolution: 6, K: 5, Scope: "trip", TraceK: 5, TripsPublished: 11267,
			RowsWithTripID: 400000, RowsWithoutTripID: 500, RowsDetachedEnds: 300, RowsDetached: 200,
			Utility: &UtilityReport{Column: "disc_temp_c", BucketSeconds: 3600, WithinFraction: 1,
				MeanComparison: mobility.MeanComparison{MinSubjects: 20, Tolerance: 0.1, Groups: 1520, Released: 1520, Within: 1520, MaxRelErr: 0.092}}},
	}
}

// TestReportJSONFields validates the JSON report against the fields DESIGN.md
// documents, with their JSON types, like a schema would.
func TestReportJSONFields(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	validateReportJSON(t, doc, true)

	// Absent stages omit their block.
	r := sampleReport()
	r.KAnon, r.Risk, r.DP = nil, nil, nil
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	doc = nil
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kanon", "risk", "dp"} {
		if _, ok := doc[k]; ok {
			t.Errorf("absent stage %q has a block", k)
		}
	}
	validateReportJSON(t, doc, false)
}

// validateReportJSON checks the documented fields of a decoded JSON report.
// With full set, every stage block must be present.
func validateReportJSON(t *testing.T, doc map[string]any, full bool) {
	t.Helper()
	get := func(path string) (any, bool) {
		var cur any = doc
		for _, p := range strings.Split(path, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[p]; !ok {
				return nil, false
			}
		}
		return cur, true
	}
	isInt := func(v any) bool { f, ok := v.(float64); return ok && f == float64(int64(f)) && f >= 0 }
	isNum := func(v any) bool { _, ok := v.(float64); return ok }
	isObj := func(v any) bool { _, ok := v.(map[string]any); return ok }
	isStr := func(v any) bool { s, ok := v.(string); return ok && s != "" }
	isHex64 := func(v any) bool {
		s, ok := v.(string)
		_, err := hex.DecodeString(s)
		return ok && len(s) == 64 && err == nil
	}
	isStrMap := func(v any) bool {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for _, x := range m {
			if _, ok := x.(string); !ok {
				return false
			}
		}
		return true
	}
	isStrList := func(v any) bool {
		l, ok := v.([]any)
		if !ok {
			return false
		}
		for _, x := range l {
			if _, ok := x.(string); !ok {
				return false
			}
		}
		return true
	}
	isIntMap := func(v any) bool {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for _, x := range m {
			if !isInt(x) {
				return false
			}
		}
		return true
	}
	isNumMap := func(v any) bool {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for _, x := range m {
			if !isNum(x) {
				return false
			}
		}
		return true
	}
	fields := []struct {
		path  string
		check func(any) bool
		stage string
	}{
		{"rows.in", isInt, ""}, {"rows.out", isInt, ""}, {"rows.suppressed", isInt, ""}, {"rows.filtered", isInt, ""},
		{"columns", isStrMap, ""}, {"keys", isStrMap, ""},
		{"kanon.k", isInt, "kanon"}, {"kanon.quasi_identifiers", isStrList, "kanon"},
		{"kanon.transformation", isIntMap, "kanon"}, {"kanon.information_loss", isNumMap, "kanon"},
		{"risk.before", isObj, "risk"}, {"risk.after", isObj, "risk"},
		{"dp.epsilon_spent", isNum, "dp"}, {"dp.delta_spent", isNum, "dp"},
		{"dp.partitions", isInt, "dp"}, {"dp.selection", func(v any) bool { s, ok := v.(string); return ok && (s == "public" || s == "private") }, "dp"},
		{"dp.epsilon_budget", isNum, "dp"}, {"dp.max_partitions", isInt, "dp"}, {"dp.max_per_partition", isInt, "dp"},
		{"dp.verdict.level", isStr, "dp"}, {"dp.verdict.text", isStr, "dp"},
		{"kanon.smallest_class", isInt, "kanon"},
		{"version", isStr, ""}, {"policy_sha256", isHex64, ""},
		{"input_details.order", isStr, ""}, {"input_details.schema_sha256", isHex64, ""},
		{"input_details.bytes", isInt, ""}, {"input_details.fingerprint", isHex64, ""},
	}
	for _, f := range fields {
		if f.stage != "" {
			if _, present := doc[f.stage]; !present && !full {
				continue
			}
		}
		v, ok := get(f.path)
		if !ok {
			t.Errorf("report lacks %s", f.path)
			continue
		}
		if !f.check(v) {
			t.Errorf("report field %s has wrong type or value: %v", f.path, v)
		}
	}
	if rk, ok := doc["risk"].(map[string]any); ok {
		for _, side := range []string{"before", "after"} {
			m, _ := rk[side].(map[string]any)
			for k, v := range m {
				switch k {
				case "prosecutor", "journalist", "marketer", "unicity":
					if f, ok := v.(float64); !ok || f < 0 || f > 1 {
						t.Errorf("risk.%s.%s = %v, want a number in [0,1]", side, k, v)
					}
				}
			}
		}
	}
	in, _ := get("rows.in")
	out, _ := get("rows.out")
	sup, _ := get("rows.suppressed")
	fil, _ := get("rows.filtered")
	if a, b, c, d := in.(float64), out.(float64), sup.(float64), fil.(float64); a != b+c+d {
		t.Errorf("rows: in %v != out %v + suppressed %v + filtered %v", a, b, c, d)
	}
}

func TestReportHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if n := strings.Count(page, "<svg"); n != 5 {
		t.Errorf("want 5 inline SVG charts, got %d", n)
	}
	for _, bad := range []string{"http://", "https://", "<script", "<link", "src="} {
		// The SVG namespace URI is an identifier, not a fetch.
		rest := strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
		rest = strings.ReplaceAll(rest, `xmlns:xlink="http://www.w3.org/1999/xlink"`, "")
		if strings.Contains(rest, bad) {
			i := strings.Index(rest, bad)
			t.Errorf("report is not self-contained: contains %q near %q", bad, rest[max(0, i-40):min(len(rest), i+60)])
		}
	}
	for _, want := range []string{"k-anonymity", "k1-3f2a9c", "Rows accounting", "Re-identification risk", "Privacy budget spent",
		"Smallest class in the output: <b>10 subjects</b>", "<code>v0.0.0-test</code>", "23b56a06aa984d0e5d49b2ae7da0b2e557dc8d606806996a8b7228dad254fc7f",
		"22696331 bytes, 1000 rows; read sorted by subject and time first", "1df3127a59a761e570c651e8ac326d6acb3fc0b98b002913acf4929efac39d30",
		"7952b3f4b0d4b58e987d9b1da0290030a7e86911a133815dd001c0ca246f97b2</code>, key <code>ff12d44c</code>",
		`Accuracy: <span class="bad">uninformative</span> — most intervals span the value range`, `<td class="num">851f8d43fffffff</td>`, "[13110, 13350]",
		"public partitions: 504 listed without looking at the data", "<b>1520 of 1520</b> raw groups", `<span data-field="mobility.trips_published">11267</span> trips whose cell-hour trace at least 5 vehicles share`} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestReportHTMLChromium renders the report in headless Chromium and checks
// that the screenshot shows charts: enough non-white pixels and colours.
func TestReportHTMLChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium); skipping the screenshot check")
	}
	if testing.Short() {
		t.Skip("-short: skipping the Chromium screenshot")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := sampleReport().WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "out.png")
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size=1200,2000",
		"file://"+page)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	pf, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	nonWhite, colours := screenshotStats(img)
	total := img.Bounds().Dx() * img.Bounds().Dy()
	t.Logf("screenshot %v: %d non-white pixels (%.1f%%), %d distinct colours", img.Bounds().Size(), nonWhite, 100*float64(nonWhite)/float64(total), colours)
	// A blank page has ~0 non-white pixels and 1 colour; text alone gives few
	// colours beyond greys. The charts' filled bars add thousands of pixels in
	// the palette's colours.
	if nonWhite < total/50 {
		t.Errorf("screenshot nearly blank: %d of %d pixels non-white", nonWhite, total)
	}
	if colours < 20 {
		t.Errorf("screenshot has only %d distinct colours", colours)
	}
	if n := countColour(img, palette[0]); n < 2000 {
		t.Errorf("only %d pixels of the chart colour: charts not drawn", n)
	}
}

func screenshotStats(img image.Image) (nonWhite, colours int) {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				nonWhite++
			}
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	return nonWhite, len(seen)
}

func countColour(img image.Image, c interface{ RGBA() (r, g, b, a uint32) }) int {
	wr, wg, wb, _ := c.RGBA()
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if absDiff(r, wr) < 0x1000 && absDiff(g, wg) < 0x1000 && absDiff(bl, wb) < 0x1000 {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestReportWarnings: unnormalised subjects and values masked whole are
// counted in the JSON and shown as warnings in the HTML.
func TestReportWarnings(t *testing.T) {
	r := sampleReport()
	if w := r.Warnings(); len(w) != 0 {
		t.Fatalf("warnings on a clean run: %q", w)
	}
	r.OptOut.Normalize, r.OptOut.RowsNotNormalized = "vin", 42
	r.MaskedWhole = map[string]int64{"postcode": 7, "name": 0}
	w := r.Warnings()
	if len(w) != 2 || !strings.HasPrefix(w[0], "42 rows have a subject value not in normal form") || !strings.HasPrefix(w[1], `column "postcode": 7 rows`) {
		t.Fatalf("warnings %q", w)
	}
	var js, page bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"rows_not_normalized": 42`, `"normalize": "vin"`, `"masked_whole": {`, `"postcode": 7`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"42 rows have a subject value not in normal form", "column &#34;postcode&#34;: 7 rows", "normalisation <code>vin</code>"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}
