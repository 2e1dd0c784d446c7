package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

const genFormatHint = "name the output by its format: FILE.parquet, FILE.arrow, FILE.csv, or - for an Arrow IPC stream on stdout"

func newGenCmd() *cobra.Command {
	def := brakedisc.DefaultConfig()
	var (
		out      string
		vehicles int
		rows     int64
		seed     int64
		days     int
		interval time.Duration
		taxis    bool
	)
	cmd := &cobra.Command{
		Use:   "gen --out FILE [--vehicles V] [--rows N] [--seed S]",
		Short: "Generate synthetic brake-disc telemetry (a simulated fleet around Munich)",
		Long: `gen writes the synthetic brake-disc fleet: vehicles with home and work
anchors driving plausible trips around Munich, with speed, brake pressure,
disc temperature and pad wear about every 30 s while driving, and the vehicle and
owner attributes a data pool holds. The same seed and sizes give the same
bytes. The format follows the extension of --out (.parquet, .arrow, .ipc,
.csv); "-" writes an Arrow IPC stream to stdout. The file appears only when
complete.`,
		Example: `  tarnkappe gen --out fleet.parquet
  tarnkappe gen --out fleet.csv --vehicles 50 --rows 10000 --seed 7
  tarnkappe gen --out taxis.parquet --taxis --vehicles 500 --days 8 --interval 1m --rows 1500000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError(errors.New("gen: --out is required"), genFormatHint)
			}
			if arrowio.FormatOf(out) == arrowio.FormatUnknown {
				return usageError(fmt.Errorf("gen: --out %q: %w", out, arrowio.ErrUnknownFormat), genFormatHint)
			}
			if f, ok := cmd.OutOrStdout().(*os.File); ok && out == arrowio.Stdio && term.IsTerminal(int(f.Fd())) {
				// as age does: binary on a terminal helps no one
				return usageError(errors.New("gen: refusing to write binary Arrow IPC to a terminal"), "redirect stdout to a file or pipe it into another command")
			}
			cfg := def
			cfg.Vehicles, cfg.Rows, cfg.Seed, cfg.Days, cfg.Interval, cfg.Taxis = vehicles, rows, seed, days, interval, taxis
			rr, err := brakedisc.NewReader(cfg, nil)
			if err != nil {
				return usageError(fmt.Errorf("gen: %w", err), "--vehicles must be at least 1, --rows and --days at least 0, --interval whole seconds")
			}
			defer rr.Release()
			sink, err := arrowio.Create(out, rr.Schema(), arrowio.CreateOptions{Stdout: cmd.OutOrStdout()})
			if err != nil {
				return usageError(fmt.Errorf("gen: %w", err), "check that the directory of --out exists and is writable")
			}
			bar := genProgress(cmd, cfg.Rows)
			ctx := cmd.Context()
			for rr.Next() {
				if err := ctx.Err(); err != nil {
					sink.Abort()
					return fmt.Errorf("gen: %w", err)
				}
				if err := sink.Write(rr.RecordBatch()); err != nil {
					return fmt.Errorf("gen: %w", err)
				}
				if bar != nil {
					bar.Add64(rr.RecordBatch().NumRows())
				}
			}
			if bar != nil {
				bar.Finish()
			}
			if err := rr.Err(); err != nil {
				sink.Abort()
				return fmt.Errorf("gen: %w", err)
			}
			if err := sink.Commit(); err != nil {
				return fmt.Errorf("gen: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: wrote %d rows (%d vehicles, seed %d) to %s\n",
				sink.Rows(), cfg.Vehicles, cfg.Seed, sink.Path())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output file: .parquet, .arrow, .ipc, .csv, or - for Arrow IPC on stdout (required)")
	f.IntVar(&vehicles, "vehicles", def.Vehicles, "number of vehicles")
	f.Int64Var(&rows, "rows", def.Rows, "exact number of rows")
	f.Int64Var(&seed, "seed", def.Seed, "random seed: the same seed and sizes give the same bytes")
	f.IntVar(&days, "days", def.Days, "days the readings are spread over")
	f.DurationVar(&interval, "interval", 0, "reporting interval while driving (default: 30s, shorter when --rows would not fit into --days)")
	f.BoolVar(&taxis, "taxis", false, "a taxi fleet of one city (many short fares around the centre) instead of private cars of the region")
	return cmd
}

// genProgress returns a progress bar on stderr when stderr is a terminal
// (never in scripts or pipes, whose stderr must stay readable), else nil.
func genProgress(cmd *cobra.Command, rows int64) *progressbar.ProgressBar {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || rows < 1_000_000 {
		return nil
	}
	return progressbar.NewOptions64(rows,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("gen"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish())
}
