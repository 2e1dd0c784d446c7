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
		Use:   "kanon --in IN --out OUT --qi a,b,c --hierarchies DIR --k K",
		Short: "Optimal k-anonymity (and l-diversity, t-closeness) by full-domain generalisation",
		Long: `kanon finds the generalisation of the quasi-identifiers with the least information
loss that makes every class hold at least k rows (and, optionally, l-diverse or
t-close sensitive values), suppressing at most --suppression of the rows, and
writes the generalised data. It reads the input twice: once to count the
combinations of quasi-identifier values, once to write. Each quasi-identifier
needs a hierarchy in --hierarchies: <column>.csv or <prefix>_hierarchy_<column>.csv,
';'-separated, one row per value, level 0 first (ARX's layout).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKanon(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "", "input file (.parquet, .arrow, .ipc, .csv); required")
	fl.StringVar(&f.out, "out", "", "output file; required")
	fl.StringVar(&f.qi, "qi", "", "quasi-identifier columns, comma-separated; required")
	fl.StringVar(&f.hierarchies, "hierarchies", "", "directory of hierarchy CSV files; required")
	fl.IntVar(&f.k, "k", 0, "k of k-anonymity (>= 2); required")
	fl.Float64Var(&f.suppression, "suppression", 0, "fraction of rows that may be suppressed, in [0,1)")
	fl.StringVar(&f.metric, "metric", "entropy", "information loss: entropy, entropy-nm, discernibility, discernibility-nm, loss, precision")
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
	if f.k < 2 {
		return usageError(fmt.Errorf("--k must be >= 2 (got %d)", f.k), "k-anonymity needs at least two rows per class")
	}
	qi := splitList(f.qi)
	hier, err := kanon.LoadHierarchies(f.hierarchies, qi)
	if err != nil {
		return usageError(err, "")
	}

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
	sink, err := arrowio.Create(f.out, ap.Schema(src.Schema()), arrowio.CreateOptions{Stdout: cmd.OutOrStdout()})
	if err != nil {
		return usageError(err, "")
	}
	if err := writeApplied(ctx, src, ap, sink); err != nil {
		sink.Abort()
		return usageError(fmt.Errorf("%s: %w", f.in, err), "")
	}
	if err := sink.Commit(); err != nil {
		return err
	}
	in, out, supp := ap.Counts()
	if in != h.Rows() {
		return fmt.Errorf("kanon: the second pass read %d rows, the first %d: the input changed", in, h.Rows())
	}
	rep := kanonReport{Rows: rowsReport{In: in, Out: out, Suppressed: supp}, Kanon: res, Risk: riskReport{Before: before, After: after}}
	if f.report != "" {
		if err := writeJSONFile(f.report, rep); err != nil {
			return err
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "kanon: k=%d transformation %s; %s %.10g; rows in %d, out %d, suppressed %d; prosecutor risk %.4g -> %.4g\n",
		res.K, formatTransformation(res), res.Metric, res.InformationLoss[string(res.Metric)], in, out, supp, before.Prosecutor, after.Prosecutor)
	return nil
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

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
