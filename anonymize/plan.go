package anonymize

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/mobility"
)

// plan is what a run derives from the input schema.
type plan struct {
	in        *arrow.Schema
	subject   int
	seg       *mobility.Segmenter
	coarsen   mobility.CoarsenOptions
	mid       *arrow.Schema      // after mobility
	ops       []colOp            // per mid column
	caches    []*dictResultCache // per mid column, for ops that map dictionaries
	actions   []Action           // per mid column
	trans     *arrow.Schema      // after column transforms
	gen       *arrow.Schema      // trans with quasi-identifiers generalised (pass 2)
	keep      []int              // trans columns written
	out       *arrow.Schema      // written schema
	qiIdx     []int              // quasi-identifiers in trans
	subjTrans int                // subject in trans
	release   *releasePlan       // the release block, planned on first use (Runner.releasePlan)
}

// close releases what the plan holds: the segmenter and the dictionary
// caches.
func (pl *plan) close() {
	if pl.seg != nil {
		pl.seg.Release()
		pl.seg = nil
	}
	for _, c := range pl.caches {
		if c != nil {
			c.release()
		}
	}
}

// checkSchema enforces deny-by-default and the column types each action needs.
func (r *Runner) checkSchema(in *arrow.Schema) error {
	p := r.p
	var unnamed []string
	for _, f := range in.Fields() {
		if _, ok := p.Columns.Lookup(f.Name); !ok {
			unnamed = append(unnamed, f.Name)
		}
	}
	if len(unnamed) > 0 {
		return fmt.Errorf("input column %q is not named by the policy %s (deny by default: give it an action, e.g. drop)", unnamed[0], p.File())
	}
	seen := map[string]bool{}
	for _, f := range in.Fields() {
		if seen[f.Name] {
			return fmt.Errorf("input column %q appears twice", f.Name)
		}
		seen[f.Name] = true
	}
	for _, c := range p.Columns {
		idx := in.FieldIndices(c.Name)
		if len(idx) == 0 {
			return fmt.Errorf("column %q named by the policy %s (line %d) is missing from the input", c.Name, p.File(), c.Pos.Line)
		}
		t := in.Field(idx[0]).Type
		bad := func(want string) error {
			return fmt.Errorf("column %q has type %s; action %s needs %s", c.Name, t, c.Action, want)
		}
		switch c.Action {
		case ActionCoarsen:
			if c.Coarsen.Time > 0 && t.ID() != arrow.TIMESTAMP {
				return bad("a timestamp")
			}
			if c.Coarsen.Degrees != 0 && t.ID() != arrow.FLOAT64 {
				return bad("float64")
			}
			if c.Coarsen.Step != 0 && !isNumberLike(t) {
				return bad("a number or a boolean")
			}
		case ActionMicroaggregate:
			if !isNumberLike(t) {
				return bad("a number or a boolean")
			}
		case ActionMask:
			if !isStringLike(t) {
				return bad("a string")
			}
		case ActionDateShift:
			if t.ID() != arrow.TIMESTAMP {
				return bad("a timestamp")
			}
		case ActionGeneralize:
			if !isStringLike(t) && !isNumeric(t) && t.ID() != arrow.TIMESTAMP && t.ID() != arrow.DATE32 {
				return bad("a string, number, timestamp or date")
			}
		case ActionPseudonymize:
			if !isStringLike(t) && t.ID() != arrow.INT64 && t.ID() != arrow.BINARY {
				return bad("a string, binary or int64")
			}
		}
	}
	st := in.Field(in.FieldIndices(p.Subject)[0]).Type
	if !isStringLike(st) && st.ID() != arrow.INT64 {
		return fmt.Errorf("subject column %q has type %s; want a string or int64", p.Subject, st)
	}
	if r.optout != nil {
		if err := r.optout.bind(p.Subject, st); err != nil {
			return err
		}
	}
	if m := p.Mobility; m != nil {
		if t := in.Field(in.FieldIndices(m.Time)[0]).Type; t.ID() != arrow.TIMESTAMP {
			return fmt.Errorf("mobility time column %q has type %s; want a timestamp", m.Time, t)
		}
		for _, c := range []string{m.Lat, m.Lon} {
			if t := in.Field(in.FieldIndices(c)[0]).Type; t.ID() != arrow.FLOAT64 {
				return fmt.Errorf("mobility column %q has type %s; want float64 degrees", c, t)
			}
		}
	}
	if rel := p.Release; rel != nil {
		if rel.HourOfDay != "" {
			if t := in.Field(in.FieldIndices(rel.HourOfDay)[0]).Type; t.ID() != arrow.TIMESTAMP {
				return fmt.Errorf("release hour_of_day column %q has type %s; want a timestamp", rel.HourOfDay, t)
			}
		}
		for _, a := range rel.Aggregates {
			if t := in.Field(in.FieldIndices(a.Column)[0]).Type; !isNumeric(t) {
				return fmt.Errorf("release column %q has type %s; want a number", a.Column, t)
			}
		}
	}
	return nil
}

// makePlan plans a run for the input schema; order is how pass 1 hands
// rows to the trip segmenter (the input step's choice).
func (r *Runner) makePlan(in *arrow.Schema, order mobility.InputOrder) (*plan, error) {
	if err := r.checkSchema(in); err != nil {
		return nil, err
	}
	p := r.p
	pl := &plan{in: in, subject: in.FieldIndices(p.Subject)[0], mid: in}
	if m := p.Mobility; m != nil {
		o := r.tripOptions()
		o.Order = order
		seg, err := mobility.NewSegmenter(in, o)
		if err != nil {
			return nil, err
		}
		pl.seg = seg
		cache, err := mobility.NewCellCache(m.CellResolution)
		if err != nil {
			seg.Release()
			return nil, err
		}
		// One cell cache for the Coarseners of every batch (see produce).
		pl.coarsen = mobility.CoarsenOptions{Lat: m.Lat, Lon: m.Lon, Resolution: m.CellResolution, Cell: m.CellColumn, Mem: r.mem, Cache: cache}
		c, err := mobility.NewCoarsener(seg.Schema(), pl.coarsen)
		if err != nil {
			seg.Release()
			return nil, err
		}
		pl.mid = c.Schema()
	}
	var tf []arrow.Field
	kanonQI := map[string]bool{}
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			kanonQI[q] = true
		}
	}
	for _, f := range pl.mid.Fields() {
		rule, ok := p.Columns.Lookup(f.Name)
		if !ok {
			// Added by mobility (the cell and trip id columns): released as is.
			rule = ColumnRule{Name: f.Name, Action: ActionKeep}
		}
		var op colOp
		switch rule.Action {
		case ActionKeep, ActionDrop:
			op = keepOp{}
		case ActionPseudonymize:
			op = r.pseudo[f.Name]
		case ActionDateShift:
			op = &dateShiftOp{name: f.Name, subject: pl.mid.FieldIndices(p.Subject)[0], ds: r.shifts[f.Name]}
		case ActionCoarsen:
			switch {
			case rule.Coarsen.Time > 0:
				op = coarsenTimeOp{name: f.Name, bucket: rule.Coarsen.Time.D()}
			case rule.Coarsen.Step > 0:
				op = coarsenStepOp{name: f.Name, step: rule.Coarsen.Step}
			default:
				op = coarsenGridOp{name: f.Name, degrees: rule.Coarsen.Degrees}
			}
		case ActionMicroaggregate:
			op = keepOp{} // replaced by its group's mean in pass 2 (micro.go)
		case ActionMask:
			op = newMaskOp(f.Name, *rule.Mask)
		case ActionGeneralize:
			if kanonQI[f.Name] {
				op = keepOp{} // generalised in the second pass, at the level the search picks
			} else {
				op = mapStringsOp{name: f.Name, fn: generalizeFn(r.hier[f.Name], rule.Generalize.Level)}
			}
		}
		pl.ops = append(pl.ops, op)
		switch op.(type) {
		case *pseudonymOp, mapStringsOp:
			pl.caches = append(pl.caches, &dictResultCache{})
		default:
			pl.caches = append(pl.caches, nil)
		}
		pl.actions = append(pl.actions, rule.Action)
		tf = append(tf, arrow.Field{Name: f.Name, Type: op.outType(f.Type), Nullable: f.Nullable})
	}
	if m := p.Mobility; m != nil && m.Scope == "trip" {
		// Detached rows and rows of rare traces carry a null trip id.
		for i := range tf {
			if tf[i].Name == m.TripIDColumn {
				tf[i].Nullable = true
			}
		}
	}
	pl.trans = arrow.NewSchema(tf, nil)
	gf := make([]arrow.Field, len(tf))
	for i, f := range tf {
		switch {
		case kanonQI[f.Name]:
			f.Type = stringDict
		case pl.actions[i] == ActionMicroaggregate:
			f.Type, f.Nullable = arrow.PrimitiveTypes.Float64, true
		}
		gf[i] = f
	}
	pl.gen = arrow.NewSchema(gf, nil)
	var of []arrow.Field
	for i := range tf {
		if pl.actions[i] == ActionDrop {
			continue
		}
		pl.keep = append(pl.keep, i)
		of = append(of, gf[i])
	}
	if len(of) == 0 {
		return nil, errors.New("the policy drops every column: nothing to write")
	}
	pl.out = arrow.NewSchema(of, nil)
	pl.subjTrans = pl.trans.FieldIndices(p.Subject)[0]
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			pl.qiIdx = append(pl.qiIdx, pl.trans.FieldIndices(q)[0])
		}
	}
	return pl, nil
}

// transform applies the column actions to one batch (after mobility).
func (r *Runner) transform(ctx context.Context, pl *plan, rec arrow.RecordBatch, rowBase int64) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, len(pl.ops))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, op := range pl.ops {
		if cache := pl.caches[i]; cache != nil {
			if c := cache.lookup(rec.Column(i)); c != nil {
				cols[i] = c
				continue
			}
		}
		c, err := op.apply(ctx, r.mem, rec.Column(i), rec, rowBase)
		if err != nil {
			return nil, err
		}
		if cache := pl.caches[i]; cache != nil {
			cache.store(rec.Column(i), c)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(pl.trans, cols, rec.NumRows()), nil
}

// project keeps the written columns.
func project(schema *arrow.Schema, rec arrow.RecordBatch, keep []int) arrow.RecordBatch {
	cols := make([]arrow.Array, len(keep))
	for i, k := range keep {
		cols[i] = rec.Column(k)
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows())
}

func endpointMode(s string) mobility.EndpointMode {
	if s == "detach" {
		return mobility.EndpointsDetach
	}
	return mobility.EndpointsDrop
}
