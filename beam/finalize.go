package beam

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/dp"
)

// release draws the noise of a merged partial under the policy's budget and
// returns the released table and what it spent.
func release(ctx context.Context, w *worker, p *dp.Partial) (ReleaseOutput, error) {
	rel := w.p.Release
	acct, err := dp.NewAccountant(rel.Epsilon, rel.Delta)
	if err != nil {
		return ReleaseOutput{}, err
	}
	mem := memory.DefaultAllocator
	res, err := p.Release(ctx, acct, dp.ReleaseOptions{Mem: mem})
	if err != nil {
		return ReleaseOutput{}, err
	}
	defer res.Release()
	b, err := encodeBatch(0, 0, res.Record, mem)
	if err != nil {
		return ReleaseOutput{}, err
	}
	df, err := anonymize.ReleaseFigures(res, acct.Spent())
	if err != nil {
		return ReleaseOutput{}, err
	}
	fig, err := json.Marshal(df)
	if err != nil {
		return ReleaseOutput{}, err
	}
	return ReleaseOutput{IPC: b.IPC, Figures: fig}, nil
}

// finalizeFn is the single commit step: it runs once every other step has
// succeeded (its side inputs are complete only then), merges the output
// shards into the output file through a temporary file and a rename,
// gathers the run's figures, has anonymize's report builder (the Runner's
// own, Steps.Report) check them and make the report, commits the output,
// the release and the report together, and removes the shards.
type finalizeFn struct {
	Cfg Config
}

func (f *finalizeFn) ProcessElement(ctx context.Context, _ []byte, shards func(*string) bool, counts func(*string, *int64) bool,
	decision func(*[]byte) bool, classes func(*HistEntry) bool, rel func(*ReleaseOutput) bool,
	starts func(*WindowStart) bool, groups func(*UtilGroup) bool, relink func(*[]byte) bool, risk func(*RiskPart) bool, published func(*int64) bool) (err error) {
	cfg := f.Cfg
	defer func() {
		os.RemoveAll(cfg.TempDir)
		if err != nil {
			err = fmt.Errorf("tarnkappe/beam: %w", err)
		}
	}()
	fig := &anonymize.Figures{Tool: "tarnkappe-beam", Input: cfg.Inputs[0], Output: cfg.Output, ReleaseOutput: cfg.ReleaseOutput, Started: time.Now()}
	w, err := newWorker(cfg)
	if err != nil {
		return err
	}
	defer w.close()
	if err := w.planInput(ctx, cfg.Inputs[0]); err != nil {
		return fmt.Errorf("input %s: %w", cfg.Inputs[0], err)
	}
	// The re-linking lint fails the run before anything is merged.
	if err := checkRelink(w, relink); err != nil {
		return err
	}
	// Trips are made per subject shard, each sorted by time (GroupByKey);
	// without a mobility block no step depends on order.
	fig.InputOrder = "as is"
	if w.p.Mobility != nil {
		fig.InputOrder = "sorted"
	}
	if fig.InputFile, err = anonymize.FingerprintFiles(w.kr, "", cfg.Inputs...); err != nil {
		return err
	}
	t, err := readTally(counts)
	if err != nil {
		return err
	}
	d, err := decodeDecision(decision)
	if err != nil {
		return err
	}
	if err := t.figures(w.p, d, fig); err != nil {
		return err
	}
	out := &outputs{}
	defer out.abort()
	var ms *measures
	if w.p.Mobility != nil {
		if ms, err = newMeasures(w, starts); err != nil {
			return err
		}
		// The linkage measure: every partial state merged, and
		// mobility.max_linkage checked before anything is written.
		link, err := riskMeasure(w, risk, published, decision)
		if err != nil {
			return fmt.Errorf("linkage: %w", err)
		}
		if ms.risk, err = link.Figures(ctx); err != nil {
			return err
		}
		if err := w.st.CheckLinkage(ms.risk); err != nil {
			return err
		}
	}
	if fig.Rows.Out, err = out.merge(ctx, cfg, w, t.buckets, shards, ms, fig.Mobility); err != nil {
		return err
	}
	if fig.Rows.Out != t.n[countOut] {
		return fmt.Errorf("output: merged %d rows, the steps wrote %d", fig.Rows.Out, t.n[countOut])
	}
	if d != nil {
		if fig.KAnon, err = kanonFigures(w.st, d, t.settled, classes); err != nil {
			return err
		}
	}
	if ms != nil {
		if err := ms.figures(ctx, fig, groups, t.n[countUtilCut] > 0); err != nil {
			return err
		}
	}
	if fig.DP, err = out.release(cfg, rel); err != nil {
		return err
	}
	rep, err := w.st.Report(fig)
	if err != nil {
		return err
	}
	return out.commit(ctx, cfg, rep)
}

// tally is what the steps counted (CountPerKey over every step's counts).
type tally struct {
	n           map[string]int64
	buckets     []anonymize.OrderBucket // written rows per published time bucket
	optSubjects int                     // distinct opted-out subjects met
	maskedWhole map[string]int64        // per mask column: values masked whole
	settled     *SettleState            // the settle rounds' outcome (mobility and kanon)
}

func readTally(counts func(*string, *int64) bool) (*tally, error) {
	t := &tally{n: map[string]int64{}}
	var k string
	var n int64
	for counts(&k, &n) {
		if strings.HasPrefix(k, optOutSubjectPrefix) {
			t.optSubjects++
			continue
		}
		if col, ok := strings.CutPrefix(k, maskedWholePrefix); ok {
			if t.maskedWhole == nil {
				t.maskedWhole = map[string]int64{}
			}
			t.maskedWhole[col] += n
			continue
		}
		if b, ok := strings.CutPrefix(k, orderBucketPrefix); ok {
			ob, err := parseOrderBucket(b, n)
			if err != nil {
				return nil, err
			}
			t.buckets = append(t.buckets, ob)
			continue
		}
		if strings.HasPrefix(k, settlePrefix) {
			t.settled = &SettleState{}
			if err := json.Unmarshal([]byte(k[len(settlePrefix):]), t.settled); err != nil {
				return nil, fmt.Errorf("settle state: %w", err)
			}
			continue
		}
		t.n[k] += n
	}
	if t.n[countIn] == 0 {
		return nil, errors.New("the input has no rows")
	}
	return t, nil
}

// figures puts the counts into fig (the written rows are counted by the
// merge) and checks the settle rounds' outcome against the decision d.
func (t *tally) figures(p *anonymize.Policy, d *anonymize.KAnonDecision, fig *anonymize.Figures) error {
	c := t.n
	fig.Rows = anonymize.RowFigures{In: c[countIn], Suppressed: c[countSuppressed], OptedOut: c[countOptOut], Trimmed: c[countTrimmed]}
	fig.OptOutSubjects = t.optSubjects
	fig.OptOutNotNormalized = c[countOptOutNotNormalized]
	for _, col := range p.Columns {
		if col.Action == anonymize.ActionMask {
			// Every mask column, as on one machine, with the rows it wrote whole.
			if fig.MaskedWhole == nil {
				fig.MaskedWhole = map[string]int64{}
			}
			fig.MaskedWhole[col.Name] = t.maskedWhole[col.Name]
		}
	}
	if p.Mobility == nil {
		return nil
	}
	fig.Mobility = &anonymize.MobilityFigures{Trips: c[countTrips], CellSuppressedRows: c[countCellSuppressed],
		RowsDetached: c[countDetached], RowsDetachedEnds: c[countDetachedEnds],
		OutputGroups: int(c[countGroups]), OutputGroupsBelowK: int(c[countGroupsBelowK])}
	if d == nil {
		return nil
	}
	s := t.settled
	if s == nil {
		return errors.New("mobility: no settle state")
	}
	if err := checkSettled(p, d, s); err != nil {
		return err
	}
	fig.Mobility.SettleRounds, fig.Mobility.SettleCellGroups, fig.Mobility.SettleClasses = s.Rounds, s.Cells, s.Classes
	return nil
}

// kanonFigures are the decision with the settle rounds' classes added and
// the members of the written classes (per sensitive value with l/t).
func kanonFigures(st *anonymize.Steps, d *anonymize.KAnonDecision, settled *SettleState, classes func(*HistEntry) bool) (*anonymize.KAnonFigures, error) {
	if settled != nil {
		// The settle rounds' classes are suppressed too.
		d.Suppressed = settled.Suppressed
		d.DiversitySuppressed += settled.DivClasses
	}
	k := &anonymize.KAnonFigures{Decision: d}
	perClass := map[string]int64{}
	sens := st.KAnonSensitive() != ""
	var e HistEntry
	for classes(&e) {
		if !sens {
			k.Sizes = append(k.Sizes, e.N)
			continue
		}
		// l/t: members per (class, sensitive value) (memberClass).
		f, err := splitFields(e.Key)
		if err != nil || len(f) != 2 {
			return nil, errors.New("kanon: corrupt class member key")
		}
		k.Members = append(k.Members, anonymize.KAnonMember{Class: f[0], Sensitive: f[1], N: e.N})
		perClass[f[0]] += e.N
	}
	for _, n := range perClass {
		k.Sizes = append(k.Sizes, n)
	}
	return k, nil
}

// outputs are the finalize step's files: the data (merged from the shards),
// the release and the report, committed together by commit (all or none:
// arrowio.CommitAll), aborted by abort unless commit succeeded.
type outputs struct {
	data, rel *arrowio.Sink
	report    *arrowio.File
	committed bool
}

// merge writes the shards' rows to the output through the Runner's
// output-order step (anonymize.OutputOrder: by published time bucket, at
// random within, partitions sized by buckets, the written rows per bucket),
// so that the file's order says nothing the rows do not; the shards' own
// order follows subject shards and trips. It hands every batch to the
// measurements (when ms is not nil; in shard name order, as before) and,
// with mobility scope trip, counts the trip ids written into mf. It
// returns the rows written.
func (o *outputs) merge(ctx context.Context, cfg Config, w *worker, buckets []anonymize.OrderBucket, shards func(*string) bool,
	ms *measures, mf *anonymize.MobilityFigures) (int64, error) {
	var names []string
	var name string
	for shards(&name) {
		names = append(names, name)
	}
	sort.Strings(names)
	counts, err := w.st.NewOrderCounts()
	if err != nil {
		return 0, err
	}
	for _, b := range buckets {
		counts.AddBucket(b)
	}
	order, err := w.st.NewOutputOrder(counts, cfg.TempDir)
	if err != nil {
		return 0, err
	}
	defer order.Close()
	var trips *tripCount
	if m := w.p.Mobility; m != nil && m.Scope == "trip" {
		trips = &tripCount{column: m.TripIDColumn, ids: map[int64]struct{}{}}
	}
	for _, nm := range names {
		if err := copyShard(ctx, filepath.Join(cfg.TempDir, nm), order, ms, trips); err != nil {
			return 0, err
		}
	}
	sink, err := arrowio.Create(cfg.Output, w.st.Output(), arrowio.CreateOptions{Mem: memory.DefaultAllocator})
	if err != nil {
		return 0, err
	}
	o.data = sink
	written, err := order.WriteTo(ctx, sink)
	if err != nil {
		return 0, fmt.Errorf("output: %w", err)
	}
	if trips != nil {
		trips.figures(mf)
	}
	return written, nil
}

// tripCount counts the trip ids of the written rows (scope trip), as the
// Runner's tripIDs measure does.
type tripCount struct {
	column        string
	with, without int64
	ids           map[int64]struct{}
}

func (c *tripCount) add(rec arrow.RecordBatch) error {
	trip, ok := rec.Column(rec.Schema().FieldIndices(c.column)[0]).(*array.Int64)
	if !ok {
		return fmt.Errorf("trip ids: column %q is not int64", c.column)
	}
	c.without += int64(trip.NullN())
	c.with += int64(trip.Len() - trip.NullN())
	for i := range trip.Len() {
		if trip.IsValid(i) {
			c.ids[trip.Value(i)] = struct{}{}
		}
	}
	return nil
}

func (c *tripCount) figures(mf *anonymize.MobilityFigures) {
	mf.RowsWithTripID, mf.RowsWithoutTripID, mf.TripsPublished = c.with, c.without, len(c.ids)
}

// release writes the computed release (if the policy has a release block,
// it is there: the report builder checks) and returns its figures.
func (o *outputs) release(cfg Config, rel func(*ReleaseOutput) bool) (*anonymize.DPFigures, error) {
	var ro ReleaseOutput
	if !rel(&ro) {
		return nil, nil
	}
	var fig anonymize.DPFigures
	if err := json.Unmarshal(ro.Figures, &fig); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	mem := memory.DefaultAllocator
	rec, err := Batch{IPC: ro.IPC, Rows: -1}.decodeAny(mem)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	defer rec.Release()
	if o.rel, err = arrowio.Create(cfg.ReleaseOutput, rec.Schema(), arrowio.CreateOptions{Mem: mem}); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	if err := o.rel.Write(rec); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return &fig, nil
}

// commit writes the report and commits it with the data and the release,
// all or none.
func (o *outputs) commit(ctx context.Context, cfg Config, rep *anonymize.Report) error {
	group := []arrowio.Output{o.data}
	if o.rel != nil {
		group = append(group, o.rel)
	}
	if cfg.Report != "" {
		f, err := arrowio.CreateFile(cfg.Report)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		o.report = f
		if err := rep.WriteJSON(f); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		group = append(group, f)
	}
	if err := arrowio.CommitAll(ctx, group...); err != nil {
		return err
	}
	o.committed = true
	return nil
}

func (o *outputs) abort() {
	if o.committed {
		return
	}
	if o.data != nil {
		o.data.Abort()
	}
	if o.rel != nil {
		o.rel.Abort()
	}
	if o.report != nil {
		o.report.Abort()
	}
}

// decodeAny decodes a batch without checking its row count.
func (b Batch) decodeAny(mem memory.Allocator) (arrow.RecordBatch, error) {
	r, err := ipc.NewReader(bytes.NewReader(b.IPC), ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	defer r.Release()
	if !r.Next() {
		if r.Err() != nil {
			return nil, r.Err()
		}
		return nil, errors.New("no record")
	}
	rec := r.RecordBatch()
	rec.Retain()
	return rec, nil
}

// copyShard hands a shard's batches to the output order, the
// measurements (when ms is not nil) and the trip id count (when trips is
// not nil).
func copyShard(ctx context.Context, path string, order *anonymize.OutputOrder, ms *measures, trips *tripCount) error {
	src, err := arrowio.Open(ctx, path, arrowio.OpenOptions{})
	if err != nil {
		return fmt.Errorf("output shard: %w", err)
	}
	defer src.Close()
	for src.Next() {
		rec := src.RecordBatch()
		if err := order.Add(ctx, rec); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if ms != nil {
			if err := ms.addOut(ctx, rec); err != nil {
				return err
			}
		}
		if trips != nil {
			if err := trips.add(rec); err != nil {
				return err
			}
		}
	}
	if err := src.Err(); err != nil {
		return fmt.Errorf("output shard %s: %w", path, err)
	}
	return nil
}
