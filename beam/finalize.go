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
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/dp"
)

// release draws the noise of a merged partial under the policy's budget and
// returns the released table and its report block.
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
	dr, err := w.st.DPReport(acct.Spent(), res.PartitionsKept)
	if err != nil {
		return ReleaseOutput{}, err
	}
	rep, err := json.Marshal(dr)
	if err != nil {
		return ReleaseOutput{}, err
	}
	return ReleaseOutput{IPC: b.IPC, Report: rep}, nil
}

// finalizeFn is the single commit step: it runs once every other step has
// succeeded (its side inputs are complete only then), merges the output
// shards into the output file through a temporary file and a rename,
// verifies k-anonymity of what was written, writes the release and the
// report, and removes the shards.
type finalizeFn struct {
	Cfg Config
}

func (f *finalizeFn) ProcessElement(ctx context.Context, _ []byte, shards func(*string) bool, counts func(*string, *int64) bool,
	decision func(*[]byte) bool, classes func(*HistEntry) bool, rel func(*ReleaseOutput) bool,
	sample func(*Sample) bool, starts func(*WindowStart) bool, groups func(*UtilGroup) bool, after func(*Sample) bool) (err error) {
	cfg := f.Cfg
	defer func() {
		os.RemoveAll(cfg.TempDir)
		if err != nil {
			err = fmt.Errorf("tarnkappe/beam: %w", err)
		}
	}()
	start := time.Now()
	w, err := newWorker(cfg)
	if err != nil {
		return err
	}
	defer w.close()
	if err := w.planInput(ctx, cfg.Inputs[0]); err != nil {
		return fmt.Errorf("input %s: %w", cfg.Inputs[0], err)
	}
	c := map[string]int64{}
	var k string
	var n int64
	optSubjects := 0
	var maskedWhole map[string]int64 // every mask column, as on one machine
	for _, col := range w.p.Columns {
		if col.Action == anonymize.ActionMask {
			if maskedWhole == nil {
				maskedWhole = map[string]int64{}
			}
			maskedWhole[col.Name] = 0
		}
	}
	var settled *SettleState
	for counts(&k, &n) {
		if strings.HasPrefix(k, optOutSubjectPrefix) {
			optSubjects++
			continue
		}
		if col, ok := strings.CutPrefix(k, maskedWholePrefix); ok {
			if maskedWhole == nil {
				maskedWhole = map[string]int64{}
			}
			maskedWhole[col] += n
			continue
		}
		if strings.HasPrefix(k, settlePrefix) {
			settled = &SettleState{}
			if err := json.Unmarshal([]byte(k[len(settlePrefix):]), settled); err != nil {
				return fmt.Errorf("settle state: %w", err)
			}
			continue
		}
		c[k] += n
	}
	if c[countIn] == 0 {
		return errors.New("the input has no rows")
	}
	var d *anonymize.KAnonDecision
	if d, err = decodeDecision(decision); err != nil {
		return err
	}
	if m := w.p.Mobility; m != nil {
		if d != nil {
			if settled == nil {
				return errors.New("mobility: no settle state")
			}
			if err := checkSettled(w.p, d, settled); err != nil {
				return err
			}
		}
		if c[countGroupsBelowK] > 0 {
			return fmt.Errorf("mobility: verification failed: %d written (cell, bucket) groups have fewer than k=%d subjects", c[countGroupsBelowK], m.K)
		}
	}
	var names []string
	var name string
	for shards(&name) {
		names = append(names, name)
	}
	// Shard names sort by (trip shard, input file, row): without mobility the
	// output keeps the input order.
	sort.Strings(names)

	mem := memory.DefaultAllocator
	sink, err := arrowio.Create(cfg.Output, w.st.Output(), arrowio.CreateOptions{Mem: mem})
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			sink.Abort()
		}
	}()
	var ms *measures
	if w.p.Mobility != nil {
		if ms, err = newMeasures(w, cfg, starts); err != nil {
			return err
		}
	}
	var written int64
	for _, nm := range names {
		n, err := copyShard(ctx, filepath.Join(cfg.TempDir, nm), sink, ms)
		if err != nil {
			return err
		}
		written += n
	}
	if written != c[countOut] {
		return fmt.Errorf("output: merged %d rows, the steps wrote %d", written, c[countOut])
	}
	rep := &anonymize.Report{Tool: "tarnkappe-beam", Policy: w.p.File(), Input: cfg.Inputs[0], Output: cfg.Output,
		Started: start.UTC().Truncate(time.Second), Columns: map[string]string{}, Keys: w.r.KeyIDs(),
		Rows: anonymize.RowCounts{In: c[countIn], Out: written, Suppressed: c[countSuppressed], FilteredBy: map[string]int64{}}}
	m := w.p.Mobility
	for _, f := range w.st.Mid().Fields() {
		if _, ok := w.p.Columns.Lookup(f.Name); !ok {
			d := fmt.Sprintf("H3 cell (resolution %d) of the trimmed coordinates", m.CellResolution)
			if f.Name == m.TripIDColumn {
				d = "random per-trip id (mobility scope trip)"
			}
			rep.ColumnDetails = append(rep.ColumnDetails, anonymize.ColumnDetail{Name: f.Name, Action: "added", Detail: d})
			rep.Columns[f.Name] = "added"
		}
	}
	for _, col := range w.p.Columns {
		rep.Columns[col.Name] = string(col.Action)
		rep.ColumnDetails = append(rep.ColumnDetails, anonymize.ColumnDetail{Name: col.Name, Action: string(col.Action)})
	}
	if w.p.OptOut != nil {
		rep.Rows.FilteredBy["opt_out"] = c[countOptOut]
		rep.Rows.Filtered = c[countOptOut]
		rep.OptOut = &anonymize.OptOutReport{Listed: w.r.OptOutListed(), Rows: c[countOptOut], Subjects: optSubjects,
			Normalize: w.p.OptOut.NormalizeMode(), RowsNotNormalized: c[countOptOutNotNormalized]}
	}
	rep.MaskedWhole = maskedWhole
	if m != nil {
		rep.Rows.FilteredBy["trip_trim"] = c[countTrimmed]
		rep.Rows.Filtered += c[countTrimmed]
		rep.Mobility = &anonymize.MobilityReport{Trips: c[countTrips], TrimmedRows: c[countTrimmed], TrimMetres: m.TrimMetres,
			TrimSeconds: m.TrimTime.D().Seconds(), CellColumn: m.CellColumn, CellResolution: m.CellResolution,
			UnicityPoints: m.UnicityPoints, K: m.K, SuppressedRows: c[countCellSuppressed], Scope: m.Scope,
			OutputGroups: int(c[countGroups]), OutputGroupsBelowK: int(c[countGroupsBelowK])}
		if settled != nil {
			rep.Mobility.SettleRounds, rep.Mobility.SettleCellGroups, rep.Mobility.SettleClasses = settled.Rounds, settled.Cells, settled.Classes
		}
		if m.TraceK > 0 {
			rep.Mobility.TraceK, rep.Mobility.TripsPublished, rep.Mobility.RowsDetached = m.TraceK, int(c[countPublished]), c[countDetached]
		}
	}
	if err := rep.Rows.Check(); err != nil {
		return err
	}
	if d != nil {
		if settled != nil {
			// The settle rounds' classes are suppressed too.
			d.Suppressed = settled.Suppressed
			d.DiversitySuppressed += settled.DivClasses
		}
		var sizes []int64
		var members []anonymize.KAnonMember
		perClass := map[string]int64{}
		sens := w.st.KAnonSensitive() != ""
		var e HistEntry
		for classes(&e) {
			if !sens {
				sizes = append(sizes, e.N)
				continue
			}
			// l/t: members per (class, sensitive value) (memberClass).
			f, err := splitFields(e.Key)
			if err != nil || len(f) != 2 {
				return errors.New("kanon: corrupt class member key")
			}
			members = append(members, anonymize.KAnonMember{Class: f[0], Sensitive: f[1], N: e.N})
			perClass[f[0]] += e.N
		}
		for _, n := range perClass {
			sizes = append(sizes, n)
		}
		if err := w.r.KAnonReport(rep, d, sizes); err != nil {
			return err
		}
		if err := w.st.KAnonDiversityReport(rep, d, members); err != nil {
			return err
		}
	}
	if ms != nil {
		if err := ms.finish(ctx, rep, sample, after, groups, c[countUtilCut] > 0); err != nil {
			return err
		}
	}
	var relSink *arrowio.Sink
	var ro ReleaseOutput
	if rel(&ro) {
		var dr anonymize.DPReport
		if err := json.Unmarshal(ro.Report, &dr); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		dr.Output = cfg.ReleaseOutput
		rep.DP = &dr
		rec, err := Batch{IPC: ro.IPC, Rows: -1}.decodeAny(mem)
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		relSink, err = arrowio.Create(cfg.ReleaseOutput, rec.Schema(), arrowio.CreateOptions{Mem: mem})
		if err != nil {
			rec.Release()
			return fmt.Errorf("release: %w", err)
		}
		err = relSink.Write(rec)
		rec.Release()
		if err != nil {
			relSink.Abort()
			return fmt.Errorf("release: %w", err)
		}
	} else if w.p.Release != nil {
		return errors.New("release: the policy has a release block but no release was computed")
	}
	rep.Duration = time.Since(start).Seconds()
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		if relSink != nil {
			relSink.Abort()
		}
		return err
	}
	committed = true
	if err := sink.Commit(); err != nil {
		if relSink != nil {
			relSink.Abort()
		}
		return err
	}
	if relSink != nil {
		if err := relSink.Commit(); err != nil {
			return fmt.Errorf("release: %w", err)
		}
	}
	if cfg.Report != "" {
		tmp := cfg.Report + ".tmp"
		if err := os.WriteFile(tmp, js.Bytes(), 0o600); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if err := os.Rename(tmp, cfg.Report); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
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

// copyShard appends a shard to the output and hands its batches to the
// measurements (when ms is not nil).
func copyShard(ctx context.Context, path string, sink *arrowio.Sink, ms *measures) (int64, error) {
	src, err := arrowio.Open(ctx, path, arrowio.OpenOptions{})
	if err != nil {
		return 0, fmt.Errorf("output shard: %w", err)
	}
	defer src.Close()
	var n int64
	for src.Next() {
		rec := src.RecordBatch()
		if err := sink.Write(rec); err != nil {
			return 0, fmt.Errorf("output: %w", err)
		}
		if ms != nil {
			if err := ms.addOut(ctx, rec); err != nil {
				return 0, err
			}
		}
		n += rec.NumRows()
	}
	if err := src.Err(); err != nil {
		return 0, fmt.Errorf("output shard %s: %w", path, err)
	}
	return n, nil
}
