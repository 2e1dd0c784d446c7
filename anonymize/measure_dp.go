package anonymize

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/dp"
)

// dpRelease is the differentially private release (the policy's release
// block): pass 1 feeds the aggregator (bounded, pre-noise), figures draws
// the noise under the block's budget and writes the release to the run's
// outputs, which commit it with the data.
type dpRelease struct {
	noHooks
	agg            *dp.Aggregator
	in             *releaseInput // derives the columns only the release sees, or nil
	epsilon, delta float64
	mem            memory.Allocator
	out            *outputs
	result         *dp.Result
}

func newDPRelease(rp *releasePlan, rel *ReleasePolicy, mem memory.Allocator, out *outputs) (*dpRelease, error) {
	agg, err := dp.NewAggregator(rp.opts)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return &dpRelease{agg: agg, in: rp.in, epsilon: rel.Epsilon, delta: rel.Delta, mem: mem, out: out}, nil
}

func (d *dpRelease) pass1(ctx context.Context, rec arrow.RecordBatch, _ int64) error {
	in := rec
	if d.in != nil {
		h, err := d.in.apply(d.mem, rec)
		if err != nil {
			return err
		}
		defer h.Release()
		in = h
	}
	if err := d.agg.Add(ctx, in); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// figures releases the aggregates and writes them to the release output
// (not committed yet).
func (d *dpRelease) figures(ctx context.Context, f *Figures) error {
	part, err := d.agg.Partial(ctx)
	d.agg = nil
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	acct, err := dp.NewAccountant(d.epsilon, d.delta)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	res, err := part.Release(ctx, acct, dp.ReleaseOptions{Mem: d.mem})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	d.result = res
	f.DP = &DPFigures{Spent: acct.Spent(), Kept: res.PartitionsKept}
	if err := d.out.writeRelease(res.Record); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

func (d *dpRelease) close() {
	if d.agg != nil {
		d.agg.Close()
		d.agg = nil
	}
	if d.result != nil {
		d.result.Release()
		d.result = nil
	}
}
