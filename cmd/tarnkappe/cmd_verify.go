package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/kanon"
)

type verifyFlags struct {
	in, qi, sensitive, lVariant, tDistance, delimiter, subject string
	k                                                          int
	l, c, t                                                    float64
}

func newVerifyCmd() *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify --in FILE --qi a,b,c --k K [--subject s] [--l L --sensitive s]",
		Short: "Check a file for k-anonymity (and l-diversity, t-closeness), independently of kanon",
		Long: `verify groups the rows of FILE by the values of the quasi-identifiers and checks every
class: at least k rows, and with --l/--t the sensitive column's diversity or closeness.
It shares no code with the search. It prints a JSON report on stdout and exits 1,
naming violating classes, when the file fails; 0 when it passes.

With --subject, a class counts the distinct values of that column instead of rows,
as 'tarnkappe run' counts vehicles (kanon.per_subject in its report): a class of ten
readings of one car is one member. l and t then count each subject once. The null
subjects of a class count as one.

Checking a run's output: its report's kanon block says what the file can show
(kanon.output_check) and the command that checks it (kanon.verify_command).
When the subject column is written (kept, or under a pseudonym: one per subject),
verify --subject confirms the report's k on the file alone. When it is not
written (dropped; under mobility scope trip a random id per trip replaces the
vehicle), no column of the file tells vehicles apart: verify counts rows, which
are never fewer than vehicles, so a pass shows only that no class has fewer
than k rows; k in vehicles rests on the run's own check (kanon.verified).
Counting trip ids instead would not help: one vehicle makes many trips.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "", "file to check; required")
	fl.StringVar(&f.qi, "qi", "", "quasi-identifier columns, comma-separated; required")
	fl.IntVar(&f.k, "k", 0, "minimal class size (>= 2); required")
	fl.StringVar(&f.sensitive, "sensitive", "", "sensitive column for --l or --t")
	fl.Float64Var(&f.l, "l", 0, "l of l-diversity")
	fl.StringVar(&f.lVariant, "l-variant", "distinct", "distinct, entropy, recursive")
	fl.Float64Var(&f.c, "c", 0, "c of recursive (c,l)-diversity")
	fl.Float64Var(&f.t, "t", -1, "t of t-closeness (against the file's own distribution)")
	fl.StringVar(&f.tDistance, "t-distance", "equal", "equal, ordered")
	fl.StringVar(&f.delimiter, "delimiter", "", "CSV field delimiter (default: guessed from the header)")
	fl.StringVar(&f.subject, "subject", "", "count distinct values of this column per class, not rows (e.g. vin)")
	addInputFlags(cmd)
	return cmd
}

func runVerify(cmd *cobra.Command, f *verifyFlags) error {
	if f.in == "" || f.qi == "" {
		return usageError(errors.New("--in and --qi are required"), "see 'tarnkappe verify --help'")
	}
	if f.k < 2 {
		return usageError(fmt.Errorf("--k must be >= 2 (got %d)", f.k), "")
	}
	ld, tc, err := privacyModels(f.sensitive, f.l, f.lVariant, f.c, f.t, f.tDistance)
	if err != nil {
		return usageError(err, "")
	}
	src, err := openInput(cmd.Context(), cmd, f.in, f.delimiter)
	if err != nil {
		return usageError(err, "")
	}
	defer src.Close()
	qi := splitList(f.qi)
	rep, err := kanon.Verify(cmd.Context(), src, kanon.VerifyOptions{QuasiIdentifiers: qi, K: f.k, Subject: f.subject, LDiversity: ld, TCloseness: tc, MaxReported: 20})
	if err != nil {
		return usageError(fmt.Errorf("%s: %w", f.in, err), "")
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if rep.OK() {
		if f.subject != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "verify: %s: %d rows in %d classes, smallest %d distinct %s: OK\n", f.in, rep.Rows, rep.Classes, rep.MinClassSize, f.subject)
			return nil
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "verify: %s: %d rows in %d classes, smallest %d rows: OK\n", f.in, rep.Rows, rep.Classes, rep.MinClassSize)
		return nil
	}
	var names []string
	for i, v := range rep.Examples {
		if i == 5 {
			break
		}
		names = append(names, describeClass(qi, v))
	}
	more := ""
	if rep.Violations > len(names) {
		more = fmt.Sprintf(" and %d more", rep.Violations-len(names))
	}
	return checkFailed(fmt.Errorf("%s: %d of %d classes violate the models: %s%s: %w", f.in, rep.Violations, rep.Classes, strings.Join(names, "; "), more, kanon.ErrNotAnonymous))
}

func describeClass(qi []string, v kanon.Violation) string {
	parts := make([]string, 0, len(qi))
	for _, q := range qi {
		parts = append(parts, fmt.Sprintf("%s=%q", q, v.Class[q]))
	}
	sort.Strings(nil)
	return "{" + strings.Join(parts, ", ") + "} (" + v.Reason + ")"
}
