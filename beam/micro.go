package beam

import (
	"context"
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

// Microaggregation (the microaggregate column action) on Beam: the
// Runner's pass 1 sums each microaggregated column per (cell, time bucket)
// group over every row before suppression, and pass 2 writes each row's
// group mean. Here microFn adds the trip step's batches to one
// anonymize.MicroAgg per bundle and emits its state, microCombineFn merges
// the states into one (a global Combine: every worker of the second pass
// needs every group it may meet), and classFn applies the merged sums
// (side input) to the rows cell suppression keeps, before k-anonymity, as
// on one machine. The sums are exact (anonymize's internal/fsum), so the
// means are the Runner's bit for bit although the rows are added in
// another order and on several workers.

// hasMicro says whether the policy microaggregates a column.
func hasMicro(p *anonymize.Policy) bool {
	if p.Mobility == nil {
		return false
	}
	for _, c := range p.Columns {
		if c.Action == anonymize.ActionMicroaggregate {
			return true
		}
	}
	return false
}

// microFn sums the trip step's batches per bundle.
type microFn struct {
	workerDoFn
	m *anonymize.MicroAgg
}

func (f *microFn) ProcessElement(ctx context.Context, b Batch, emit func([]byte)) error {
	if b.Rows == 0 {
		return nil
	}
	rec, err := f.w.decodeTrans(b, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	defer rec.Release()
	if f.m == nil {
		if f.m = f.w.st.NewMicroAgg(); f.m == nil {
			return fmt.Errorf("tarnkappe/beam: microaggregate: the plan has no microaggregated column")
		}
	}
	if err := f.m.Add(ctx, rec); err != nil {
		return b.fail(f.Cfg, err)
	}
	return nil
}

func (f *microFn) FinishBundle(emit func([]byte)) error {
	if f.m == nil {
		return nil
	}
	s, err := f.m.State()
	f.m = nil
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: microaggregate: %w", err)
	}
	emit(s)
	return nil
}

// microCombineFn merges the partial sums into one state.
type microCombineFn struct {
	workerDoFn
}

func (f *microCombineFn) CreateAccumulator() []byte { return nil }
func (f *microCombineFn) AddInput(a, e []byte) ([]byte, error) {
	return f.MergeAccumulators(a, e)
}
func (f *microCombineFn) MergeAccumulators(a, b []byte) ([]byte, error) {
	switch {
	case a == nil:
		return b, nil
	case b == nil:
		return a, nil
	}
	m := f.w.st.NewMicroAgg()
	if m == nil {
		return nil, fmt.Errorf("tarnkappe/beam: microaggregate: partial sums but no microaggregated column")
	}
	for _, s := range [][]byte{a, b} {
		if err := m.Merge(s); err != nil {
			return nil, fmt.Errorf("tarnkappe/beam: %w", err)
		}
	}
	return m.State()
}

// Micro sums the microaggregated columns of the trip step's batches per
// (cell, time bucket): one merged anonymize.MicroAgg state, for the second
// pass (none when the policy microaggregates nothing).
func Micro(s beam.Scope, cfg Config, p *anonymize.Policy, trans beam.PCollection) beam.PCollection {
	s = s.Scope("tarnkappe.Microaggregate")
	if !hasMicro(p) {
		return beam.CreateList(s, [][]byte{})
	}
	return beam.Combine(s, &microCombineFn{workerDoFn: wf(cfg)}, beam.ParDo(s, &microFn{workerDoFn: wf(cfg)}, trans))
}

// loadMicro merges the side input's state into a MicroAgg of the worker's
// plan (nil without microaggregated columns).
func loadMicro(w *worker, states func(*[]byte) bool) (*anonymize.MicroAgg, error) {
	m := w.st.NewMicroAgg()
	if m == nil {
		return nil, nil
	}
	var b []byte
	for states(&b) {
		if err := m.Merge(b); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func init() {
	for _, t := range []any{(*microFn)(nil), (*microCombineFn)(nil)} {
		beam.RegisterType(reflect.TypeOf(t).Elem())
	}
}
