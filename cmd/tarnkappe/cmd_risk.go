package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/mobility"
)

type riskFlags struct {
	in, qi, delimiter string
	// unicity of movement traces (package mobility)
	subject, space, time string
	points, samples      int
	seed                 uint64
	// linkage of published traces (risk --linkage)
	linkage bool
	link    linkageFlags
}

func newRiskCmd() *cobra.Command {
	f := &riskFlags{}
	cmd := &cobra.Command{
		Use:   "risk --in FILE --qi a,b,c | --subject vin --points 4 | --linkage --raw RAW --published OUT --policy P",
		Short: "Re-identification risk (prosecutor, journalist, marketer) of a file",
		Long: `risk groups the rows of FILE by the quasi-identifiers and prints the
re-identification risk as JSON: highest and average prosecutor risk, journalist risk
(the file taken as its own population, an upper bound), marketer risk and the
fraction of unique rows.

With --subject, classes count distinct subjects instead of rows (a class of ten
readings of one car singles the car out), as 'tarnkappe run' counts them, and risk
also measures the unicity of movement traces (de Montjoye et al., "Unique in the
Crowd", 2013): the share of subjects singled out by --points points drawn at random
from their own trace of (--space, --time) values, with a 95% Wilson interval. Rows
whose subject is null belong to no trace (a run's output has them: trip ends
detached, trips whose trace too few vehicles share) and are counted as
unlinked_rows.

With --linkage, risk runs the attack of an adversary who holds the raw
readings (RAW: a consortium member's own data, a leak, a vehicle's app) on a
policy's output (OUT): it projects RAW to the published precision with the
policy's own steps (trips, cells, time buckets, coarsening, generalisation at
the levels in the run's --report, microaggregated values as OUT publishes
them) and counts the published traces whose points fit exactly one
subject's raw readings (linkage), on a keyed uniform sample of traces, with
the columns that drive it, and the unicity at published precision before
(raw subjects) and after (published traces). It is the run's own measure
(risk.after.linkage in the report), from files. The truth of a trip is not
in the files, so no linkage_correct under scope trip. --seed fixes the
sample; by default it is drawn under a fresh random key. RAW may come in
any order: rows not in time order are sorted by subject and time (bounded
memory, encrypted temporary files) from a second reading of the file; on
stdin they must be in time order.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRisk(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "", "file to measure; required")
	fl.StringVar(&f.qi, "qi", "", "quasi-identifier columns, comma-separated")
	fl.StringVar(&f.delimiter, "delimiter", "", "CSV field delimiter (default: guessed from the header)")
	fl.StringVar(&f.subject, "subject", "", "column of the subject: --qi classes count its distinct values; unicity measures its traces (e.g. vin, or a trip id)")
	fl.IntVar(&f.points, "points", 4, "unicity: points the adversary knows, drawn at random from each trace")
	fl.IntVar(&f.samples, "samples", 0, "unicity: subjects drawn (0 = all)")
	fl.Uint64Var(&f.seed, "seed", 1, "unicity: seed of the draw (a measurement: same data and seed, same figure)")
	fl.StringVar(&f.space, "space", "lat,lon", "unicity: spatial columns of a point: latitude,longitude or one cell column")
	fl.StringVar(&f.time, "time", "ts", "unicity: time column of a point (a timestamp or a bucket)")
	fl.BoolVar(&f.linkage, "linkage", false, "measure the linkage of a policy's output to raw readings (see --raw, --published, --policy)")
	addLinkageFlags(cmd, &f.link)
	addInputFlags(cmd)
	return cmd
}

// riskOutput is what risk prints; each measure has its own block so further
// measures (unicity of movement profiles) can be added beside "qi".
type riskOutput struct {
	QI      *kanon.Risk             `json:"qi,omitempty"`
	Unicity *mobility.UnicityResult `json:"unicity,omitempty"`
	Linkage *anonymize.AttackReport `json:"linkage,omitempty"`
}

func runRisk(cmd *cobra.Command, f *riskFlags) error {
	if f.linkage {
		if f.in != "" || f.qi != "" {
			return usageError(errors.New("--linkage reads --raw and --published, not --in or --qi"), linkageHint)
		}
		rep, err := linkageRisk(cmd, f)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(riskOutput{Linkage: rep})
	}
	if f.in == "" {
		return usageError(errors.New("--in is required"), "see 'tarnkappe risk --help'")
	}
	var out riskOutput
	if f.qi == "" && f.subject == "" {
		return usageError(errors.New("--qi is required (or --subject for the unicity of movement traces)"), "name the quasi-identifier columns, e.g. --qi age,sex,postcode")
	}
	if f.qi != "" {
		r, err := qiRisk(cmd, f)
		if err != nil {
			return err
		}
		out.QI = r
	}
	if f.subject != "" {
		u, err := unicityRisk(cmd, f)
		if err != nil {
			return err
		}
		out.Unicity = u
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// qiRisk measures the quasi-identifier risk of f.in.
func qiRisk(cmd *cobra.Command, f *riskFlags) (*kanon.Risk, error) {
	src, err := openInput(cmd.Context(), cmd, f.in, f.delimiter)
	if err != nil {
		return nil, usageError(err, "")
	}
	defer src.Close()
	var r kanon.Risk
	if f.subject != "" {
		r, err = kanon.MeasureSubjectRisk(cmd.Context(), src, splitList(f.qi), f.subject)
	} else {
		r, err = kanon.MeasureRisk(cmd.Context(), src, splitList(f.qi))
	}
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", f.in, err), "")
	}
	return &r, nil
}

// unicityRisk measures the unicity of the subjects' traces in f.in.
func unicityRisk(cmd *cobra.Command, f *riskFlags) (*mobility.UnicityResult, error) {
	if f.points < 1 || f.samples < 0 {
		return nil, usageError(fmt.Errorf("--points must be >= 1 and --samples >= 0, got %d and %d", f.points, f.samples), "")
	}
	src, err := openTraces(cmd, f.in, f.delimiter)
	if err != nil {
		return nil, usageError(err, "")
	}
	defer src.Close()
	cols := mobility.UnicityColumns{Subject: f.subject, Space: splitList(f.space), Time: f.time, SkipNullSubjects: true}
	r, err := mobility.Unicity(cmd.Context(), src, cols, mobility.UnicityOptions{P: f.points, Samples: f.samples, Seed: f.seed})
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "not in schema") {
			hint = "name the trace columns with --space and --time (and the subject with --subject)"
		}
		return nil, usageError(fmt.Errorf("%s: %w", f.in, err), hint)
	}
	return &r, nil
}

// openTraces opens path for the unicity measure. In a CSV an empty cell is
// a null, as the CLI writes nulls: a run's output written as CSV has empty
// trip ids for the rows in no published trace, and they belong to no trace
// (not to one trace of the empty id).
func openTraces(cmd *cobra.Command, path, delimiter string) (*arrowio.Source, error) {
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
		opts.CSV.NullValues = []string{""}
	}
	return arrowio.Open(cmd.Context(), path, opts)
}
