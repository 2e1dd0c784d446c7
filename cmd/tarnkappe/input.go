package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/arrowio"
)

// The flags of every command that reads a data file (run, aggregate, risk,
// verify, kanon): how to read what arrowio cannot tell from the bytes.
const (
	flagCSVTypes        = "csv-types"
	flagAllowMissingEOS = "allow-missing-end-of-stream"
)

// addInputFlags registers the input flags on a command.
func addInputFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.String(flagCSVTypes, "", "CSV input: declare column types, name=type[,name=type...], e.g. postcode=string,ts=timestamp;\n"+
		"undeclared columns are inferred (types: "+arrowio.CSVTypeNames+")")
	fs.Bool(flagAllowMissingEOS, false, "Arrow IPC stream input: accept a stream that ends without its end-of-stream marker\n"+
		"(it cannot be told from a truncated one: warned on stderr)")
}

// inputOptions returns the arrowio options for reading path with cmd's
// input flags (a command without them reads with the defaults): standard
// input for "-", warnings printed on stderr as they arise, each once per
// command run (kanon and risk open their input twice).
func inputOptions(cmd *cobra.Command, path string) (arrowio.OpenOptions, error) {
	stderr := cmd.ErrOrStderr()
	opts := arrowio.OpenOptions{
		Stdin: cmd.InOrStdin(),
		Warn: func(w string) {
			key := "tarnkappe/warned: " + w
			if _, done := cmd.Annotations[key]; done {
				return
			}
			if cmd.Annotations == nil {
				cmd.Annotations = map[string]string{}
			}
			cmd.Annotations[key] = ""
			fmt.Fprintf(stderr, "tarnkappe: warning: %s\n", w)
		},
	}
	if f := cmd.Flags().Lookup(flagCSVTypes); f != nil && f.Changed {
		if arrowio.FormatOf(path) != arrowio.FormatCSV {
			return opts, usageError(fmt.Errorf("--%s is for .csv input, not %s", flagCSVTypes, path), "")
		}
		types, err := arrowio.ParseCSVTypes(f.Value.String())
		if err != nil {
			return opts, usageError(fmt.Errorf("--%s: %w", flagCSVTypes, err), "for example --csv-types postcode=string,ts=timestamp")
		}
		opts.CSV.Types = types
	}
	if f := cmd.Flags().Lookup(flagAllowMissingEOS); f != nil && f.Value.String() == "true" {
		opts.AllowMissingEndOfStream = true
	}
	return opts, nil
}
