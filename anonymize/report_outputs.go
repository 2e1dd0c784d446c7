package anonymize

import (
	"fmt"
	"strings"
)

// outputsReport says which guarantee covers each output of the run (issue
// #12 item 6): the anonymised data (k-anonymity, cell-hour k, trace k, the
// opt-out, the column actions, with the measured linkage beside them), the
// DP release (ε, δ: that file alone) and the report (nothing: exact
// figures for the data owner).
func outputsReport(rep *Report, p *Policy, f *Figures) {
	rep.NotPrivate, rep.Audience = true, reportAudience
	data := OutputGuarantee{Kind: "data", File: f.Output, Published: true}
	if p.OptOut != nil {
		data.Guarantees = append(data.Guarantees, "no row of a subject on the opt-out list")
	}
	data.Guarantees = append(data.Guarantees, "every input column has the policy's action; dropped columns are absent (columns)")
	if k := p.KAnon; k != nil {
		unit := "subjects"
		if k.PerSubject != nil && !*k.PerSubject {
			unit = "rows"
		}
		g := fmt.Sprintf("k-anonymity: every written combination of %s holds at least %d %s (verified on the written rows)", strings.Join(k.QuasiIdentifiers, ", "), k.K, unit)
		if k.L != nil {
			g += fmt.Sprintf("; l-diversity of %s, l=%g", k.L.Sensitive, k.L.L)
		}
		if k.T != nil {
			g += fmt.Sprintf("; t-closeness of %s, t=%g", k.T.Sensitive, k.T.T)
		}
		data.Guarantees = append(data.Guarantees, g)
	}
	if m := p.Mobility; m != nil {
		data.Guarantees = append(data.Guarantees,
			fmt.Sprintf("positions only as H3 cells (resolution %d) and time buckets, trip ends trimmed (%g m, %v)", m.CellResolution, m.TrimMetres, m.TrimTime.D()),
			fmt.Sprintf("cell-hour k: every written (cell, time bucket) holds at least %d subjects (verified on the written rows)", m.K))
		if m.Scope == "trip" {
			g := "the subject appears only as a random id per trip"
			if m.TraceK > 0 {
				g += fmt.Sprintf("; a trip keeps its id only when at least %d subjects made a trip with the same cell-hour trace (trace k)", m.TraceK)
			}
			data.Guarantees = append(data.Guarantees, g)
		}
		var micro []string
		for _, c := range p.Columns {
			if c.Action == ActionMicroaggregate {
				micro = append(micro, c.Name)
			}
		}
		if len(micro) > 0 {
			data.Guarantees = append(data.Guarantees, fmt.Sprintf("%s: the mean of each (cell, time bucket), the same on every row there", strings.Join(micro, ", ")))
		}
		if m.MaxLinkage > 0 {
			data.Guarantees = append(data.Guarantees, fmt.Sprintf("the run fails unless the measured linkage of published traces is at most %g (mobility.max_linkage; on a sample, the upper end of its 95%% interval)", m.MaxLinkage))
		}
		if r := rep.Risk; r != nil && r.After.Linkage != nil {
			data.Measured = append(data.Measured, fmt.Sprintf("linkage %.1f%% of published traces (95%% CI %.1f–%.1f%%) to one subject, by %s", 100**r.After.Linkage, 100*r.After.LinkageCI[0], 100*r.After.LinkageCI[1], linkageAdversary),
				fmt.Sprintf("unicity at %d points %.1f%% (95%% CI %.1f–%.1f%%) at published precision", r.Method.Points, 100**r.After.Unicity, 100*r.After.UnicityCI[0], 100*r.After.UnicityCI[1]))
		}
	}
	if p.Release != nil {
		data.Excluded = "not differentially private: k-anonymity and the measured figures bound what a row says, not what the whole file reveals"
	} else {
		data.Excluded = "not differentially private"
	}
	rep.Outputs = append(rep.Outputs, data)
	if rel := p.Release; rel != nil {
		bound := fmt.Sprintf("(ε=%g, δ=%g)-differential privacy per subject (%s), each subject bounded to %d partitions and %d rows in each", rel.Epsilon, rel.Delta, p.Subject, rel.MaxPartitions, rel.MaxPerPartition)
		rep.Outputs = append(rep.Outputs, OutputGuarantee{Kind: "release", File: f.ReleaseOutput, Published: true,
			Guarantees: []string{bound},
			Excluded:   "ε and δ cover this file only: no count in the data file or this report is covered by them"})
	}
	rep.Outputs = append(rep.Outputs, OutputGuarantee{Kind: "report", Published: false,
		Guarantees: []string{},
		Excluded:   "exact figures from the raw data, for the data owner only (written mode 0600); covered by no guarantee"})
}
