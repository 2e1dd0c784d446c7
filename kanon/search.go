package kanon

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Options configures Search.
type Options struct {
	// K is the k of k-anonymity: every released class has at least K rows.
	// Required, >= 2, unless LDiversity or TCloseness is set: then 0 means
	// no k-anonymity beyond what those models imply (as in ARX, where an
	// l-diversity or t-closeness model stands alone).
	K int
	// SuppressionLimit is the fraction of rows that may be suppressed, in
	// [0,1). At most floor(SuppressionLimit·rows) rows are suppressed, as in
	// ARX. Zero means no suppression.
	SuppressionLimit float64
	// Metric is the information-loss metric to minimise. Required.
	Metric Metric
	// LDiversity, when set, also requires l-diversity of its sensitive
	// column; the histogram must have been built with that column as
	// HistogramOptions.Sensitive.
	LDiversity *LDiversity
	// TCloseness, when set, also requires t-closeness; same column rule.
	TCloseness *TCloseness
}

// validate checks the options against h; fn names the caller in errors.
func (o *Options) validate(fn string, h *Histogram) error {
	if o.K < 2 && (o.K != 0 || o.LDiversity == nil && o.TCloseness == nil) {
		if o.K == 0 {
			return fmt.Errorf("%s: K must be set (>= 2) when neither LDiversity nor TCloseness is", fn)
		}
		return fmt.Errorf("%s: K must be >= 2 (got %d)", fn, o.K)
	}
	if !(o.SuppressionLimit >= 0 && o.SuppressionLimit < 1) {
		return fmt.Errorf("%s: SuppressionLimit must be in [0,1) (got %v)", fn, o.SuppressionLimit)
	}
	if _, err := ParseMetric(string(o.Metric)); err != nil {
		return fmt.Errorf("%s: Metric: %w", fn, err)
	}
	sens := ""
	if o.LDiversity != nil {
		if err := o.LDiversity.validate(fn); err != nil {
			return err
		}
		sens = o.LDiversity.Sensitive
	}
	if o.TCloseness != nil {
		if err := o.TCloseness.validate(fn); err != nil {
			return err
		}
		if sens != "" && sens != o.TCloseness.Sensitive {
			return fmt.Errorf("%s: LDiversity and TCloseness name different sensitive columns (%q, %q); one is supported", fn, sens, o.TCloseness.Sensitive)
		}
		sens = o.TCloseness.Sensitive
	}
	if sens != "" && h.sensNm != sens {
		return fmt.Errorf("%s: sensitive column %q: the histogram was built with Sensitive %q", fn, sens, h.sensNm)
	}
	return nil
}

// Result is the outcome of a search: the optimal full-domain generalisation.
// Its JSON form is the "kanon" block of the run report.
type Result struct {
	K                int      `json:"k"`
	QuasiIdentifiers []string `json:"quasi_identifiers"`
	// Transformation maps each quasi-identifier to its generalisation level.
	Transformation map[string]int `json:"transformation"`
	// Levels is Transformation in quasi-identifier order.
	Levels []int `json:"levels"`
	// Metric is the metric that was minimised; InformationLoss has its value
	// under that name, and the values of the other metrics for the same
	// transformation and suppression.
	Metric          Metric             `json:"metric"`
	InformationLoss map[string]float64 `json:"information_loss"`
	// PerColumnLoss has the per-column values of multi-dimensional metrics
	// for Metric (entropy, loss, precision).
	PerColumnLoss    map[string]float64 `json:"per_column_loss,omitempty"`
	SuppressionLimit float64            `json:"suppression_limit"`
	Rows             int64              `json:"rows"`
	SuppressedRows   int64              `json:"suppressed_rows"`
	Classes          int                `json:"classes"`
	LDiversity       *LDiversity        `json:"l_diversity,omitempty"`
	TCloseness       *TCloseness        `json:"t_closeness,omitempty"`
	// LatticeSize is the number of transformations; NodesChecked how many
	// the search had to roll up.
	LatticeSize  int `json:"lattice_size"`
	NodesChecked int `json:"nodes_checked"`
}

// ErrNoSolution is returned when no transformation satisfies the models
// within the suppression limit (for example k larger than the input).
var ErrNoSolution = errors.New("no transformation satisfies the privacy models within the suppression limit")

// Search finds the transformation of minimal information loss that satisfies
// k-anonymity (and the l/t models of opts) with at most
// floor(SuppressionLimit·rows) suppressed rows.
//
// The search is exact. Nodes are visited in order of a lower bound of their
// loss, which needs no data (for MetricEntropy the bound is the loss itself);
// the search stops when no unvisited node can beat the best found. Anonymity
// is decided by rolling the histogram (or the smallest already rolled-up
// table below the node) up to the node, and tagged through the lattice
// (non-anonymous downwards, anonymous upwards) wherever the models are
// monotone: k-anonymity always is (a class at or above k stays so when
// merged, and merging classes below k can only lift rows above k), and
// l-diversity and t-closeness are without suppression. Where they are not,
// their k-part is (the rows in classes too small for any model never
// increase along generalisation): it is probed and tagged the same way, as
// ARX's binary phase does, and the nodes where it holds are checked, on all
// cores; a metric that is monotone whatever is suppressed
// (MetricDiscernibility) still rules out the nodes above any checked node
// that cannot beat the best found.
//
// Ties in loss go to the transformation on the lower lattice level (as
// ARX's FLASH implementation does); remaining ties to ARX's FLASH ordering
// (lower average relative level first, then more distinct values kept),
// then to the lexically smallest transformation. ARX itself resolves those
// last ties in traversal order, so on exact ties of loss and level the
// transformations may differ while the loss is the same.
func Search(ctx context.Context, h *Histogram, opts Options) (*Result, error) {
	const fn = "kanon.Search"
	if h == nil {
		return nil, errors.New(fn + ": nil histogram")
	}
	if err := opts.validate(fn, h); err != nil {
		return nil, err
	}
	if h.rows == 0 {
		return nil, errors.New(fn + ": empty input (no rows)")
	}
	bufs := searchPool.Get().(*searchBufs)
	s, err := newSearcher(ctx, h, opts, bufs)
	defer func() { bufs.release(s) }()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return s.run()
}

// effectiveK is the class size below which every class fails the models:
// k, or for l-diversity the l distinct values a class needs (so at least l
// rows). Rows in such classes never increase along generalisation, which
// makes them usable for pruning even when l itself is not monotone.
func effectiveK(o Options) int64 {
	k := int64(o.K)
	if l := o.LDiversity; l != nil {
		need := int64(l.L) // distinct and recursive: floor(l) values, as ARX
		if l.Variant == LEntropy {
			need = int64(math.Ceil(l.L)) // entropy log(m) >= log(l) needs m >= l
		}
		k = max(k, need)
	}
	return k
}
