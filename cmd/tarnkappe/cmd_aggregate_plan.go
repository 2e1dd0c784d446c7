package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/dp"
)

// runPlan is `tarnkappe aggregate --plan`: the predicted accuracy of the
// release the other flags (or --policy) describe, for partitions of each of
// --subjects contributing subjects. It reads no data, draws no noise into
// any output and spends nothing. The table is the command's data output and
// goes to stdout; what it assumes goes to stderr.
func runPlan(cmd *cobra.Command, f *aggFlags) error {
	subjects, err := parseSubjects(f.subjects)
	if err != nil {
		return usageError(fmt.Errorf("aggregate: %w", err), "--subjects 10,100,1000")
	}
	var opts dp.Options
	var eps, del float64
	var public string
	if f.policy != "" {
		if policyConflict(f) {
			return usageError(errors.New("aggregate: --policy takes the release from the policy; do not combine it with aggregate flags"), "")
		}
		p, err := loadPolicy(f.policy)
		if err != nil {
			return err
		}
		if p.Release == nil {
			return usageError(fmt.Errorf("aggregate: policy %s has no release block", f.policy), "add a release block (see examples/brakedisc/policy.yaml)")
		}
		if opts, err = policyOptions(p); err != nil {
			return usageError(fmt.Errorf("aggregate: %w", err), "")
		}
		eps, del = p.Release.Epsilon, p.Release.Delta
		if opts.Public != nil {
			public = "public partitions (the policy's list)"
		}
	} else {
		if opts, _, err = flagOptions(cmd, f); err != nil {
			return err
		}
		eps, del = f.epsilon, f.delta
		if opts.Public != nil {
			public = fmt.Sprintf("%d public partitions", opts.Public.Len())
		}
	}
	var preds []*dp.Prediction
	for _, n := range subjects {
		pr, err := dp.Predict(opts, eps, del, dp.Assumption{Subjects: n, RowsPerSubject: f.rowsPerSubject})
		if err != nil {
			hint := ""
			if errors.Is(err, dp.ErrBudgetExceeded) {
				hint = "raise --epsilon/--delta or lower the declared shares"
			}
			return usageError(fmt.Errorf("aggregate: %w", err), hint)
		}
		preds = append(preds, pr)
	}
	if err := writePlan(cmd, preds); err != nil {
		return err
	}
	w := cmd.ErrOrStderr()
	pr := preds[0]
	name := cmd.Name() // aggregate --plan, or run --plan
	fmt.Fprintf(w, "tarnkappe: %s: plan for ε=%g δ=%g, %s noise, L0=%d, L∞=%d; no data read, nothing spent\n", name, eps, del, pr.Noise, opts.MaxPartitions, opts.MaxPerPartition)
	fmt.Fprintf(w, "tarnkappe: %s: assumes %d rows per subject in a partition and means at the middle of their bounds; half_width is the %g%% error; narrow: mean interval under half its bounds, count/sum error under half the value\n", name, pr.Assumption.RowsPerSubject, 100*pr.Confidence)
	if public != "" {
		fmt.Fprintf(w, "tarnkappe: %s: %s, all released: a fleet of S subjects puts at most S×L0/partitions subjects in an average partition\n", name, public)
	} else {
		fmt.Fprintf(w, "tarnkappe: %s: private partition selection: p_released is the chance a partition with that many subjects is released at all\n", name)
	}
	return nil
}

// writePlan prints the predictions as an aligned table, one row per assumed
// subject count and aggregate.
func writePlan(cmd *cobra.Command, preds []*dp.Prediction) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "subjects\trows\taggregate\tkind\tbounds\tepsilon\tdelta\tvalue\tci_low\tci_high\thalf_width\tnarrow\tp_released")
	for _, pr := range preds {
		released := "1"
		if pr.Selection != nil {
			released = strconv.FormatFloat(pr.Selection.KeepProbability, 'g', 3, 64)
		}
		for _, a := range pr.Aggregates {
			bounds := "-"
			if a.Kind != "count" {
				bounds = fmt.Sprintf("%g..%g", a.Lower, a.Upper)
			}
			value, low, high, half, narrow := "-", "-", "-", "-", "-"
			if a.HasInterval {
				value, low, high, half, narrow = num(a.Value), num(a.Low), num(a.High), num(a.HalfWidth), strconv.FormatBool(a.Narrow)
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%.4g\t%.3g\t%s\t%s\t%s\t%s\t%s\t%s\n",
				pr.Assumption.Subjects, pr.Rows, a.Name, a.Kind, bounds, a.Budget.Epsilon, a.Budget.Delta, value, low, high, half, narrow, released)
		}
	}
	return tw.Flush()
}

// num prints a prediction figure with 4 significant digits, large ones
// without an exponent.
func num(x float64) string {
	if x >= 1000 || x <= -1000 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

// parseSubjects parses "10,100,1000".
func parseSubjects(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--subjects %q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// policyOptions are the release block's options for package dp, as the
// Runner builds them (anonymize's dpOptions; TestPolicyOptionsMatchRunner
// keeps the two equal), without data or keys. Public partitions are
// represented by an empty list over the key columns: for a prediction and
// a verdict only their presence matters (no selection budget).
func policyOptions(p *anonymize.Policy) (dp.Options, error) {
	rel := p.Release
	opts := dp.Options{Subject: p.Subject, GroupBy: rel.By, MaxPartitions: int64(rel.MaxPartitions), MaxPerPartition: int64(rel.MaxPerPartition)}
	if rel.Count {
		opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: dp.Count})
	}
	kinds := map[string]dp.Kind{"sum": dp.Sum, "mean": dp.Mean, "variance": dp.Variance, "quantiles": dp.Quantiles}
	for _, ag := range rel.Aggregates {
		k, ok := kinds[ag.Kind]
		if !ok {
			return opts, fmt.Errorf("release aggregate kind %q is not one of sum, mean, variance, quantiles", ag.Kind)
		}
		opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: k, Column: ag.Column, Lower: ag.Lower, Upper: ag.Upper, Ranks: ag.Quantiles})
	}
	if rel.Public != nil {
		l, err := dp.NewPartitionList(rel.By...)
		if err != nil {
			return opts, err
		}
		opts.Public = l
	}
	return opts, nil
}
