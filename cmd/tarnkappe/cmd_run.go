package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
Every input column must be named by the policy.

When the policy has a release block, the differentially private aggregates go to
--release (default: OUT with ".release" before the extension).

Rows may come in any order. With a mobility block (trips need each vehicle's
readings in time order) input in time order or vehicle by vehicle streams as it
comes; anything else is sorted by vehicle and time first, in bounded memory with
encrypted temporary files. The report's input_details.order says which.

--plan is a dry run: it checks the policy, says what a run would do and prints
the predicted 95% error of the DP release's aggregates for partitions of
--subjects contributing subjects (as 'aggregate --plan' does), reading no data
and spending no budget.

Every output (OUT, the release, --report, --html) is checked before the input is
read: its folder must exist, its extension be known, and it must be neither a file
the run reads (IN, P, the keyring, the policy's opt-out list, hierarchies and
partition list) nor another output; a symbolic link is followed to the file it
names. While the run lasts each output is locked: a second run writing the same
output fails at once. The outputs are written to temporary files beside them and
renamed into place together at the end: on any error, and on SIGINT or SIGTERM,
no output file and no scratch file remains (an earlier file at an output's path
is kept), and the exit status is 2.`,
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
	// reports are more reports rendered from the run's report and
	// committed with its outputs (aggregate --policy's --report and
	// --exact-report), all or nothing.
	reports []anonymize.ReportOutput
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
	keysPath := ""
	if f.keyring == nil && (f.keys != "" || p.Keyring != "") {
		keysPath = f.keys
		if keysPath == "" {
			keysPath = p.Resolve(p.Keyring)
		}
	}
	rel := f.release
	if rel == "" {
		rel = releasePath(f.out)
	}
	// Every output is checked and claimed before anything is read: a path
	// that cannot be written, or that is an input or another output, fails
	// now, not after the first pass.
	outs, err := claimOutputs(f, p, keysPath, rel)
	if err != nil {
		return nil, err
	}
	defer outs.abort()
	kr := f.keyring
	if keysPath != "" {
		kr, err = pseudonym.LoadKeyring(keysPath)
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
	copts := arrowio.CreateOptions{Mem: mem, Stdout: cmd.OutOrStdout()}
	opts := anonymize.Options{
		Policy: p, Keyring: kr, Mem: mem, Input: f.in, Output: f.out, ReleaseOutput: rel, ProgressTotal: src.TotalRows(),
		Release: func(schema *arrow.Schema) (anonymize.Sink, error) {
			return outs.sink(outs.release, schema, copts)
		},
		Reports: append(slices.Clip(outs.reports), f.reports...),
		OnStep:  stepHook(ctx),
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
		return outs.sink(outs.data, schema, copts)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx)
		}
		return nil, usageError(err, "")
	}
	for _, w := range rep.Warnings() {
		fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: warning: %s\n", w)
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

// runOutputs are the files a run writes, claimed before it reads a row
// (arrowio.CreateFile: checked, and locked against a second run writing
// them). A nil File is standard output ("-"; at most one output) or not
// written.
type runOutputs struct {
	data, release *arrowio.File
	reports       []anonymize.ReportOutput
}

// claimOutputs refuses outputs that are an input or one another, then
// claims every output of the run.
func claimOutputs(f runFlags, p *anonymize.Policy, keysPath, rel string) (_ *runOutputs, err error) {
	inputs := []arrowio.Named{{Name: "--in", Path: f.in}, {Name: "--policy", Path: f.policy}}
	keysName := "--keys"
	if f.keys == "" {
		keysName = "the policy's keyring"
	}
	inputs = append(inputs, arrowio.Named{Name: keysName, Path: keysPath})
	for _, pf := range p.Files() {
		if pf.Key != "keyring" {
			inputs = append(inputs, arrowio.Named{Name: "the policy's " + pf.Key, Path: pf.Path})
		}
	}
	var outputs []arrowio.Named
	if !f.releaseOnly {
		outputs = append(outputs, arrowio.Named{Name: "--out", Path: f.out})
	}
	relName := "--release"
	if f.releaseOnly {
		relName = "--out"
	}
	if p.Release != nil {
		outputs = append(outputs, arrowio.Named{Name: relName, Path: rel})
	}
	outputs = append(outputs, arrowio.Named{Name: "--report", Path: f.report}, arrowio.Named{Name: "--html", Path: f.html})
	if err := checkPaths(inputs, outputs); err != nil {
		return nil, err
	}
	o := &runOutputs{}
	defer func() {
		if err != nil {
			o.abort()
		}
	}()
	claim := claimOutput
	if !f.releaseOnly {
		if o.data, err = claim("--out", f.out, true); err != nil {
			return nil, err
		}
	}
	if p.Release != nil {
		if o.release, err = claim(relName, rel, true); err != nil {
			return nil, err
		}
	}
	for _, r := range []struct {
		name, path string
		render     func(*anonymize.Report, io.Writer) error
	}{{"--report", f.report, (*anonymize.Report).WriteJSON}, {"--html", f.html, (*anonymize.Report).WriteHTML}} {
		if r.path == "" {
			continue
		}
		if r.path == "-" {
			return nil, usageError(fmt.Errorf("%s -: reports are written to files", r.name), "name a file; standard output carries data only")
		}
		file, err := claim(r.name, r.path, false)
		if err != nil {
			return nil, err
		}
		o.reports = append(o.reports, anonymize.ReportOutput{File: file, Render: r.render})
	}
	return o, nil
}

// sink writes schema's batches to the claimed file, or to standard output
// when file is nil. It never returns a typed nil: the Runner must not see a
// non-nil Sink holding no sink.
func (o *runOutputs) sink(file *arrowio.File, schema *arrow.Schema, copts arrowio.CreateOptions) (anonymize.Sink, error) {
	s, err := arrowio.NewSink(file, schema, copts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// abort removes every claimed output not committed (a no-op for those the
// run committed).
func (o *runOutputs) abort() {
	for _, f := range []*arrowio.File{o.data, o.release} {
		if f != nil {
			f.Abort()
		}
	}
	for _, r := range o.reports {
		r.File.Abort()
	}
}
