package dp

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/differential-privacy/go/v2/noise"
)

// Kind names an aggregate.
type Kind uint8

// The aggregates a release can compute per partition.
const (
	Count     Kind = iota + 1 // number of rows (after contribution bounding)
	Sum                       // sum of a column clamped to [Lower, Upper]
	Mean                      // mean of a column clamped to [Lower, Upper]
	Variance                  // variance of a column clamped to [Lower, Upper]
	Quantiles                 // quantiles at Ranks of a column clamped to [Lower, Upper]
)

func (k Kind) String() string {
	switch k {
	case Count:
		return "count"
	case Sum:
		return "sum"
	case Mean:
		return "mean"
	case Variance:
		return "variance"
	case Quantiles:
		return "quantiles"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultRanks returns the quantile ranks used when an Aggregate of kind
// Quantiles names none: p50, p90, p99. (A function, so that no package
// state can be changed by a caller.)
func DefaultRanks() []float64 { return []float64{0.5, 0.9, 0.99} }

// Aggregate is one statistic computed for every released partition.
type Aggregate struct {
	// Kind of statistic. Required.
	Kind Kind
	// Column holds the values. Required for every kind but Count. Float and
	// integer columns are accepted; NaN and ±Inf are errors.
	Column string
	// Lower and Upper clamp every value. Required for every kind but Count;
	// Lower < Upper, both finite. They must not depend on the data.
	Lower, Upper float64
	// Ranks for Quantiles, each in [0, 1]. Defaults to DefaultRanks().
	Ranks []float64
	// Epsilon and Delta are this aggregate's share of the release budget.
	// Zero means "an even split of what the declared shares leave".
	Epsilon, Delta float64
	// Name prefixes the output columns. Defaults to "count", "sum_<col>",
	// "mean_<col>", "variance_<col>", "<col>" for quantiles.
	Name string
}

// NoiseKind selects the noise distribution of the DP library.
type NoiseKind uint8

// Noise distributions. Laplace needs no δ for the aggregates; Gaussian does.
const (
	Laplace NoiseKind = iota
	Gaussian
)

func (n NoiseKind) String() string {
	if n == Gaussian {
		return "gaussian"
	}
	return "laplace"
}

func (n NoiseKind) library() noise.Noise {
	if n == Gaussian {
		return noise.Gaussian()
	}
	return noise.Laplace()
}

// Budget is a share of (ε, δ).
type Budget struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// Options configure a release. Validated by NewAggregator.
type Options struct {
	// Subject is the column naming the privacy unit (e.g. "vin"): the unit
	// whose presence the release hides. Required. String, dictionary<*,
	// string> or integer column; nulls are errors.
	Subject string
	// GroupBy are the key columns forming a partition. Required (at least
	// one). String, dictionary<*, string>, integer or timestamp columns.
	GroupBy []string
	// Aggregates to compute for every partition. Required (at least one).
	Aggregates []Aggregate
	// MaxPartitions (L0) is how many partitions one subject may contribute
	// to; extra partitions are dropped uniformly at random. Required, >= 1.
	MaxPartitions int64
	// MaxPerPartition (L∞) is how many rows one subject may contribute to a
	// partition; extra rows are dropped uniformly at random. Required, >= 1.
	MaxPerPartition int64
	// Noise distribution. Defaults to Laplace.
	Noise NoiseKind
	// Public lists the partitions to release. When set, no budget is spent
	// on partition selection: every listed partition is released (with noise
	// over zero if absent from the data) and data partitions not listed are
	// dropped before contribution bounding. When nil, partitions are chosen
	// privately with the library's PreAggSelectPartition.
	Public *PartitionList
	// Selection is the budget share of private partition selection (unused
	// with Public). Zero means an even split; its δ must end up > 0.
	Selection Budget
	// Confidence level of the confidence intervals, in (0, 1). Defaults to 0.95.
	Confidence float64
	// Mem allocates the result record. Defaults to memory.DefaultAllocator.
	Mem memory.Allocator
}

// Spec is the validated, serialisable description of a release that every
// Partial carries, so that partials built on different machines can be
// checked for compatibility before they are merged. It is built by
// NewAggregator; do not edit it.
type Spec struct {
	Subject         string          `json:"subject"`
	GroupBy         []string        `json:"group_by"`
	Aggregates      []AggregateSpec `json:"aggregates"`
	MaxPartitions   int64           `json:"max_partitions"`
	MaxPerPartition int64           `json:"max_per_partition"`
	Noise           NoiseKind       `json:"noise"`
	Selection       Budget          `json:"selection"`
	Public          bool            `json:"public"`
	Confidence      float64         `json:"confidence"`
	ValueColumns    []string        `json:"value_columns"`
	KeyTypes        []keyType       `json:"key_types,omitempty"`
	PublicKeys      []string        `json:"public_keys,omitempty"`
}

// AggregateSpec is one validated Aggregate (defaults filled in).
type AggregateSpec struct {
	Kind    Kind      `json:"kind"`
	Column  string    `json:"column,omitempty"`
	Lower   float64   `json:"lower"`
	Upper   float64   `json:"upper"`
	Ranks   []float64 `json:"ranks,omitempty"`
	Epsilon float64   `json:"epsilon"`
	Delta   float64   `json:"delta"`
	Name    string    `json:"name"`
	// ValueIndex is the position of Column in spec.ValueColumns.
	ValueIndex int `json:"value_index"`
}

// Validate checks every option (ε shares, bounds, contribution bounds, column
// names) without reading data, with the same errors NewAggregator returns:
// a policy loader can reject a bad policy before any input is opened.
func (o Options) Validate() error {
	_, err := o.validate("Options.Validate")
	return err
}

// Spec validates o as Validate does and returns the spec a release with
// these options carries (aggregate names and defaults filled in), without
// reading data: for callers that read a release back and need its
// aggregates, e.g. to call Result.Verdict on it.
func (o Options) Spec() (*Spec, error) {
	return o.validate("Options.Spec")
}

// validate checks o and returns its spec. fn names the caller in errors.
func (o *Options) validate(fn string) (*Spec, error) {
	if o.Subject == "" {
		return nil, fmt.Errorf("dp.%s: Subject must be set (the column naming the privacy unit, e.g. vin)", fn)
	}
	if len(o.GroupBy) == 0 {
		return nil, fmt.Errorf("dp.%s: GroupBy must name at least one key column", fn)
	}
	seen := map[string]bool{o.Subject: true}
	for i, g := range o.GroupBy {
		if g == "" {
			return nil, fmt.Errorf("dp.%s: GroupBy[%d] is empty", fn, i)
		}
		if seen[g] {
			return nil, fmt.Errorf("dp.%s: GroupBy[%d] %q repeats a column (or is the subject column)", fn, i, g)
		}
		seen[g] = true
	}
	if len(o.Aggregates) == 0 {
		return nil, fmt.Errorf("dp.%s: Aggregates must name at least one aggregate", fn)
	}
	if err := checkContributions(fn, "MaxPartitions", o.MaxPartitions); err != nil {
		return nil, err
	}
	if err := checkContributions(fn, "MaxPerPartition", o.MaxPerPartition); err != nil {
		return nil, err
	}
	if o.MaxPartitions > 1<<20 || o.MaxPerPartition > 1<<20 {
		return nil, fmt.Errorf("dp.%s: MaxPartitions and MaxPerPartition must be <= %d", fn, 1<<20)
	}
	if o.Noise != Laplace && o.Noise != Gaussian {
		return nil, fmt.Errorf("dp.%s: Noise %d is not Laplace or Gaussian", fn, o.Noise)
	}
	conf := o.Confidence
	if conf == 0 {
		conf = 0.95
	}
	if !(conf > 0 && conf < 1) {
		return nil, fmt.Errorf("dp.%s: Confidence %v must be in (0, 1)", fn, o.Confidence)
	}
	s := &Spec{
		Subject: o.Subject, GroupBy: append([]string(nil), o.GroupBy...),
		MaxPartitions: o.MaxPartitions, MaxPerPartition: o.MaxPerPartition,
		Noise: o.Noise, Selection: o.Selection, Public: o.Public != nil, Confidence: conf,
	}
	if err := checkShare(fn, "Selection", o.Selection); err != nil {
		return nil, err
	}
	if o.Public != nil {
		if o.Selection != (Budget{}) {
			return nil, fmt.Errorf("dp.%s: Selection budget set together with Public partitions (public partitions need no selection budget)", fn)
		}
		if len(o.Public.columns) != len(o.GroupBy) {
			return nil, fmt.Errorf("dp.%s: Public partitions have %d key columns, GroupBy has %d", fn, len(o.Public.columns), len(o.GroupBy))
		}
		for i, c := range o.Public.columns {
			if c != o.GroupBy[i] {
				return nil, fmt.Errorf("dp.%s: Public partitions key column %d is %q, GroupBy has %q", fn, i, c, o.GroupBy[i])
			}
		}
		s.PublicKeys = o.Public.sortedKeys()
	}
	names := map[string]bool{}
	for _, g := range o.GroupBy {
		names[g] = true
	}
	valueIdx := map[string]int{}
	for i, a := range o.Aggregates {
		field := fmt.Sprintf("Aggregates[%d]", i)
		as := AggregateSpec{Kind: a.Kind, Column: a.Column, Lower: a.Lower, Upper: a.Upper, Epsilon: a.Epsilon, Delta: a.Delta, Name: a.Name, ValueIndex: -1}
		switch a.Kind {
		case Count:
			if a.Column != "" || a.Lower != 0 || a.Upper != 0 || len(a.Ranks) > 0 {
				return nil, fmt.Errorf("dp.%s: %s: Count takes no Column, bounds or ranks", fn, field)
			}
			if as.Name == "" {
				as.Name = "count"
			}
		case Sum, Mean, Variance, Quantiles:
			if a.Column == "" {
				return nil, fmt.Errorf("dp.%s: %s: %v needs a Column", fn, field, a.Kind)
			}
			if a.Column == o.Subject || names[a.Column] && contains(o.GroupBy, a.Column) {
				return nil, fmt.Errorf("dp.%s: %s: Column %q is the subject or a key column", fn, field, a.Column)
			}
			if err := checkBounds(fn, field+" ("+a.Column+")", a.Lower, a.Upper); err != nil {
				return nil, err
			}
			if a.Kind != Quantiles && len(a.Ranks) > 0 {
				return nil, fmt.Errorf("dp.%s: %s: Ranks are for Quantiles only", fn, field)
			}
			if a.Kind == Quantiles {
				as.Ranks = append([]float64(nil), a.Ranks...)
				if len(as.Ranks) == 0 {
					as.Ranks = DefaultRanks()
				}
				for _, r := range as.Ranks {
					if !(r >= 0 && r <= 1) {
						return nil, fmt.Errorf("dp.%s: %s: rank %v must be in [0, 1]", fn, field, r)
					}
				}
			}
			if as.Name == "" {
				if a.Kind == Quantiles {
					as.Name = a.Column
				} else {
					as.Name = a.Kind.String() + "_" + a.Column
				}
			}
			vi, ok := valueIdx[a.Column]
			if !ok {
				vi = len(s.ValueColumns)
				valueIdx[a.Column] = vi
				s.ValueColumns = append(s.ValueColumns, a.Column)
			}
			as.ValueIndex = vi
		default:
			return nil, fmt.Errorf("dp.%s: %s: unknown Kind %d", fn, field, a.Kind)
		}
		if err := checkShare(fn, field, Budget{a.Epsilon, a.Delta}); err != nil {
			return nil, err
		}
		if o.Noise == Laplace && a.Delta != 0 {
			return nil, fmt.Errorf("dp.%s: %s: Delta must be 0 with Laplace noise (got %v)", fn, field, a.Delta)
		}
		s.Aggregates = append(s.Aggregates, as)
	}
	// Output column names must be unique.
	out := map[string]bool{}
	for _, g := range o.GroupBy {
		out[g] = true
	}
	for i, a := range s.Aggregates {
		for _, c := range a.outputNames() {
			if out[c] {
				return nil, fmt.Errorf("dp.%s: Aggregates[%d]: output column %q is used twice (set Name)", fn, i, c)
			}
			out[c] = true
		}
	}
	return s, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func checkShare(fn, field string, b Budget) error {
	if math.IsNaN(b.Epsilon) || math.IsInf(b.Epsilon, 0) || b.Epsilon < 0 {
		return fmt.Errorf("dp.%s: %s: Epsilon %v must be finite and >= 0 (0 = even split)", fn, field, b.Epsilon)
	}
	if math.IsNaN(b.Delta) || b.Delta < 0 || b.Delta >= 1 {
		return fmt.Errorf("dp.%s: %s: Delta %v must be in [0, 1) (0 = even split)", fn, field, b.Delta)
	}
	return nil
}

// outputNames lists the value columns an aggregate adds to the result.
func (a *AggregateSpec) outputNames() []string {
	switch a.Kind {
	case Count, Sum, Mean:
		return []string{a.Name, a.Name + "_ci_low", a.Name + "_ci_high"}
	case Variance:
		return []string{a.Name}
	case Quantiles:
		var out []string
		for _, r := range a.Ranks {
			out = append(out, a.Name+"_"+rankName(r))
		}
		return out
	}
	return nil
}

// rankName renders 0.5 as "p50", 0.99 as "p99", 0.999 as "p99_9".
func rankName(r float64) string {
	s := strconv.FormatFloat(r*100, 'f', -1, 64)
	return "p" + strings.ReplaceAll(s, ".", "_")
}

// plan splits a remaining budget (eps, delta) over the mechanisms of a
// release: declared shares as given, the rest evenly. δ goes only to the
// mechanisms that need it (partition selection, Gaussian noise).
func (s *Spec) plan(eps, delta float64) (aggs []Budget, sel Budget, err error) {
	needDelta := func(isSel bool) bool { return isSel || s.Noise == Gaussian }
	type slot struct {
		b     *Budget
		isSel bool
	}
	aggs = make([]Budget, len(s.Aggregates))
	slots := make([]slot, 0, len(aggs)+1)
	for i, a := range s.Aggregates {
		aggs[i] = Budget{a.Epsilon, a.Delta}
		slots = append(slots, slot{&aggs[i], false})
	}
	if !s.Public {
		sel = s.Selection
		slots = append(slots, slot{&sel, true})
	}
	var declE, declD float64
	var freeE, freeD int
	for _, sl := range slots {
		declE += sl.b.Epsilon
		declD += sl.b.Delta
		if sl.b.Epsilon == 0 {
			freeE++
		}
		if sl.b.Delta == 0 && needDelta(sl.isSel) {
			freeD++
		}
	}
	if declE > eps*(1+budgetSlack) || declD > delta*(1+budgetSlack) {
		return nil, Budget{}, fmt.Errorf("declared shares need (ε=%g, δ=%g) but the accountant has (ε=%g, δ=%g) left: %w", declE, declD, eps, delta, ErrBudgetExceeded)
	}
	restE, restD := eps-declE, delta-declD
	if freeE > 0 && restE <= 0 {
		return nil, Budget{}, fmt.Errorf("no ε left for the %d mechanisms without a declared share: %w", freeE, ErrBudgetExceeded)
	}
	for _, sl := range slots {
		if sl.b.Epsilon == 0 {
			sl.b.Epsilon = restE / float64(freeE)
		}
		if sl.b.Delta == 0 && needDelta(sl.isSel) && freeD > 0 {
			sl.b.Delta = restD / float64(freeD)
		}
		if needDelta(sl.isSel) && sl.b.Delta <= 0 {
			what := "Gaussian noise"
			if sl.isSel {
				what = "private partition selection (or give Public partitions)"
			}
			return nil, Budget{}, fmt.Errorf("%s needs δ > 0 but the budget leaves δ = 0", what)
		}
	}
	return aggs, sel, nil
}

// sharedCount returns the index of the first Count aggregate (-1 if none)
// and which aggregates divide by its released value instead of drawing a
// noisy count of their own.
//
// Count, Mean and Variance all count the same rows (those left after L0
// and L∞ bounding), so the Count's released value is a noisy version of
// every mean's and variance's denominator, with the sensitivity (L0, L∞)
// the library's BoundedMean and BoundedVariance give their own counts.
// Dividing by it is post-processing of a released value: it costs no
// budget, saves one noise draw per partition and aggregate, and leaves the
// aggregate's whole share to its sums. A mean or variance uses it only when
// the count's share is at least what its own count would get (ε/2, δ/2 of
// a mean's share, ε/3, δ/3 of a variance's): then the denominator is no
// noisier than the library's and the sums are less noisy, so the estimate
// is never worse. The decision depends on the declared budgets only.
func (s *Spec) sharedCount(aggB []Budget) (int, []bool) {
	shared := make([]bool, len(s.Aggregates))
	ci := -1
	for i, a := range s.Aggregates {
		if a.Kind == Count {
			ci = i
			break
		}
	}
	if ci < 0 {
		return ci, shared
	}
	c := aggB[ci]
	for i, a := range s.Aggregates {
		parts := 0.0
		switch a.Kind {
		case Mean:
			parts = 2
		case Variance:
			parts = 3
		default:
			continue
		}
		// Relative slack: shares computed by even splits may differ in the
		// last bits.
		const tol = 1 + 1e-12
		shared[i] = c.Epsilon*tol >= aggB[i].Epsilon/parts && c.Delta*tol >= aggB[i].Delta/parts
	}
	return ci, shared
}
