package anonymize

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/mobility"
)

// unicity measures how many subjects a few points of their trace single
// out: before the policy on the input rows (raw positions), after it on the
// written rows (cells and buckets, per the output's linkable unit). Both
// indexes stop at a row cap (their memory grows with the rows), and the
// report says when they did.
type unicity struct {
	noHooks
	before, after cappedIndex
	points        int
}

// cappedIndex is a unicity index fed until its row cap.
type cappedIndex struct {
	idx    *mobility.UnicityIndex
	cap    int64
	rows   int64
	capped bool
}

func (c *cappedIndex) add(ctx context.Context, rec arrow.RecordBatch) error {
	if c.capped {
		return nil
	}
	if c.rows+rec.NumRows() > c.cap {
		c.capped = true
		return nil
	}
	c.rows += rec.NumRows()
	if err := c.idx.Add(ctx, rec); err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	return nil
}

func newUnicity(pl *plan, subject string, m *MobilityPolicy, maxRows int64) (*unicity, error) {
	// The unicity after the policy is measured on the output's linkable
	// unit: the subject's pseudonym, or the trip id under scope trip.
	unit := subject
	if m.Scope == "trip" {
		unit = m.TripIDColumn
	}
	after, err := mobility.NewUnicityIndex(pl.gen, mobility.UnicityColumns{Subject: unit, Space: []string{m.CellColumn}, Time: m.Time, SkipNullSubjects: m.Scope == "trip"})
	if err != nil {
		return nil, fmt.Errorf("unicity: %w", err)
	}
	before, err := mobility.NewUnicityIndex(pl.in, mobility.UnicityColumns{Subject: subject, Space: []string{m.Lat, m.Lon}, Time: m.Time})
	if err != nil {
		return nil, fmt.Errorf("unicity: %w", err)
	}
	return &unicity{before: cappedIndex{idx: before, cap: maxRows}, after: cappedIndex{idx: after, cap: maxRows}, points: m.UnicityP()}, nil
}

// UnicityP is the number of points per trace the unicity measure draws:
// UnicityPoints, or 4. Both engines use it.
func (m *MobilityPolicy) UnicityP() int {
	if m.UnicityPoints == 0 {
		return 4
	}
	return m.UnicityPoints
}

func (u *unicity) input(ctx context.Context, rec arrow.RecordBatch) error {
	return u.before.add(ctx, rec)
}

func (u *unicity) written(ctx context.Context, rec arrow.RecordBatch) error {
	return u.after.add(ctx, rec)
}

func (u *unicity) figures(_ context.Context, f *Figures) error {
	opts := mobility.UnicityOptions{P: u.points, Samples: 1000, Seed: 1}
	after, err := u.after.idx.Estimate(opts)
	if err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	before, err := u.before.idx.Estimate(opts)
	if err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	f.Unicity = &UnicityFigures{Before: before, After: after}
	if u.before.capped || u.after.capped {
		f.Unicity.CappedAt = u.after.cap
	}
	return nil
}
