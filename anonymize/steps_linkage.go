package anonymize

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/linkage"
)

// Linkage is the Runner's linkage and unicity measure (measure_linkage.go)
// for engines that spread the passes over workers: every worker makes one
// from the same Steps options (Options.Measure.Key must be set, so that
// all draw the same samples), feeds it the rows of its part, and the
// partial states merge exactly (package linkage). The steps, in the
// Runner's order:
//
//   - Input: opted-in input batches (raw GPS unicity); GPSState merges.
//   - Offer: Trans batches of pass 1 (the candidate traces); Candidates
//     merges with MergeCandidates.
//   - Seal: once the trace gate and the k-anonymity search have decided,
//     with the merged candidates: keeps the published traces and
//     generalises the raw side's quasi-identifiers.
//   - Spilled: Trans batches again, every row before suppression, with the
//     merged microaggregation (the raw readings at published precision);
//     RawState and BeforeState merge.
//   - Written: the written rows in the Gen layout (after every
//     suppression and the trace gate, before the dropped columns are
//     projected away: the trace unit may be one of them);
//     PublishedState merges.
//   - Figures: the report's risk figures, on the Linkage that merged every
//     state.
type Linkage struct {
	lm *linkageMeasure
	s  *Steps
}

// NewLinkage returns the measure for a mobility policy (nil without a
// mobility block).
func (s *Steps) NewLinkage() (*Linkage, error) {
	p := s.r.p
	if p.Mobility == nil {
		return nil, nil
	}
	if s.r.opts.Measure.Key == nil {
		return nil, errors.New("anonymize: Steps.NewLinkage: Options.Measure.Key must be set: every worker must draw the same samples")
	}
	key, err := linkage.NewKey(s.r.opts.Measure.Key)
	if err != nil {
		return nil, err
	}
	lm, err := newLinkageMeasure(s.pl, p, key, nil, s.r.opts.Measure.samples())
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	return &Linkage{lm: lm, s: s}, nil
}

// Input adds an opted-in input batch (raw GPS precision). Unlike the
// Runner's, the Linkage's steps run on the caller's goroutine: an engine
// schedules its workers itself.
func (l *Linkage) Input(_ context.Context, rec arrow.RecordBatch) error {
	return l.lm.indexGPS(rec)
}

// Offer adds a Trans batch of pass 1: the traces it holds become
// candidates for the sample.
func (l *Linkage) Offer(ctx context.Context, rec arrow.RecordBatch) error {
	return l.lm.pass1(ctx, rec, 0)
}

// Candidates is the state of Offer, for MergeCandidates.
func (l *Linkage) Candidates() ([]byte, error) { return l.lm.traces.Candidates() }

// MergeCandidates adds another Linkage's Candidates.
func (l *Linkage) MergeCandidates(b []byte) error { return l.lm.traces.MergeCandidates(b) }

// Seal ends pass 1 as the Runner's decide step does: with a trace gate
// (gated) only the traces of the published trip ids stay in the sample;
// with a k-anonymity decision d the raw side's quasi-identifiers are
// generalised to its levels.
func (l *Linkage) Seal(gated bool, published []int64, d *KAnonDecision) error {
	lm := l.lm
	var pub func(uint64) bool
	if gated {
		keys := make(map[uint64]bool, len(published))
		for _, id := range published {
			keys[lm.keyer.Int64(id)] = true
		}
		pub = func(u uint64) bool { return keys[u] }
	}
	if d != nil {
		for j, q := range d.QuasiIdentifiers {
			h := l.s.r.hier[q]
			if h == nil {
				return fmt.Errorf("anonymize: linkage: quasi-identifier %q has no hierarchy", q)
			}
			lm.raw.generalise(q, h, d.Levels[j])
		}
	}
	return lm.traces.Seal(pub)
}

// Spilled adds a Trans batch of pass 2 (every row, before suppression),
// its microaggregated columns replaced by m's means (m nil: the policy
// microaggregates nothing).
func (l *Linkage) Spilled(_ context.Context, rec arrow.RecordBatch, m *MicroAgg) error {
	var a *microAgg
	if m != nil {
		a = m.a
	}
	return l.lm.indexRaw(l.s.r.mem, rec, a)
}

// RawState is the state of Spilled's index of the raw readings, for
// MergeRaw on a Linkage sealed alike.
func (l *Linkage) RawState() ([]byte, error) { return l.lm.traces.RawState() }

// MergeRaw adds another Linkage's RawState.
func (l *Linkage) MergeRaw(b []byte) error { return l.lm.traces.MergeRaw(b) }

// BeforeState is the state of the unicity before (raw subjects at
// published precision, from Spilled), for MergeBefore.
func (l *Linkage) BeforeState() ([]byte, error) { return l.lm.before.State() }

// MergeBefore adds another Linkage's BeforeState.
func (l *Linkage) MergeBefore(b []byte) error { return l.lm.before.Merge(b) }

// GPSState is the state of the raw GPS unicity (from Input), for
// MergeGPS.
func (l *Linkage) GPSState() ([]byte, error) { return l.lm.gps.State() }

// MergeGPS adds another Linkage's GPSState.
func (l *Linkage) MergeGPS(b []byte) error { return l.lm.gps.Merge(b) }

// Written adds written rows: a batch in the Gen layout (Steps.Gen) after
// cell and class suppression and the trace gate, as Run's pass 2 hands
// them to its measures before it projects the written columns.
func (l *Linkage) Written(ctx context.Context, rec arrow.RecordBatch) error {
	return l.lm.written(ctx, rec)
}

// PublishedState is the state of Written's index, for MergePublished on a
// Linkage sealed alike.
func (l *Linkage) PublishedState() ([]byte, error) { return l.lm.traces.PublishedState() }

// MergePublished adds another Linkage's PublishedState.
func (l *Linkage) MergePublished(b []byte) error { return l.lm.traces.MergePublished(b) }

// Figures returns the risk figures of the report (Figures.Risk).
func (l *Linkage) Figures(ctx context.Context) (*RiskFigures, error) {
	var f Figures
	if err := l.lm.figures(ctx, &f); err != nil {
		return nil, err
	}
	return f.Risk, nil
}

// CheckLinkage applies mobility.max_linkage to the measured figures, with
// the report builder's own check and message (the builder applies it again
// in Report): an engine calls it before it writes any output.
func (s *Steps) CheckLinkage(rf *RiskFigures) error {
	m := s.r.p.Mobility
	if m == nil || rf == nil {
		return nil
	}
	if err := riskReport(&Report{}, m, &Figures{Risk: rf}); err != nil {
		return fmt.Errorf("anonymize: %w", err)
	}
	return nil
}
