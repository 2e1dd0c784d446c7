package pool

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// MemberStats account for every input row of a member's contribution:
// RowsIn = OptedOut + Trimmed + Release.RowsIn, and the release's rows are
// accounted for in dp.Stats (used, outside the public partitions, dropped by
// L0 or L∞). They are the member's own figures: they go into no upload.
type MemberStats struct {
	RowsIn   int64    `json:"rows_in"`
	OptedOut int64    `json:"rows_opted_out"`
	Trimmed  int64    `json:"rows_trimmed"`
	Release  dp.Stats `json:"release"`
}

// PolicyPartial runs a member's anonymisation policy over src as far as its
// DP release — the opt-out list, trips and cells (mobility), the column
// actions and the release's derived keys, exactly the steps anonymize.Runner
// feeds its release with (through anonymize.Steps) — and returns the
// release's bounded, pre-noise partial (contribution bounding per subject by
// package dp) instead of a noisy release. Nothing is written and no noise is
// drawn. The partial is as sensitive as the data: hand it to Contribute,
// which only ever lets it leave as secret shares. The policy's release block
// must have the pool's parameters (Contribute checks).
func PolicyPartial(ctx context.Context, r *anonymize.Runner, src array.RecordReader) (*dp.Partial, MemberStats, error) {
	const fn = "pool.PolicyPartial"
	var ms MemberStats
	if r.Policy().Release == nil {
		return nil, ms, fmt.Errorf("%s: the policy has no release block", fn)
	}
	st, err := r.Steps(src.Schema())
	if err != nil {
		return nil, ms, fmt.Errorf("%s: %w", fn, err)
	}
	defer st.Close()
	opts, err := st.DPOptions()
	if err != nil {
		return nil, ms, fmt.Errorf("%s: %w", fn, err)
	}
	ag, err := dp.NewAggregator(opts)
	if err != nil {
		return nil, ms, fmt.Errorf("%s: release: %w", fn, err)
	}
	defer ag.Close()
	var seg *mobility.Segmenter
	if r.Policy().Mobility != nil {
		if seg, err = st.NewSegmenter(mobility.OrderTime); err != nil {
			return nil, ms, fmt.Errorf("%s: mobility: %w", fn, err)
		}
		defer seg.Release()
	}
	// feed takes one batch after opt-out (and segmentation) to the release.
	feed := func(rec arrow.RecordBatch, base int64) error {
		if rec == nil {
			return nil
		}
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		in := rec
		if seg != nil {
			mid, err := st.Coarsen(ctx, rec)
			if err != nil {
				return fmt.Errorf("mobility (trips emitted after data row %d): %w", base, err)
			}
			defer mid.Release()
			in = mid
		}
		tr, err := st.Transform(ctx, in, base)
		if err != nil {
			return err
		}
		defer tr.Release()
		ri, err := st.ReleaseInput(tr)
		if err != nil {
			return err
		}
		defer ri.Release()
		if err := ag.Add(ctx, ri); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		ms.Release.RowsIn += ri.NumRows()
		return nil
	}
	in := src.Schema()
	for src.Next() {
		if err := ctx.Err(); err != nil {
			return nil, ms, err
		}
		rec := src.RecordBatch()
		base := ms.RowsIn
		if !slices.EqualFunc(rec.Schema().Fields(), in.Fields(), func(a, b arrow.Field) bool { return a.Name == b.Name && arrow.TypeEqual(a.Type, b.Type) }) {
			return nil, ms, fmt.Errorf("%s: the batch from row %d on has a different schema from the first", fn, base+1)
		}
		ms.RowsIn += rec.NumRows()
		kept, dropped, err := st.OptOut(ctx, rec, base)
		if err != nil {
			return nil, ms, fmt.Errorf("%s: %w", fn, err)
		}
		ms.OptedOut += int64(len(dropped))
		if seg != nil {
			out, err := seg.Push(ctx, kept)
			kept.Release()
			if err != nil {
				return nil, ms, fmt.Errorf("%s: mobility: %w", fn, err)
			}
			kept = out
		}
		if err := feed(kept, base); err != nil {
			return nil, ms, fmt.Errorf("%s: %w", fn, err)
		}
	}
	if err := src.Err(); err != nil {
		return nil, ms, fmt.Errorf("%s: reading the input after row %d: %w", fn, ms.RowsIn, err)
	}
	if seg != nil {
		out, err := seg.Flush(ctx)
		if err != nil {
			return nil, ms, fmt.Errorf("%s: mobility: %w", fn, err)
		}
		if err := feed(out, ms.RowsIn); err != nil {
			return nil, ms, fmt.Errorf("%s: %w", fn, err)
		}
		ms.Trimmed = seg.Stats().RowsTrimmed
	}
	part, err := ag.Partial(ctx)
	if err != nil {
		return nil, ms, fmt.Errorf("%s: release: %w", fn, err)
	}
	ms.Release = part.Stats
	if ms.RowsIn != ms.OptedOut+ms.Trimmed+ms.Release.RowsIn {
		return nil, ms, fmt.Errorf("%s: internal check failed: %d rows in, %d opted out, %d trimmed, %d reached the release", fn, ms.RowsIn, ms.OptedOut, ms.Trimmed, ms.Release.RowsIn)
	}
	return part, ms, nil
}

// DPOptions are the pool's release as options for package dp, for members
// whose data already has the partition key columns and who bound it
// without a policy: subject, keys, the public partitions, L0, L∞ and one
// dp aggregate per value aggregate of the pool (counts need none: every
// partial counts rows).
func (c *Config) DPOptions(mem memory.Allocator) (dp.Options, error) {
	r := &c.Release
	opts := dp.Options{Subject: r.Subject, GroupBy: r.By, MaxPartitions: r.MaxPartitions, MaxPerPartition: r.MaxPerPartition, Mem: mem}
	for _, a := range r.Aggregates {
		switch a.Kind {
		case "count":
			opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: dp.Count})
		case "sum":
			opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: dp.Sum, Column: a.Column, Lower: a.Lower, Upper: a.Upper})
		case "mean":
			opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: dp.Mean, Column: a.Column, Lower: a.Lower, Upper: a.Upper})
		}
	}
	l, err := dp.NewPartitionList(r.By...)
	if err != nil {
		return dp.Options{}, fmt.Errorf("pool.Config.DPOptions: %w", err)
	}
	for _, row := range c.plan.rows {
		if err := l.Add(row...); err != nil {
			return dp.Options{}, fmt.Errorf("pool.Config.DPOptions: %w", err)
		}
	}
	opts.Public = l
	if err := opts.Validate(); err != nil {
		return dp.Options{}, fmt.Errorf("pool.Config.DPOptions: %w", err)
	}
	return opts, nil
}

// ReaderPartial bounds src with the pool's release (DPOptions), for members
// without a policy. Every row is accounted for in the partial's Stats.
func (c *Config) ReaderPartial(ctx context.Context, src array.RecordReader, mem memory.Allocator) (*dp.Partial, error) {
	opts, err := c.DPOptions(mem)
	if err != nil {
		return nil, err
	}
	ag, err := dp.NewAggregator(opts)
	if err != nil {
		return nil, fmt.Errorf("pool.Config.ReaderPartial: %w", err)
	}
	defer ag.Close()
	for src.Next() {
		if err := ag.Add(ctx, src.RecordBatch()); err != nil {
			return nil, fmt.Errorf("pool.Config.ReaderPartial: %w", err)
		}
	}
	if err := src.Err(); err != nil {
		return nil, fmt.Errorf("pool.Config.ReaderPartial: reading the input: %w", err)
	}
	part, err := ag.Partial(ctx)
	if err != nil {
		return nil, fmt.Errorf("pool.Config.ReaderPartial: %w", err)
	}
	return part, nil
}
