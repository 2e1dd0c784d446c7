package pool

import (
	"bytes"
	"html/template"
	"strings"
)

// HTML renders the report as one self-contained page (no scripts, no
// external resources): it opens offline and can be archived beside the
// release.
func (r *Report) HTML() ([]byte, error) {
	var b bytes.Buffer
	if err := reportTemplate.Execute(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"join": func(s []string) string {
		if len(s) == 0 {
			return "—"
		}
		return strings.Join(s, ", ")
	},
	"short": func(s string) string {
		if len(s) > 16 {
			return s[:16] + "…"
		}
		return s
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Pool release {{.Pool}} — {{short .Round}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}.bad{color:#a00}.ok{color:#070}code{font-size:.9em}
</style></head><body>
<h1>Pool release: {{.Pool}}</h1>
<p>Round <code>{{.Round}}</code>, configuration <code>{{.Config}}</code>, collected {{.Created.Format "2006-01-02 15:04 MST"}}.
{{if .Output}}Release written to <code>{{.Output}}</code>.{{end}}</p>

<h2>Members</h2>
<table>
<tr><th>configured</th><td>{{.Members.Configured}}</td></tr>
<tr><th>quorum</th><td>{{.Members.Quorum}}</td></tr>
<tr><th>counted</th><td class="ok">{{join .Members.Counted}}</td></tr>
<tr><th>missing</th><td{{if .Members.Missing}} class="bad"{{end}}>{{join .Members.Missing}}</td></tr>
</table>
{{if .Members.Rejected}}<h3>Rejected reports</h3>
<table><tr><th>member</th><th>file</th><th>by</th><th>reason</th></tr>
{{range .Members.Rejected}}<tr class="bad"><td>{{.Member}}</td><td>{{.File}}</td><td>{{.By}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{else}}<p>No report was rejected.</p>{{end}}

<h2>Release</h2>
<table>
<tr><th>partitions</th><td>{{.Release.Partitions}} public partitions by {{join .Release.By}}</td></tr>
<tr><th>privacy</th><td>ε = {{.Release.Epsilon}}, δ = {{.Release.Delta}} per release ({{.Release.Noise}} noise, added by each aggregator)</td></tr>
<tr><th>bounds per subject</th><td>L0 = {{.Release.MaxPartitions}} partitions, L∞ = {{.Release.MaxPerPartition}} rows each, at up to M = {{.Release.MaxMembersPerSubject}} members</td></tr>
<tr><th>intervals</th><td>{{.Release.Confidence}} confidence, covering both aggregators' noise</td></tr>
</table>
<table><tr><th>aggregate</th><th>bounds</th><th>ε</th><th>δ</th><th>sensitivity per partition</th><th>resolution</th><th>noise half-width</th></tr>
{{range .Release.Aggregates}}<tr><td>{{.Name}}</td><td>{{if .Column}}[{{.Lower}}, {{.Upper}}]{{else}}—{{end}}</td><td>{{printf "%.4g" .Epsilon}}</td><td>{{printf "%.3g" .Delta}}</td><td>{{printf "%.6g" .Sensitivity}} (× L0 = {{.L0}})</td><td>{{.Resolution}}</td><td>±{{printf "%.6g" .HalfWidth}}</td></tr>
{{end}}</table>
<p>The noise half-width is the interval of the two noise draws alone, in the value's units (for a mean: of its numerator, a sum).
A mean's interval also carries the count's noise.</p>

<h2>Budget</h2>
<table><tr><th>aggregator</th><th>period</th><th>ε spent</th><th>ε total</th><th>δ spent</th><th>δ total</th><th>releases</th></tr>
{{range .Budget}}<tr><td>{{.Aggregator}}</td><td>{{.Period}}</td><td>{{printf "%.6g" .EpsilonSpent}}</td><td>{{printf "%.6g" .EpsilonTotal}}</td><td>{{printf "%.3g" .DeltaSpent}}</td><td>{{printf "%.3g" .DeltaTotal}}</td><td>{{.Releases}}</td></tr>
{{end}}</table>
<p>ε left in the period: <strong>{{printf "%.6g" .EpsilonLeft}}</strong> (the smaller of the two ledgers).</p>

<h2>Who saw what</h2>
<p>Each member's data left it only as two secret shares, one per aggregator; neither aggregator alone learned anything
about a member's numbers, and each added its own noise to its share, so this release is differentially private
if either aggregator followed the protocol. Only the noisy totals were ever combined. If both aggregators had pooled
their files they could have learned every member's totals: they must be different organisations that do not collude.</p>
</body></html>
`))
