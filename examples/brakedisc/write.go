package brakedisc

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/arrowio"
)

// WriteFile writes the fleet cfg describes to path (.parquet, .arrow/.ipc
// or .csv; "-" is not accepted here since there is no stdout to name). The
// file appears only when complete: it is written to a temporary file and
// renamed. ctx is checked between batches.
func WriteFile(ctx context.Context, path string, cfg Config, mem memory.Allocator) (err error) {
	rr, err := NewReader(cfg, mem)
	if err != nil {
		return err
	}
	defer rr.Release()
	sink, err := arrowio.Create(path, rr.Schema(), arrowio.CreateOptions{Mem: mem})
	if err != nil {
		return fmt.Errorf("brakedisc.WriteFile: %w", err)
	}
	defer func() {
		if err != nil {
			sink.Abort()
		}
	}()
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("brakedisc.WriteFile %s: %w", path, err)
		}
		if err := sink.Write(rr.RecordBatch()); err != nil {
			return fmt.Errorf("brakedisc.WriteFile: %w", err)
		}
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("brakedisc.WriteFile: %w", err)
	}
	if err := sink.Commit(); err != nil {
		return fmt.Errorf("brakedisc.WriteFile: %w", err)
	}
	return nil
}
