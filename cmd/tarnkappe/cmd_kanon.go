package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/kanon"
)

type kanonFlags struct {
	in, out, qi, hierarchies, metric, report string
	k                                        int
	suppression                              float64
	sensitive, lVariant, tDistance           string
	l, c, t                                  float64
	delimiter                                string
}

func newKanonCmd() *cobra.Command {
	f := &kanonFlags{}
	cmd := &cobra.Command{
		Use:   "kanon --in IN --out OUT --qi a,b,c --hierarchies DIR (--k K | --sensitive S --l L | --sensitive S --t T)",
		Short: "Optimal k-anonymity (and l-diversity, t-closeness) by full-domain generalisation",
		Long: `kanon finds the generalisation of the quasi-identifiers with the least information
loss that makes every class hold at least k rows and, optionally, l-diverse or
t-close sensitive values, suppressing at most --suppression of the rows, and
writes the generalised data. l-diversity or t-closeness may stand alone, without
--k (as in ARX). It reads the input twice: once to count the combinations of
quasi-identifier values, once to write. Each quasi-identifier needs a hierarchy
in --hierarchies: <column>.csv or <prefix>_hierarchy_<column>.csv, ';'-separated,
one row per value, level 0 first (ARX's layout).

Metrics (--metric) are ARX's, in its monotonic and non-monotonic variants:
  entropy            monotonic non-uniform entropy (ARX createEntropyMetric(true));
                     suppressed rows count as generalised like their class
  entropy-nm         non-monotonic non-uniform entropy (createEntropyMetric(false)):
                     entropy plus the entropy of the values within the suppressed rows
  discernibility     monotonic discernibility DM* (createDiscernabilityMetric(true)):
                     sum of squared class sizes, suppressed classes included
  discernibility-nm  non-monotonic discernibility DM (createDiscernabilityMetric(false)):
                     squared sizes of kept classes plus |D| per suppressed row
  loss, precision    ARX's Loss and Precision (suppressed rows count as fully
                     generalised: non-monotonic with suppression)
With a monotonic metric the search rules out the transformations above a checked
one that cannot beat the best found; with a non-monotonic metric and suppression,
more transformations are checked.

--out and --report are checked before the input is read (an output that is the
input, a hierarchy file or the other output is refused, and so is an output
another process writes), written to temporary files and put in place together
at the end: on any error, SIGINT or SIGTERM neither remains.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKanon(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "", "input file (.parquet, .arrow, .ipc, .csv); required")
	fl.StringVar(&f.out, "out", "", "output file; required")
	fl.StringVar(&f.qi, "qi", "", "quasi-identifier columns, comma-separated; required")
	fl.StringVar(&f.hierarchies, "hierarchies", "", "directory of hierarchy CSV files; required")
	fl.IntVar(&f.k, "k", 0, "k of k-anonymity (>= 2); required unless --l or --t is given")
	fl.Float64Var(&f.suppression, "suppression", 0, "fraction of rows that may be suppressed, in [0,1)")
	fl.StringVar(&f.metric, "metric", "entropy", "information loss: entropy or discernibility (monotonic), entropy-nm or discernibility-nm (non-monotonic), loss, precision")
	fl.StringVar(&f.report, "report", "", "write a JSON report here")
	fl.StringVar(&f.sensitive, "sensitive", "", "sensitive column for --l or --t")
	fl.Float64Var(&f.l, "l", 0, "l of l-diversity")
	fl.StringVar(&f.lVariant, "l-variant", "distinct", "l-diversity variant: distinct, entropy, recursive")
	fl.Float64Var(&f.c, "c", 0, "c of recursive (c,l)-diversity")
	fl.Float64Var(&f.t, "t", -1, "t of t-closeness, in [0,1]")
	fl.StringVar(&f.tDistance, "t-distance", "equal", "t-closeness ground distance: equal, ordered")
	fl.StringVar(&f.delimiter, "delimiter", "", "CSV field delimiter (default: ';' when the header has ';' and no ',', else ',')")
	addInputFlags(cmd)
	return cmd
}

// kanonReport is the JSON report: the rows/kanon/risk blocks of DESIGN.md.
type kanonReport struct {
	Rows  rowsReport    `json:"rows"`
	Kanon *kanon.Result `json:"kanon"`
	Risk  riskReport    `json:"risk"`
}

type rowsReport struct {
	In         int64 `json:"in"`
	Out        int64 `json:"out"`
	Suppressed int64 `json:"suppressed"`
	Filtered   int64 `json:"filtered"`
}

type riskReport struct {
	Before kanon.Risk `json:"before"`
	After  kanon.Risk `json:"after"`
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// privacyModels turns the l/t flags into models.
func privacyModels(sensitive string, l float64, lVariant string, c, t float64, tDistance string) (*kanon.LDiversity, *kanon.TCloseness, error) {
	var ld *kanon.LDiversity
	var tc *kanon.TCloseness
	if l != 0 {
		if sensitive == "" {
			return nil, nil, errors.New("--l needs --sensitive")
		}
		ld = &kanon.LDiversity{Sensitive: sensitive, L: l, Variant: kanon.LVariant(lVariant), C: c}
	}
	if t >= 0 {
		if sensitive == "" {
			return nil, nil, errors.New("--t needs --sensitive")
		}
		tc = &kanon.TCloseness{Sensitive: sensitive, T: t, Distance: kanon.TDistance(tDistance)}
	}
	if sensitive != "" && ld == nil && tc == nil {
		return nil, nil, errors.New("--sensitive needs --l or --t")
	}
	return ld, tc, nil
}

// openInput opens path with arrowio, choosing the CSV delimiter.
func openInput(ctx context.Context, cmd *cobra.Command, path, delimiter string) (*arrowio.Source, error) {
	opts, err := inputOptions(cmd, path)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		comma, err := csvDelimiter(path, delimiter)
		if err != nil {
			return nil, err
		}
		opts.CSV.Comma = comma
	}
	return arrowio.Open(ctx, path, opts)
}

// csvDelimiter returns the --delimiter rune, or guesses from the header:
// ';' when it has ';' and no ',' (ARX's files), else ','.
func csvDelimiter(path, flag string) (rune, error) {
	if flag != "" {
		r := []rune(flag)
		if flag == `\t` {
			return '\t', nil
		}
		if len(r) != 1 {
			return 0, usageError(fmt.Errorf("--delimiter %q must be one character", flag), "for example --delimiter ';'")
		}
		return r[0], nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 1<<20)).ReadString('\n')
	if err != nil && err != io.EOF {
		return 0, err
	}
	if strings.Contains(line, ";") && !strings.Contains(line, ",") {
		return ';', nil
	}
	return ',', nil
}

func runKanon(cmd *cobra.Command, f *kanonFlags) error {
	ctx := cmd.Context()
	switch {
	case f.in == "":
		return usageError(errors.New("--in is required"), "see 'tarnkappe kanon --help'")
	case f.out == "":
		return usageError(errors.New("--out is required"), "see 'tarnkappe kanon --help'")
	case f.qi == "":
		return usageError(errors.New("--qi is required"), "name the quasi-identifier columns, e.g. --qi age,sex,postcode")
	case f.hierarchies == "":
		return usageError(errors.New("--hierarchies is required"), "a directory with one <column>.csv per quasi-identifier")
	case f.in == "-":
		return usageError(errors.New("--in - (stdin) is not supported: kanon reads its input twice"), "write the stream to a file first")
	}
	metric, err := kanon.ParseMetric(f.metric)
	if err != nil {
		return usageError(err, "")
	}
	ld, tc, err := privacyModels(f.sensitive, f.l, f.lVariant, f.c, f.t, f.tDistance)
	if err != nil {
		return usageError(err, "")
	}
	opts := kanon.Options{K: f.k, SuppressionLimit: f.suppression, Metric: metric, LDiversity: ld, TCloseness: tc}
	switch {
	case f.k == 0 && ld == nil && tc == nil:
		return usageError(errors.New("--k is required (>= 2) unless --l or --t is given"), "k-anonymity needs at least two rows per class")
	case f.k != 0 && f.k < 2:
		return usageError(fmt.Errorf("--k must be >= 2 (got %d)", f.k), "k-anonymity needs at least two rows per class")
	}
	qi := splitList(f.qi)
	hier, err := kanon.LoadHierarchies(f.hierarchies, qi)
	if err != nil {
		return usageError(err, "")
	}
	// The outputs are checked and claimed before the input is read, and
	// committed together at the end: on any error none remains.
	outFile, reportFile, err := claimKanonOutputs(f)
	if err != nil {
		return err
	}
	defer func() {
		for _, o := range []*arrowio.File{outFile, reportFile} {
			if o != nil {
				o.Abort() // a no-op once committed
			}
		}
	}()

	// Pass 1: histogram.
	src, err := openInput(ctx, cmd, f.in, f.delimiter)
	if err != nil {
		return usageError(err, "")
	}
	h, err := kanon.BuildHistogram(ctx, src, kanon.HistogramOptions{QuasiIdentifiers: qi, Hierarchies: hier, Sensitive: f.sensitive})
	src.Close()
	if err != nil {
		return usageError(fmt.Errorf("%s: %w", f.in, err), "")
	}
	res, err := kanon.Search(ctx, h, opts)
	if errors.Is(err, kanon.ErrNoSolution) {
		return usageError(err, "lower --k, raise --suppression, or use taller hierarchies")
	}
	if err != nil {
		return usageError(err, "")
	}
	before, err := kanon.RiskBefore(h)
	if err != nil {
		return err
	}
	after, err := kanon.RiskAfter(h, res)
	if err != nil {
		return err
	}

	// Pass 2: apply and write.
	ap, err := kanon.NewApplier(h, res, nil)
	if err != nil {
		return err
	}
	defer ap.Release()
	src, err = openInput(ctx, cmd, f.in, f.delimiter)
	if err != nil {
		return usageError(err, "")
	}
	defer src.Close()
	sink, err := arrowio.NewSink(outFile, ap.Schema(src.Schema()), arrowio.CreateOptions{Stdout: cmd.OutOrStdout()})
	if err != nil {
		return usageError(err, "")
	}
	defer sink.Abort() // a no-op once committed
	if err := writeApplied(ctx, src, ap, sink); err != nil {
		return usageError(fmt.Errorf("%s: %w", f.in, err), "")
	}
	in, out, supp := ap.Counts()
	if in != h.Rows() {
		return fmt.Errorf("kanon: the second pass read %d rows, the first %d: the input changed", in, h.Rows())
	}
	rep := kanonReport{Rows: rowsReport{In: in, Out: out, Suppressed: supp}, Kanon: res, Risk: riskReport{Before: before, After: after}}
	outs := []arrowio.Output{sink}
	if reportFile != nil {
		if err := writeJSONTo(reportFile, rep); err != nil {
			return fmt.Errorf("kanon: --report %s: %w", f.report, err)
		}
		outs = append(outs, reportFile)
	}
	if err := arrowio.CommitAll(ctx, outs...); err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		return fmt.Errorf("kanon: %w", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "kanon: %s transformation %s; %s %.10g; rows in %d, out %d, suppressed %d; prosecutor risk %.4g -> %.4g\n",
		formatModels(res), formatTransformation(res), res.Metric, res.InformationLoss[string(res.Metric)], in, out, supp, before.Prosecutor, after.Prosecutor)
	return nil
}

// formatModels names the privacy models of r: "k=5", "l=5 (entropy)",
// "k=5 t=0.2 (equal)".
func formatModels(r *kanon.Result) string {
	var parts []string
	if r.K > 0 {
		parts = append(parts, fmt.Sprintf("k=%d", r.K))
	}
	if l := r.LDiversity; l != nil {
		parts = append(parts, fmt.Sprintf("l=%g (%s)", l.L, l.Variant))
	}
	if t := r.TCloseness; t != nil {
		parts = append(parts, fmt.Sprintf("t=%g (%s)", t.T, t.Distance))
	}
	return strings.Join(parts, " ")
}

func formatTransformation(r *kanon.Result) string {
	parts := make([]string, len(r.QuasiIdentifiers))
	for i, q := range r.QuasiIdentifiers {
		parts[i] = fmt.Sprintf("%s=%d", q, r.Levels[i])
	}
	return strings.Join(parts, ",")
}

func writeApplied(ctx context.Context, src *arrowio.Source, ap *kanon.Applier, sink *arrowio.Sink) error {
	for src.Next() {
		out, err := ap.Apply(ctx, src.RecordBatch())
		if err != nil {
			return err
		}
		err = writeBatch(sink, out)
		out.Release()
		if err != nil {
			return err
		}
	}
	return src.Err()
}

func writeBatch(sink *arrowio.Sink, b arrow.RecordBatch) error {
	if b.NumRows() == 0 {
		return nil
	}
	return sink.Write(b)
}

// writeJSONTo writes v as indented JSON to w.
func writeJSONTo(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// claimKanonOutputs refuses outputs that are an input (--in, a hierarchy
// file) or each other, then claims --out and --report. The report's File
// is nil when no --report was given, --out's when it is "-".
func claimKanonOutputs(f *kanonFlags) (out, report *arrowio.File, err error) {
	inputs := []arrowio.Named{{Name: "--in", Path: f.in}}
	if ents, err := os.ReadDir(f.hierarchies); err == nil {
		for _, e := range ents {
			if !e.IsDir() {
				inputs = append(inputs, arrowio.Named{Name: "a file in --hierarchies", Path: filepath.Join(f.hierarchies, e.Name())})
			}
		}
	}
	outputs := []arrowio.Named{{Name: "--out", Path: f.out}, {Name: "--report", Path: f.report}}
	if err := checkPaths(inputs, outputs); err != nil {
		return nil, nil, err
	}
	if f.report == "-" {
		return nil, nil, usageError(errors.New("--report -: the report is written to a file"), "name a file; standard output carries data only")
	}
	if out, err = claimOutput("--out", f.out, true); err != nil {
		return nil, nil, err
	}
	if f.report != "" {
		if report, err = claimOutput("--report", f.report, false); err != nil {
			if out != nil {
				out.Abort()
			}
			return nil, nil, err
		}
	}
	return out, report, nil
}
