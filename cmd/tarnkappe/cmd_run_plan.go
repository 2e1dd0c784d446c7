package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// runPolicyPlan is `tarnkappe run --plan`: a dry run of the policy. It
// loads and checks the policy, says on stderr what the run would do, and
// prints the predicted accuracy of its DP release (as `aggregate --plan
// --policy` does: from ε, δ, the bounds and assumed numbers of contributing
// subjects) as a table on stdout. It reads no data and spends no budget.
func runPolicyPlan(cmd *cobra.Command, f runFlags, subjects string, rowsPerSubject int64) error {
	if f.in != "" || f.out != "" {
		return usageError(errors.New("run: --plan reads no data; do not give --in or --out"), "tarnkappe run --plan --policy P [--subjects 100,1000]")
	}
	p, err := loadPolicy(f.policy)
	if err != nil {
		return err
	}
	w := cmd.ErrOrStderr()
	actions := map[string][]string{}
	for _, c := range p.Columns {
		actions[string(c.Action)] = append(actions[string(c.Action)], c.Name)
	}
	var parts []string
	for _, a := range sortedNames(actions) {
		parts = append(parts, fmt.Sprintf("%s %s", a, strings.Join(actions[a], ",")))
	}
	fmt.Fprintf(w, "tarnkappe: run: dry run of policy %s (sha256 %s), subject %s\n", f.policy, p.SHA256()[:16], p.Subject)
	fmt.Fprintf(w, "tarnkappe: run: columns: %s\n", strings.Join(parts, "; "))
	if o := p.OptOut; o != nil {
		fmt.Fprintf(w, "tarnkappe: run: opt-out: every row of the subjects listed in %s (matched %s) goes first\n", o.File, o.NormalizeMode())
	}
	if m := p.Mobility; m != nil {
		fmt.Fprintf(w, "tarnkappe: run: mobility: trips at %s gaps, ends trimmed (%g m, %s), H3 cells of resolution %d, cell-hours with fewer than %d subjects suppressed, scope %s", m.TripGap.D(), m.TrimMetres, m.TrimTime.D(), m.CellResolution, m.K, m.Scope)
		if m.TraceK > 0 {
			fmt.Fprintf(w, ", trip ids kept for traces %d subjects share", m.TraceK)
		}
		fmt.Fprintln(w, "; rows in any order")
	}
	if k := p.KAnon; k != nil {
		fmt.Fprintf(w, "tarnkappe: run: k-anonymity: k=%d over %s, at most %g of rows suppressed, levels chosen by %s\n", k.K, strings.Join(k.QuasiIdentifiers, ","), k.Suppression, k.Metric)
	}
	if p.Release == nil {
		fmt.Fprintln(w, "tarnkappe: run: no release block: no DP release to predict")
		return nil
	}
	return runPlan(cmd, &aggFlags{policy: f.policy, subjects: subjects, rowsPerSubject: rowsPerSubject})
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
