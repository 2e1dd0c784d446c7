package mobility

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/internal/h3"
)

// CellMeanOptions configures a CellMeans accumulator: the mean of a value per
// (H3 cell, time bucket), the utility figure movement data is kept for (e.g.
// hourly mean disc temperature per cell, for traffic control).
type CellMeanOptions struct {
	// Subject is counted per group (distinct values; rows with a null
	// subject count in the mean but not as a subject). Required.
	Subject string
	// Value is the float64 column averaged. Required.
	Value string
	// Time is the timestamp column, floored to Bucket. Both required.
	Time   string
	Bucket time.Duration
	// Cell names an H3 cell column as the Coarsener writes it. Leave empty
	// and set Lat, Lon and Resolution to map raw coordinates to cells.
	Cell       string
	Lat, Lon   string
	Resolution int
}

// CellMeans accumulates per-(cell, bucket) sums, counts and distinct
// subjects. Build one over the raw data and one over the released data with
// the same Bucket and Resolution, then CompareMeans.
type CellMeans struct {
	opts                        CellMeanOptions
	schema                      *arrow.Schema
	subj, val, ts, cell, la, lo int
	bucket                      int64
	subjects                    *denser
	groups                      map[cellKey]*meanAcc
	rows                        int64
	buf                         []uint64
}

type cellKey struct {
	cell   string
	bucket int64
}

type meanAcc struct {
	sum  float64
	n    int64
	subs map[uint32]struct{}
}

// NewCellMeans validates opts against the schema.
func NewCellMeans(schema *arrow.Schema, opts CellMeanOptions) (*CellMeans, error) {
	const fn = "mobility.NewCellMeans"
	if schema == nil {
		return nil, fmt.Errorf("%s: nil schema", fn)
	}
	m := &CellMeans{opts: opts, schema: schema, cell: -1, la: -1, lo: -1, subjects: newDenser(), groups: map[cellKey]*meanAcc{}}
	var err error
	if m.subj, err = fieldIndex(fn, "Subject", schema, opts.Subject); err != nil {
		return nil, err
	}
	if err := checkKeyType(fn, "Subject", opts.Subject, schema.Field(m.subj).Type); err != nil {
		return nil, err
	}
	if m.val, err = fieldIndex(fn, "Value", schema, opts.Value); err != nil {
		return nil, err
	}
	if schema.Field(m.val).Type.ID() != arrow.FLOAT64 {
		return nil, fmt.Errorf("%s: Value: column %q has type %s; want float64", fn, opts.Value, schema.Field(m.val).Type)
	}
	if m.ts, err = fieldIndex(fn, "Time", schema, opts.Time); err != nil {
		return nil, err
	}
	if err := checkTimeType(fn, "Time", opts.Time, schema.Field(m.ts).Type); err != nil {
		return nil, err
	}
	if opts.Bucket <= 0 {
		return nil, fmt.Errorf("%s: Bucket must be > 0", fn)
	}
	m.bucket = durationTicks(int64(opts.Bucket), schema.Field(m.ts).Type.(*arrow.TimestampType).Unit)
	if m.bucket <= 0 {
		return nil, fmt.Errorf("%s: Bucket below the time column's resolution", fn)
	}
	if opts.Cell != "" {
		if m.cell, err = fieldIndex(fn, "Cell", schema, opts.Cell); err != nil {
			return nil, err
		}
		if !isStringDict(schema.Field(m.cell).Type) && schema.Field(m.cell).Type.ID() != arrow.STRING {
			return nil, fmt.Errorf("%s: Cell: column %q has type %s; want H3 cell strings", fn, opts.Cell, schema.Field(m.cell).Type)
		}
		return m, nil
	}
	if m.la, err = fieldIndex(fn, "Lat", schema, opts.Lat); err != nil {
		return nil, err
	}
	if m.lo, err = fieldIndex(fn, "Lon", schema, opts.Lon); err != nil {
		return nil, err
	}
	if err := checkCoordType(fn, "Lat", opts.Lat, schema.Field(m.la).Type); err != nil {
		return nil, err
	}
	if err := checkCoordType(fn, "Lon", opts.Lon, schema.Field(m.lo).Type); err != nil {
		return nil, err
	}
	if opts.Resolution < 0 || opts.Resolution > 15 {
		return nil, fmt.Errorf("%s: Resolution must be in 0..15", fn)
	}
	return m, nil
}

// Add accumulates one batch.
func (m *CellMeans) Add(ctx context.Context, rec arrow.RecordBatch) error {
	const fn = "mobility.CellMeans.Add"
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSameSchema(fn, m.schema, rec); err != nil {
		return err
	}
	n := int(rec.NumRows())
	if cap(m.buf) < n {
		m.buf = make([]uint64, n)
	}
	subj := m.buf[:n]
	if _, err := m.subjects.keysNullable(fn, m.opts.Subject, rec.Column(m.subj), m.rows, subj); err != nil {
		return err
	}
	val := rec.Column(m.val).(*array.Float64)
	if err := checkNoNulls(fn, m.opts.Value, val, m.rows); err != nil {
		return err
	}
	tsa := rec.Column(m.ts)
	if err := checkNoNulls(fn, m.opts.Time, tsa, m.rows); err != nil {
		return err
	}
	ts := tsa.(*array.Timestamp).TimestampValues()
	cells := make([]string, n)
	if m.cell >= 0 {
		if err := checkNoNulls(fn, m.opts.Cell, rec.Column(m.cell), m.rows); err != nil {
			return err
		}
		k := newStringKeyer(rec.Column(m.cell))
		for i := range cells {
			cells[i] = k.key(i)
		}
	} else {
		lat, lon := rec.Column(m.la).(*array.Float64), rec.Column(m.lo).(*array.Float64)
		if err := checkCoords(fn, m.opts.Lat, m.opts.Lon, lat, lon, m.rows); err != nil {
			return err
		}
		memo := map[h3.Cell]string{}
		for i := range cells {
			c := h3.LatLngToCell(h3.LatLng{Lat: lat.Value(i), Lng: lon.Value(i)}, m.opts.Resolution)
			s, ok := memo[c]
			if !ok {
				s = c.String()
				memo[c] = s
			}
			cells[i] = s
		}
	}
	// With a dictionary cell column, rows are grouped by (dictionary index,
	// bucket) within the batch first: an integer key per row instead of a
	// string one.
	var dict *array.Dictionary
	if m.cell >= 0 {
		dict, _ = rec.Column(m.cell).(*array.Dictionary)
	}
	local := map[[2]int64]*meanAcc{}
	for i, v := range val.Float64Values() {
		b := floorDiv(int64(ts[i]), m.bucket)
		var g *meanAcc
		var lk [2]int64
		if dict != nil {
			lk = [2]int64{int64(dict.GetValueIndex(i)), b}
			g = local[lk]
		}
		if g == nil {
			k := cellKey{cells[i], b}
			g = m.groups[k]
			if g == nil {
				g = &meanAcc{subs: map[uint32]struct{}{}}
				m.groups[k] = g
			}
			if dict != nil {
				local[lk] = g
			}
		}
		g.sum += v
		g.n++
		if subj[i] != noSubject {
			g.subs[uint32(subj[i])] = struct{}{}
		}
	}
	m.rows += int64(n)
	return nil
}

// MeanComparison compares released means with raw means over the raw groups
// that have at least MinSubjects distinct subjects.
type MeanComparison struct {
	MinSubjects int     `json:"min_subjects"`
	Tolerance   float64 `json:"tolerance"`   // relative error allowed
	Groups      int     `json:"groups"`      // raw groups with >= MinSubjects subjects
	Released    int     `json:"released"`    // of those, present in the release
	Within      int     `json:"within"`      // present and within Tolerance
	MaxRelErr   float64 `json:"max_rel_err"` // over present groups
	MeanRelErr  float64 `json:"mean_rel_err"`
}

// CompareMeans compares per-group means. A raw group missing from the
// release counts as not within tolerance.
func CompareMeans(raw, released *CellMeans, minSubjects int, tolerance float64) MeanComparison {
	c := NewMeanComparer(minSubjects, tolerance)
	for k, g := range raw.groups {
		if len(g.subs) < minSubjects {
			continue
		}
		var relSum float64
		var relN int64
		if r := released.groups[k]; r != nil {
			relSum, relN = r.sum, r.n
		}
		c.Observe(g.sum, g.n, relSum, relN)
	}
	return c.Result()
}

// MeanComparer builds a MeanComparison group by group, for engines that
// gather the groups themselves (beam): the figures CompareMeans gives.
type MeanComparer struct {
	c      MeanComparison
	sumRel float64
}

// NewMeanComparer returns an empty comparison.
func NewMeanComparer(minSubjects int, tolerance float64) *MeanComparer {
	return &MeanComparer{c: MeanComparison{MinSubjects: minSubjects, Tolerance: tolerance}}
}

// Observe counts one raw group that has at least MinSubjects subjects: its
// sum and rows, and the released group's (relN 0: not released).
func (m *MeanComparer) Observe(rawSum float64, rawN int64, relSum float64, relN int64) {
	m.c.Groups++
	if relN == 0 {
		return
	}
	m.c.Released++
	want, got := rawSum/float64(rawN), relSum/float64(relN)
	rel := math.Abs(got-want) / math.Max(math.Abs(want), 1e-12)
	m.sumRel += rel
	m.c.MaxRelErr = math.Max(m.c.MaxRelErr, rel)
	if rel <= m.c.Tolerance {
		m.c.Within++
	}
}

// Result returns the comparison of the groups observed so far.
func (m *MeanComparer) Result() MeanComparison {
	c := m.c
	if c.Released > 0 {
		c.MeanRelErr = m.sumRel / float64(c.Released)
	}
	return c
}
