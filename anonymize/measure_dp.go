package anonymize

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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
	if f.DP, err = ReleaseFigures(res, acct.Spent()); err != nil {
		return fmt.Errorf("release: %w", err)
	}
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

// ReleaseFigures are the figures of a DP release for the report: what it
// spent, its partitions with each aggregate's published value and interval,
// and dp's verdict on how much they say. Everything comes from the release's
// record (post-processing: no budget). Run and the Beam engine both call it.
func ReleaseFigures(res *dp.Result, spent dp.Spent) (*DPFigures, error) {
	verdict, err := res.Verdict()
	if err != nil {
		return nil, err
	}
	parts, err := partitionValues(res)
	if err != nil {
		return nil, err
	}
	return &DPFigures{Spent: spent, Kept: res.PartitionsKept, Verdict: verdict, Partitions: parts}, nil
}

// partitionValues reads the release's record: per partition its key (the
// columns before the aggregates', as text) and the value and interval of
// every aggregate that has one (count, sum, mean).
func partitionValues(res *dp.Result) ([]DPPartitionValues, error) {
	rec := res.Record
	values := 0
	for _, a := range res.Aggregates {
		switch a.Kind {
		case dp.Count, dp.Sum, dp.Mean:
			values += 3
		case dp.Variance:
			values++
		case dp.Quantiles:
			values += len(a.Ranks)
		}
	}
	keys := int(rec.NumCols()) - values
	if keys < 0 {
		return nil, errors.New("the release's record does not match its aggregates")
	}
	out := make([]DPPartitionValues, rec.NumRows())
	for i := range out {
		out[i] = DPPartitionValues{Key: map[string]string{}, Values: map[string]DPInterval{}}
		for c := range keys {
			out[i].Key[rec.ColumnName(c)] = rec.Column(c).ValueStr(i)
		}
	}
	sc := rec.Schema()
	for _, a := range res.Aggregates {
		if a.Kind != dp.Count && a.Kind != dp.Sum && a.Kind != dp.Mean {
			continue
		}
		var cols [3]func(int) float64
		for j, name := range []string{a.Name, a.Name + "_ci_low", a.Name + "_ci_high"} {
			idx := sc.FieldIndices(name)
			if len(idx) != 1 {
				return nil, fmt.Errorf("the release has no column %q", name)
			}
			switch c := rec.Column(idx[0]).(type) {
			case *array.Int64:
				cols[j] = func(k int) float64 { return float64(c.Value(k)) }
			case *array.Float64:
				cols[j] = c.Value
			default:
				return nil, fmt.Errorf("release column %q has type %s", name, c.DataType())
			}
		}
		for i := range out {
			out[i].Values[a.Name] = DPInterval{Value: cols[0](i), Low: cols[1](i), High: cols[2](i)}
		}
	}
	return out, nil
}
