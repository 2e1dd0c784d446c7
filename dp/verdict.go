package dp

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// VerdictLevel grades how much a release says.
type VerdictLevel string

// Verdict levels, by the share of narrow intervals of the least
// informative aggregate (see AggregateVerdict.Criterion).
const (
	// Informative: at least 80 % of intervals are narrow.
	Informative VerdictLevel = "informative"
	// Mixed: between half and 80 %: some partitions say something, the
	// rest must be read with their intervals.
	Mixed VerdictLevel = "mixed"
	// Uninformative: fewer than half of the intervals are narrow.
	Uninformative VerdictLevel = "uninformative"
	// NoIntervals: the release has no aggregate with an interval (only
	// variances and quantiles) or no partition.
	NoIntervals VerdictLevel = "no_intervals"
)

// Thresholds of the verdict levels on the share of narrow intervals.
const (
	informativeShare = 0.8
	mixedShare       = 0.5
)

// Verdict is a plain-language judgement of a release's accuracy, computed
// from its published record alone (values and intervals): it is
// post-processing of the release and costs no budget, so it may be
// published beside it.
type Verdict struct {
	Level VerdictLevel `json:"level"`
	// Text says it in a sentence for a report.
	Text string `json:"text"`
	// Aggregates are the counts behind it, per aggregate with an interval.
	Aggregates []AggregateVerdict `json:"aggregates"`
}

// AggregateVerdict counts one aggregate's narrow intervals.
type AggregateVerdict struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Criterion says when an interval counts as narrow: for a mean,
	// narrower than half its clamp range (a wider one spans most values
	// the mean could take); for a count or sum, an error (the interval's
	// half-width) of at most half the published value.
	Criterion string `json:"criterion"`
	// Intervals is the number of released partitions; Narrow of them pass
	// the criterion; Share = Narrow / Intervals.
	Intervals int     `json:"intervals"`
	Narrow    int     `json:"narrow"`
	Share     float64 `json:"share_narrow"`
	// AtBound (means only) counts published means equal to a clamp bound:
	// noise that the clamp cut off, not a measured extreme.
	AtBound int `json:"at_bound,omitempty"`
}

// narrow is the verdict's test for an interval [low, high] around a
// published value v of aggregate a.
func (a *AggregateSpec) narrow(v, low, high float64) bool {
	switch a.Kind {
	case Count, Sum:
		return high-low <= math.Abs(v)
	case Mean:
		return high-low < (a.Upper-a.Lower)/2
	}
	return false
}

func (a *AggregateSpec) criterion() string {
	if a.Kind == Mean {
		return fmt.Sprintf("interval narrower than half the clamp range [%g, %g]", a.Lower, a.Upper)
	}
	return "interval half-width at most half the value"
}

// Verdict judges the release from its record: per aggregate with an
// interval, the share of narrow intervals, and a level and sentence from
// the least informative of them. It reads only Record (which must not have
// been released) and the public Aggregates.
func (r *Result) Verdict() (*Verdict, error) {
	if r.Record == nil {
		return nil, errors.New("dp.Result.Verdict: the record was released")
	}
	v := &Verdict{}
	idx := len(r.Record.Schema().Fields()) - r.valueColumns()
	if idx < 0 {
		return nil, errors.New("dp.Result.Verdict: the record does not match the aggregates")
	}
	minShare := math.Inf(1)
	worst := -1
	for i := range r.Aggregates {
		a := &r.Aggregates[i]
		names := a.outputNames()
		first := idx
		idx += len(names)
		if a.Kind != Count && a.Kind != Sum && a.Kind != Mean {
			continue
		}
		for j, n := range names {
			if r.Record.ColumnName(first+j) != n {
				return nil, fmt.Errorf("dp.Result.Verdict: column %d is %q, want %q", first+j, r.Record.ColumnName(first+j), n)
			}
		}
		av := AggregateVerdict{Name: a.Name, Kind: a.Kind.String(), Criterion: a.criterion(), Intervals: int(r.Record.NumRows())}
		if av.Intervals == 0 {
			// Nothing released (a file read back may not even type the
			// empty columns).
			v.Aggregates = append(v.Aggregates, av)
			continue
		}
		value, ok0 := numeric(r.Record.Column(first))
		low, ok1 := numeric(r.Record.Column(first + 1))
		high, ok2 := numeric(r.Record.Column(first + 2))
		if !ok0 || !ok1 || !ok2 {
			return nil, fmt.Errorf("dp.Result.Verdict: aggregate %q: value or interval column is not int64 or float64", a.Name)
		}
		for k := range av.Intervals {
			x := value(k)
			if a.narrow(x, low(k), high(k)) {
				av.Narrow++
			}
			if a.Kind == Mean && (x == a.Lower || x == a.Upper) {
				av.AtBound++
			}
		}
		av.Share = float64(av.Narrow) / float64(av.Intervals)
		v.Aggregates = append(v.Aggregates, av)
		if av.Share < minShare {
			minShare, worst = av.Share, len(v.Aggregates)-1
		}
	}
	if worst < 0 {
		v.Level, v.Text = verdictText(nil, 0)
	} else {
		v.Level, v.Text = verdictText(&v.Aggregates[worst], minShare)
	}
	return v, nil
}

// numeric reads an int64 or float64 column (a release read back from a
// file may have either for a count).
func numeric(a arrow.Array) (func(int) float64, bool) {
	switch c := a.(type) {
	case *array.Float64:
		return c.Value, true
	case *array.Int64:
		return func(k int) float64 { return float64(c.Value(k)) }, true
	}
	return nil, false
}

// valueColumns is the number of output columns of the aggregates.
func (r *Result) valueColumns() int {
	n := 0
	for i := range r.Aggregates {
		n += len(r.Aggregates[i].outputNames())
	}
	return n
}

// verdictText grades the least informative aggregate.
func verdictText(worst *AggregateVerdict, share float64) (VerdictLevel, string) {
	if worst == nil {
		return NoIntervals, "no intervals to judge: the release has no partition, or only variances and quantiles (the library has no interval for them)"
	}
	detail := fmt.Sprintf("%s: %d of %d intervals narrow (%s)", worst.Name, worst.Narrow, worst.Intervals, worst.Criterion)
	if worst.AtBound > 0 {
		detail += fmt.Sprintf(", %d means on a clamp bound", worst.AtBound)
	}
	switch {
	case share >= informativeShare:
		return Informative, "most intervals are narrow: the release is informative at this size (" + detail + ")"
	case share >= mixedShare:
		return Mixed, "many intervals are wide: read each partition with its interval; coarser partitions or more subjects would help (" + detail + ")"
	}
	return Uninformative, "most intervals span the value range: this release carries little information at this fleet size — coarser partitions or more subjects needed (" + strings.TrimSpace(detail) + ")"
}
