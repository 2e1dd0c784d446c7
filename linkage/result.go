package linkage

import "github.com/tarnkappe/tarnkappe/internal/wilson"

// Proportion is a share measured on a sample, with its Wilson score
// interval. On a census (every unit evaluated) the interval still describes
// the sampling of a population of that size; Census says there was none.
type Proportion struct {
	// Of is the number of units evaluated (the denominator), Count the
	// number that had the property.
	Of    int     `json:"of"`
	Count int     `json:"count"`
	Share float64 `json:"share"` // Count / Of (0 when Of is 0)
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	// Confidence of the interval, e.g. 0.95.
	Confidence float64 `json:"confidence"`
}

func proportion(x, n int, conf float64) Proportion {
	p := Proportion{Of: n, Count: x, Confidence: conf}
	if n > 0 {
		p.Share = float64(x) / float64(n)
	}
	p.Lower, p.Upper = wilson.Interval(x, n, conf)
	return p
}

// TraceResult is what Traces measured.
type TraceResult struct {
	// Traces is the number of published traces in the sample (those with
	// at least one published row); Census says the sample held every
	// published trace.
	Traces int  `json:"traces"`
	Census bool `json:"census"`
	// Linkage is the share of sampled traces whose published points are
	// contained in the raw readings of exactly one subject: the adversary
	// holding the raw readings names the trace's subject.
	Linkage Proportion `json:"linkage"`
	// Correct is the share of sampled traces linked to their true subject;
	// nil when the truth is unknown (TruthKnown false).
	Correct    *Proportion `json:"correct,omitempty"`
	TruthKnown bool        `json:"truth_known"`
	// Unicity is the share of sampled traces that P points drawn at random
	// from their own published points single out among all published
	// traces (de Montjoye et al., "Unique in the Crowd", 2013), at published
	// precision over every point column. Short counts traces with fewer
	// than P distinct points (their whole trace is used).
	Unicity Proportion `json:"unicity"`
	P       int        `json:"points"`
	Short   int        `json:"short"`
	// Diagnosed is the number of sampled traces the per-column figures are
	// measured on (the first ones of the sample), DiagnosedLinkage their
	// linkage over every column.
	Diagnosed        int     `json:"diagnosed,omitempty"`
	DiagnosedLinkage float64 `json:"diagnosed_linkage,omitempty"`
	// Without is the linkage of the diagnosed traces with each non-block
	// column left out of the points in turn (the others kept).
	Without []ColumnLinkage `json:"without,omitempty"`
	// Drivers are the columns left out one after the other, each the one
	// whose removal lowered the linkage most, with the linkage after its
	// removal: the first few name what drives the linkage.
	Drivers []ColumnLinkage `json:"drivers,omitempty"`
	// Evicted is the number of traces dropped from the sample to stay
	// within MaxPairs (the sample is then smaller, still uniform).
	Evicted int `json:"evicted,omitempty"`
}

// ColumnLinkage is a linkage figure with one or more columns left out.
type ColumnLinkage struct {
	Column  string  `json:"column"`
	Linkage float64 `json:"linkage"`
}

// SubjectResult is the unicity of raw subjects' traces (Subjects).
type SubjectResult struct {
	// Census says the sample held every subject.
	Census bool `json:"census"`
	// Unicity is the share of sampled subjects that P points drawn at
	// random from their own trace single out among all subjects.
	Unicity Proportion `json:"unicity"`
	P       int        `json:"points"`
	// Short counts sampled subjects with fewer than P eligible distinct
	// points (their whole eligible trace is used).
	Short int `json:"short"`
	// PointShare is the share of distinct points eligible for the draw: 1,
	// or 1/2ʲ when the input had more distinct points than MaxPairs (a
	// keyed uniform sample of points, each subject's points drawn from its
	// eligible ones).
	PointShare float64 `json:"point_share"`
	Rows       int64   `json:"rows"`
}
