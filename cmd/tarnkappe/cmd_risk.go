package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/kanon"
)

type riskFlags struct {
	in, qi, delimiter string
}

func newRiskCmd() *cobra.Command {
	f := &riskFlags{}
	cmd := &cobra.Command{
		Use:   "risk --in FILE --qi a,b,c",
		Short: "Re-identification risk (prosecutor, journalist, marketer) of a file",
		Long: `risk groups the rows of FILE by the quasi-identifiers and prints the
re-identification risk as JSON: highest and average prosecutor risk, journalist risk
(the file taken as its own population, an upper bound), marketer risk and the
fraction of unique rows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRisk(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "", "file to measure; required")
	fl.StringVar(&f.qi, "qi", "", "quasi-identifier columns, comma-separated")
	fl.StringVar(&f.delimiter, "delimiter", "", "CSV field delimiter (default: guessed from the header)")
	return cmd
}

// riskOutput is what risk prints; each measure has its own block so further
// measures (unicity of movement profiles) can be added beside "qi".
type riskOutput struct {
	QI *kanon.Risk `json:"qi,omitempty"`
}

func runRisk(cmd *cobra.Command, f *riskFlags) error {
	if f.in == "" {
		return usageError(errors.New("--in is required"), "see 'tarnkappe risk --help'")
	}
	var out riskOutput
	if f.qi == "" {
		return usageError(errors.New("--qi is required"), "name the quasi-identifier columns, e.g. --qi age,sex,postcode")
	}
	r, err := qiRisk(cmd, f)
	if err != nil {
		return err
	}
	out.QI = r
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
	r, err := kanon.MeasureRisk(cmd.Context(), src, splitList(f.qi))
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", f.in, err), "")
	}
	return &r, nil
}
