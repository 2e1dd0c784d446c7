package anonymize

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// layoutScript runs in the rendered report and writes what it finds into
// <pre id="layout">: for every chart, any text or bar that reaches outside
// the chart (clipped), any two texts that overlap, any text over a bar
// (a legend covering bars), and whether the page scrolls sideways.
const layoutScript = `<script>
(function () {
  const problems = [];
  const area = (a, b) => Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)) *
                         Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
  const palette = PALETTE;
  const svgs = [...document.querySelectorAll("figure svg")];
  svgs.forEach((svg, i) => {
    const name = svg.closest("figure").querySelector("figcaption").textContent;
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll("text")].filter(t => t.textContent.trim() !== "")
      .map(t => ({what: "label " + JSON.stringify(t.textContent), r: t.getBoundingClientRect()}));
    const bars = [...svg.querySelectorAll("path")]
      .filter(p => palette.some(c => (p.getAttribute("style") || "").toLowerCase().includes("fill:" + c)))
      .map(p => ({what: "bar", r: p.getBoundingClientRect()}));
    if (bars.length === 0) problems.push(name + ": no bars");
    // Labels must lie inside the chart, bars 2 px inside (a bar that runs
    // into the edge is cut off there).
    for (const e of texts.concat(bars)) {
      const m = e.what === "bar" ? 2 : -0.5;
      if (e.r.left < box.left + m || e.r.right > box.right - m || e.r.top < box.top + m || e.r.bottom > box.bottom - m)
        problems.push(name + ": " + e.what + " clipped at the chart's edge");
    }
    for (let a = 0; a < texts.length; a++)
      for (let b = a + 1; b < texts.length; b++)
        if (area(texts[a].r, texts[b].r) > 2) problems.push(name + ": " + texts[a].what + " overlaps " + texts[b].what);
    for (const t of texts)
      for (const b of bars)
        if (area(t.r, b.r) > 2) { problems.push(name + ": " + t.what + " covers a bar"); break; }
    if (box.right > document.documentElement.clientWidth + 1) problems.push(name + ": wider than the window");
  });
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1)
    problems.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px in a window of " + document.documentElement.clientWidth);
  const out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify({charts: svgs.length, problems: problems});
  document.body.appendChild(out);
})();
</script>`

// stressReport is the sample report with what made charts clip and overlap
// before: many quasi-identifiers with long names, many class-size bins,
// long filter reasons and two series (a legend).
func stressReport() *Report {
	r := sampleReport()
	r.Rows.FilteredBy = map[string]int64{"opt_out": 10, "trip_trim": 20, "a_reason_with_a_rather_long_name": 30}
	r.KAnon.QuasiIdentifiers = nil
	r.KAnon.ColumnLoss = map[string]float64{}
	for i := range 14 {
		q := fmt.Sprintf("registered_keeper_attribute_%02d", i)
		r.KAnon.QuasiIdentifiers = append(r.KAnon.QuasiIdentifiers, q)
		r.KAnon.ColumnLoss[q] = float64(i) / 14
	}
	r.KAnon.ClassSizes = nil
	for b := range 9 {
		r.KAnon.ClassSizes = append(r.KAnon.ClassSizes, SizeBin{Min: 10 << b, Max: 10<<(b+1) - 1, Classes: int64(100 >> b)})
	}
	return r
}

// TestReportHTMLLayout renders reports in headless Chromium at common
// window widths and measures every chart's labels and bars in the page
// (layoutScript): nothing clipped at a chart's edge, no labels on top of
// each other, no label or legend over a bar, no sideways scrolling.
func TestReportHTMLLayout(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium); skipping the layout check")
	}
	if testing.Short() {
		t.Skip("-short: skipping Chromium")
	}
	var colours []string
	for _, c := range palette {
		colours = append(colours, fmt.Sprintf("%q", fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)))
	}
	script := strings.Replace(layoutScript, "PALETTE", "["+strings.Join(colours, ",")+"]", 1)
	for _, rc := range []struct {
		name string
		r    *Report
	}{{"sample", sampleReport()}, {"stress", stressReport()}} {
		var page strings.Builder
		if err := rc.r.WriteHTML(&page); err != nil {
			t.Fatal(err)
		}
		measured := strings.Replace(page.String(), "</body>", script+"</body>", 1)
		dir := t.TempDir()
		path := filepath.Join(dir, "report.html")
		if err := os.WriteFile(path, []byte(measured), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, width := range []int{800, 1280, 1920} {
			t.Run(fmt.Sprintf("%s/%dpx", rc.name, width), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
					"--disable-background-networking", "--disable-component-update", "--disable-sync",
					"--user-data-dir="+filepath.Join(dir, fmt.Sprint("profile", width)), fmt.Sprintf("--window-size=%d,1000", width),
					"--virtual-time-budget=5000", "--dump-dom", "file://"+path)
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("chromium: %v", err)
				}
				_, rest, ok := strings.Cut(string(out), `<pre id="layout">`)
				js, _, ok2 := strings.Cut(rest, "</pre>")
				if !ok || !ok2 {
					t.Fatalf("the layout script left no result in the page")
				}
				var res struct {
					Charts   int
					Problems []string
				}
				if err := json.Unmarshal([]byte(html.UnescapeString(js)), &res); err != nil {
					t.Fatalf("layout result %q: %v", js, err)
				}
				if res.Charts != 5 {
					t.Errorf("measured %d charts, want 5", res.Charts)
				}
				for _, p := range res.Problems {
					t.Error(p)
				}
			})
		}
	}
}
