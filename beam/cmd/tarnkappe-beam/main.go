// Command tarnkappe-beam runs a tarnkappe policy on Apache Beam: the same
// policy file, output and report fields as `tarnkappe run`, on a runner that
// spreads the work over many machines.
//
//	tarnkappe-beam run --runner prism|direct|dataflow|flink --policy P --in IN --out OUT
//	                   [--keys K] [--report R.json] [--release REL] [--batch N] [--shards S]
//	                   [Beam runner flags: --endpoint, --project, --region, --temp_location, ...]
//
// IN is a file, a comma-separated list or a glob. Paths must be readable and
// writable by every worker (on a cluster: a shared file system), and the
// keyring is read by the workers from --keys: it never travels in the
// pipeline. Exit codes: 0 success, 2 bad usage or bad input or a failed job.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/direct"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/flink"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	tkbeam "github.com/tarnkappe/tarnkappe/beam"
)

// runFlags are the flags of the run subcommand; Beam's own flags live in
// flag.CommandLine beside them (the runners read them from there).
type runFlags struct {
	policy, in, out, keys, report, release, temp string
	batch, shards                                int
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stderr))
}

func realMain(args []string, stderr io.Writer) int {
	// Beam starts this binary as its worker too (with --worker and no
	// subcommand): flags are parsed and beam.Init hands over to the harness.
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	} else if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: tarnkappe-beam run --runner prism --policy P --in IN --out OUT [--keys K] [--report R.json]")
		return 2
	}
	var f runFlags
	fs := flag.CommandLine
	fs.SetOutput(stderr)
	fs.StringVar(&f.policy, "policy", "", "policy file (YAML)")
	fs.StringVar(&f.in, "in", "", "input: a file, a comma-separated list or a glob (.parquet, .arrow, .csv)")
	fs.StringVar(&f.out, "out", "", "anonymised output file")
	fs.StringVar(&f.keys, "keys", "", "keyring file (overrides the policy's keyring); read by the workers")
	fs.StringVar(&f.report, "report", "", "JSON report")
	fs.StringVar(&f.release, "release", "", "DP release output (default: OUT with .release before the extension)")
	fs.StringVar(&f.temp, "temp", "", "directory for output shards (default: beside OUT, removed at the end)")
	fs.IntVar(&f.batch, "batch", 0, "rows per Arrow batch (0: 65536)")
	fs.IntVar(&f.shards, "shards", 0, "subject shards for trip segmentation and DP contribution bounding (0: 16)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	beam.Init()
	if err := run(context.Background(), f, stderr); err != nil {
		fmt.Fprintf(stderr, "tarnkappe-beam: error: %v\n", err)
		return 2
	}
	return 0
}

func run(ctx context.Context, f runFlags, stderr io.Writer) error {
	if *runners.Runner == "" {
		*runners.Runner = "prism"
	}
	if f.policy == "" || f.in == "" || f.out == "" {
		return errors.New("--policy, --in and --out are required\nhint: tarnkappe-beam run --runner prism --policy policy.yaml --in fleet.parquet --out anonymized.parquet --keys keys.json")
	}
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	src, err := os.ReadFile(f.policy)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	var inputs []string
	for _, pat := range strings.Split(f.in, ",") {
		m, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("--in %q: %w", pat, err)
		}
		if len(m) == 0 {
			return fmt.Errorf("--in %q: no such file", pat)
		}
		for _, p := range m {
			inputs = append(inputs, abs(p))
		}
	}
	cfg := tkbeam.Config{Policy: src, PolicyFile: abs(f.policy), Keys: abs(f.keys), Inputs: inputs, Output: abs(f.out),
		Report: abs(f.report), TempDir: abs(f.temp), BatchSize: f.batch, Shards: f.shards}
	if cfg.Keys == "" {
		if p, err := tkbeamPolicyKeyring(cfg); err == nil {
			cfg.Keys = p
		}
	}
	if cfg.TempDir == "" {
		var rnd [6]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return err
		}
		cfg.TempDir = cfg.Output + ".beam-" + hex.EncodeToString(rnd[:])
	}
	cfg.ReleaseOutput = abs(f.release)
	if cfg.ReleaseOutput == "" {
		ext := filepath.Ext(cfg.Output)
		cfg.ReleaseOutput = strings.TrimSuffix(cfg.Output, ext) + ".release" + ext
	}
	rep, err := tkbeam.Run(ctx, *runners.Runner, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tarnkappe-beam: %s: rows in %d, out %d, suppressed %d, filtered %d → %s\n",
		*runners.Runner, rep.Rows.In, rep.Rows.Out, rep.Rows.Suppressed, rep.Rows.Filtered, cfg.Output)
	if rep.DP != nil {
		fmt.Fprintf(stderr, "tarnkappe-beam: released %d partitions by %s (ε=%g δ=%g) → %s\n",
			rep.DP.Partitions, strings.Join(rep.DP.By, ","), rep.DP.EpsilonSpent, rep.DP.DeltaSpent, cfg.ReleaseOutput)
	}
	return nil
}
