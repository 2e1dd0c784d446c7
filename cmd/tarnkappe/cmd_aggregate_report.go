package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/dp"
)

// publishedReport is what `aggregate --report` writes and stderr says:
// only figures derived from the release itself (its number of rows, a
// verdict computed from its values and intervals) and from the public
// parameters (budget, bounds, columns). It may travel with the release.
type publishedReport struct {
	Release string `json:"release"`
	// Guarantee says which output the privacy budget covers.
	Guarantee string   `json:"guarantee"`
	Subject   string   `json:"subject,omitempty"`
	By        []string `json:"by"`
	// Partitions is the number of released partitions: the release's rows.
	Partitions int64 `json:"partitions_released"`
	// Selection is "public" or "private".
	Selection  string      `json:"selection"`
	Budget     dp.Spent    `json:"budget"`
	Noise      string      `json:"noise,omitempty"`
	Confidence float64     `json:"confidence,omitempty"`
	Aggregates []string    `json:"aggregates"`
	Dividers   []string    `json:"divided_by_count,omitempty"`
	Verdict    *dp.Verdict `json:"verdict,omitempty"`
}

// exactReport is what `aggregate --exact-report` writes: exact facts about
// the input for the data owner. They differ between neighbouring inputs,
// so they are not differentially private; the file is created mode 0600
// and says so in its first field.
type exactReport struct {
	NotPrivate            bool              `json:"not_private"`
	Warning               string            `json:"warning"`
	Rows                  *dp.Stats         `json:"rows,omitempty"`
	PartitionsDropped     *int64            `json:"partitions_dropped,omitempty"`
	PartitionsPublicEmpty *int64            `json:"partitions_public_empty,omitempty"`
	RunReport             *anonymize.Report `json:"run_report,omitempty"`
}

const exactWarning = "exact counts of the input, NOT differentially private: they differ between neighbouring inputs, so whoever reads them gets ε = ∞. For the data owner only; never publish them with the release."

func publishedFromResult(res *dp.Result, out, subject string, by []string, selection string) *publishedReport {
	p := &publishedReport{Release: out, Subject: subject, By: by, Partitions: res.PartitionsKept, Selection: selection,
		Budget: res.Spent, Noise: res.Noise, Confidence: res.Confidence, Dividers: res.DividedByCount}
	for _, a := range res.Aggregates {
		p.Aggregates = append(p.Aggregates, aggregateLabel(a))
	}
	if v, err := res.Verdict(); err == nil {
		p.Verdict = v
	}
	return p
}

func aggregateLabel(a dp.AggregateSpec) string {
	if a.Kind == dp.Count {
		return a.Name
	}
	return fmt.Sprintf("%s: %v(%s) in [%g, %g]", a.Name, a.Kind, a.Column, a.Lower, a.Upper)
}

func publishedFromPolicy(d *anonymize.DPReport, out string) *publishedReport {
	return &publishedReport{Release: out, By: d.By, Partitions: int64(d.Partitions), Selection: d.Selection,
		Budget:     dp.Spent{EpsilonSpent: d.EpsilonSpent, DeltaSpent: d.DeltaSpent, EpsilonTotal: d.EpsilonBudget, DeltaTotal: d.DeltaBudget},
		Aggregates: d.Aggregates}
}

// finishRelease writes the reports and tells stderr what was released —
// never an exact count.
func finishRelease(cmd *cobra.Command, f *aggFlags, pub *publishedReport, exact *exactReport, reps *aggReports, release ...arrowio.Output) error {
	setGuarantee(pub)
	outs := release
	if reps.report != nil {
		if err := reps.report.Chmod(0o644); err != nil {
			return fmt.Errorf("aggregate: report: %w", err)
		}
		if err := writeJSONTo(reps.report, pub); err != nil {
			return fmt.Errorf("aggregate: report: %w", err)
		}
		outs = append(outs, reps.report)
	}
	if reps.exact != nil {
		exact.NotPrivate, exact.Warning = true, exactWarning
		if err := writeJSONTo(reps.exact, exact); err != nil { // 0600, as every new File
			return fmt.Errorf("aggregate: exact report: %w", err)
		}
		outs = append(outs, reps.exact)
	}
	if err := arrowio.CommitAll(cmd.Context(), outs...); err != nil {
		if cmd.Context().Err() != nil {
			return interrupted(cmd.Context())
		}
		return fmt.Errorf("aggregate: %w", err)
	}
	summarizeRelease(cmd, f, pub)
	return nil
}

// setGuarantee says which guarantee covers the release and the report.
func setGuarantee(pub *publishedReport) {
	unit := "subject"
	if pub.Subject != "" {
		unit = pub.Subject
	}
	pub.Guarantee = fmt.Sprintf("(ε=%g, δ=%g)-differential privacy per %s, for the release %s and this report (derived from it and the public parameters); exact counts are not covered", pub.Budget.EpsilonSpent, pub.Budget.DeltaSpent, unit, pub.Release)
}

// summarizeRelease tells stderr what was released — never an exact count.
func summarizeRelease(cmd *cobra.Command, f *aggFlags, pub *publishedReport) {
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "tarnkappe: aggregate: released %d partitions by %s (%s partitions); spent ε=%g δ=%g of ε=%g δ=%g\n",
		pub.Partitions, strings.Join(pub.By, ","), pub.Selection, pub.Budget.EpsilonSpent, pub.Budget.DeltaSpent, pub.Budget.EpsilonTotal, pub.Budget.DeltaTotal)
	if pub.Verdict != nil {
		fmt.Fprintf(w, "tarnkappe: aggregate: verdict: %s\n", pub.Verdict.Text)
	}
	if f.exactReport != "" {
		fmt.Fprintf(w, "tarnkappe: aggregate: exact counts (not private) written to %s, readable by you only\n", f.exactReport)
	}
}

// aggReports are aggregate's report files, claimed before the input is
// read and committed with the release (flag mode) or after it (policy
// mode: the Runner commits the release, and the published report's verdict
// is judged from the release file). A nil File is a report not asked for.
type aggReports struct{ report, exact *arrowio.File }

// claimAggregateReports claims --report and --exact-report.
func claimAggregateReports(f *aggFlags) (_ *aggReports, err error) {
	r := &aggReports{}
	defer func() {
		if err != nil {
			r.abort()
		}
	}()
	if f.report != "" {
		if r.report, err = claimOutput("--report", f.report, false); err != nil {
			return nil, err
		}
	}
	if f.exactReport != "" {
		if r.exact, err = claimOutput("--exact-report", f.exactReport, false); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// abort removes the reports not committed.
func (r *aggReports) abort() {
	for _, f := range []*arrowio.File{r.report, r.exact} {
		if f != nil {
			f.Abort()
		}
	}
}
