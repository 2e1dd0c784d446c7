package anonymize

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/linkage"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// AttackOptions configures Runner.Attack.
type AttackOptions struct {
	// Levels are the generalisation levels the run chose for the
	// quasi-identifiers (the report's kanon.transformation). Required when
	// the policy has a kanon block: without them the raw values cannot be
	// brought to the published precision.
	Levels map[string]int
	// Measure sizes and keys the samples, as for Run.
	Measure MeasureOptions
	// Reopen, when set, opens the raw readings again from their first
	// row. Raw rows not in time order (a vehicle-by-vehicle export, a
	// shuffled file) are then sorted by subject and time, in bounded
	// memory with encrypted temporary files in TempDir, and the attack
	// runs again on the sorted rows. Without it such rows are an error.
	Reopen func() (array.RecordReader, error)
	// TempDir holds the sort's files; "" means os.TempDir().
	TempDir string
}

// AttackReport is what Attack measured: the same figures a run reports
// about its own output (risk.after.linkage, risk.before/after.unicity),
// here from files.
type AttackReport struct {
	// Precision are the columns of a point: every published column but
	// the trace's unit.
	Precision []string `json:"precision"`
	// Unit is the published column that ties a trace's rows together.
	Unit string `json:"unit"`
	// Traces: linkage of the published traces to the raw subjects, and
	// their unicity among the published traces. The truth is known only
	// when the unit is the subject's pseudonym (scope subject).
	Traces linkage.TraceResult `json:"traces"`
	// Before is the unicity of the raw subjects at the published precision,
	// RawGPS at the raw file's (lat, lon, ts).
	Before linkage.SubjectResult `json:"before"`
	RawGPS linkage.SubjectResult `json:"raw_gps"`
}

// Attack runs the linkage attack of the run's own measure on files: raw
// holds the raw readings (what the adversary holds), published opens the
// policy's output (it is read twice). The raw rows are brought to the
// published precision by the policy's own steps — trips and trimming,
// cells, the column actions, the quasi-identifiers at opts.Levels, and
// microaggregated columns at the values the output publishes for their
// cell-hour — so a keyed column needs the Runner's keyring. The policy's
// opt-out is not applied: the adversary's raw readings include everyone.
// Rows in time order stream; rows in any other order need opts.Reopen
// (they are sorted by subject and time, as Run sorts its input).
func (r *Runner) Attack(ctx context.Context, raw array.RecordReader, published func() (array.RecordReader, error), opts AttackOptions) (*AttackReport, error) {
	const fn = "anonymize.Runner.Attack"
	rep, err := r.attack(ctx, raw, nil, published, opts)
	if err == nil || opts.Reopen == nil || !errors.Is(err, mobility.ErrOrder) {
		return rep, err
	}
	again, err := opts.Reopen()
	if err != nil {
		return nil, fmt.Errorf("%s: opening the raw readings again to sort them: %w", fn, err)
	}
	defer again.Release()
	if !again.Schema().Equal(raw.Schema()) {
		return nil, fmt.Errorf("%s: AttackOptions.Reopen returned a reader with another schema", fn)
	}
	sorted, err := r.sortBySubjectTime(ctx, again, opts.TempDir, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: raw: sorting by subject and time: %w", fn, err)
	}
	defer sorted.Close()
	return r.attack(ctx, sorted, raw.Schema(), published, opts)
}

// attack is Attack over raw as it comes (schema nil: in time order) or
// sorted by subject and time, each batch with its data rows as a last
// column (numbered) and schema the raw file's.
func (r *Runner) attack(ctx context.Context, raw array.RecordReader, schema *arrow.Schema, published func() (array.RecordReader, error), opts AttackOptions) (*AttackReport, error) {
	const fn = "anonymize.Runner.Attack"
	sorted := schema != nil
	order := mobility.OrderTime // the raw file in time order, as Run first tries
	if sorted {
		order = mobility.OrderSubject
	} else {
		schema = raw.Schema()
	}
	p := r.p
	m := p.Mobility
	if m == nil {
		return nil, fmt.Errorf("%s: the policy has no mobility block: it publishes no traces", fn)
	}
	if err := opts.Measure.check(fn); err != nil {
		return nil, err
	}
	pl, err := r.makePlan(schema, order)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	defer pl.close()
	key, err := linkage.NewKey(opts.Measure.Key)
	if err != nil {
		return nil, err
	}
	micro := newMicroAgg(pl, m)
	s := opts.Measure.samples()
	lm, err := newLinkageMeasure(pl, p, key, micro, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	defer lm.close()
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			lvl, ok := opts.Levels[q]
			if !ok {
				return nil, fmt.Errorf("%s: no generalisation level for quasi-identifier %q (give the run's report: kanon.transformation)", fn, q)
			}
			if lvl < 0 || lvl >= r.hier[q].Levels() {
				return nil, fmt.Errorf("%s: level %d of %q is outside its hierarchy (0..%d)", fn, lvl, q, r.hier[q].Levels()-1)
			}
			lm.raw.generalise(q, r.hier[q], lvl)
		}
	}
	unit := p.Subject
	if m.Scope == "trip" {
		unit = m.TripIDColumn
	}
	rep := &AttackReport{Precision: lm.names, Unit: unit}

	// Phase 1, the published file: every trace is published; the
	// microaggregated columns' published value per cell-hour.
	pub, err := newPublishedView(published, lm, pl, m, unit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if err := pub.scan(ctx, func(rec arrow.RecordBatch) error {
		if micro != nil {
			if err := micro.observePublished(rec, pub.cell, pub.ts, pub.microIdx); err != nil {
				return err
			}
		}
		return pub.offer(rec, m.Scope == "subject")
	}); err != nil {
		return nil, fmt.Errorf("%s: published: %w", fn, err)
	}
	if err := lm.traces.Seal(nil); err != nil {
		return nil, err
	}
	// Phase 2: the raw readings at published precision, then the
	// published rows again.
	if err := r.attackRaw(ctx, raw, sorted, pl, lm); err != nil {
		return nil, fmt.Errorf("%s: raw: %w", fn, err)
	}
	if err := pub.scan(ctx, func(rec arrow.RecordBatch) error { return pub.index(rec) }); err != nil {
		return nil, fmt.Errorf("%s: published: %w", fn, err)
	}
	if err := lm.finishLanes(); err != nil {
		return nil, fmt.Errorf("%s: raw: %w", fn, err)
	}
	if rep.Traces, err = lm.traces.Result(); err != nil {
		return nil, err
	}
	if rep.Before, err = lm.before.Result(); err != nil {
		return nil, err
	}
	if rep.RawGPS, err = lm.gps.Result(); err != nil {
		return nil, err
	}
	return rep, nil
}

// attackRaw projects the raw rows to the published precision with the
// policy's steps and indexes them.
func (r *Runner) attackRaw(ctx context.Context, raw array.RecordReader, sorted bool, pl *plan, lm *linkageMeasure) error {
	var base int64
	project := func(rec arrow.RecordBatch) error {
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		co, err := mobility.NewCoarsener(pl.seg.Schema(), pl.coarsen)
		if err != nil {
			return err
		}
		mid, err := co.Apply(ctx, rec)
		if err != nil {
			return fmt.Errorf("cells: %w", err)
		}
		defer mid.Release()
		trans, err := r.transform(ctx, pl, mid, 0)
		if err != nil {
			return err
		}
		defer trans.Release()
		return lm.indexRaw(r.mem, trans, lm.micro)
	}
	read := func(rec arrow.RecordBatch, span RowSpan) error {
		if !slices.EqualFunc(rec.Schema().Fields(), pl.in.Fields(), func(a, b arrow.Field) bool { return a.Name == b.Name && arrow.TypeEqual(a.Type, b.Type) }) {
			return fmt.Errorf("the batch from row %d on has a different schema from the first", base+1)
		}
		if err := lm.input(ctx, rec); err != nil {
			return err
		}
		trips, err := pl.seg.Push(ctx, rec)
		if err != nil {
			return fmt.Errorf("trips: %w", span.Locate(err, base, rec.NumRows()))
		}
		base += rec.NumRows()
		return project(trips)
	}
	for raw.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := raw.RecordBatch()
		if !sorted {
			if err := read(rec, RowSpan{Base: base}); err != nil {
				return err
			}
			continue
		}
		// Take the data rows off before any stage sees the batch.
		split, rows, err := splitDataRows(pl.in, rec)
		if err != nil {
			return err
		}
		err = read(split, RowSpan{Base: base, Input: rows})
		split.Release()
		if err != nil {
			return err
		}
	}
	if err := raw.Err(); err != nil {
		return fmt.Errorf("reading after row %d: %w", base, err)
	}
	last, err := pl.seg.Flush(ctx)
	if err != nil {
		return fmt.Errorf("trips: %w", err)
	}
	return project(last)
}

// publishedView reads the published file for the attack: its point
// columns, by name, in the order of the measure's.
type publishedView struct {
	open     func() (array.RecordReader, error)
	lm       *linkageMeasure
	proj     *pointProjector
	unit     int
	cell, ts int
	microIdx []int // positions of the microaggregated columns (in micro's order)
	schema   *arrow.Schema
}

func newPublishedView(open func() (array.RecordReader, error), lm *linkageMeasure, pl *plan, m *MobilityPolicy, unit string) (*publishedView, error) {
	rd, err := open()
	if err != nil {
		return nil, err
	}
	schema := rd.Schema()
	rd.Release()
	idx := func(name string) (int, error) {
		i := schema.FieldIndices(name)
		if len(i) != 1 {
			return 0, fmt.Errorf("column %q of the policy's output is not in the published file (is it the output of this policy?)", name)
		}
		return i[0], nil
	}
	v := &publishedView{open: open, lm: lm, schema: schema}
	if v.unit, err = idx(unit); err != nil {
		return nil, err
	}
	if v.cell, err = idx(m.CellColumn); err != nil {
		return nil, err
	}
	if v.ts, err = idx(m.Time); err != nil {
		return nil, err
	}
	pos := make([]int, len(lm.names))
	for j, name := range lm.names {
		if pos[j], err = idx(name); err != nil {
			return nil, err
		}
	}
	if n := schema.NumFields(); n != len(pos)+1 {
		return nil, fmt.Errorf("the published file has %d columns, the policy's output %d", n, len(pos)+1)
	}
	v.proj = newPointProjector(lm.keyer, lm.names, pos, lm.raw.block)
	if lm.micro != nil {
		for _, name := range lm.micro.names {
			i, err := idx(name)
			if err != nil {
				return nil, err
			}
			v.microIdx = append(v.microIdx, i)
		}
	}
	return v, nil
}

// scan reads the published file once.
func (v *publishedView) scan(ctx context.Context, each func(arrow.RecordBatch) error) error {
	rd, err := v.open()
	if err != nil {
		return err
	}
	defer rd.Release()
	if !rd.Schema().Equal(v.schema) {
		return errors.New("the published file changed between two reads")
	}
	for rd.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := each(rd.RecordBatch()); err != nil {
			return err
		}
	}
	return rd.Err()
}

// offer is phase 1 for one published batch.
func (v *publishedView) offer(rec arrow.RecordBatch, truthIsUnit bool) error {
	lm := v.lm
	n := int(rec.NumRows())
	lm.unitBuf = growU64(lm.unitBuf, n)
	if err := unitKeys(lm.keyer, "unit", rec.Column(v.unit), lm.unitBuf); err != nil {
		return err
	}
	truths := make([]uint64, n)
	if truthIsUnit {
		copy(truths, lm.unitBuf[:n])
	}
	cols, err := v.proj.keys(rec)
	if err != nil {
		return err
	}
	blocks := make([][]uint64, len(v.proj.block))
	for i, b := range v.proj.block {
		blocks[i] = cols[b]
	}
	return lm.traces.Offer(lm.unitBuf[:n], truths, blocks)
}

// index is phase 2 for one published batch.
func (v *publishedView) index(rec arrow.RecordBatch) error {
	lm := v.lm
	n := int(rec.NumRows())
	lm.unitBuf = growU64(lm.unitBuf, n)
	if err := unitKeys(lm.keyer, "unit", rec.Column(v.unit), lm.unitBuf); err != nil {
		return err
	}
	cols, err := v.proj.keys(rec)
	if err != nil {
		return err
	}
	return lm.traces.Published(lm.unitBuf[:n], cols)
}
