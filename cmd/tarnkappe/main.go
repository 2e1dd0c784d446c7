// Command tarnkappe anonymises consortium data: keyed pseudonyms, k-anonymity,
// differentially private releases and movement-profile protection, driven by a
// declarative policy. See README.md for the commands and ARCHITECTURE.md for
// how they map onto the library.
//
// Exit codes: 0 success, 1 a check failed (verify), 2 bad usage or bad input
// (or an interrupted run). Diagnostics go to stderr; stdout carries only
// data.
//
// SIGINT (Ctrl-C) and SIGTERM (kill, timeout, systemd, docker stop,
// Kubernetes) both cancel the run: it stops at the next batch, removes its
// partial outputs and scratch files, and exits 2. A second signal ends the
// process at once; what it leaves is removed by the next run (scratch
// folders of dead runs, temporary files of outputs).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code. Only main calls
// os.Exit, so run is testable in-process (see main_test.go).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(context.Background(), args, stdin, stdout, stderr)
}

// runWith is run under ctx (tests put a step hook in it: stepHook).
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := cancelOnSignal(ctx, stderr)
	defer stop()

	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return reportError(stderr, err)
}

// errSignal is the cause of a run cancelled by a signal.
type errSignal struct{ sig os.Signal }

func (e errSignal) Error() string { return "interrupted by " + signalName(e.sig) }

// signalName is the name a person knows the signal by.
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// cancelOnSignal returns ctx cancelled (cause errSignal) on the first
// SIGINT or SIGTERM. After it the signals get their default action again,
// so a second one ends the process at once.
func cancelOnSignal(parent context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			signal.Stop(ch)
			fmt.Fprintf(stderr, "tarnkappe: %s: stopping; partial outputs and scratch files are removed (a second signal stops at once)\n", signalName(sig))
			cancel(errSignal{sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// interrupted is the error of a command whose context was cancelled.
func interrupted(ctx context.Context) error {
	return usageError(fmt.Errorf("%w: nothing was written", context.Cause(ctx)), "")
}

// stepHookKey keys a step hook in the context (anonymize.Options.OnStep):
// tests pause a run at a step to signal it there (main_test.go).
type stepHookKey struct{}

// stepHook is the step hook ctx carries, or nil.
func stepHook(ctx context.Context) func(context.Context, string) {
	h, _ := ctx.Value(stepHookKey{}).(func(context.Context, string))
	return h
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
