package beam

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

// Run builds the Anonymize pipeline for cfg and executes it on the named
// runner ("prism", "direct", "dataflow", "flink", ...; the runner package
// must be linked in, as cmd/tarnkappe-beam does). It returns the report the
// final step wrote. On error no output is committed and the shard
// directory is removed.
func Run(ctx context.Context, runner string, cfg Config) (*anonymize.Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reportPath := cfg.Report
	if reportPath == "" {
		f, err := os.CreateTemp("", "tarnkappe-beam-report-*.json")
		if err != nil {
			return nil, err
		}
		f.Close()
		os.Remove(f.Name())
		reportPath = f.Name()
		cfg.Report = reportPath
		defer os.Remove(reportPath)
	}
	if err := os.MkdirAll(cfg.TempDir, 0o700); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: %w", err)
	}
	defer os.RemoveAll(cfg.TempDir)
	p, s := beam.NewPipelineWithRoot()
	if err := Anonymize(s, cfg); err != nil {
		return nil, err
	}
	if _, err := beam.Run(ctx, runner, p); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: %s runner: %w", runner, err)
	}
	raw, err := os.ReadFile(reportPath)
	if err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: report: %w", err)
	}
	var rep anonymize.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: report: %w", err)
	}
	return &rep, nil
}
