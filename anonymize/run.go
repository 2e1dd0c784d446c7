package anonymize

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// Run streams src through the policy into the sink made by create and returns
// the report. On any error, and when ctx is cancelled, every output is
// aborted (no output remains; with arrowio's outputs none is committed
// unless all are: see Options.Reports) and the scratch files are removed;
// the error names the column and row where it can. Run does not release src.
//
// Rows may come in any order: a policy with a mobility block needs each
// subject's rows in time order, and the input step finds out, as it
// streams, whether the input is in time order, grouped by subject, or
// neither, and sorts it (bounded memory, encrypted scratch files) only in
// the last case (input_order.go).
//
// A run is an input step and six steps, a file each:
//
//	input  (input_order.go)   hand pass 1 the input in an order the trip segmenter streams
//	start  (start.go)         plan the run for src's schema; create the data's sink; set up the measures and the spill
//	pass 1 (pass1.go)         read src: opt-out, trips and cells, column actions; feed the measures; spill
//	decide (decide.go)        between the passes: cell-hour k, the trace gate, the k-anonymity search, settle
//	pass 2 (pass2.go)         read the spill back: suppress, generalise, detach; into the output order's partitions
//	write  (write.go)         the rows to the data's sink in the output order (output_order.go): published values and a per-run secret
//	finish (finish.go)        the measures' figures, the report (report_build.go), render the reports, commit every output together
//
// When pass 1 finds the input in an order the segmenter cannot stream,
// start and pass 1 run again on the input in another order (the input step
// says which and reads the input again from its first row); the outputs
// made by the first start carry over to the next, untouched.
//
// A step's error says which stage failed (trips, cell suppression, kanon,
// release, …) and, when it is about data, the row and column (rowerr, data
// rows from 1); Run adds "anonymize: " once.
func (r *Runner) Run(ctx context.Context, src array.RecordReader, create CreateFunc) (*Report, error) {
	started := time.Now()
	if lim := r.opts.MemoryLimit; lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// Shared with other Runs of the process (memlimit.go).
		defer memLimits.hold(lim)()
	}
	order, err := r.newInputOrder(src)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	defer order.close()
	run, in, err := r.read(ctx, order, create)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	defer run.close()
	if err := run.step(ctx, "decide"); err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	dec, err := run.decide(ctx)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	if err := run.step(ctx, "pass 2"); err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	out, err := run.pass2(ctx, in, dec)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	if err := run.step(ctx, "write"); err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	if err := run.write(ctx, out); err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	if err := run.step(ctx, "finish"); err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	rep, err := run.finish(ctx, started, in, dec, out)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	return rep, nil
}

// read is start and pass 1, run again in the next order the input step
// offers while pass 1 finds the input out of order.
func (r *Runner) read(ctx context.Context, order *inputOrder, create CreateFunc) (*run, pass1Counts, error) {
	for {
		run, err := r.start(order.schema, create, order)
		if err != nil {
			return nil, pass1Counts{}, err
		}
		if err := run.step(ctx, "pass 1"); err != nil {
			run.close()
			return nil, pass1Counts{}, err
		}
		in, err := run.pass1(ctx, order)
		if err == nil {
			return run, in, nil
		}
		grouped := run.pl.seg != nil && run.pl.seg.Grouped()
		// The outputs wait for the next attempt (nothing is written in
		// pass 1 of two); the input step closes them if none comes.
		order.out, run.out = run.out, &outputs{}
		run.close()
		again, ferr := order.retry(ctx, err, grouped)
		if ferr != nil {
			return nil, pass1Counts{}, ferr
		}
		if !again {
			return nil, pass1Counts{}, err
		}
	}
}

// step announces the step that begins (Options.OnStep) and reports a
// cancellation: between steps is where a cancelled run stops.
func (ru *run) step(ctx context.Context, name string) error {
	if h := ru.r.opts.OnStep; h != nil {
		h(ctx, name)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}
