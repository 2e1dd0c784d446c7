package beam

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

// The linkage and unicity measures of a mobility policy on Beam, as the
// single-machine Runner makes them (anonymize/measure_linkage.go) and
// through its own code (anonymize.Linkage); their samples are keyed
// (Config.MeasureKey), so every worker draws the same ones and the partial
// states merge exactly (package linkage):
//
//   - raw GPS unicity: the opted-in input batches, one partial per bundle,
//     merged by a Combine;
//   - candidate traces: the trip step's batches (pass 1), one partial per
//     bundle, merged by a Combine;
//   - raw readings at published precision: the trip step's batches again
//     (every row before suppression, microaggregated), each bundle with
//     the merged candidates sealed as on one machine (the trace gate's
//     published ids, the k-anonymity levels: side inputs); their index
//     (one state per bundle, bounded by the sample) and the unicity
//     before (merged by a Combine) go to the commit step;
//   - the written rows: the second pass (classFn) indexes them per bundle
//     in the Runner's layout, before the dropped columns go (the trace
//     unit may be one: under scope subject with the subject dropped), and
//     emits one state per bundle;
//   - the commit step merges every state and draws the report's figures;
//     mobility.max_linkage is checked first (the report builder's check,
//     anonymize.Steps.CheckLinkage), before any output file is written.

// RiskPart is one partial state of the measure; Kind says which.
type RiskPart struct {
	Kind  string
	State []byte
}

// Kinds of RiskPart.
const (
	riskGPS    = "gps"
	riskCands  = "candidates"
	riskRaw    = "raw"
	riskBefore = "before"
	riskPub    = "published"
)

// linkageFor returns the worker's measure (every worker the same options
// and key).
func linkageFor(w *worker) (*anonymize.Linkage, error) {
	l, err := w.st.NewLinkage()
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, errors.New("linkage: the policy has no mobility block")
	}
	return l, nil
}

// riskInputFn indexes the opted-in input batches at raw GPS precision.
type riskInputFn struct {
	workerDoFn
	l *anonymize.Linkage
}

func (f *riskInputFn) ProcessElement(ctx context.Context, b Batch, emit func(RiskPart)) error {
	if b.Rows == 0 {
		return nil
	}
	rec, err := b.decode(memory.DefaultAllocator)
	if err != nil {
		return err
	}
	defer rec.Release()
	if f.l == nil {
		if f.l, err = linkageFor(f.w); err != nil {
			return err
		}
	}
	if err := f.l.Input(ctx, rec); err != nil {
		return b.fail(f.Cfg, err)
	}
	return nil
}

func (f *riskInputFn) FinishBundle(emit func(RiskPart)) error {
	if f.l == nil {
		return nil
	}
	s, err := f.l.GPSState()
	f.l = nil
	if err != nil {
		return err
	}
	emit(RiskPart{Kind: riskGPS, State: s})
	return nil
}

// riskOfferFn offers the trip step's traces as candidates.
type riskOfferFn struct {
	workerDoFn
	l *anonymize.Linkage
}

func (f *riskOfferFn) ProcessElement(ctx context.Context, b Batch, emit func(RiskPart)) error {
	if b.Rows == 0 {
		return nil
	}
	rec, err := f.w.decodeTrans(b, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	defer rec.Release()
	if f.l == nil {
		if f.l, err = linkageFor(f.w); err != nil {
			return err
		}
	}
	if err := f.l.Offer(ctx, rec); err != nil {
		return b.fail(f.Cfg, err)
	}
	return nil
}

func (f *riskOfferFn) FinishBundle(emit func(RiskPart)) error {
	if f.l == nil {
		return nil
	}
	s, err := f.l.Candidates()
	f.l = nil
	if err != nil {
		return err
	}
	emit(RiskPart{Kind: riskCands, State: s})
	return nil
}

// sealInputs are what sealing needs from the side inputs: the merged
// candidates, the published trip ids, the k-anonymity decision.
type sealInputs struct {
	cands [][]byte
	ids   []int64
	d     *anonymize.KAnonDecision
}

func readSealInputs(parts func(*RiskPart) bool, published func(*int64) bool, decision func(*[]byte) bool) (*sealInputs, error) {
	si := &sealInputs{}
	var rp RiskPart
	for parts(&rp) {
		if rp.Kind == riskCands && rp.State != nil {
			si.cands = append(si.cands, rp.State)
		}
	}
	var id int64
	for published(&id) {
		si.ids = append(si.ids, id)
	}
	var err error
	si.d, err = decodeDecision(decision)
	return si, err
}

// sealed returns a measure with the merged candidates, sealed as the
// Runner's decide step seals it.
func (si *sealInputs) sealed(w *worker) (*anonymize.Linkage, error) {
	l, err := linkageFor(w)
	if err != nil {
		return nil, err
	}
	for _, c := range si.cands {
		if err := l.MergeCandidates(c); err != nil {
			return nil, err
		}
	}
	if err := l.Seal(w.p.Mobility.TraceK > 0, si.ids, si.d); err != nil {
		return nil, err
	}
	return l, nil
}

// riskSpillFn indexes the raw readings at published precision: the trip
// step's batches, every row before suppression, microaggregated.
type riskSpillFn struct {
	workerDoFn
	l     *anonymize.Linkage
	micro *anonymize.MicroAgg
	seal  *sealInputs
}

func (f *riskSpillFn) ProcessElement(ctx context.Context, b Batch, cands func(*RiskPart) bool, published func(*int64) bool, decision func(*[]byte) bool,
	micro func(*[]byte) bool, raw, before func(RiskPart)) error {
	if b.Rows == 0 {
		return nil
	}
	if f.seal == nil {
		m, err := loadMicro(f.w, micro)
		if err != nil {
			return err
		}
		si, err := readSealInputs(cands, published, decision)
		if err != nil {
			return err
		}
		f.micro, f.seal = m, si
	}
	if f.l == nil {
		l, err := f.seal.sealed(f.w)
		if err != nil {
			return fmt.Errorf("tarnkappe/beam: %w", err)
		}
		f.l = l
	}
	rec, err := f.w.decodeTrans(b, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	defer rec.Release()
	if err := f.l.Spilled(ctx, rec, f.micro); err != nil {
		return b.fail(f.Cfg, err)
	}
	return nil
}

func (f *riskSpillFn) FinishBundle(_ func(*RiskPart) bool, _ func(*int64) bool, _ func(*[]byte) bool, _ func(*[]byte) bool, raw, before func(RiskPart)) error {
	if f.l == nil {
		return nil
	}
	l := f.l
	f.l = nil
	r, err := l.RawState()
	if err != nil {
		return err
	}
	s, err := l.BeforeState()
	if err != nil {
		return err
	}
	raw(RiskPart{Kind: riskRaw, State: r})
	before(RiskPart{Kind: riskBefore, State: s})
	return nil
}

// riskCombineFn merges the partial states of one kind that merge without
// a seal: candidates, and the unicity samples.
type riskCombineFn struct {
	workerDoFn
	Kind string
}

func (f *riskCombineFn) CreateAccumulator() []byte { return nil }
func (f *riskCombineFn) AddInput(a []byte, e RiskPart) ([]byte, error) {
	if e.Kind != f.Kind {
		return nil, fmt.Errorf("tarnkappe/beam: linkage: a %s state among %s states", e.Kind, f.Kind)
	}
	return f.MergeAccumulators(a, e.State)
}
func (f *riskCombineFn) MergeAccumulators(a, b []byte) ([]byte, error) {
	switch {
	case a == nil:
		return b, nil
	case b == nil:
		return a, nil
	}
	l, err := linkageFor(f.w)
	if err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: %w", err)
	}
	merge, state := l.MergeGPS, l.GPSState
	switch f.Kind {
	case riskCands:
		merge, state = l.MergeCandidates, l.Candidates
	case riskBefore:
		merge, state = l.MergeBefore, l.BeforeState
	}
	for _, s := range [][]byte{a, b} {
		if err := merge(s); err != nil {
			return nil, fmt.Errorf("tarnkappe/beam: %w", err)
		}
	}
	return state()
}
func (f *riskCombineFn) ExtractOutput(a []byte) RiskPart { return RiskPart{Kind: f.Kind, State: a} }

// RiskCandidates offers the trip step's traces (trans) to the linkage
// measure's sample: one merged candidates state (RiskPart).
func RiskCandidates(s beam.Scope, cfg Config, trans beam.PCollection) beam.PCollection {
	s = s.Scope("tarnkappe.Risk")
	return beam.Combine(s, &riskCombineFn{workerDoFn: wf(cfg), Kind: riskCands}, beam.ParDo(s, &riskOfferFn{workerDoFn: wf(cfg)}, trans))
}

// Risk adds the rest of the linkage and unicity measures of a mobility
// policy to the pipeline: kept are the opted-in input batches, trans the
// trip step's batches, cands the merged candidates (RiskCandidates),
// published the trace gate's trip ids, decision the k-anonymity search's,
// micro the merged microaggregation, written the written rows' states
// (the second pass indexes them). It returns every state the commit step
// merges (RiskPart).
func Risk(s beam.Scope, cfg Config, kept, trans, cands, published, decision, micro, written beam.PCollection) beam.PCollection {
	s = s.Scope("tarnkappe.Risk")
	gps := beam.Combine(s, &riskCombineFn{workerDoFn: wf(cfg), Kind: riskGPS}, beam.ParDo(s, &riskInputFn{workerDoFn: wf(cfg)}, kept))
	raw, before := beam.ParDo2(s, &riskSpillFn{workerDoFn: wf(cfg)}, trans, beam.SideInput{Input: cands}, beam.SideInput{Input: published},
		beam.SideInput{Input: decision}, beam.SideInput{Input: micro})
	before = beam.Combine(s, &riskCombineFn{workerDoFn: wf(cfg), Kind: riskBefore}, before)
	return beam.Flatten(s, gps, cands, raw, before, written)
}

// riskMeasure is the commit step's side of the measure: every state
// merged, the written rows indexed as they are merged.
func riskMeasure(w *worker, parts func(*RiskPart) bool, published func(*int64) bool, decision func(*[]byte) bool) (*anonymize.Linkage, error) {
	var all []RiskPart
	var rp RiskPart
	for parts(&rp) {
		all = append(all, rp)
	}
	i := 0
	si, err := readSealInputs(func(p *RiskPart) bool {
		if i == len(all) {
			return false
		}
		*p = all[i]
		i++
		return true
	}, published, decision)
	if err != nil {
		return nil, err
	}
	l, err := si.sealed(w)
	if err != nil {
		return nil, err
	}
	for _, p := range all {
		if p.State == nil {
			continue
		}
		switch p.Kind {
		case riskRaw:
			err = l.MergeRaw(p.State)
		case riskBefore:
			err = l.MergeBefore(p.State)
		case riskGPS:
			err = l.MergeGPS(p.State)
		case riskPub:
			err = l.MergePublished(p.State)
		}
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

func init() {
	for _, t := range []any{(*riskInputFn)(nil), (*riskOfferFn)(nil), (*riskSpillFn)(nil), (*riskCombineFn)(nil), (*RiskPart)(nil)} {
		beam.RegisterType(reflect.TypeOf(t).Elem())
	}
}
