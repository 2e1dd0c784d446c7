package anonymize

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// Steps is a Runner's policy, planned for one input schema, as separate
// steps for engines that schedule the passes themselves: the Beam pipeline
// (nested module beam/) runs them on workers, with its own shuffles between
// them. Every step is the code Runner.Run uses, so the two paths cannot
// drift apart: the column actions and their schemas, the opt-out filter,
// trip segmentation and coarsening, the DP release's input and options, the
// k-anonymity search, and the report ([Steps.Report], report_build.go).
//
// A Steps is not safe for concurrent use (the opt-out and dictionary caches);
// engines make one per worker. Close it when done.
type Steps struct {
	r  *Runner
	pl *plan
}

func (s *Steps) release() (*releasePlan, error) {
	rp, err := s.r.releasePlan(s.pl)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	return rp, nil
}

// Steps checks in against the policy (deny by default, column types) and
// plans the run, as Run does for its source.
func (r *Runner) Steps(in *arrow.Schema) (*Steps, error) {
	pl, err := r.makePlan(in, mobility.OrderTime)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	return &Steps{r: r, pl: pl}, nil
}

// Close drops what the plan holds (the dictionary caches, the segmenter).
func (s *Steps) Close() {
	s.pl.close()
	if s.r.optout != nil {
		s.r.optout.forget()
	}
}

// Policy is the policy the Runner applies.
func (r *Runner) Policy() *Policy { return r.p }

// KeyIDs maps every key domain the run uses to its key id (the report's
// keys block).
func (r *Runner) KeyIDs() map[string]string { return r.keys }

// Hierarchy is the hierarchy of a quasi-identifier or of a column
// generalised to a fixed level, or nil.
func (r *Runner) Hierarchy(column string) kanon.Hierarchy { return r.hier[column] }

// Input is the input schema; Mid the schema after mobility (trip id and
// cell columns added, coordinates removed), which Transform takes; Trans the
// schema after the column actions (dropped columns still present); Output
// the written schema (dropped columns removed, quasi-identifiers generalised
// to strings).
func (s *Steps) Input() *arrow.Schema  { return s.pl.in }
func (s *Steps) Mid() *arrow.Schema    { return s.pl.mid }
func (s *Steps) Trans() *arrow.Schema  { return s.pl.trans }
func (s *Steps) Output() *arrow.Schema { return s.pl.out }

// Gen is Trans with the quasi-identifiers generalised (as strings).
func (s *Steps) Gen() *arrow.Schema { return s.pl.gen }

// RelinkColumns names the published columns the data part of the
// re-linking lint watches in pass 1 under mobility scope trip (a column
// whose values map one to one to subjects fails the run): an engine that
// does not run that measure must refuse a policy for which it is not
// empty.
func (s *Steps) RelinkColumns() []string {
	var names []string
	for _, k := range relinkColumns(s.pl, s.r.p) {
		names = append(names, s.pl.trans.Field(k).Name)
	}
	return names
}

// OptOut removes the rows of listed subjects from an input batch; base is
// the number of data rows before it, for errors. It returns the rows kept
// (the caller releases them) and the positions of the rows it removed,
// ascending (a RowSpan's Removed: errors about the kept rows name data rows
// with it). Without an opt-out block it returns rec, retained.
func (s *Steps) OptOut(ctx context.Context, rec arrow.RecordBatch, base int64) (arrow.RecordBatch, []int32, error) {
	if s.r.optout == nil {
		rec.Retain()
		return rec, nil, nil
	}
	return s.r.optOut(ctx, s.pl, rec, base)
}

// DrainMaskedWhole maps every mask column to the rows Transform masked
// whole since the last call (values too short to keep their prefix and
// suffix: the report's masked_whole); nil without mask columns.
func (s *Steps) DrainMaskedWhole() map[string]int64 { return maskedWhole(s.pl.ops, s.pl.mid) }

// OptOutListed is the number of distinct subjects on the opt-out list
// after normalisation (0 without one).
func (r *Runner) OptOutListed() int {
	if r.optout == nil {
		return 0
	}
	return r.optout.listed()
}

// DrainOptOutSeen returns the keyed form (HMAC under the opt-out key, never
// the subject) of every listed subject OptOut met since the last call, so
// that an engine can count distinct opted-out subjects across workers.
func (r *Runner) DrainOptOutSeen() []string {
	if r.optout == nil {
		return nil
	}
	out := make([]string, 0, len(r.optout.seen))
	for k := range r.optout.seen {
		out = append(out, k)
		delete(r.optout.seen, k)
	}
	sort.Strings(out)
	return out
}

// DrainOptOutNotNormalized returns the number of rows OptOut met since the
// last call whose subject value is not in normal form (the report's
// opt_out.rows_not_normalized).
func (r *Runner) DrainOptOutNotNormalized() int64 {
	if r.optout == nil {
		return 0
	}
	n := r.optout.notNormRows
	r.optout.notNormRows = 0
	return n
}

// NewSegmenter returns the policy's trip segmenter for Input batches (nil
// without a mobility block), for rows arriving in the given order. The
// caller releases it.
func (s *Steps) NewSegmenter(order mobility.InputOrder) (*mobility.Segmenter, error) {
	if s.r.p.Mobility == nil {
		return nil, nil
	}
	o := s.r.tripOptions()
	o.Order = order
	return mobility.NewSegmenter(s.pl.in, o)
}

// Coarsen replaces the coordinates of a segmented batch by the policy's H3
// cells (Mid schema). The caller releases the result.
func (s *Steps) Coarsen(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	if s.pl.seg == nil {
		return nil, fmt.Errorf("anonymize: the policy has no mobility block")
	}
	c, err := mobility.NewCoarsener(s.pl.seg.Schema(), s.pl.coarsen)
	if err != nil {
		return nil, err
	}
	return c.Apply(ctx, rec)
}

// Transform applies the column actions to a Mid batch (the input batch
// when the policy has no mobility block); base is the row number of its
// first row, for errors. Quasi-identifiers are left for Generalize. The
// caller releases the result.
func (s *Steps) Transform(ctx context.Context, rec arrow.RecordBatch, base int64) (arrow.RecordBatch, error) {
	return s.r.transform(ctx, s.pl, rec, base)
}

// Project keeps the written columns of a batch in the Gen schema.
func (s *Steps) Project(rec arrow.RecordBatch) arrow.RecordBatch {
	return project(s.pl.out, rec, s.pl.keep)
}

// Generalize maps one quasi-identifier column (values as ValueText gives
// them) to its hierarchy level, as dictionary<int32, utf8>. The caller
// releases the result.
func (s *Steps) Generalize(column string, col arrow.Array, level int, base int64) (arrow.Array, error) {
	h := s.r.hier[column]
	if h == nil {
		return nil, fmt.Errorf("anonymize: column %q has no hierarchy", column)
	}
	return mapValues(s.r.mem, column, col, base, generalizeFn(h, level))
}

// ValueText is the text of a value as hierarchies, masks, the opt-out list
// and k-anonymity classes see it.
func ValueText(a arrow.Array, i int) (string, error) { return valueText(a, i) }

// DPOptions are the release block's options for package dp, over batches
// ReleaseInput made, with the public partitions the policy declares.
func (s *Steps) DPOptions() (dp.Options, error) {
	rp, err := s.release()
	if err != nil {
		return dp.Options{}, err
	}
	return rp.opts, nil
}

// ReleaseInput adds the columns only the release sees (hour_of_day, cells at
// the release's resolution) to a Trans batch. The caller releases the result.
func (s *Steps) ReleaseInput(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	rp, err := s.release()
	if err != nil {
		return nil, err
	}
	if rp.in == nil {
		rec.Retain()
		return rec, nil
	}
	return rp.in.apply(s.r.mem, rec)
}

// KAnonCombo is one counted quasi-identifier combination for KAnonSearch:
// with a per-subject policy one (combination, subject) pair (N is ignored),
// otherwise a combination and its row count N.
//
// With an l-diversity or t-closeness block (kanon.l, kanon.t) every
// combination also carries its sensitive value (see KAnonSensitive): per
// subject, File and Row are the input position of the pair's first row
// (its input file's ordinal and the row number errors name, as Run numbers
// rows), so that a subject with two values fails at the row Run would name;
// Origin prefixes that error (e.g. the file's name).
type KAnonCombo struct {
	Values    []string
	Subject   string
	N         int64
	Sensitive string
	File      int
	Row       int64
	Origin    string
}

// KAnonDecision is the outcome of the k-anonymity search: what to
// generalise, which generalised classes to suppress, and what the report
// needs. It holds generalised class keys and counts, never subjects.
type KAnonDecision struct {
	QuasiIdentifiers []string           `json:"quasi_identifiers"`
	Levels           []int              `json:"levels"`
	Transformation   map[string]int     `json:"transformation"`
	InformationLoss  map[string]float64 `json:"information_loss"`
	ColumnLoss       map[string]float64 `json:"column_loss,omitempty"`
	// Classes are the members of every generalised class (values joined by
	// \x00) among the searched rows; Suppressed those suppressed.
	Classes    map[string]int64 `json:"classes"`
	Suppressed []string         `json:"suppressed"`
	// Before are the class sizes at level 0, for the risk before.
	Before     []int64 `json:"before"`
	PerSubject bool    `json:"per_subject"`
	// HistRows is the number of members searched: the suppression limit's base.
	HistRows int64 `json:"hist_rows"`
	// With l/t: the sensitive distribution the decision used (value →
	// members; t-closeness's reference, for verifying the written rows) and
	// the classes suppressed for l/t alone.
	Reference           map[string]int64 `json:"reference,omitempty"`
	DiversitySuppressed int              `json:"diversity_suppressed,omitempty"`
}

// KAnonSearch runs the policy's k-anonymity search (kanon's optimal
// lattice search) over gathered combinations, exactly as Run does over the
// combinations it counted itself, and returns the decision. It does not
// modify combos (it sorts a copy: the search must not depend on their
// arrival order).
func (s *Steps) KAnonSearch(combos []KAnonCombo) (*KAnonDecision, error) {
	if s.r.p.KAnon == nil {
		return nil, fmt.Errorf("anonymize: the policy has no kanon block")
	}
	a, err := newKanonAcc(s.r.p.KAnon, s.pl, s.r.p.Subject, s.r.hier, s.r.mem)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	// l/t: the sensitive values, and a subject's two values an error at
	// the row Run names (steps_div.go).
	if err := a.div.addCombos(a, combos); err != nil {
		return nil, err
	}
	// Intern in a fixed order, so that the search sees the same histogram
	// whatever order the combinations arrived in.
	combos = slices.Clone(combos)
	sort.Slice(combos, func(i, j int) bool {
		x, y := combos[i], combos[j]
		for k := range x.Values {
			if x.Values[k] != y.Values[k] {
				return x.Values[k] < y.Values[k]
			}
		}
		if x.Subject != y.Subject {
			return x.Subject < y.Subject
		}
		return x.Sensitive < y.Sensitive
	})
	comp := make([]uint32, len(a.qi))
	var key []byte
	for _, c := range combos {
		if len(c.Values) != len(a.qi) {
			return nil, fmt.Errorf("anonymize: kanon: a combination has %d values, want %d", len(c.Values), len(a.qi))
		}
		for j, v := range c.Values {
			comp[j] = a.in[j].id(v)
		}
		key = packKey(key[:0], comp...)
		if !a.perSubject {
			a.combos[string(key)] += c.N
			continue
		}
		nk := len(key)
		key = packKey(key, a.subj.id(c.Subject))
		if _, ok := a.pairs[string(key)]; !ok {
			a.pairs[string(key)] = struct{}{}
			a.combos[string(key[:nk])]++
		}
	}
	kr, err := a.search()
	if err != nil {
		return nil, err
	}
	return kr.decision(), nil
}

// tripOptions is the policy's mobility block as a Segmenter's options
// (input in time order, as Run reads it).
func (r *Runner) tripOptions() mobility.TripOptions {
	p, m := r.p, r.p.Mobility
	return mobility.TripOptions{
		Subject: p.Subject, Time: m.Time, Lat: m.Lat, Lon: m.Lon, Gap: m.TripGap.D(),
		TrimMetres: m.TrimMetres, TrimDuration: m.TrimTime.D(), Lateness: m.TripGap.D(), Mem: r.mem,
		TripIDColumn: m.TripIDColumn, TripIDs: mobility.TripIDRandom,
		Endpoints: endpointMode(m.Endpoints),
	}
}

// NewOrderCounts returns counts of Output batches per published time
// bucket, for NewOutputOrder: an engine counts the rows it will write
// (on several workers: merge with OrderCounts.Buckets and AddBucket).
func (s *Steps) NewOrderCounts() (*OrderCounts, error) {
	c, err := newOrderCounts(s.pl.out, orderTime(s.r.p, s.pl.out))
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	return c, nil
}

// NewOutputOrder returns the output-order step for Output batches (see
// [OutputOrder]), its partitions sized by counts, its scratch files in
// tempDir ("" = os.TempDir()). Feed it every written batch with Add, then
// WriteTo the sink; Close it.
func (s *Steps) NewOutputOrder(counts *OrderCounts, tempDir string) (*OutputOrder, error) {
	o, err := newOutputOrder(s.r.mem, s.pl.out, orderTime(s.r.p, s.pl.out), counts, tempDir, s.r.orderRows)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	return o, nil
}
