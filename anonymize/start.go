package anonymize

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
	"github.com/tarnkappe/tarnkappe/linkage"
)

// run is one Run of a Runner: what start sets up for the steps after it.
type run struct {
	r   *Runner
	pl  *plan
	out *outputs
	ms  *measures
	// The measures the steps between the passes and pass 2 act on (each
	// also in ms); nil when the policy does not call for them.
	kan   *kanonAcc        // k-anonymity's combinations
	cells *cellSuppression // cell-hour k
	gate  *traceGate       // trace-level k
	micro *microAgg        // microaggregated columns' group means
	link  *linkageMeasure  // linkage and unicity
	lint  *relinkLint      // columns that name the subject (scope trip)
	// spill holds pass 1's rows for pass 2.
	spill *spillFile
	// counts are the rows per published time bucket (pass 1), which size
	// the partitions of outOrder, the output-order step (pass 2, write).
	counts   *orderCount
	outOrder *OutputOrder
	// tmp is the run's scratch folder: every scratch file of the run is
	// made in it, and close removes it.
	tmp   *scratch.Dir
	bar   *progress   // the current pass's progress bar
	order *inputOrder // the input step: what pass 1 reads, and in which order
}

// start plans the run for the input schema and sets up its outputs, its
// measures, the scratch folder and the spill. The data's sink is created
// first, before any row is read: a path that cannot be written fails the
// run at once. An attempt after one the input's order broke takes over that
// attempt's outputs (order.out) instead.
func (r *Runner) start(in *arrow.Schema, create CreateFunc, order *inputOrder) (_ *run, err error) {
	pl, err := r.makePlan(in, order.order)
	if err != nil {
		return nil, err
	}
	ru := &run{r: r, pl: pl, out: order.out, ms: &measures{}, order: order}
	order.out = nil
	if ru.out == nil {
		ru.out = &outputs{create: create, createRel: r.opts.Release, reports: r.opts.Reports}
	}
	defer func() {
		if err != nil {
			ru.close()
		}
	}()
	if ru.out.data == nil {
		if err := ru.out.openData(pl.out); err != nil {
			return nil, err
		}
	}
	// Earlier runs that were killed left their scratch folders; a failure
	// to sweep them does not stop this run.
	scratch.Sweep(r.opts.TempDir)
	if ru.tmp, err = scratch.NewDir(r.opts.TempDir); err != nil {
		return nil, err
	}
	if err := ru.addMeasures(); err != nil {
		return nil, err
	}
	// k-anonymity and cell suppression decide in pass 1 what pass 2
	// removes, and the output order needs every row before it writes the
	// first: every run has two passes.
	if ru.spill, err = newSpill(ru.tmp.Path(), pl.trans, r.mem); err != nil {
		return nil, err
	}
	desc := "pass 1 of 2: reading"
	switch order.name() {
	case "subject":
		desc += " (again, vehicle by vehicle)"
	case "sorted":
		desc += " (sorted)"
	}
	ru.bar = r.progress(desc, r.opts.ProgressTotal)
	return ru, nil
}

// addMeasures sets up the measures the policy calls for (measure.go), in
// the order they are fed.
func (ru *run) addMeasures() error {
	r, pl, p := ru.r, ru.pl, ru.r.p
	if p.KAnon != nil {
		kan, err := newKanonAcc(p.KAnon, pl, p.Subject, r.hier, r.mem)
		if err != nil {
			return err
		}
		ru.kan = kan
		if p.Mobility == nil {
			ru.ms.add(kan, 0)
		}
	}
	if m := p.Mobility; m != nil {
		cells, err := newCellSuppression(pl, p.Subject, m, ru.kan, r.mem, ru.tmpDir())
		if err != nil {
			return fmt.Errorf("cell suppression: %w", err)
		}
		ru.cells = cells
		ru.ms.add(cells, 0)
	}
	if m := p.Mobility; m != nil && m.Utility != nil {
		u, err := newUtility(pl, p, r.mem)
		if err != nil {
			return err
		}
		ru.ms.add(u, 1)
	}
	counts, err := newOrderCounts(pl.trans, orderTime(p, pl.out))
	if err != nil {
		return err
	}
	ru.counts = &orderCount{c: counts}
	ru.ms.add(ru.counts, 0)
	if rel := p.Release; rel != nil {
		rp, err := r.releasePlan(pl)
		if err != nil {
			return err
		}
		d, err := newDPRelease(rp, rel, r.mem, ru.out)
		if err != nil {
			return err
		}
		ru.ms.add(d, 1)
	}
	m := p.Mobility
	if m == nil {
		return nil
	}
	if m.TraceK > 0 {
		g, err := newTraceGate(pl, p.Subject, m, r.mem, ru.tmpDir())
		if err != nil {
			return fmt.Errorf("trace gate: %w", err)
		}
		ru.gate = g
		ru.ms.add(g, 1)
	}
	if ru.micro = newMicroAgg(pl, m); ru.micro != nil {
		ru.ms.add(ru.micro, 0)
	}
	check, err := newCellCheck(pl, p.Subject, m, r.mem)
	if err != nil {
		return fmt.Errorf("output check: %w", err)
	}
	ru.ms.add(check, -1)
	if m.Scope == "trip" {
		ru.ms.add(newTripIDs(pl, m), -1)
	}
	key, err := linkage.NewKey(r.opts.Measure.Key)
	if err != nil {
		return err
	}
	if ru.link, err = newLinkageMeasure(pl, p, key, ru.micro, r.opts.Measure.samples()); err != nil {
		return err
	}
	ru.ms.add(ru.link, 0)
	if m.Scope == "trip" {
		if ru.lint = newRelinkLint(pl, p, key); ru.lint != nil {
			ru.ms.add(ru.lint, 1)
		}
	}
	return nil
}

// tmpDir is the folder for the run's scratch files.
func (ru *run) tmpDir() string {
	if ru.tmp != nil {
		return ru.tmp.Path()
	}
	return ru.r.opts.TempDir
}

// close ends the run: every output not committed is aborted, the scratch
// files are removed, and what the measures and the plan hold is released.
// Each part is deferred on its own, so a panic in one (a caller's Sink's
// Abort, say) skips none of the others; the scratch folder goes last, after
// every file in it is closed.
func (ru *run) close() {
	defer ru.tmp.Remove()
	defer func() {
		if ru.spill != nil {
			ru.spill.remove()
		}
	}()
	defer ru.out.close()
	defer func() {
		if ru.outOrder != nil {
			ru.outOrder.Close()
		}
	}()
	defer ru.ms.close()
	defer ru.pl.close()
	defer func() {
		if ru.r.optout != nil {
			ru.r.optout.forget()
		}
	}()
	ru.bar.done()
}
