package anonymize

import (
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/dp"
)

// releasePlan is the release block planned for an input schema: its
// options for package dp, the derivation of the columns only the release
// sees (nil when none) and the number of public partitions (0: private
// selection).
type releasePlan struct {
	opts   dp.Options
	in     *releaseInput
	public int
}

// releasePlan plans the release block once per plan (public partitions
// are read from a file or generated from a box). Shared by Run, Steps and
// the report builder.
func (r *Runner) releasePlan(pl *plan) (*releasePlan, error) {
	if pl.release != nil {
		return pl.release, nil
	}
	if r.p.Release == nil {
		return nil, errors.New("the policy has no release block")
	}
	opts, in, public, err := r.dpOptions(pl)
	if err != nil {
		return nil, err
	}
	pl.release = &releasePlan{opts: opts, in: in, public: public}
	return pl.release, nil
}

func (r *Runner) dpOptions(pl *plan) (dp.Options, *releaseInput, int, error) {
	p := r.p
	rel := p.Release
	opts := dp.Options{Subject: p.Subject, GroupBy: rel.By, MaxPartitions: int64(rel.MaxPartitions), MaxPerPartition: int64(rel.MaxPerPartition), Mem: r.mem}
	if rel.Count {
		opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: dp.Count})
	}
	for _, ag := range rel.Aggregates {
		var k dp.Kind
		switch ag.Kind {
		case "sum":
			k = dp.Sum
		case "mean":
			k = dp.Mean
		case "variance":
			k = dp.Variance
		case "quantiles":
			k = dp.Quantiles
		}
		opts.Aggregates = append(opts.Aggregates, dp.Aggregate{Kind: k, Column: ag.Column, Lower: ag.Lower, Upper: ag.Upper, Ranks: ag.Quantiles})
	}
	public := 0
	if rel.Public != nil {
		l, err := r.publicPartitions()
		if err != nil {
			return dp.Options{}, nil, 0, fmt.Errorf("release: %w", err)
		}
		opts.Public = l
		public = l.Len()
	}
	var ri *releaseInput
	if rel.HourOfDay != "" || rel.CellResolution > 0 {
		ri = &releaseInput{schema: pl.trans, hodIdx: -1, cellIdx: -1, parents: map[string]string{}}
		if rel.HourOfDay != "" {
			ri.hodIdx = pl.trans.FieldIndices(rel.HourOfDay)[0]
			ri.schema = arrow.NewSchema(append(slices.Clone(pl.trans.Fields()), arrow.Field{Name: HourOfDayColumn, Type: arrow.PrimitiveTypes.Int64, Nullable: true}), nil)
		}
		if rel.CellResolution > 0 && rel.CellResolution < p.Mobility.CellResolution {
			ri.cellIdx, ri.res = pl.trans.FieldIndices(p.Mobility.CellColumn)[0], rel.CellResolution
		}
	}
	return opts, ri, public, nil
}

// dpReport is the report's dp block of a release that spent sp and kept
// the given number of partitions.
func dpReport(p *Policy, sp dp.Spent, kept int64, public int) *DPReport {
	rel := p.Release
	var names []string
	if rel.Count {
		names = append(names, "count")
	}
	for _, ag := range rel.Aggregates {
		names = append(names, fmt.Sprintf("%s(%s) in [%g, %g]", ag.Kind, ag.Column, ag.Lower, ag.Upper))
	}
	d := &DPReport{EpsilonSpent: sp.EpsilonSpent, DeltaSpent: sp.DeltaSpent, By: rel.By, Partitions: int(kept), Aggregates: names,
		Selection: "private", MaxPartitions: rel.MaxPartitions, MaxPerPartition: rel.MaxPerPartition, EpsilonBudget: rel.Epsilon, DeltaBudget: rel.Delta}
	if public > 0 {
		d.Selection = "public"
		d.PublicPartitions = public
	}
	if rel.HourOfDay != "" {
		d.HourOfDay = rel.HourOfDay
	}
	if rel.CellResolution > 0 {
		d.CellResolution = rel.CellResolution
	}
	return d
}
