package anonymize

import (
	"context"
	"time"
)

// finish turns what the run counted and measured into the report and
// commits the outputs: the measures add their figures (the DP release is
// drawn and written here), the k-anonymity decision is verified on the
// written rows, and the report builder (report_build.go), which runs every
// check on the figures, makes the report. Then the reports are rendered,
// every output is prepared (complete and synced, not in place) and all are
// committed together (outputs.go) — only when all of that succeeded and ctx
// is not cancelled.
func (ru *run) finish(ctx context.Context, started time.Time, in pass1Counts, dec *decision, out pass2Counts) (*Report, error) {
	r := ru.r
	f := &Figures{Tool: "tarnkappe", Input: r.opts.Input, Output: r.opts.Output, ReleaseOutput: r.opts.ReleaseOutput, Started: started,
		InputOrder: ru.order.name(), SortRuns: ru.order.runs,
		Rows: RowFigures{In: in.in, Out: out.written, Suppressed: out.suppressed, OptedOut: in.optedOut, Trimmed: in.trimmed}}
	var err error
	if f.InputFile, err = ru.order.fileFigures(); err != nil {
		return nil, err
	}
	if r.optout != nil {
		f.OptOutSubjects = len(r.optout.seen)
		f.OptOutNotNormalized = r.optout.notNormRows
	}
	f.MaskedWhole = maskedWhole(ru.pl.ops, ru.pl.mid)
	if r.p.Mobility != nil {
		f.Mobility = &MobilityFigures{Trips: in.trips}
	}
	if err := ru.ms.figures(ctx, f); err != nil {
		return nil, err
	}
	if dec.kanon != nil {
		k, err := dec.kanon.figures()
		if err != nil {
			return nil, err
		}
		f.KAnon = k
	}
	rep, err := r.buildReport(ru.pl, f)
	if err != nil {
		return nil, err
	}
	if err := ru.out.render(rep); err != nil {
		return nil, err
	}
	if err := ru.out.prepare(); err != nil {
		return nil, err
	}
	if err := ru.step(ctx, "commit"); err != nil {
		return nil, err
	}
	if err := ru.out.commit(ctx); err != nil {
		return nil, err
	}
	return rep, nil
}
