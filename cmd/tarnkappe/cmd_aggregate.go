package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/dp"
)

// aggFlags holds the flag-mode options of "tarnkappe aggregate".
type aggFlags struct {
	in, out, subject, by, public, report, noiseKind, ranks string
	policy, keys                                           string // policy mode
	exactReport                                            string // exact counts, not private (0600)
	count                                                  bool
	sums, means, variances, quantiles                      []string
	epsilon, delta, confidence                             float64
	l0, linf                                               int64
	// --plan: predict accuracy for these subject counts, read no data.
	plan           bool
	subjects       string
	rowsPerSubject int64
}

func newAggregateCmd() *cobra.Command {
	var f aggFlags
	cmd := &cobra.Command{
		Use:   "aggregate --in IN --out OUT --subject COL --by A,B [aggregates] --epsilon E [--delta D] --max-partitions L0 --max-per-partition LINF",
		Short: "Differentially private aggregates per group (count, sum, mean, variance, quantiles)",
		Long: `aggregate releases per-group statistics with differential privacy: every row of
one subject (--subject, e.g. vin) is protected together. Each subject contributes
to at most --max-partitions groups and at most --max-per-partition rows per group
(chosen at random); values are clamped to the bounds given as col:lo:hi.

Groups are selected privately (needs --delta > 0) unless --public-partitions
names a file listing them (columns = the --by columns). The output has the key
columns, the noisy values and confidence intervals at --confidence. Counts are
never negative and every value lies inside its interval (post-processing).

--plan predicts, before any budget is spent, the 95% error (interval
half-width) of every aggregate for partitions of --subjects contributing
subjects, and with private selection the chance such a partition is released.
It reads no data (--in and --out are ignored) and prints the prediction as a
table on stdout: the plan is the command's data output. Choose partitions
coarse enough that the mean's interval is narrower than half its bounds.

--report writes what may be published with the release: the budget spent,
the number of released partitions, the aggregates and a verdict on the
release's accuracy, all derived from the release and the public parameters.
Exact counts of the input (rows, vehicles, partitions dropped or empty)
differ between neighbouring inputs, so whoever sees them gets ε = ∞: they are
written only with --exact-report, to a file readable by its owner alone
(mode 0600) and marked "not_private", and never to stdout or stderr.

Every output is checked before the input is read (an output that is an input
or another output is refused); the release and the reports are written to
temporary files and put in place together, so on any error none remains (with
--policy the run renders both reports from its own report, whose DP block is
read from the release record as written, and commits them with the release).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAggregate(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "", "input file (.parquet, .arrow, .csv, - for Arrow IPC on stdin)")
	fl.StringVar(&f.out, "out", "", "output file (format by extension, - for Arrow IPC on stdout)")
	fl.StringVar(&f.subject, "subject", "", "column naming the privacy unit (e.g. vin)")
	fl.StringVar(&f.by, "by", "", "comma-separated key columns")
	fl.BoolVar(&f.count, "count", false, "release the row count per group")
	fl.StringArrayVar(&f.sums, "sum", nil, "release the sum of col clamped to [lo, hi] (col:lo:hi, repeatable)")
	fl.StringArrayVar(&f.means, "mean", nil, "release the mean of col clamped to [lo, hi] (col:lo:hi, repeatable)")
	fl.StringArrayVar(&f.variances, "variance", nil, "release the variance of col clamped to [lo, hi] (col:lo:hi, repeatable)")
	fl.StringArrayVar(&f.quantiles, "quantiles", nil, "release quantiles of col clamped to [lo, hi] (col:lo:hi, repeatable)")
	fl.StringVar(&f.ranks, "ranks", "0.5,0.9,0.99", "quantile ranks for --quantiles")
	fl.Float64Var(&f.epsilon, "epsilon", 0, "total privacy budget ε of the release (required)")
	fl.Float64Var(&f.delta, "delta", 0, "total privacy budget δ (needed for private partition selection and Gaussian noise)")
	fl.Int64Var(&f.l0, "max-partitions", 0, "L0: groups one subject may contribute to (required)")
	fl.Int64Var(&f.linf, "max-per-partition", 0, "L∞: rows one subject may contribute to one group (required)")
	fl.StringVar(&f.public, "public-partitions", "", "file listing the groups to release (no selection budget)")
	fl.Float64Var(&f.confidence, "confidence", 0.95, "confidence level of the intervals")
	fl.StringVar(&f.noiseKind, "noise", "laplace", "noise distribution: laplace or gaussian")
	fl.StringVar(&f.report, "report", "", "write the publishable JSON summary (budget spent, partitions released, verdict) to this file")
	fl.StringVar(&f.exactReport, "exact-report", "", "write exact input counts (NOT private: ε = ∞ for whoever reads them) to this file, mode 0600")
	fl.BoolVar(&f.plan, "plan", false, "print the predicted accuracy as a table on stdout and exit; reads no data")
	fl.StringVar(&f.subjects, "subjects", "10,30,100,300,1000,3000", "--plan: assumed numbers of subjects contributing to a partition")
	fl.Int64Var(&f.rowsPerSubject, "rows-per-subject", 0, "--plan: assumed rows per subject and partition (default: --max-per-partition)")
	fl.StringVar(&f.policy, "policy", "", "policy mode: release the policy's release block (after its opt-out, mobility and column steps)")
	fl.StringVar(&f.keys, "keys", "", "policy mode: keyring file (overrides the policy's keyring)")
	addInputFlags(cmd)
	return cmd
}

// parseBounded parses "col:lo:hi" (the column name may itself contain ':').
func parseBounded(flag, s string) (string, float64, float64, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 {
		return "", 0, 0, fmt.Errorf("--%s %q: want col:lo:hi", flag, s)
	}
	n := len(parts)
	col := strings.Join(parts[:n-2], ":")
	lo, err1 := strconv.ParseFloat(parts[n-2], 64)
	hi, err2 := strconv.ParseFloat(parts[n-1], 64)
	if col == "" || err1 != nil || err2 != nil {
		return "", 0, 0, fmt.Errorf("--%s %q: want col:lo:hi with numeric bounds", flag, s)
	}
	return col, lo, hi, nil
}

func aggregateOptions(f *aggFlags) (dp.Options, error) {
	opts := dp.Options{Subject: f.subject, MaxPartitions: f.l0, MaxPerPartition: f.linf, Confidence: f.confidence}
	for _, b := range strings.Split(f.by, ",") {
		if b = strings.TrimSpace(b); b != "" {
			opts.GroupBy = append(opts.GroupBy, b)
		}
	}
	switch f.noiseKind {
	case "laplace":
	case "gaussian":
		opts.Noise = dp.Gaussian
	default:
		return opts, fmt.Errorf("--noise %q: want laplace or gaussian", f.noiseKind)
	}
	if f.count {
		opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: dp.Count})
	}
	var ranks []float64
	for _, r := range strings.Split(f.ranks, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil {
			return opts, fmt.Errorf("--ranks %q: %q is not a number", f.ranks, r)
		}
		ranks = append(ranks, v)
	}
	for _, g := range []struct {
		flag string
		kind dp.Kind
		vals []string
	}{{"sum", dp.Sum, f.sums}, {"mean", dp.Mean, f.means}, {"variance", dp.Variance, f.variances}, {"quantiles", dp.Quantiles, f.quantiles}} {
		for _, s := range g.vals {
			col, lo, hi, err := parseBounded(g.flag, s)
			if err != nil {
				return opts, err
			}
			a := dp.Aggregate{Kind: g.kind, Column: col, Lower: lo, Upper: hi}
			if g.kind == dp.Quantiles {
				a.Ranks = ranks
			}
			opts.Aggregates = append(opts.Aggregates, a)
		}
	}
	if len(opts.Aggregates) == 0 {
		return opts, errors.New("no aggregate requested")
	}
	return opts, nil
}

func runAggregate(cmd *cobra.Command, f *aggFlags) error {
	if f.plan {
		return runPlan(cmd, f)
	}
	if f.exactReport != "" && (f.exactReport == f.report || f.exactReport == f.out) {
		return usageError(errors.New("aggregate: --exact-report must name a file of its own"), "exact counts are not private: keep them apart from the release and its report")
	}
	if f.policy == "" && (f.in == "" || f.out == "") {
		return usageError(errors.New("aggregate: --in and --out are required"), "tarnkappe aggregate --in data.parquet --out release.parquet --subject vin --by segment --count --epsilon 1 --delta 1e-6 --max-partitions 4 --max-per-partition 1")
	}
	// Every output is checked, and the reports claimed, before the input
	// is read.
	if err := checkAggregateOutputs(f); err != nil {
		return err
	}
	reps, err := claimAggregateReports(f)
	if err != nil {
		return err
	}
	defer reps.abort()
	if f.policy != "" {
		return runAggregatePolicy(cmd, f, reps)
	}
	opts, acct, err := flagOptions(cmd, f)
	if err != nil {
		return err
	}
	outFile, err := claimOutput("--out", f.out, true)
	if err != nil {
		return err
	}
	if outFile != nil {
		defer outFile.Abort() // a no-op once committed
	}
	res, err := aggregateFile(cmd, f, opts, acct)
	if err != nil {
		return err
	}
	defer res.Release()
	sink, err := arrowio.NewSink(outFile, res.Record.Schema(), arrowio.CreateOptions{Stdout: cmd.OutOrStdout()})
	if err != nil {
		return usageError(fmt.Errorf("aggregate: %w", err), "")
	}
	defer sink.Abort() // a no-op once committed
	if err := sink.Write(res.Record); err != nil {
		return fmt.Errorf("aggregate: writing %s: %w", f.out, err)
	}
	selection := "private"
	if opts.Public != nil {
		selection = "public"
	}
	pub := publishedFromResult(res, f.out, f.subject, opts.GroupBy, selection)
	exact := &exactReport{Rows: &res.Stats, PartitionsDropped: &res.PartitionsDropped, PartitionsPublicEmpty: &res.PartitionsPublicEmpty}
	return finishRelease(cmd, f, pub, exact, reps, sink)
}

// flagOptions builds the release options and the accountant from the flags
// (reading the public partition list, which is public, when one is given).
func flagOptions(cmd *cobra.Command, f *aggFlags) (dp.Options, *dp.Accountant, error) {
	opts, err := aggregateOptions(f)
	if err != nil {
		return opts, nil, usageError(fmt.Errorf("aggregate: %w", err), "request at least one of --count, --sum, --mean, --variance, --quantiles; bounds as col:lo:hi")
	}
	acct, err := dp.NewAccountant(f.epsilon, f.delta)
	if err != nil {
		return opts, nil, usageError(fmt.Errorf("aggregate: %w", err), "--epsilon must be > 0 and --delta in [0, 1)")
	}
	if f.public != "" {
		if opts.Public, err = readPartitionList(cmd, f.public, opts.GroupBy); err != nil {
			return opts, nil, err
		}
	}
	return opts, acct, nil
}

// readPartitionList reads a public partition list (columns = the --by
// columns).
func readPartitionList(cmd *cobra.Command, path string, by []string) (*dp.PartitionList, error) {
	pl, err := dp.NewPartitionList(by...)
	if err != nil {
		return nil, usageError(fmt.Errorf("aggregate: %w", err), "--by names the key columns")
	}
	src, err := arrowio.Open(cmd.Context(), path, arrowio.OpenOptions{Stdin: cmd.InOrStdin()})
	if err != nil {
		return nil, usageError(fmt.Errorf("aggregate: public partitions: %w", err), "")
	}
	defer src.Close()
	for src.Next() {
		if err := pl.AddRecord(src.RecordBatch()); err != nil {
			return nil, usageError(fmt.Errorf("aggregate: public partitions %s: %w", path, err), "the file needs the --by columns")
		}
	}
	if err := src.Err(); err != nil {
		return nil, usageError(fmt.Errorf("aggregate: public partitions: %w", err), "")
	}
	return pl, nil
}

// aggregateFile bounds the contributions of every row of --in and releases
// the result under acct.
func aggregateFile(cmd *cobra.Command, f *aggFlags, opts dp.Options, acct *dp.Accountant) (*dp.Result, error) {
	ctx := cmd.Context()
	ag, err := dp.NewAggregator(opts)
	if err != nil {
		return nil, usageError(fmt.Errorf("aggregate: %w", err), "")
	}
	defer ag.Close()
	inOpts, err := inputOptions(cmd, f.in)
	if err != nil {
		return nil, err
	}
	src, err := arrowio.Open(ctx, f.in, inOpts)
	if err != nil {
		return nil, usageError(fmt.Errorf("aggregate: %w", err), "")
	}
	defer src.Close()
	for src.Next() {
		if err := ag.Add(ctx, src.RecordBatch()); err != nil {
			return nil, usageError(fmt.Errorf("aggregate: %s: %w", f.in, err), "")
		}
	}
	if err := src.Err(); err != nil {
		return nil, usageError(fmt.Errorf("aggregate: %w", err), "")
	}
	p, err := ag.Partial(ctx)
	if err != nil {
		return nil, usageError(fmt.Errorf("aggregate: %w", err), "")
	}
	res, err := p.Release(ctx, acct, dp.ReleaseOptions{})
	if err != nil {
		hint := ""
		if errors.Is(err, dp.ErrBudgetExceeded) {
			hint = "raise --epsilon/--delta or lower the declared shares"
		}
		return nil, usageError(fmt.Errorf("aggregate: %w", err), hint)
	}
	return res, nil
}

// runAggregatePolicy is `tarnkappe aggregate --policy P --in IN --out OUT
// [--keys K]`: the policy's release block, computed after its opt-out,
// mobility and column steps, written to OUT; the anonymised rows are not
// written anywhere. The run report (exact figures) goes only to
// --exact-report.
func runAggregatePolicy(cmd *cobra.Command, af *aggFlags, reps *aggReports) error {
	if af.in == "" || af.out == "" {
		return usageError(errors.New("aggregate: --in and --out are required"), "tarnkappe aggregate --policy policy.yaml --in data.parquet --out release.parquet")
	}
	if policyConflict(af) {
		return usageError(errors.New("aggregate: --policy takes the release from the policy; do not combine it with aggregate flags"), "")
	}
	subject := ""
	if p, err := anonymize.LoadPolicy(af.policy); err == nil {
		subject = p.Subject
	}
	// The published report is judged from the run's report, whose DP
	// block holds the figures of the release record as written
	// (anonymize.ReleaseFigures: post-processed values and dp's verdict),
	// so both reports are rendered by the run and committed with the
	// release: all three files or none.
	published := func(r *anonymize.Report) *publishedReport {
		pub := publishedFromPolicy(r.DP, af.out)
		pub.Subject = subject
		if af.out != arrowio.Stdio {
			pub.Verdict = r.DP.Verdict
		}
		setGuarantee(pub)
		return pub
	}
	var reports []anonymize.ReportOutput
	if reps.report != nil {
		if err := reps.report.Chmod(0o644); err != nil {
			return fmt.Errorf("aggregate: report: %w", err)
		}
		reports = append(reports, anonymize.ReportOutput{File: reps.report, Render: func(r *anonymize.Report, w io.Writer) error {
			return writeJSONTo(w, published(r))
		}})
	}
	if reps.exact != nil {
		reports = append(reports, anonymize.ReportOutput{File: reps.exact, Render: func(r *anonymize.Report, w io.Writer) error {
			return writeJSONTo(w, &exactReport{NotPrivate: true, Warning: exactWarning, RunReport: r})
		}})
	}
	rep, err := runPolicy(cmd, runFlags{policy: af.policy, in: af.in, keys: af.keys, release: af.out, releaseOnly: true, reports: reports})
	if err != nil {
		return err
	}
	summarizeRelease(cmd, af, published(rep))
	return nil
}

// policyConflict reports whether flag-mode options were given with --policy.
func policyConflict(af *aggFlags) bool {
	return af.subject != "" || af.by != "" || af.count || len(af.sums)+len(af.means)+len(af.variances)+len(af.quantiles) > 0 || af.epsilon != 0 || af.public != ""
}

// checkAggregateOutputs refuses, before any input is read, outputs that are
// an input (--in, --public-partitions, --policy, --keys) or each other, and
// reports that cannot be written (missing folder, a folder). The release is
// claimed when it is written (policy mode: before the input is read). The
// reports are committed together with the release (arrowio.CommitAll; in
// policy mode by the Runner, through Options.Reports).
func checkAggregateOutputs(f *aggFlags) error {
	inputs := []arrowio.Named{{Name: "--in", Path: f.in}, {Name: "--public-partitions", Path: f.public},
		{Name: "--policy", Path: f.policy}, {Name: "--keys", Path: f.keys}}
	outputs := []arrowio.Named{{Name: "--out", Path: f.out}, {Name: "--report", Path: f.report}, {Name: "--exact-report", Path: f.exactReport}}
	if err := checkPaths(inputs, outputs); err != nil {
		return err
	}
	if f.out != "" && f.out != "-" && arrowio.FormatOf(f.out) == arrowio.FormatUnknown {
		return usageError(fmt.Errorf("--out %s: %w", f.out, arrowio.ErrUnknownFormat), "")
	}
	for _, r := range outputs[1:] {
		if r.Path == "" {
			continue
		}
		if r.Path == "-" {
			return usageError(fmt.Errorf("%s -: reports are written to files", r.Name), "name a file; standard output carries data only")
		}
		if err := arrowio.CheckOutput(r.Path); err != nil {
			return usageError(fmt.Errorf("%s %w", r.Name, err), "the folder must exist and be writable")
		}
	}
	return nil
}
