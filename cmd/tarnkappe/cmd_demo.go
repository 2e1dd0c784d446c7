package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

func newDemoCmd() *cobra.Command {
	var dir string
	var rows int64
	c := &cobra.Command{
		Use:   "demo [--out DIR] [--rows N]",
		Short: "Generate a synthetic brake-disc fleet and run the example policy on it",
		Long: `demo generates a synthetic fleet (examples/brakedisc), opts out 1% of the
vehicles, and runs the example policy (examples/brakedisc/policy.yaml) with an
ephemeral in-memory keyring. It writes to DIR:

  fleet.parquet       the raw synthetic input, VINs and positions in clear
                      (the demo keeps it so you can compare; never share it)
  optout.txt          the opted-out VINs (the run holds them keyed, never in clear)
  policy.yaml         the policy it ran
  anonymized.parquet  the anonymised telemetry: per trip (a random id per trip
                      replaces the vehicle), H3 cells, hourly times
  release.parquet     the differentially private mean disc temperature per
                      H3 cell and hour of day, over public partitions
  report.json         the audit report for machines
  report.html         the audit report for people (open it in a browser)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rows < 1 {
				return usageError(fmt.Errorf("demo: --rows must be >= 1, got %d", rows), "")
			}
			return runDemo(cmd, dir, rows)
		},
	}
	c.Flags().StringVar(&dir, "out", "tarnkappe-demo", "output directory")
	c.Flags().Int64Var(&rows, "rows", brakedisc.DefaultConfig().Rows, "rows of telemetry to generate")
	return c
}

func runDemo(cmd *cobra.Command, dir string, rows int64) error {
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageError(err, "")
	}
	cfg := brakedisc.DefaultConfig()
	cfg.Rows = rows
	mem := memory.DefaultAllocator

	// 1. The raw fleet, collecting the VINs for the opt-out list.
	fleet := filepath.Join(dir, "fleet.parquet")
	vins, err := writeFleet(cmd, fleet, cfg, mem)
	if err != nil {
		return err
	}
	// 2. 1% of the vehicles opt out: every 100th VIN in sorted order.
	sort.Strings(vins)
	var opt strings.Builder
	opt.WriteString("# Vehicles whose owners refused sharing (demo: every 100th VIN).\n")
	nOpt := 0
	for i := 0; i < len(vins); i += 100 {
		opt.WriteString(vins[i] + "\n")
		nOpt++
	}
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), []byte(opt.String()), 0o600); err != nil {
		return err
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, brakedisc.DemoPolicy(), 0o644); err != nil {
		return err
	}
	// 3. An ephemeral keyring: pseudonyms of this demo cannot be recomputed
	// after it ends.
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		return err
	}
	defer kr.Destroy()
	rep, err := runPolicy(cmd, runFlags{
		policy: policy, in: fleet, out: filepath.Join(dir, "anonymized.parquet"),
		report: filepath.Join(dir, "report.json"), html: filepath.Join(dir, "report.html"),
		release: filepath.Join(dir, "release.parquet"), keyring: kr,
	})
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "tarnkappe demo: %d vehicles, %d rows generated, %d vehicles opted out\n", len(vins), rep.Rows.In, nOpt)
	fmt.Fprintf(w, "rows: %d in = %d out + %d suppressed + %d filtered\n", rep.Rows.In, rep.Rows.Out, rep.Rows.Suppressed, rep.Rows.Filtered)
	if k := rep.KAnon; k != nil {
		var levels []string
		for _, q := range k.QuasiIdentifiers {
			levels = append(levels, fmt.Sprintf("%s %d", q, k.Transformation[q]))
		}
		fmt.Fprintf(w, "k-anonymity: k=%d over %s (per vehicle), %d classes, smallest %d vehicles; generalisation levels %s; verified=%v\n",
			k.K, strings.Join(k.QuasiIdentifiers, ","), k.Classes, k.SmallestClass, strings.Join(levels, ", "), k.Verified)
	}
	if r := rep.Risk; r != nil {
		if r.Before.Prosecutor != nil {
			fmt.Fprintf(w, "risk: prosecutor %s → %s\n", pctOf(r.Before.Prosecutor), pctOf(r.After.Prosecutor))
		}
		if r.After.Linkage != nil && r.Method != nil {
			fmt.Fprintf(w, "linkage: %s of published trips linked to one vehicle by the raw readings' holder (95%% CI %s–%s, %d sampled), limit %s\n",
				pctOf(r.After.Linkage), pctOf(&r.After.LinkageCI[0]), pctOf(&r.After.LinkageCI[1]), r.Method.TracesSampled, pctOf(&r.Method.MaxLinkage))
			fmt.Fprintf(w, "unicity(%d points) at published precision %s → %s (raw GPS before: %s)\n",
				unicityPoints(rep), pctOf(r.Before.Unicity), pctOf(r.After.Unicity), pctOf(r.Before.UnicityRawGPS))
		}
	}
	if d := rep.DP; d != nil {
		fmt.Fprintf(w, "dp release: %d partitions by %s (%s partitions), ε=%g δ=%g spent of ε=%g δ=%g\n", d.Partitions, strings.Join(d.By, ","), d.Selection, d.EpsilonSpent, d.DeltaSpent, d.EpsilonBudget, d.DeltaBudget)
		if v := d.Verdict; v != nil {
			var shares []string
			for _, a := range v.Aggregates {
				shares = append(shares, fmt.Sprintf("%s %d of %d", a.Name, a.Narrow, a.Intervals))
			}
			fmt.Fprintf(w, "dp accuracy: %s; narrow intervals: %s (see report.html)\n", v.Level, strings.Join(shares, ", "))
		}
	}
	if m := rep.Mobility; m != nil {
		fmt.Fprintf(w, "movement: scope %s, %d of %d trips keep an id (trace k=%d), H3 res %d, cell-hour k=%d (%d of %d written cell-hours below it)\n",
			m.Scope, m.TripsPublished, m.Trips, m.TraceK, m.CellResolution, m.K, m.OutputGroupsBelowK, m.OutputGroups)
		if m.Scope == "trip" {
			fmt.Fprintf(w, "trip ids: %d written rows carry one, %d carry none (%d trip ends, %d rows of unpublished trips)\n",
				m.RowsWithTripID, m.RowsWithoutTripID, m.RowsDetachedEnds, m.RowsDetached)
		}
		if u := m.Utility; u != nil {
			fmt.Fprintf(w, "utility: hourly mean %s per cell, %d of %d cell-hours with >= %d vehicles within %.0f%% of raw (%.1f%%, max rel. error %.3f)\n",
				u.Column, u.Within, u.Groups, u.MinSubjects, u.Tolerance*100, u.WithinFraction*100, u.MaxRelErr)
		}
	}
	fmt.Fprintf(w, "wrote %s/{anonymized.parquet,release.parquet,report.json,report.html} in %.1fs\n", dir, time.Since(start).Seconds())
	fmt.Fprintf(w, "raw input, not for sharing: %s/fleet.parquet holds the synthetic fleet in clear (VINs, positions) and %s/optout.txt the opted-out VINs\n", dir, dir)
	return nil
}

func unicityPoints(rep *anonymize.Report) int {
	if rep.Mobility != nil && rep.Mobility.UnicityPoints > 0 {
		return rep.Mobility.UnicityPoints
	}
	return 4
}

func pctOf(f *float64) string {
	if f == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", *f*100)
}

// writeFleet writes the generated fleet to path and returns its distinct VINs.
func writeFleet(cmd *cobra.Command, path string, cfg brakedisc.Config, mem memory.Allocator) ([]string, error) {
	rr, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		return nil, usageError(err, "")
	}
	defer rr.Release()
	sink, err := arrowio.Create(path, rr.Schema(), arrowio.CreateOptions{Mem: mem})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			sink.Abort()
		}
	}()
	vi := rr.Schema().FieldIndices("vin")
	if len(vi) != 1 {
		return nil, errors.New("demo: the generated fleet has no vin column")
	}
	seen := map[string]struct{}{}
	for rr.Next() {
		if err := cmd.Context().Err(); err != nil {
			return nil, err
		}
		rec := rr.RecordBatch()
		if d, isDict := rec.Column(vi[0]).(*array.Dictionary); isDict {
			if s, isStr := d.Dictionary().(*array.String); isStr {
				for i := range s.Len() {
					if _, dup := seen[s.Value(i)]; !dup {
						seen[strings.Clone(s.Value(i))] = struct{}{}
					}
				}
			}
		}
		if err := sink.Write(rec); err != nil {
			return nil, err
		}
	}
	if err := rr.Err(); err != nil {
		return nil, err
	}
	if err := sink.Commit(); err != nil {
		return nil, err
	}
	ok = true
	vins := make([]string, 0, len(seen))
	for v := range seen {
		vins = append(vins, v)
	}
	return vins, nil
}
