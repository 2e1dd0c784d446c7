package beam

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/linkage"
)

// Config is what the pipeline graph carries to every worker: the policy
// text, where input and output live, and a reference to the keyring (its
// path), never the keys themselves. Workers read the keyring in Setup, so
// the serialised pipeline (which runners log, store and show in their UIs)
// holds no key material. Paths must be readable by every worker (a shared
// file system when the runner is a cluster).
type Config struct {
	// Policy is the policy file's content. Required.
	Policy []byte
	// PolicyFile is where the policy was read from; relative paths in the
	// policy (opt-out list, hierarchy tables) resolve against its directory.
	// Required.
	PolicyFile string
	// Keys is the path of the keyring file. Required when the policy uses
	// keys (pseudonyms, date shifts, opt-out).
	Keys string
	// Inputs are the input files (Parquet, Arrow IPC or CSV, by extension).
	// Required.
	Inputs []string
	// Output is the anonymised output file. Required.
	Output string
	// ReleaseOutput receives the DP release. Required when the policy has a
	// release block.
	ReleaseOutput string
	// Report, when set, receives the JSON report.
	Report string
	// TempDir holds the output shards until the final step merges them into
	// Output. Required; it is created by the pipeline and removed by the
	// final step (the CLI picks a fresh directory beside Output).
	TempDir string
	// BatchSize is the number of rows per Arrow batch read; 0 means
	// arrowio.DefaultBatchSize.
	BatchSize int
	// Shards is the number of subject shards of the DP release's
	// contribution bounding and of trip segmentation (each shard's rows are
	// sorted by one worker); 0 means 16.
	Shards int
	// MeasureKey (linkage.KeySize bytes) keys the samples of the linkage
	// and unicity measures (which subjects, traces and points are drawn;
	// anonymize.MeasureOptions.Key): every worker must draw the same. Nil
	// means a fresh random key drawn by Anonymize, so that nobody can shape
	// the data around the sample; it travels in the graph (it decides a
	// sample, it protects no value). Tests set it, and give the same key to
	// the single-machine Runner to compare the figures.
	MeasureKey []byte
}

// Validate checks the fields every step needs.
func (c Config) Validate() error {
	const fn = "beam.Config"
	switch {
	case len(c.Policy) == 0:
		return errors.New(fn + ": Policy is required")
	case c.PolicyFile == "":
		return errors.New(fn + ": PolicyFile is required")
	case len(c.Inputs) == 0:
		return errors.New(fn + ": Inputs is required")
	case c.Output == "":
		return errors.New(fn + ": Output is required")
	case c.TempDir == "":
		return errors.New(fn + ": TempDir is required")
	case c.BatchSize < 0:
		return fmt.Errorf("%s: BatchSize must be >= 0, got %d", fn, c.BatchSize)
	case c.Shards < 0:
		return fmt.Errorf("%s: Shards must be >= 0, got %d", fn, c.Shards)
	case c.MeasureKey != nil && len(c.MeasureKey) != linkage.KeySize:
		return fmt.Errorf("%s: MeasureKey must be %d bytes, got %d", fn, linkage.KeySize, len(c.MeasureKey))
	}
	w, err := newWorker(c)
	if err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	defer w.close()
	if w.p.Release != nil && c.ReleaseOutput == "" {
		return errors.New(fn + ": the policy has a release block but ReleaseOutput is empty")
	}
	if err := checkPaths(c, w.p); err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	return nil
}

func (c Config) shards() int {
	if c.Shards == 0 {
		return 16
	}
	return c.Shards
}

// Count names a row count of one step; the final step sums them per name.
const (
	countIn         = "in"
	countOptOut     = "opt_out"
	countSuppressed = "suppressed"
	countOut        = "out"
	// optOutSubjectPrefix + hex(keyed subject) counts distinct opted-out
	// subjects.
	optOutSubjectPrefix = "opt_out_subject:"
	// countOptOutNotNormalized counts rows whose subject value is not in
	// normal form; maskedWholePrefix + column the rows a mask wrote whole.
	countOptOutNotNormalized = "opt_out_not_normalized"
	maskedWholePrefix        = "masked_whole:"
	// orderBucketPrefix + a time bucket ("null" for rows without one)
	// counts the written rows per published time bucket, which size the
	// commit step's output order (anonymize.OrderCounts).
	orderBucketPrefix = "order_bucket:"
)

// orderBucketKey is the count key of a time bucket's written rows.
func orderBucketKey(b anonymize.OrderBucket) string {
	if b.Null {
		return orderBucketPrefix + "null"
	}
	return orderBucketPrefix + strconv.FormatInt(b.Time, 10)
}

// parseOrderBucket reads an orderBucketKey without its prefix.
func parseOrderBucket(s string, n int64) (anonymize.OrderBucket, error) {
	if s == "null" {
		return anonymize.OrderBucket{Null: true, Rows: n}, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return anonymize.OrderBucket{}, fmt.Errorf("order bucket %q: %w", s, err)
	}
	return anonymize.OrderBucket{Time: v, Rows: n}, nil
}

// countFindings emits what w's steps counted for the report's warnings
// since the last call.
func countFindings(w *worker, count func(string, int64)) {
	if n := w.r.DrainOptOutNotNormalized(); n > 0 {
		count(countOptOutNotNormalized, n)
	}
	for c, n := range w.st.DrainMaskedWhole() {
		if n > 0 {
			count(maskedWholePrefix+c, n)
		}
	}
}

// ---- reading ----

// readFn reads one input file (its index arrives as the element) into
// batches.
type readFn struct {
	Cfg Config
}

func (f *readFn) ProcessElement(ctx context.Context, file int, emit func(Batch), count func(string, int64)) error {
	path := f.Cfg.Inputs[file]
	mem := memory.DefaultAllocator
	src, err := arrowio.Open(ctx, path, arrowio.OpenOptions{Mem: mem, BatchSize: f.Cfg.BatchSize})
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: %w", err)
	}
	defer src.Close()
	var base int64
	for src.Next() {
		rec := src.RecordBatch()
		b, err := encodeBatch(file, base, rec, mem)
		if err != nil {
			return fmt.Errorf("tarnkappe/beam: %s: %w", path, err)
		}
		emit(b)
		base += rec.NumRows()
	}
	if err := src.Err(); err != nil {
		return fmt.Errorf("tarnkappe/beam: input %s, after row %d: %w", path, base, err)
	}
	count(countIn, base)
	return nil
}

// Read reads cfg.Inputs into batches (one file per worker, then reshuffled
// so that later steps spread over all workers). counts receives the input
// row count.
func Read(s beam.Scope, cfg Config) (batches, counts beam.PCollection) {
	s = s.Scope("tarnkappe.Read")
	idx := make([]int, len(cfg.Inputs))
	for i := range idx {
		idx[i] = i
	}
	// Reshuffled so that a runner may hand the files to different workers
	// (a Create is often one bundle).
	files := beam.Reshuffle(s, beam.CreateList(s, idx))
	batches, counts = beam.ParDo2(s, &readFn{Cfg: cfg}, files)
	return beam.Reshuffle(s, batches), counts
}

// ---- opt-out and column actions ----

// transformFn drops opted-out subjects and applies the column actions.
type transformFn struct {
	workerDoFn
	OptOut  bool // apply the opt-out filter
	Columns bool // apply the column actions (pseudonyms, coarsening, ...)
}

func (f *transformFn) ProcessElement(ctx context.Context, b Batch, emit func(Batch), count func(string, int64)) error {
	mem := memory.DefaultAllocator
	rec, err := b.decode(mem)
	if err != nil {
		return b.fail(f.Cfg, err)
	}
	defer rec.Release()
	out, removed, err := f.apply(ctx, rec, b)
	if err != nil {
		return b.fail(f.Cfg, err)
	}
	defer out.Release()
	if len(removed) > 0 {
		count(countOptOut, int64(len(removed)))
	}
	// Distinct opted-out subjects are counted under their keyed form (an
	// HMAC under the opt-out key), deduplicated by the counts' CombinePerKey.
	for _, k := range f.w.r.DrainOptOutSeen() {
		count(optOutSubjectPrefix+hex.EncodeToString([]byte(k)), 1)
	}
	if removed != nil {
		b.Removed = removed
	}
	countFindings(f.w, count)
	ob, err := b.encodeLike(out, mem)
	if err != nil {
		return b.fail(f.Cfg, err)
	}
	emit(ob)
	return nil
}

// apply returns the rows of b (decoded: rec) the step keeps, transformed,
// and the positions of the rows the opt-out removed.
func (f *transformFn) apply(ctx context.Context, rec arrow.RecordBatch, b Batch) (arrow.RecordBatch, []int32, error) {
	w := f.w
	if err := w.plan(rec.Schema()); err != nil {
		return nil, nil, err
	}
	if f.Columns && w.p.Mobility != nil {
		// The column actions of a mobility policy run on trips (cells and
		// trip ids added), after the subject-grouped segmentation of
		// Anonymize; on raw batches they would misalign.
		return nil, nil, errors.New("the policy has a mobility block: column actions run after trip segmentation (use Anonymize)")
	}
	switch {
	case f.OptOut && f.Columns:
		return w.transform(ctx, rec, b.Base)
	case f.Columns:
		out, err := w.st.Transform(ctx, rec, b.Base)
		return out, nil, err
	case f.OptOut:
		if w.p.Mobility != nil {
			// Rows trip segmentation would refuse fail here, while the
			// input row numbers are known (the shuffle by subject loses
			// them).
			if err := checkMobility(w.p, rec, b.Base); err != nil {
				return nil, nil, fmt.Errorf("mobility: %w", err)
			}
		}
		return w.st.OptOut(ctx, rec, b.Base)
	}
	rec.Retain()
	return rec, nil, nil
}

// OptOut drops every row of the subjects on the policy's opt-out list. The
// list is read by each worker from the path the policy names and held keyed
// (HMAC under the opt-out domain), never in the pipeline graph. With a
// mobility block it also fails on rows trip segmentation would refuse (null
// time, missing or out-of-range coordinates), naming the input row.
func OptOut(s beam.Scope, cfg Config, batches beam.PCollection) (kept, counts beam.PCollection) {
	s = s.Scope("tarnkappe.OptOut")
	return beam.ParDo2(s, &transformFn{workerDoFn: wf(cfg), OptOut: true}, batches)
}

// Pseudonymize applies the policy's column actions to raw input batches:
// keyed pseudonyms (hmac, siv, ff1) and date shifts with the keyring that
// each worker reads from cfg.Keys in Setup, coarsening, masks and
// fixed-level generalisation; quasi-identifiers are left for Generalize.
// The column kernels are package pseudonym's, over whole Arrow columns
// (dictionary columns through their dictionary only). A policy with a
// mobility block fails here: its column actions run on trips (Trips).
func Pseudonymize(s beam.Scope, cfg Config, batches beam.PCollection) beam.PCollection {
	s = s.Scope("tarnkappe.Pseudonymize")
	out, _ := beam.ParDo2(s, &transformFn{workerDoFn: wf(cfg), Columns: true}, batches)
	return out
}

// ---- k-anonymity ----

// appendField appends a length-prefixed string (so that no value can forge
// a separator).
func appendField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func splitFields(key string) ([]string, error) {
	var out []string
	b := []byte(key)
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("corrupt combination key")
		}
		out = append(out, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	return out, nil
}

// combosFn emits the quasi-identifier combinations of a batch: per subject
// (the default) each distinct (combination, subject) pair once, otherwise
// each combination with its row count.
type combosFn struct {
	workerDoFn
	thin map[string]bool
}

func perSubject(w *worker) bool {
	return w.p.KAnon.PerSubject == nil || *w.p.KAnon.PerSubject
}

func (f *combosFn) ProcessElement(ctx context.Context, b Batch, thin func(*Below) bool, emit func(string, int64)) error {
	mem := memory.DefaultAllocator
	if f.thin == nil {
		f.thin = belowSet(thin)
	}
	rec, err := b.decode(mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	w := f.w
	k := w.p.KAnon
	// With cell suppression only the rows it keeps are counted (the
	// Runner's countSurvivors).
	var groups []string
	if w.p.Mobility != nil {
		if groups, err = groupKeys(w.p, rec, b.Base); err != nil {
			return b.fail(f.Cfg, fmt.Errorf("mobility: %w", err))
		}
	}
	texts := make([][]string, len(k.QuasiIdentifiers))
	for j, q := range k.QuasiIdentifiers {
		c := rec.Schema().FieldIndices(q)
		if len(c) == 0 {
			return fmt.Errorf("tarnkappe/beam: kanon: quasi-identifier %q is missing", q)
		}
		if texts[j], err = rowTexts(q, rec.Column(c[0]), b.Base); err != nil {
			return b.fail(f.Cfg, fmt.Errorf("kanon: %w", err))
		}
	}
	per := perSubject(w)
	var subj []string
	if per {
		c := rec.Schema().FieldIndices(w.p.Subject)
		if subj, err = rowTexts(w.p.Subject, rec.Column(c[0]), b.Base); err != nil {
			return b.fail(f.Cfg, fmt.Errorf("kanon: %w", err))
		}
	}
	// l/t: the sensitive value goes last; per subject the value is the
	// input position of the pair's first row (minimum in the CombinePerKey)
	// for the check that a subject has one value.
	var sens []string
	if w.st.KAnonSensitive() != "" {
		if sens, err = w.st.SensitiveTexts(rec, b.Base); err != nil {
			return b.fail(f.Cfg, err)
		}
	}
	seen := map[string]int64{}
	var key []byte
	for i := range int(rec.NumRows()) {
		if groups != nil && f.thin[groups[i]] {
			continue
		}
		key = key[:0]
		for j := range texts {
			key = appendField(key, texts[j][i])
		}
		if per {
			key = appendField(key, subj[i])
		}
		if sens != nil {
			key = appendField(key, sens[i])
			if per {
				pos := inputPos(b.ord(f.Cfg), b.dataRow(i))
				if p, ok := seen[string(key)]; !ok || pos < p {
					seen[string(key)] = pos
				}
				continue
			}
		}
		if per {
			seen[string(key)] = 1
			continue
		}
		seen[string(key)]++
	}
	for k, n := range seen {
		emit(k, n)
	}
	return nil
}

// histAcc gathers the (deduplicated) combinations into one histogram.
type histAcc struct {
	M map[string]int64
}

type histCombineFn struct{}

func (histCombineFn) CreateAccumulator() histAcc { return histAcc{M: map[string]int64{}} }
func (histCombineFn) AddInput(a histAcc, e HistEntry) histAcc {
	if a.M == nil {
		a.M = map[string]int64{}
	}
	a.M[e.Key] += e.N
	return a
}
func (histCombineFn) MergeAccumulators(a, b histAcc) histAcc {
	if a.M == nil {
		return b
	}
	for k, n := range b.M {
		a.M[k] += n
	}
	return a
}
func (histCombineFn) ExtractOutput(a histAcc) histAcc { return a }

func encHist(a histAcc) ([]byte, error) { return json.Marshal(a.M) }
func decHist(b []byte) (histAcc, error) {
	a := histAcc{M: map[string]int64{}}
	err := json.Unmarshal(b, &a.M)
	return a, err
}

// HistEntry is one counted combination (per subject: one pair).
type HistEntry struct {
	Key string
	N   int64
}

func toEntry(k string, n int64) HistEntry { return HistEntry{Key: k, N: n} }

// searchFn runs kanon's optimal search on the gathered histogram.
type searchFn struct {
	Cfg Config
}

func (f *searchFn) ProcessElement(ctx context.Context, h histAcc, emit func([]byte)) error {
	w, err := newWorker(f.Cfg)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: %w", err)
	}
	defer w.close()
	if err := w.planInput(ctx, f.Cfg.Inputs[0]); err != nil {
		return fmt.Errorf("tarnkappe/beam: input %s: %w", f.Cfg.Inputs[0], err)
	}
	d, err := search(w, f.Cfg, h.M)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: %w", err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	emit(b)
	return nil
}

// search runs the single-machine Runner's k-anonymity search on the gathered
// combinations (keys of length-prefixed values, per subject with the
// subject last).
func search(w *worker, cfg Config, combos map[string]int64) (*anonymize.KAnonDecision, error) {
	nq := len(w.p.KAnon.QuasiIdentifiers)
	want := nq
	per := perSubject(w)
	if per {
		want++
	}
	sens := w.st.KAnonSensitive() != ""
	if sens {
		want++
	}
	list := make([]anonymize.KAnonCombo, 0, len(combos))
	for key, n := range combos {
		f, err := splitFields(key)
		if err != nil || len(f) != want {
			return nil, errors.New("kanon: corrupt combination key")
		}
		c := anonymize.KAnonCombo{Values: f[:nq], N: n}
		if per {
			c.Subject = f[nq]
		}
		if sens {
			c.Sensitive = f[len(f)-1]
			if per {
				// n is the pair's first input position (combosFn).
				c.File, c.Row, c.N = int(n>>40), n&(1<<40-1), 1
				c.Origin = ordOrigin(cfg, c.File)
			}
		}
		list = append(list, c)
	}
	return w.st.KAnonSearch(list)
}

// classFn is the second pass: it removes the rows of thin cell groups,
// detaches the trips whose trace is rarer than trace_k, generalises
// quasi-identifiers at the chosen levels, suppresses the classes below k
// and projects the written columns.
type classFn struct {
	workerDoFn
	ok  bool
	d   *anonymize.KAnonDecision
	sup map[string]bool
	cf  *cellFilter
	pub map[int64]bool
	// micro holds the merged microaggregation sums (nil without
	// microaggregated columns).
	micro *anonymize.MicroAgg
	// seal seals the linkage measure (nil: not measured here, e.g.
	// Generalize alone); link indexes the bundle's written rows.
	seal *sealInputs
	link *anonymize.Linkage
}

// load reads the side inputs once.
func (f *classFn) load(decision func(*[]byte) bool, thin func(*Below) bool, state func(*[]byte) bool, published func(*int64) bool, micro func(*[]byte) bool,
	cands func(*RiskPart) bool) error {
	p := f.w.p
	m, err := loadMicro(f.w, micro)
	if err != nil {
		return err
	}
	f.micro = m
	d, err := decodeDecision(decision)
	if err != nil {
		return err
	}
	if d == nil && p.KAnon != nil {
		return errors.New("tarnkappe/beam: kanon: no search result")
	}
	st, err := decodeState(state)
	if err != nil {
		return err
	}
	f.d = d
	f.sup = map[string]bool{}
	if d != nil {
		sup := d.Suppressed
		if st != nil {
			sup = st.Suppressed
		}
		for _, c := range sup {
			f.sup[c] = true
		}
	}
	if p.Mobility != nil {
		f.cf = newCellFilter(belowSet(thin), st)
		if p.Mobility.TraceK > 0 {
			f.pub = map[int64]bool{}
			var id int64
			for published(&id) {
				f.pub[id] = true
			}
		}
	}
	if p.Mobility != nil {
		// The linkage measure's candidates, sealed with the trace gate's
		// ids and the search's levels, as the Runner seals them.
		si := &sealInputs{d: d}
		var rp RiskPart
		for cands(&rp) {
			if rp.Kind == riskCands && rp.State != nil {
				si.cands = append(si.cands, rp.State)
			}
		}
		if len(si.cands) > 0 {
			for id := range f.pub {
				si.ids = append(si.ids, id)
			}
			f.seal = si
		}
	}
	f.ok = true
	return nil
}

func (f *classFn) ProcessElement(ctx context.Context, b Batch, decision func(*[]byte) bool, thin func(*Below) bool, state func(*[]byte) bool, published func(*int64) bool,
	micro func(*[]byte) bool, cands func(*RiskPart) bool,
	emit func(Batch), members func(string, int64), groups func(string, CapSet), count func(string, int64), _ func(RiskPart)) (err error) {
	defer func() {
		if err != nil {
			err = b.fail(f.Cfg, err)
		}
	}()
	if !f.ok {
		if err := f.load(decision, thin, state, published, micro, cands); err != nil {
			return err
		}
	}
	mem := memory.DefaultAllocator
	rec, err := f.w.decodeTrans(b, mem)
	if err != nil {
		return err
	}
	defer func() {
		if rec != nil { // a step that failed released it
			rec.Release()
		}
	}()
	var g []string
	if m := f.w.p.Mobility; m != nil {
		if rec, err = f.cells(ctx, mem, rec, b.Base, count); err != nil {
			return err
		}
		if f.micro != nil {
			// Each microaggregated value becomes its group's mean, after
			// cell suppression and before k-anonymity, as in the Runner's
			// pass 2.
			m, err := f.micro.Apply(rec)
			rec.Release()
			if err != nil {
				rec = nil
				return err
			}
			rec = m
		}
		if g, err = groupKeys(f.w.p, rec, b.Base); err != nil {
			return fmt.Errorf("mobility: %w", err)
		}
	}
	var kept func(int)
	out := map[string]*CapSet{}
	if g != nil {
		subj, err := subjectTexts(f.w.p, rec, b.Base)
		if err != nil {
			return err
		}
		kept = func(i int) { addTo(out, g[i], subj[i], f.w.p.Mobility.K, true) }
	}
	gen, suppressed, err := f.apply(ctx, mem, rec, b.Base, members, kept)
	if err != nil {
		return err
	}
	if m := f.w.p.Mobility; m != nil && m.TraceK > 0 {
		// Last, as on one machine: what it counts are written rows.
		if gen, err = f.detach(mem, gen, count); err != nil {
			return err
		}
	}
	if f.seal != nil {
		// The written rows, before the dropped columns go (the trace unit
		// may be one of them), as the Runner's measures see them.
		if f.link == nil {
			if f.link, err = f.seal.sealed(f.w); err != nil {
				gen.Release()
				return fmt.Errorf("linkage: %w", err)
			}
		}
		if err := f.link.Written(ctx, gen); err != nil {
			gen.Release()
			return err
		}
	}
	res := f.w.st.Project(gen)
	gen.Release()
	defer res.Release()
	if err := f.countBuckets(res, count); err != nil {
		return err
	}
	emitSets(out, groups)
	if suppressed > 0 {
		count(countSuppressed, suppressed)
	}
	count(countOut, res.NumRows())
	if res.NumRows() == 0 {
		return nil
	}
	ob, err := b.encodeLike(res, mem)
	if err != nil {
		return err
	}
	emit(ob)
	return nil
}

// FinishBundle emits the state of the bundle's linkage index (the written
// rows), which the commit step merges.
func (f *classFn) FinishBundle(_ func(*[]byte) bool, _ func(*Below) bool, _ func(*[]byte) bool, _ func(*int64) bool, _ func(*[]byte) bool, _ func(*RiskPart) bool,
	_ func(Batch), _ func(string, int64), _ func(string, CapSet), _ func(string, int64), risk func(RiskPart)) error {
	if f.link == nil {
		return nil
	}
	st, err := f.link.PublishedState()
	f.link = nil
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: linkage: %w", err)
	}
	risk(RiskPart{Kind: riskPub, State: st})
	return nil
}

// cells removes the rows of the cell groups suppressed (first pass and
// settle rounds). It releases rec.
func (f *classFn) cells(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, base int64, count func(string, int64)) (arrow.RecordBatch, error) {
	g, err := groupKeys(f.w.p, rec, base)
	if err != nil {
		rec.Release()
		return nil, fmt.Errorf("mobility: %w", err)
	}
	mb := array.NewBooleanBuilder(mem)
	defer mb.Release()
	var dropped int64
	for _, k := range g {
		rm := f.cf.removes(k)
		mb.Append(!rm)
		if rm {
			dropped++
		}
	}
	if dropped == 0 {
		return rec, nil
	}
	mask := mb.NewArray()
	defer mask.Release()
	out, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
	rec.Release()
	if err != nil {
		return nil, fmt.Errorf("mobility: %w", err)
	}
	count(countCellSuppressed, dropped)
	count(countSuppressed, dropped)
	return out, nil
}

// detach sets the trip id of rows of unpublished trips to null (the
// TraceGate's Apply) in a batch about to be written, and counts the rows it
// detaches and the rows that came without a trip id (trip ends the
// segmenter detached). It releases rec.
func (f *classFn) detach(mem memory.Allocator, rec arrow.RecordBatch, count func(string, int64)) (arrow.RecordBatch, error) {
	defer rec.Release()
	ti := rec.Schema().FieldIndices(f.w.p.Mobility.TripIDColumn)[0]
	trip, ok := rec.Column(ti).(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("mobility: trip column is %s", rec.Column(ti).DataType())
	}
	if n := trip.NullN(); n > 0 {
		count(countDetachedEnds, int64(n))
	}
	tb := array.NewInt64Builder(mem)
	defer tb.Release()
	tb.Reserve(trip.Len())
	var detached int64
	for i := range trip.Len() {
		if trip.IsValid(i) && f.pub[trip.Value(i)] {
			tb.UnsafeAppend(trip.Value(i))
			continue
		}
		if trip.IsValid(i) {
			detached++
		}
		tb.UnsafeAppendBoolToBitmap(false)
	}
	tc := tb.NewArray()
	defer tc.Release()
	cols := slices.Clone(rec.Columns())
	cols[ti] = tc
	if detached > 0 {
		count(countDetached, detached)
	}
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows()), nil
}

// countBuckets counts the written rows of res per published time bucket
// (anonymize.OrderCounts), for the commit step's output order.
func (f *classFn) countBuckets(res arrow.RecordBatch, count func(string, int64)) error {
	oc, err := f.w.st.NewOrderCounts()
	if err != nil {
		return err
	}
	if err := oc.Add(res); err != nil {
		return err
	}
	for _, b := range oc.Buckets() {
		if b.Rows > 0 {
			count(orderBucketKey(b), b.Rows)
		}
	}
	return nil
}

// Generalize makes the transformed batches k-anonymous, exactly as the
// single-machine Runner does: a distributed histogram of quasi-identifier
// combinations (per subject by default) by CombinePerKey and one global
// Combine, kanon's optimal search on it, then a second ParDo that
// generalises and suppresses with the search's decision as a side input.
// Without a kanon block it only projects the written columns. It returns the
// output batches, the decision (zero or one JSON element), the sizes of the
// written classes (for independent verification) and row counts, or an
// error when the policy does not parse.
func Generalize(s beam.Scope, cfg Config, trans beam.PCollection) (out, decision, classes, counts beam.PCollection, err error) {
	out, decision, classes, counts, _, err = generalize(s, cfg, trans, beam.CreateList(s, []RiskPart{}))
	return out, decision, classes, counts, err
}

// generalizeSides are generalize's further outputs, for the linkage
// measure: the trace gate's published trip ids, the merged
// microaggregation state and the written rows' linkage states
// (RiskPart, one per bundle).
type generalizeSides struct {
	published, micro, written beam.PCollection
}

// generalize is Generalize; cands are the linkage measure's merged
// candidates (RiskCandidates), for indexing the written rows (an empty
// collection: no linkage measure).
func generalize(s beam.Scope, cfg Config, trans, cands beam.PCollection) (out, decision, classes, counts beam.PCollection, sides generalizeSides, err error) {
	s = s.Scope("tarnkappe.Generalize")
	p, err := anonymize.ParsePolicy(cfg.PolicyFile, cfg.Policy)
	if err != nil {
		return out, decision, classes, counts, sides, fmt.Errorf("tarnkappe/beam: %w", err)
	}
	if err := supported(p); err != nil {
		return out, decision, classes, counts, sides, err
	}
	// Without mobility the mobility side inputs are empty.
	thin := beam.CreateList(s, []Below{})
	state := beam.CreateList(s, [][]byte{})
	published := beam.CreateList(s, []int64{})
	micro := Micro(s, cfg, p, trans)
	var extra []beam.PCollection
	if m := p.Mobility; m != nil {
		thin = beam.ParDo(s, &belowFn{K: m.K}, beam.CombinePerKey(s, capSetFn{K: m.K}, beam.ParDo(s, &cellsFn{workerDoFn: wf(cfg)}, trans)))
		if m.TraceK > 0 {
			points := beam.CombinePerKey(s, tripPointsFn{}, beam.ParDo(s, &tracePointsFn{workerDoFn: wf(cfg)}, trans))
			byTrace := beam.GroupByKey(s, beam.ParDo(s, &traceKeyFn{}, points, beam.SideInput{Input: thin}))
			published = beam.ParDo(s, &publishFn{K: m.TraceK}, byTrace)
		}
	}
	if p.KAnon != nil {
		pairs := beam.ParDo(s, &combosFn{workerDoFn: wf(cfg)}, trans, beam.SideInput{Input: thin})
		var summed beam.PCollection
		if k := p.KAnon; (k.L != nil || k.T != nil) && (k.PerSubject == nil || *k.PerSubject) {
			summed = beam.CombinePerKey(s, minInt64, pairs) // first input position
		} else {
			summed = beam.CombinePerKey(s, sumInt64, pairs)
		}
		hist := beam.Combine(s, histCombineFn{}, beam.ParDo(s, toEntry, summed))
		decision = beam.ParDo(s, &searchFn{Cfg: cfg}, hist)
		if p.Mobility != nil {
			state = settle(s, cfg, p, trans, decision, thin)
		}
	} else {
		decision = beam.CreateList(s, [][]byte{})
	}
	var members, groups, written beam.PCollection
	out, members, groups, counts, written = beam.ParDo5(s, &classFn{workerDoFn: wf(cfg)}, trans,
		beam.SideInput{Input: decision}, beam.SideInput{Input: thin}, beam.SideInput{Input: state}, beam.SideInput{Input: published},
		beam.SideInput{Input: micro}, beam.SideInput{Input: cands})
	distinct := beam.CombinePerKey(s, sumInt64, members)
	perClass := beam.CombinePerKey(s, sumInt64, beam.ParDo(s, memberClass, distinct))
	classes = beam.ParDo(s, toEntry, perClass)
	if m := p.Mobility; m != nil {
		extra = append(extra, beam.ParDo(s, &groupStatFn{K: m.K}, beam.CombinePerKey(s, capSetFn{K: m.K}, groups)))
		// The final state travels to the commit step as a count-like
		// element, so that Generalize keeps its outputs.
		extra = append(extra, beam.ParDo(s, stateCount, state))
	}
	if len(extra) > 0 {
		counts = beam.Flatten(s, append([]beam.PCollection{counts}, extra...)...)
	}
	return out, decision, classes, counts, generalizeSides{published: published, micro: micro, written: written}, nil
}

func sumInt64(a, b int64) int64 { return a + b }
func minInt64(a, b int64) int64 { return min(a, b) }

// inputPos packs an input file's ordinal and a row number into one
// ordered int64 (rows below 2^40 per file).
func inputPos(file int, row int64) int64 { return int64(file)<<40 | row }

// memberClass maps a (class, subject) membership to its class.
// Per subject the key is (class, subject) and counts once; per row it is
// (class, "", "rows") with the row count. With l/t the sensitive value
// follows, (class, subject, "subject", value) or (class, "", "rows",
// value), and the output key is (class, value), length-prefixed.
func memberClass(key string, n int64, emit func(string, int64)) error {
	f, err := splitFields(key)
	switch {
	case err == nil && len(f) == 2:
		emit(f[0], 1)
	case err == nil && len(f) == 3:
		emit(f[0], n)
	case err == nil && len(f) == 4 && f[2] == "subject":
		emit(string(appendField(appendField(nil, f[0]), f[3])), 1)
	case err == nil && len(f) == 4 && f[2] == "rows":
		emit(string(appendField(appendField(nil, f[0]), f[3])), n)
	default:
		return fmt.Errorf("tarnkappe/beam: corrupt class membership key")
	}
	return nil
}

// ---- DP release ----

// shardFn splits a batch by subject shard, so that every subject's rows
// meet in one place for contribution bounding.
type shardFn struct {
	workerDoFn
}

func (f *shardFn) ProcessElement(ctx context.Context, b Batch, emit func(int, Batch)) error {
	mem := memory.DefaultAllocator
	rec, err := b.decode(mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	c := rec.Schema().FieldIndices(f.w.p.Subject)
	if len(c) == 0 {
		return fmt.Errorf("tarnkappe/beam: release: subject column %q is missing", f.w.p.Subject)
	}
	subj, err := rowTexts(f.w.p.Subject, rec.Column(c[0]), b.Base)
	if err != nil {
		return b.fail(f.Cfg, err)
	}
	n := f.Cfg.shards()
	idx := make([][]int32, n)
	for i, s := range subj {
		h := fnv.New64a()
		h.Write([]byte(s))
		sh := int(h.Sum64() % uint64(n))
		idx[sh] = append(idx[sh], int32(i))
	}
	for sh, rows := range idx {
		if len(rows) == 0 {
			continue
		}
		sub, err := takeRows(ctx, mem, rec, rows)
		if err != nil {
			return fmt.Errorf("tarnkappe/beam: release: %w", err)
		}
		ob, err := b.encodeLike(sub, mem)
		sub.Release()
		if err != nil {
			return err
		}
		emit(sh, ob)
	}
	return nil
}

func takeRows(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, rows []int32) (arrow.RecordBatch, error) {
	if len(rows) == int(rec.NumRows()) {
		rec.Retain()
		return rec, nil
	}
	ib := array.NewInt32Builder(mem)
	defer ib.Release()
	ib.AppendValues(rows, nil)
	ix := ib.NewArray()
	defer ix.Release()
	d, err := compute.Take(ctx, compute.TakeOptions{BoundsCheck: false}, compute.NewDatumWithoutOwning(rec), compute.NewDatumWithoutOwning(ix))
	if err != nil {
		return nil, err
	}
	defer d.Release()
	out := d.(*compute.RecordDatum).Value
	out.Retain()
	return out, nil
}

// partialFn bounds the contributions of one shard of subjects and returns
// its pre-noise partial (dp.Partial, serialised).
type partialFn struct {
	Cfg Config
}

func (f *partialFn) ProcessElement(ctx context.Context, shard int, batches func(*Batch) bool, emit func([]byte)) error {
	w, err := newWorker(f.Cfg)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: %w", err)
	}
	defer w.close()
	mem := memory.DefaultAllocator
	if err := w.planInput(ctx, f.Cfg.Inputs[0]); err != nil {
		return fmt.Errorf("tarnkappe/beam: input %s: %w", f.Cfg.Inputs[0], err)
	}
	opts, err := w.st.DPOptions()
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: %w", err)
	}
	ag, err := dp.NewAggregator(opts)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	var b Batch
	for batches(&b) {
		rec, err := b.decode(mem)
		if err != nil {
			ag.Close()
			return err
		}
		in, err := w.st.ReleaseInput(rec)
		rec.Release()
		if err == nil {
			err = ag.Add(ctx, in)
			in.Release()
		}
		if err != nil {
			ag.Close()
			return b.fail(f.Cfg, fmt.Errorf("release: %w", err))
		}
	}
	p, err := ag.Partial(ctx)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	raw, err := p.MarshalBinary()
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	emit(raw)
	return nil
}

// partialCombineFn merges the shards' partials (disjoint subjects) into the
// partial of the whole input. The accumulator is the serialised partial
// (nil when empty) so that any runner can ship it.
type partialCombineFn struct{}

func (partialCombineFn) CreateAccumulator() []byte { return nil }

func (partialCombineFn) AddInput(a, e []byte) ([]byte, error) { return mergePartials(a, e) }

func (partialCombineFn) MergeAccumulators(a, b []byte) ([]byte, error) { return mergePartials(a, b) }

func (partialCombineFn) ExtractOutput(a []byte) []byte { return a }

func mergePartials(a, b []byte) ([]byte, error) {
	if len(a) == 0 {
		return b, nil
	}
	if len(b) == 0 {
		return a, nil
	}
	var pa, pb dp.Partial
	if err := pa.UnmarshalBinary(a); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	if err := pb.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	if err := pa.Merge(&pb); err != nil {
		return nil, fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	return pa.MarshalBinary()
}

// ReleasePartial is the keyed half of Release: rows are sharded by subject
// (GroupByKey), each shard's contributions are bounded by dp.Aggregator
// (L0 partitions per subject, L∞ rows per partition, clamping), and the
// shards' partials merge in a CombineFn into one pre-noise dp.Partial
// (serialised). That partial is NOT private; only ReleaseResult publishes.
func ReleasePartial(s beam.Scope, cfg Config, trans beam.PCollection) beam.PCollection {
	s = s.Scope("tarnkappe.ReleasePartial")
	keyed := beam.ParDo(s, &shardFn{workerDoFn: wf(cfg)}, trans)
	grouped := beam.GroupByKey(s, keyed)
	partials := beam.ParDo(s, &partialFn{Cfg: cfg}, grouped)
	return beam.Combine(s, partialCombineFn{}, partials)
}

// ReleaseOutput is a released table and what it spent.
type ReleaseOutput struct {
	IPC     []byte // the dp.Result record as an Arrow IPC stream
	Figures []byte // anonymize.DPFigures as JSON
}

// releaseFn draws the noise, once per partition and aggregate, under the
// policy's budget.
type releaseFn struct {
	Cfg Config
}

func (f *releaseFn) ProcessElement(ctx context.Context, raw []byte, emit func(ReleaseOutput)) error {
	w, err := newWorker(f.Cfg)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: %w", err)
	}
	defer w.close()
	if err := w.planInput(ctx, f.Cfg.Inputs[0]); err != nil {
		return fmt.Errorf("tarnkappe/beam: input %s: %w", f.Cfg.Inputs[0], err)
	}
	if len(raw) == 0 {
		return errors.New("tarnkappe/beam: release: no rows left to release")
	}
	var p dp.Partial
	if err := p.UnmarshalBinary(raw); err != nil {
		return fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	out, err := release(ctx, w, &p)
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: release: %w", err)
	}
	emit(out)
	return nil
}

// Release computes the policy's differentially private aggregates:
// ReleasePartial, then noise and partition selection once, at the end, with
// the policy's (ε, δ). The result has zero or one element.
func Release(s beam.Scope, cfg Config, trans beam.PCollection) beam.PCollection {
	p := ReleasePartial(s, cfg, trans)
	return beam.ParDo(s.Scope("tarnkappe.Release"), &releaseFn{Cfg: cfg}, p)
}

// ---- writing ----

// shardWriteFn writes each output batch to its own Arrow IPC file in the
// temporary directory and emits its name; names are unique per attempt, so
// a retried bundle's orphan files are never merged.
type shardWriteFn struct {
	Cfg Config
}

func (f *shardWriteFn) ProcessElement(ctx context.Context, b Batch, emit func(string)) error {
	mem := memory.DefaultAllocator
	rec, err := b.decode(mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	name := fmt.Sprintf("part-%06d-%06d-%015d-%s.arrow", b.Shard, b.File, b.Base, hex.EncodeToString(rnd[:]))
	sk, err := arrowio.Create(filepath.Join(f.Cfg.TempDir, name), rec.Schema(), arrowio.CreateOptions{Mem: mem})
	if err != nil {
		return fmt.Errorf("tarnkappe/beam: output shard: %w", err)
	}
	if err := sk.Write(rec); err != nil {
		sk.Abort()
		return fmt.Errorf("tarnkappe/beam: output shard: %w", err)
	}
	if err := sk.Commit(); err != nil {
		return fmt.Errorf("tarnkappe/beam: output shard: %w", err)
	}
	emit(name)
	return nil
}

// Anonymize is the whole policy as one pipeline: Read → OptOut and column
// actions → Generalize (k-anonymity) → shards → a final step that merges the
// shards into cfg.Output (temporary file, renamed), writes the DP release
// and the report. Nothing is committed unless every step succeeded.
func Anonymize(s beam.Scope, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.MeasureKey == nil {
		cfg.MeasureKey = make([]byte, linkage.KeySize)
		if _, err := rand.Read(cfg.MeasureKey); err != nil {
			return err
		}
	}
	w, err := newWorker(cfg)
	if err != nil {
		return err
	}
	p := w.p
	hasRelease, hasMobility := p.Release != nil, p.Mobility != nil
	w.close()
	raw, inCounts := Read(s, cfg)
	var trans, tCounts beam.PCollection
	allCounts := []beam.PCollection{inCounts}
	// Without mobility the measurements' side inputs are empty.
	start := beam.CreateList(s, []WindowStart{})
	groups := beam.CreateList(s, []UtilGroup{})
	relink := beam.CreateList(s, [][]byte{})
	var kept beam.PCollection
	if hasMobility {
		// Opt-out first (input row numbers known), then trips per subject;
		// the column actions run on the trips.
		var oCounts beam.PCollection
		kept, oCounts = OptOut(s, cfg, raw)
		trans, tCounts = Trips(s, cfg, kept)
		allCounts = append(allCounts, oCounts)
		var mCounts beam.PCollection
		start, groups, mCounts, relink = Measures(s, cfg, p, kept, trans)
		if mCounts.IsValid() {
			allCounts = append(allCounts, mCounts)
		}
	} else {
		trans, tCounts = beam.ParDo2(s.Scope("tarnkappe.OptOutPseudonymize"), &transformFn{workerDoFn: wf(cfg), OptOut: true, Columns: true}, raw)
	}
	cands := beam.CreateList(s, []RiskPart{})
	if hasMobility {
		cands = RiskCandidates(s, cfg, trans)
	}
	out, decision, classes, gCounts, sides, err := generalize(s, cfg, trans, cands)
	if err != nil {
		return err
	}
	risk := beam.CreateList(s, []RiskPart{})
	if hasMobility {
		risk = Risk(s, cfg, kept, trans, cands, sides.published, decision, sides.micro, sides.written)
	}
	shards := beam.ParDo(s.Scope("tarnkappe.WriteShards"), &shardWriteFn{Cfg: cfg}, out)
	counts := beam.CombinePerKey(s, sumInt64, beam.Flatten(s, append(allCounts, tCounts, gCounts)...))
	rel := beam.CreateList(s, []ReleaseOutput{})
	if hasRelease {
		rel = Release(s, cfg, trans)
	}
	fin := s.Scope("tarnkappe.Commit")
	beam.ParDo0(fin, &finalizeFn{Cfg: cfg}, beam.Impulse(fin),
		beam.SideInput{Input: shards}, beam.SideInput{Input: counts}, beam.SideInput{Input: decision},
		beam.SideInput{Input: classes}, beam.SideInput{Input: rel},
		beam.SideInput{Input: start}, beam.SideInput{Input: groups}, beam.SideInput{Input: relink},
		beam.SideInput{Input: risk}, beam.SideInput{Input: sides.published})
	return nil
}

func init() {
	for _, t := range []any{(*readFn)(nil), (*transformFn)(nil), (*combosFn)(nil), (*searchFn)(nil), (*classFn)(nil),
		(*shardFn)(nil), (*partialFn)(nil), (*releaseFn)(nil), (*shardWriteFn)(nil), (*finalizeFn)(nil),
		(*histCombineFn)(nil), (*partialCombineFn)(nil), (*Batch)(nil), (*HistEntry)(nil), (*ReleaseOutput)(nil), (*histAcc)(nil)} {
		beam.RegisterType(reflect.TypeOf(t).Elem())
	}
	beam.RegisterFunction(sumInt64)
	beam.RegisterFunction(minInt64)
	beam.RegisterFunction(toEntry)
	beam.RegisterFunction(memberClass)
	beam.RegisterCoder(reflect.TypeOf(histAcc{}), encHist, decHist)
}
