// Command tarnkappe anonymises consortium data: keyed pseudonyms, k-anonymity,
// differentially private releases and movement-profile protection, driven by a
// declarative policy. See README.md for the commands and ARCHITECTURE.md for
// how they map onto the library.
//
// Exit codes: 0 success, 1 a check failed (verify), 2 bad usage or bad input.
// Diagnostics go to stderr; stdout carries only data.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code. Only main calls
// os.Exit, so run is testable in-process (see main_test.go).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return reportError(stderr, err)
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tarnkappe",
		Short: "Make consortium data safe to pool: pseudonyms, k-anonymity, DP releases",
		Long: `tarnkappe turns raw records (Parquet, Arrow IPC, CSV) into data that is safe to pool
in a consortium: keyed pseudonyms, k-anonymity by generalisation, differentially
private aggregates and movement-profile protection, with an auditable report.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       anonymize.Version(),
	}
	root.SetVersionTemplate("tarnkappe {{.Version}}\n")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Cobra reports flag errors itself; mark them as usage errors (exit 2).
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError(err, "see '"+c.CommandPath()+" --help'")
	})
	for _, c := range subcommands() {
		root.AddCommand(c)
	}
	return root
}
