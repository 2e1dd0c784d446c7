package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

func newRunCmd() *cobra.Command {
	var f runFlags
	var plan bool
	var subjects string
	var rowsPerSubject int64
	c := &cobra.Command{
		Use:   "run --policy P --in IN --out OUT [--keys K] [--report R.json] [--html R.html] | run --plan --policy P",
		Short: "Apply an anonymisation policy to a file",
		Long: `run streams IN through the policy P (see examples/brakedisc/policy.yaml) and
writes OUT (.parquet, .arrow/.ipc, .csv, or - for an Arrow IPC stream on stdout).
Every input column must be named by the policy. OUT is written to a temporary file
and renamed on success: on any error no output file remains.

When the policy has a release block, the differentially private aggregates go to
--release (default: OUT with ".release" before the extension).

Rows may come in any order. With a mobility block (trips need each vehicle's
readings in time order) input in time order or vehicle by vehicle streams as it
comes; anything else is sorted by vehicle and time first, in bounded memory with
encrypted temporary files. The report's input_details.order says which.

--plan is a dry run: it checks the policy, says what a run would do and prints
the predicted 95% error of the DP release's aggregates for partitions of
--subjects contributing subjects (as 'aggregate --plan' does), reading no data
and spending no budget.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if plan {
				if f.policy == "" {
					return usageError(errors.New("run: --plan needs --policy"), "tarnkappe run --plan --policy P")
				}
				return runPolicyPlan(cmd, f, subjects, rowsPerSubject)
			}
			if f.policy == "" || f.in == "" || f.out == "" {
				return usageError(errors.New("run: --policy, --in and --out are required"), "see 'tarnkappe run --help'")
			}
			rep, err := runPolicy(cmd, f)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: %d rows in, %d out, %d suppressed, %d filtered\n",
				rep.Rows.In, rep.Rows.Out, rep.Rows.Suppressed, rep.Rows.Filtered)
			return nil
		},
	}
	c.Flags().StringVar(&f.policy, "policy", "", "policy file (YAML)")
	c.Flags().StringVar(&f.in, "in", "", "input file, or - for an Arrow IPC stream on stdin")
	c.Flags().StringVar(&f.out, "out", "", "output file, or - for an Arrow IPC stream on stdout")
	c.Flags().StringVar(&f.keys, "keys", "", "keyring file (overrides the policy's keyring)")
	c.Flags().StringVar(&f.report, "report", "", "write the JSON report here")
	c.Flags().StringVar(&f.html, "html", "", "write the HTML report here")
	c.Flags().StringVar(&f.release, "release", "", "DP release output (when the policy has a release block)")
	c.Flags().BoolVar(&plan, "plan", false, "dry run: check the policy and print the DP release's predicted accuracy; reads no data")
	c.Flags().StringVar(&subjects, "subjects", "10,30,100,300,1000,3000", "--plan: assumed numbers of subjects contributing to a partition")
	c.Flags().Int64Var(&rowsPerSubject, "rows-per-subject", 0, "--plan: assumed rows per subject and partition (default: the policy's max_per_partition)")
	addInputFlags(c)
	return c
}

type runFlags struct {
	policy, in, out, keys, report, html, release string
	keyring                                      *pseudonym.Keyring // set by demo: an ephemeral keyring
	releaseOnly                                  bool               // aggregate --policy: no anonymised rows written
}

// discardSink drops the anonymised rows in aggregate --policy mode.
type discardSink struct{}

func (discardSink) Write(arrow.RecordBatch) error { return nil }
func (discardSink) Commit() error                 { return nil }
func (discardSink) Abort() error                  { return nil }

// isTerminal reports whether w is a character device (a terminal): the
// progress bar is drawn only then, so logs and pipes stay clean.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func releasePath(out string) string {
	if out == "-" {
		return "release.parquet"
	}
	ext := filepath.Ext(out)
	return strings.TrimSuffix(out, ext) + ".release" + ext
}

func runPolicy(cmd *cobra.Command, f runFlags) (*anonymize.Report, error) {
	ctx := cmd.Context()
	p, err := loadPolicy(f.policy)
	if err != nil {
		return nil, err
	}
	if f.releaseOnly && p.Release == nil {
		return nil, usageError(fmt.Errorf("aggregate: policy %s has no release block", f.policy), "add a release block (see examples/brakedisc/policy.yaml)")
	}
	kr := f.keyring
	if kr == nil && (f.keys != "" || p.Keyring != "") {
		path := f.keys
		if path == "" {
			path = p.Resolve(p.Keyring)
		}
		kr, err = pseudonym.LoadKeyring(path)
		if err != nil {
			return nil, usageError(err, "create a keyring with 'tarnkappe keygen --out FILE' and pass it with --keys")
		}
		defer kr.Destroy()
	}
	mem := memory.DefaultAllocator
	inOpts, err := inputOptions(cmd, f.in)
	if err != nil {
		return nil, err
	}
	inOpts.Mem = mem
	src, err := arrowio.Open(ctx, f.in, inOpts)
	if err != nil {
		return nil, usageError(err, "the input must be a readable .parquet, .arrow/.ipc or .csv file, or - for Arrow IPC on stdin")
	}
	defer src.Close()
	rel := f.release
	if rel == "" {
		rel = releasePath(f.out)
	}
	opts := anonymize.Options{
		Policy: p, Keyring: kr, Mem: mem, Input: f.in, Output: f.out, ReleaseOutput: rel, ProgressTotal: src.TotalRows(),
		Release: func(schema *arrow.Schema) (anonymize.Sink, error) {
			return arrowio.Create(rel, schema, arrowio.CreateOptions{Mem: mem, Stdout: cmd.OutOrStdout()})
		},
	}
	if f.in != arrowio.Stdio {
		// The report gives the file's size and keyed fingerprint.
		opts.InputFile = f.in
		// Input in an order the trips cannot stream is read again from
		// the file rather than from a copy the run would keep (stdin).
		opts.Reopen = func() (array.RecordReader, error) {
			return arrowio.Open(ctx, f.in, inOpts)
		}
	}
	if isTerminal(cmd.ErrOrStderr()) {
		opts.Progress = cmd.ErrOrStderr()
	}
	if p.Release == nil {
		opts.Release = nil
	}
	r, err := anonymize.NewRunner(opts)
	if err != nil {
		var pe *anonymize.PolicyError
		if errors.As(err, &pe) {
			return nil, usageError(err, "") // causeHint names the file
		}
		return nil, usageError(err, "check the keyring (--keys or the policy's keyring:) and the opt-out list the policy names")
	}
	defer r.Close()
	rep, err := r.Run(ctx, src, func(schema *arrow.Schema) (anonymize.Sink, error) {
		if f.releaseOnly {
			return discardSink{}, nil
		}
		return arrowio.Create(f.out, schema, arrowio.CreateOptions{Mem: mem, Stdout: cmd.OutOrStdout()})
	})
	if err != nil {
		return nil, usageError(err, "")
	}
	for _, w := range rep.Warnings() {
		fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: warning: %s\n", w)
	}
	if f.report != "" {
		var buf bytes.Buffer
		if err := rep.WriteJSON(&buf); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(f.report, buf.Bytes()); err != nil {
			return nil, err
		}
	}
	if f.html != "" {
		var buf bytes.Buffer
		if err := rep.WriteHTML(&buf); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(f.html, buf.Bytes()); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// loadPolicy loads a policy file, with a hint that fits what went wrong:
// no such file, or a policy that does not validate.
func loadPolicy(path string) (*anonymize.Policy, error) {
	p, err := anonymize.LoadPolicy(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageError(err, "no policy file at "+path+"; examples/brakedisc/policy.yaml is a commented starting point ('tarnkappe demo' writes it to its output directory)")
	case errors.Is(err, fs.ErrPermission):
		return nil, usageError(err, "the policy file cannot be read: check its permissions")
	case err != nil:
		return nil, usageError(err, "fix the policy file; every key is checked against the documented policy format")
	}
	return p, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
