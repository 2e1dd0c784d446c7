package anonymize

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/tarnkappe/tarnkappe/dp"
)

// palette is colour-blind safe (Okabe–Ito).
var palette = [...]color.RGBA{
	{0, 114, 178, 255},   // blue
	{230, 159, 0, 255},   // orange
	{0, 158, 115, 255},   // green
	{204, 121, 167, 255}, // purple
	{86, 180, 233, 255},  // sky
	{213, 94, 0, 255},    // vermillion
}

// chartWidth and chartHeight are a chart's size. The page scales a chart
// down to fit a narrow window (max-width: 100%), which keeps its layout, so
// the layout is made once, here, for this size.
const chartWidth, chartHeight = 6 * vg.Inch, 3 * vg.Inch

// barChart renders grouped bars as an inline SVG element; series[i][j] is
// the value of series i for category j. Nothing is drawn outside the
// canvas: the category axis runs half a slot beyond the first and the last
// category, so no bar of a group is cut off. The legend is not drawn in the
// chart (where it could cover a bar) but returned for the page to show
// below it. When the category labels do not fit side by side under their
// bars (with room to spare for a browser's fallback font), the chart turns
// horizontal: a label per row, left of its bars.
func barChart(valueLabel string, categories, legends []string, series [][]float64) (template.HTML, []legendEntry, error) {
	// The title goes in the page's caption, above the chart.
	p := plot.New()
	n, nSeries := len(categories), max(len(series), 1)
	var widest vg.Length
	for _, c := range categories {
		widest = max(widest, p.X.Tick.Label.Width(c))
	}
	w, h := chartWidth, chartHeight
	slot := (w - 80) / vg.Length(max(n, 1))
	horizontal := widest > slot*0.7
	if horizontal {
		h = max(chartHeight, vg.Length(n)*18+80)
		slot = (h - 80) / vg.Length(max(n, 1))
	}
	width := min(slot*0.7, 40) / vg.Length(nSeries)
	if horizontal {
		// Rows count from the bottom: the first category goes on top.
		categories = slices.Clone(categories)
		slices.Reverse(categories)
		rev := make([][]float64, len(series))
		for i, sv := range series {
			rev[i] = slices.Clone(sv)
			slices.Reverse(rev[i])
		}
		series = rev
	}
	var top float64 // headroom above the longest bar
	var legend []legendEntry
	for i, sv := range series {
		for _, v := range sv {
			top = max(top, v*1.08)
		}
		bars, err := plotter.NewBarChart(plotter.Values(sv), width)
		if err != nil {
			return "", nil, err
		}
		bars.Color = palette[i%len(palette)]
		bars.LineStyle.Width = 0
		bars.Horizontal = horizontal
		bars.Offset = vg.Length(float64(i)-float64(nSeries-1)/2) * width
		p.Add(bars)
		if i < len(legends) && legends[i] != "" {
			c := palette[i%len(palette)]
			legend = append(legend, legendEntry{Name: legends[i], Colour: fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)})
		}
	}
	if horizontal {
		p.X.Label.Text = valueLabel
		p.NominalY(categories...)
		p.X.Min, p.X.Max = 0, max(top, p.X.Max)
		p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	} else {
		p.Y.Label.Text = valueLabel
		p.NominalX(categories...)
		p.Y.Min, p.Y.Max = 0, max(top, p.Y.Max)
		p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	}
	// Room between the tick labels and the axis label: a browser's
	// fallback for the SVG's font may be taller than the one laid out.
	p.X.Label.Padding, p.Y.Label.Padding = 6, 6
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", nil, err
	}
	svg := buf.String()
	// Inline SVG in HTML needs no XML prolog or DOCTYPE.
	if i := strings.Index(svg, "<svg"); i > 0 {
		svg = svg[i:]
	}
	return template.HTML(svg), legend, nil // produced by vgsvg from numbers and our own labels
}

// legendEntry is a series of a chart and its colour, shown below it.
type legendEntry struct {
	Name, Colour string
}

type htmlChart struct {
	Title  string
	SVG    template.HTML
	Legend []legendEntry
}

type htmlData struct {
	R      *Report
	Charts []htmlChart
	Keys   [][2]string
	Cols   []ColumnDetail
	// The DP release's table: key and aggregate columns, and its first
	// MaxPartitions rows as text.
	DPKeys, DPAggs []string
	DPRows         [][]string
	MaxPartitions  int
}

// maxHTMLPartitions bounds the released partitions the HTML page lists.
const maxHTMLPartitions = 100

// WriteHTML writes the report as one self-contained HTML page: no scripts, no
// network, charts as inline SVG.
func (r *Report) WriteHTML(w io.Writer) error {
	d := htmlData{R: r}
	add := func(title string, svg template.HTML, legend []legendEntry, err error) error {
		if err != nil {
			return fmt.Errorf("anonymize.Report.WriteHTML: chart %q: %w", title, err)
		}
		d.Charts = append(d.Charts, htmlChart{Title: title, SVG: svg, Legend: legend})
		return nil
	}
	// Rows accounting.
	cats := []string{"in", "out", "suppressed", "filtered"}
	vals := []float64{float64(r.Rows.In), float64(r.Rows.Out), float64(r.Rows.Suppressed), float64(r.Rows.Filtered)}
	for _, k := range sortedKeys(r.Rows.FilteredBy) {
		cats = append(cats, "filtered: "+k)
		vals = append(vals, float64(r.Rows.FilteredBy[k]))
	}
	svg, legend, err := barChart("rows", cats, nil, [][]float64{vals})
	if err := add("Rows accounting", svg, legend, err); err != nil {
		return err
	}
	if k := r.KAnon; k != nil {
		if len(k.ClassSizes) > 0 {
			var cats []string
			var vals []float64
			for _, b := range k.ClassSizes {
				if b.Min == b.Max {
					cats = append(cats, fmt.Sprint(b.Min))
				} else {
					cats = append(cats, fmt.Sprintf("%d–%d", b.Min, b.Max))
				}
				vals = append(vals, float64(b.Classes))
			}
			unit := "rows"
			if k.PerSubject {
				unit = "subjects"
			}
			title := fmt.Sprintf("Equivalence-class sizes (%s per class, k = %d)", unit, k.K)
			svg, legend, err := barChart("classes", cats, nil, [][]float64{vals})
			if err := add(title, svg, legend, err); err != nil {
				return err
			}
		}
		if len(k.ColumnLoss) > 0 {
			cats := sortedKeys(k.ColumnLoss)
			vals := make([]float64, len(cats))
			for i, c := range cats {
				vals[i] = k.ColumnLoss[c]
			}
			svg, legend, err := barChart("loss (0 = none, 1 = all)", cats, nil, [][]float64{vals})
			if err := add("Information loss per column", svg, legend, err); err != nil {
				return err
			}
		}
	}
	if rk := r.Risk; rk != nil {
		var cats []string
		var before, after []float64
		for _, m := range []struct {
			name string
			b, a *float64
		}{
			{"prosecutor", rk.Before.Prosecutor, rk.After.Prosecutor},
			{"journalist", rk.Before.Journalist, rk.After.Journalist},
			{"marketer", rk.Before.Marketer, rk.After.Marketer},
			{"unicity (published precision)", rk.Before.Unicity, rk.After.Unicity},
			{"linkage", nil, rk.After.Linkage},
		} {
			if m.b == nil && m.a == nil {
				continue
			}
			cats = append(cats, m.name)
			before = append(before, deref(m.b))
			after = append(after, deref(m.a))
		}
		if len(cats) > 0 {
			svg, legend, err := barChart("risk", cats, []string{"before", "after"}, [][]float64{before, after})
			if err := add("Risk before and after", svg, legend, err); err != nil {
				return err
			}
		}
	}
	if dp := r.DP; dp != nil {
		svg, legend, err := barChart("", []string{"ε spent", "δ spent ×10⁶"}, nil, [][]float64{{dp.EpsilonSpent, dp.DeltaSpent * 1e6}})
		if err := add("Privacy budget spent", svg, legend, err); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(r.Keys) {
		d.Keys = append(d.Keys, [2]string{k, r.Keys[k]})
	}
	if r.DP != nil {
		d.MaxPartitions = maxHTMLPartitions
		d.DPKeys, d.DPAggs, d.DPRows = dpTable(r.DP.PartitionValues, maxHTMLPartitions)
	}
	d.Cols = r.ColumnDetails
	if len(d.Cols) == 0 {
		for _, c := range sortedKeys(r.Columns) {
			d.Cols = append(d.Cols, ColumnDetail{Name: c, Action: r.Columns[c]})
		}
	}
	if err := reportTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("anonymize.Report.WriteHTML: %w", err)
	}
	return nil
}

// dpTable lays out the first max released partitions as text: key columns
// and aggregates in name order, a row per partition.
func dpTable(parts []DPPartitionValues, max int) (keys, aggs []string, rows [][]string) {
	if len(parts) == 0 {
		return nil, nil, nil
	}
	keys, aggs = sortedKeys(parts[0].Key), sortedKeys(parts[0].Values)
	for _, p := range parts[:min(len(parts), max)] {
		var row []string
		for _, k := range keys {
			row = append(row, p.Key[k])
		}
		for _, a := range aggs {
			v := p.Values[a]
			row = append(row, figure(v.Value), "["+figure(v.Low)+", "+figure(v.High)+"]")
		}
		rows = append(rows, row)
	}
	return keys, aggs, rows
}

// figure prints a released value: 4 significant digits, large ones whole.
func figure(x float64) string {
	if math.Abs(x) >= 1000 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

// orderText says in words how a run read its input (InputReport.Order).
func orderText(order string) string {
	switch order {
	case "time":
		return "as it came, in time order"
	case "subject":
		return "as it came, grouped by subject"
	case "sorted":
		return "sorted by subject and time first (it came in neither time order nor grouped by subject)"
	case "as is":
		return "as it came (no step depends on the order)"
	}
	return order
}

// verdictClass colours a DP verdict level.
func verdictClass(level dp.VerdictLevel) string {
	switch level {
	case dp.Informative:
		return "ok"
	case dp.Mixed, dp.NoIntervals:
		return ""
	}
	return "bad"
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

func pct(f *float64) string {
	if f == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f%%", *f*100)
}

func sortedInts(m map[string]int) [][2]string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	out := make([][2]string, len(ks))
	for i, k := range ks {
		out[i] = [2]string{k, fmt.Sprint(m[k])}
	}
	return out
}

func sortedFloats(m map[string]float64) [][2]string {
	out := make([][2]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, [2]string{k, fmt.Sprintf("%.4g", m[k])})
	}
	return out
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":          pct,
	"sortedInts":   sortedInts,
	"sortedFloats": sortedFloats,
	"join":         strings.Join,
	"mul100":       func(f float64) float64 { return f * 100 },
	"orderText":    orderText,
	"verdictClass": verdictClass,
	"pctf":         func(f float64) string { return pct(&f) },
	"ci": func(ci []float64) string {
		if len(ci) != 2 {
			return ""
		}
		return fmt.Sprintf("95%% CI %.1f–%.1f%%", 100*ci[0], 100*ci[1])
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tarnkappe anonymisation report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222; background: #fff; }
h1 { border-bottom: 3px solid #0072b2; padding-bottom: .3em; }
h2 { color: #0072b2; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .3em .8em; text-align: left; }
th { background: #eef4fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #007a55; font-weight: bold; }
.bad { color: #c23b00; font-weight: bold; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 .2em; }
code.hash { word-break: break-all; }
.legend .swatch { display: inline-block; width: 1em; height: 1em; margin: 0 .3em 0 1em; vertical-align: middle; }
.wide { overflow-x: auto; }
</style>
</head>
<body>
<h1>Tarnkappe anonymisation report</h1>
<p class="bad">For the data owner only. Every figure on this page is exact, computed from the raw data; no privacy guarantee covers it — not k-anonymity, not the DP release's ε. Publish the outputs below, never this report.</p>

<h2>Outputs and what covers them</h2>
<table>
<tr><th>output</th><th>may be published</th><th>covered by</th><th>measured (not guaranteed)</th><th>not covered</th></tr>
{{range .R.Outputs}}<tr><td>{{.Kind}}{{with .File}}<br><code>{{.}}</code>{{end}}</td><td>{{if .Published}}yes{{else}}<span class="bad">no</span>{{end}}</td><td>{{if .Guarantees}}<ul>{{range .Guarantees}}<li>{{.}}</li>{{end}}</ul>{{else}}nothing{{end}}</td><td>{{if .Measured}}<ul>{{range .Measured}}<li>{{.}}</li>{{end}}</ul>{{end}}</td><td>{{.Excluded}}</td></tr>
{{end}}</table>

<h2>Run</h2>
<p>Policy <code>{{.R.Policy}}</code>{{with .R.Input}}, input <code>{{.}}</code>{{end}}{{with .R.Output}}, output <code>{{.}}</code>{{end}}.
Started {{.R.Started.Format "2006-01-02 15:04:05 MST"}}, took {{printf "%.1f" .R.Duration}} s.</p>

<h2>What this report is about</h2>
<table>
<tr><th>made by</th><td>{{.R.Tool}} <code>{{.R.Version}}</code></td></tr>
<tr><th>policy SHA-256</th><td><code class="hash">{{.R.PolicySHA256}}</code> (<code>sha256sum</code> of the policy file)</td></tr>
{{with .R.InputDetails}}<tr><th>input</th><td>{{with .Bytes}}{{.}} bytes, {{end}}{{$.R.Rows.In}} rows; read {{orderText .Order}}{{if .SortRuns}} ({{.SortRuns}} sorted runs in encrypted temporary files){{end}}</td></tr>
<tr><th>input schema SHA-256</th><td><code class="hash">{{.SchemaSHA256}}</code> (column names and types only)</td></tr>
<tr><th>input fingerprint</th><td>{{if .Fingerprint}}<code class="hash">{{.Fingerprint}}</code>, key <code>{{.FingerprintKeyID}}</code>: a keyed hash of the file's bytes; whoever holds the keyring recomputes it with <code>tarnkappe fingerprint</code>, nobody else can test a guess of the data against it{{else}}none (no input file or no keyring: a plain hash would let anyone confirm a guess of the data){{end}}</td></tr>{{end}}
</table>

<h2>Rows</h2>
<table>
<tr><th>in</th><th>out</th><th>suppressed (k-anonymity, cell k)</th><th>filtered</th></tr>
<tr><td class="num" data-field="rows.in">{{.R.Rows.In}}</td><td class="num" data-field="rows.out">{{.R.Rows.Out}}</td><td class="num" data-field="rows.suppressed">{{.R.Rows.Suppressed}}</td><td class="num" data-field="rows.filtered">{{.R.Rows.Filtered}}</td></tr>
</table>
{{with .R.Rows.FilteredBy}}<p>Filtered by reason: {{range $k, $v := .}}<code>{{$k}}</code> <span data-field="rows.filtered_by.{{$k}}">{{$v}}</span> &nbsp; {{end}}</p>{{end}}
{{with .R.OptOut}}<p>Opt-out: <span data-field="opt_out.listed">{{.Listed}}</span> distinct subjects listed (normalisation <code>{{.Normalize}}</code>), <span data-field="opt_out.subjects">{{.Subjects}}</span> of them present in the input, <span data-field="opt_out.rows">{{.Rows}}</span> rows removed before any other step. The list is held keyed and is never reproduced here.</p>{{end}}
{{with .R.Warnings}}<p class="bad">Warnings:</p><ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}

<h2>Columns</h2>
<table>
<tr><th>column</th><th>action</th><th>detail</th></tr>
{{range .Cols}}<tr><td><code>{{.Name}}</code></td><td>{{.Action}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>

{{if .Keys}}<h2>Keys</h2>
<p>Key ids identify which keys were used; the keys themselves never leave the keyring.</p>
<table><tr><th>domain</th><th>key id</th></tr>
{{range .Keys}}<tr><td><code>{{index . 0}}</code></td><td><code>{{index . 1}}</code></td></tr>
{{end}}</table>{{end}}

{{with .R.KAnon}}<h2>k-anonymity</h2>
<p>k = <b>{{.K}}</b> over <code>{{join .QuasiIdentifiers ", "}}</code>{{if .PerSubject}}, counting distinct subjects per class{{end}}.
{{.Classes}} equivalence classes; {{.SuppressedClasses}} suppressed.
Smallest class in the output: <b>{{.SmallestClass}} {{if .PerSubject}}subjects{{else}}rows{{end}}</b> (k = {{.K}}).
Independent verification: {{if .Verified}}<span class="ok">passed</span>{{else}}<span class="bad">not run or failed</span>{{end}}.</p>
{{with .LDiversity}}<p>l-diversity ({{.Variant}}) of <code>{{.Sensitive}}</code>: l = <b>{{.L}}</b>{{if .C}}, c = {{.C}}{{end}}.</p>{{end}}
{{with .TCloseness}}<p>t-closeness ({{.Distance}} distance) of <code>{{.Sensitive}}</code>: t = <b>{{.T}}</b>, against the distribution of the members searched.</p>{{end}}
{{if or .LDiversity .TCloseness}}<p>The sensitive distribution of a class counts {{.SensitiveCounted}}; {{.DiversitySuppressedClasses}} classes with k members were suppressed for it.</p>{{end}}
<table><tr><th>quasi-identifier</th><th>generalisation level</th></tr>
{{range sortedInts .Transformation}}<tr><td><code>{{index . 0}}</code></td><td class="num">{{index . 1}}</td></tr>
{{end}}</table>
<table><tr><th>information-loss metric</th><th>value</th></tr>
{{range sortedFloats .InformationLoss}}<tr><td>{{index . 0}}</td><td class="num">{{index . 1}}</td></tr>
{{end}}</table>{{end}}

{{with .R.Risk}}<h2>Re-identification risk</h2>
<table><tr><th></th><th>prosecutor</th><th>journalist</th><th>marketer</th><th>unicity (published precision)</th><th>unicity (raw GPS)</th><th>linkage</th></tr>
<tr><th>before</th><td class="num">{{pct .Before.Prosecutor}}</td><td class="num">{{pct .Before.Journalist}}</td><td class="num">{{pct .Before.Marketer}}</td><td class="num">{{pct .Before.Unicity}}{{with .Before.UnicityCI}} ({{ci .}}){{end}}</td><td class="num">{{pct .Before.UnicityRawGPS}}</td><td class="num">—</td></tr>
<tr><th>after</th><td class="num">{{pct .After.Prosecutor}}</td><td class="num">{{pct .After.Journalist}}</td><td class="num">{{pct .After.Marketer}}</td><td class="num">{{pct .After.Unicity}}{{with .After.UnicityCI}} ({{ci .}}){{end}}</td><td class="num">—</td><td class="num">{{pct .After.Linkage}}{{with .After.LinkageCI}} ({{ci .}}){{end}}</td></tr>
</table>
{{with .Method}}<p>Linkage: the share of published traces whose published rows — every published column at its published precision ({{join .Precision ", "}}) — fit the raw readings of exactly one subject, for {{.Adversary}}{{with $.R.Risk.After.LinkageCorrect}}; linked to the right subject: {{pct .}}{{end}}. Unicity: the share of traces that {{.Points}} of their points, drawn at random, single out, at the same published precision before (raw subjects) and after (published traces); the raw-GPS figure ({{join .RawGPSPrecision ", "}}) is what the raw data itself reveals. Keyed uniform samples of the whole input: {{.SubjectsSampled}} raw subjects{{if .SubjectsCensus}} (all){{end}}, {{.TracesSampled}} published traces{{if .TracesCensus}} (all){{end}}{{if .TracesEvicted}}, {{.TracesEvicted}} left out to stay within memory{{end}}; intervals are 95% Wilson intervals.{{if .MaxLinkage}} Limit (mobility.max_linkage): {{pctf .MaxLinkage}}.{{end}}</p>
{{with .LinkageDrivers}}<p>Columns that drive the linkage (left out one after the other, with the linkage after): {{range .}}<code>{{.Column}}</code> {{pctf .Linkage}} &nbsp; {{end}}</p>{{end}}{{end}}
{{with .NotComputed}}<p>Unicity and linkage not computed: {{.}}</p>{{end}}{{end}}

{{with .R.Mobility}}<h2>Movement profiles</h2>
<p><span data-field="mobility.trips">{{.Trips}}</span> trips; readings within {{printf "%.0f" .TrimMetres}} m and {{printf "%.0f" .TrimSeconds}} s of a trip's ends: <span data-field="mobility.trimmed_rows">{{.TrimmedRows}}</span> rows dropped{{if eq .Scope "trip"}}, <span data-field="mobility.rows_detached_ends">{{.RowsDetachedEnds}}</span> written without a trip id{{end}}{{with .CellColumn}}; positions replaced by H3 cells in <code>{{.}}</code>{{end}}.
{{if .K}}<span data-field="mobility.suppressed_rows">{{.SuppressedRows}}</span> rows suppressed in cell and time buckets with fewer than {{.K}} subjects. Linkable unit of the output: {{.Scope}}.{{end}}
{{if .OutputGroups}}Check of the written rows: <span data-field="mobility.output_groups_below_k">{{.OutputGroupsBelowK}}</span> of <span data-field="mobility.output_groups">{{.OutputGroups}}</span> cell-hours have fewer than {{.K}} subjects{{if .SettleRounds}} (<span data-field="mobility.settle_cell_groups">{{.SettleCellGroups}}</span> cell-hours and <span data-field="mobility.settle_classes">{{.SettleClasses}}</span> classes suppressed in addition so that cell-hour k and k-anonymity hold together, <span data-field="mobility.settle_rounds">{{.SettleRounds}}</span> rounds){{end}}.{{end}}
{{if eq .Scope "trip"}}Of the rows written, <span data-field="mobility.rows_with_trip_id">{{.RowsWithTripID}}</span> carry a trip id, of <span data-field="mobility.trips_published">{{.TripsPublished}}</span> trips{{if .TraceK}} whose cell-hour trace at least {{.TraceK}} vehicles share{{end}}; <span data-field="mobility.rows_without_trip_id">{{.RowsWithoutTripID}}</span> carry none: <span data-field="mobility.rows_detached_ends">{{.RowsDetachedEnds}}</span> trip ends{{if .TraceK}} and <span data-field="mobility.rows_detached">{{.RowsDetached}}</span> rows of trips whose trace fewer vehicles share{{end}}.{{end}}</p>
{{with .Utility}}<p>Utility: hourly mean <code>{{.Column}}</code> per cell and {{printf "%.0f" .BucketSeconds}} s bucket — <b>{{.Within}} of {{.Groups}}</b> raw groups with at least {{.MinSubjects}} subjects are within {{printf "%.0f" (mul100 .Tolerance)}}% of the raw mean ({{.Released}} released; max relative error {{printf "%.3f" .MaxRelErr}}, mean {{printf "%.4f" .MeanRelErr}}).</p>{{end}}{{end}}

{{with .R.DP}}<h2>Differentially private release</h2>
<p>ε spent <b>{{printf "%.4g" .EpsilonSpent}}</b>, δ spent <b>{{printf "%.3g" .DeltaSpent}}</b>; {{.Partitions}} partitions by <code>{{join .By ", "}}</code> ({{if eq .Selection "public"}}public partitions: {{.PublicPartitions}} listed without looking at the data, all released{{else}}chosen by private partition selection{{end}}{{with .CellResolution}}; cells at H3 resolution {{.}}{{end}}{{with .HourOfDay}}; hour of day (UTC) of <code>{{.}}</code>{{end}}); budget ε {{printf "%.4g" .EpsilonBudget}}, δ {{printf "%.3g" .DeltaBudget}}; per subject at most {{.MaxPartitions}} partitions and {{.MaxPerPartition}} rows in each; aggregates {{join .Aggregates ", "}}{{with .Output}}; written to <code>{{.}}</code>{{end}}.
ε and δ cover the release file only; every other figure on this page is exact and covered by no guarantee.</p>
{{with .Verdict}}<p>Accuracy: <span class="{{verdictClass .Level}}">{{.Level}}</span> — {{.Text}}.</p>
<table><tr><th>aggregate</th><th>narrow intervals</th><th>share</th><th>criterion</th></tr>
{{range .Aggregates}}<tr><td><code>{{.Name}}</code></td><td class="num">{{.Narrow}} of {{.Intervals}}</td><td class="num">{{printf "%.0f" (mul100 .Share)}}%</td><td>{{.Criterion}}{{if .AtBound}}; {{.AtBound}} means on a clamp bound{{end}}</td></tr>
{{end}}</table>{{end}}
{{if .PartitionValues}}<p>Released values with their 95 % intervals{{if gt (len .PartitionValues) $.MaxPartitions}} (the first {{$.MaxPartitions}} of {{len .PartitionValues}} partitions; all are in the JSON report and the release file){{end}}:</p>
<div class="wide"><table><tr>{{range $.DPKeys}}<th>{{.}}</th>{{end}}{{range $.DPAggs}}<th>{{.}}</th><th>95 % interval</th>{{end}}</tr>
{{range $.DPRows}}<tr>{{range .}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</table></div>{{end}}{{end}}

<h2>Charts</h2>
{{range .Charts}}<figure><figcaption>{{.Title}}</figcaption>
{{.SVG}}
{{with .Legend}}<p class="legend">{{range .}}<span class="swatch" style="background: {{.Colour}}"></span>{{.Name}} {{end}}</p>{{end}}
</figure>
{{end}}
<footer><p>Generated by {{.R.Tool}}. This page is self-contained: no scripts, no network.</p></footer>
</body>
</html>
`))
