package anonymize

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/linkage"
)

// linkageMeasure runs the attack of an adversary who holds the raw
// readings (a consortium member, a leak, a vehicle's own app) on the
// run's own output, and measures unicity at the same precision before and
// after (package linkage):
//
//   - linkage: a keyed uniform sample of the published traces (trips, or
//     subjects under scope subject), drawn in pass 1 from the trip ids and
//     kept to the published ones once the trace gate has decided; in pass 2
//     the spilled rows at published precision (every published column:
//     cells, time buckets, coarsened or microaggregated values, generalised
//     quasi-identifiers, pseudonyms) of the sampled traces' cell-hours are
//     indexed by point, and each sampled trace is linked when exactly one
//     subject's readings hold all its published points. The Runner knows
//     each trip's vehicle: linkage_correct.
//   - unicity after: p points of each sampled trace, among all published
//     traces (the written rows of the same cell-hours).
//   - unicity before: a keyed uniform sample of subjects over the spilled
//     rows at the same published precision, and over the input rows at raw
//     GPS precision (lat, lon, ts), each labelled.
//
// Memory is bounded by the samples and MaxPairs (linkage.Traces,
// linkage.Subjects), not by the rows.
type linkageMeasure struct {
	noHooks
	keyer *linkage.Keyer
	// gpsKeyer keys the input rows (the GPS lane's goroutine; a Keyer
	// caches dictionaries, so each goroutine has its own, with the same
	// seed).
	gpsKeyer *linkage.Keyer
	traces   *linkage.Traces
	before   *linkage.Subjects // raw subjects at published precision
	gps      *linkage.Subjects // raw subjects at raw GPS precision
	names    []string

	// input layout
	inSubj, inLat, inLon, inTS int
	// trans and gen layout
	unit, subj int
	raw, pub   *pointProjector
	micro      *microAgg
	points     int
	maxLinkage float64

	// Buffers: the GPS lane runs beside pass 1's hooks, so it has its
	// own.
	subjBuf, unitBuf  []uint64
	gpsSubj, gpsPoint []uint64
	gpsBuf            [3][]uint64

	// The raw side of pass 2 runs on the raw lane's goroutine (nil until
	// pass 2); raw has a Keyer of its own for it, and these buffers. The
	// input rows' raw-GPS side runs on the GPS lane (gpsKeyer, gps*).
	lane              *rawLane
	gpsLane           *batchLane
	rawSubj, rawPoint []uint64
}

// linkageSamples are the sample sizes of the measure (the tests make them
// small).
type linkageSamples struct {
	traces, subjects, maxPairs int
}

func defaultLinkageSamples() linkageSamples {
	return linkageSamples{traces: 2000, subjects: 1000, maxPairs: 1 << 22}
}

func newLinkageMeasure(pl *plan, p *Policy, key *linkage.Key, micro *microAgg, s linkageSamples) (*linkageMeasure, error) {
	m := p.Mobility
	unit := p.Subject
	if m.Scope == "trip" {
		unit = m.TripIDColumn
	}
	names, idx, block, err := pointColumns(pl, unit, m.CellColumn, m.Time)
	if err != nil {
		return nil, fmt.Errorf("linkage: %w", err)
	}
	keyer := linkage.NewKeyer(key.Seed())
	lm := &linkageMeasure{keyer: keyer, gpsKeyer: linkage.NewKeyer(key.Seed()), names: names, micro: micro, points: m.UnicityP(), maxLinkage: m.MaxLinkage,
		inSubj: pl.in.FieldIndices(p.Subject)[0], inLat: pl.in.FieldIndices(m.Lat)[0], inLon: pl.in.FieldIndices(m.Lon)[0], inTS: pl.in.FieldIndices(m.Time)[0],
		unit: pl.trans.FieldIndices(unit)[0], subj: pl.subjTrans,
		raw: newPointProjector(linkage.NewKeyer(key.Seed()), names, idx, block), pub: newPointProjector(keyer, names, idx, block)}
	target := m.MaxLinkage
	if lm.traces, err = linkage.NewTraces(linkage.TraceOptions{Columns: names, Block: block, Traces: s.traces, Points: lm.points,
		MaxPairs: s.maxPairs, Key: key, DriverTarget: target}); err != nil {
		return nil, fmt.Errorf("linkage: %w", err)
	}
	if lm.before, err = linkage.NewSubjects(linkage.SubjectOptions{Subjects: s.subjects, Points: lm.points, MaxPairs: s.maxPairs / 2, Key: key}); err != nil {
		return nil, fmt.Errorf("unicity: %w", err)
	}
	if lm.gps, err = linkage.NewSubjects(linkage.SubjectOptions{Subjects: s.subjects, Points: lm.points, MaxPairs: s.maxPairs / 2, Key: key}); err != nil {
		return nil, fmt.Errorf("unicity: %w", err)
	}
	return lm, nil
}

// input indexes the opted-in input rows at raw GPS precision, on the GPS
// lane (its own goroutine: the reading goroutine that calls input is a
// serial stage of pass 1).
func (lm *linkageMeasure) input(ctx context.Context, rec arrow.RecordBatch) error {
	if lm.gpsLane == nil {
		lm.gpsLane = startBatchLane(lm.indexGPS)
	}
	return lm.gpsLane.send(ctx, rec)
}

// indexGPS indexes input rows at raw GPS precision.
func (lm *linkageMeasure) indexGPS(rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	lm.gpsSubj = growU64(lm.gpsSubj, n)
	if err := unitKeys(lm.gpsKeyer, "subject", rec.Column(lm.inSubj), lm.gpsSubj); err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	for j, c := range []int{lm.inLat, lm.inLon, lm.inTS} {
		lm.gpsBuf[j] = growU64(lm.gpsBuf[j], n)
		if err := lm.gpsKeyer.Column(rec.Schema().Field(c).Name, rec.Column(c), lm.gpsBuf[j]); err != nil {
			return fmt.Errorf("unicity: %w", err)
		}
	}
	lm.gpsPoint = growU64(lm.gpsPoint, n)
	linkage.CombineColumns(lm.gpsBuf[:], lm.gpsPoint)
	return lm.gps.Add(lm.gpsSubj, lm.gpsPoint)
}

// pass1 offers every trip (or subject) with its cell-hours and its vehicle.
func (lm *linkageMeasure) pass1(_ context.Context, rec arrow.RecordBatch, _ int64) error {
	n := int(rec.NumRows())
	lm.unitBuf = growU64(lm.unitBuf, n)
	lm.subjBuf = growU64(lm.subjBuf, n)
	if err := unitKeys(lm.keyer, "unit", rec.Column(lm.unit), lm.unitBuf); err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	if err := unitKeys(lm.keyer, "subject", rec.Column(lm.subj), lm.subjBuf); err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	blocks := make([][]uint64, len(lm.raw.block))
	for i, b := range lm.raw.block {
		lm.raw.bufs[b] = growU64(lm.raw.bufs[b], n)
		if err := lm.keyer.Column(lm.names[b], rec.Column(lm.raw.idx[b]), lm.raw.bufs[b]); err != nil {
			return fmt.Errorf("linkage: %w", err)
		}
		blocks[i] = lm.raw.bufs[b]
	}
	if err := lm.traces.Offer(lm.unitBuf, lm.subjBuf, blocks); err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	return nil
}

// seal keeps the sample to the published traces (those the trace gate
// lets keep their id) and, with k-anonymity, generalises the raw side's
// quasi-identifiers to the chosen levels.
func (lm *linkageMeasure) seal(gate *traceGate, kr *kanonResult) error {
	var published func(uint64) bool
	if gate != nil {
		keys := map[uint64]bool{}
		for id := range gate.g.PublishedIDs() {
			keys[lm.keyer.Int64(id)] = true
		}
		published = func(u uint64) bool { return keys[u] }
	}
	if kr != nil {
		for j, q := range kr.a.qi {
			lm.raw.generalise(q, kr.hier[j], kr.levels[j])
		}
	}
	return lm.traces.Seal(published)
}

// spilled indexes the rows pass 2 reads back, before any suppression: the
// raw readings at published precision (microaggregated already: pass 2
// applies it once for both sides). It hands the batch to the raw lane
// (linkage_lane.go), which indexes it beside the rest of pass 2.
func (lm *linkageMeasure) spilled(ctx context.Context, rec arrow.RecordBatch) error {
	if lm.lane == nil {
		lm.lane = lm.startRawLane()
	}
	return lm.lane.send(ctx, rec)
}

// indexRaw indexes raw rows at published precision on the caller's
// goroutine (Runner.Attack, Steps): their microaggregated columns first
// become the means of micro (nil: the policy microaggregates nothing).
func (lm *linkageMeasure) indexRaw(mem memory.Allocator, rec arrow.RecordBatch, micro *microAgg) error {
	if micro != nil {
		m, err := micro.apply(mem, rec)
		if err != nil {
			return err
		}
		defer m.Release()
		rec = m
	}
	subj, cols, err := lm.rawKeys(rec)
	if err != nil {
		return err
	}
	if err := lm.traces.Raw(subj, cols); err != nil {
		return wrapLinkage(err)
	}
	return lm.addBefore(subj, cols)
}

// rawKeys keys the subject and every point column of raw rows; the
// slices are valid until the next call.
func (lm *linkageMeasure) rawKeys(rec arrow.RecordBatch) ([]uint64, [][]uint64, error) {
	n := int(rec.NumRows())
	lm.rawSubj = growU64(lm.rawSubj, n)
	if err := unitKeys(lm.raw.keyer, "subject", rec.Column(lm.subj), lm.rawSubj); err != nil {
		return nil, nil, wrapLinkage(err)
	}
	cols, err := lm.raw.keys(rec)
	if err != nil {
		return nil, nil, wrapLinkage(err)
	}
	return lm.rawSubj, cols, nil
}

// addBefore adds raw rows to the sample of subjects (unicity before).
func (lm *linkageMeasure) addBefore(subj []uint64, cols [][]uint64) error {
	lm.rawPoint = growU64(lm.rawPoint, len(subj))
	linkage.CombineColumns(cols, lm.rawPoint)
	if err := lm.before.Add(subj, lm.rawPoint); err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	return nil
}

func wrapLinkage(err error) error { return fmt.Errorf("linkage: %w", err) }

// written indexes the published rows, in turn with the raw lane: the
// Published of a batch after the Raw of the same batch.
func (lm *linkageMeasure) written(ctx context.Context, rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	lm.unitBuf = growU64(lm.unitBuf, n)
	if err := unitKeys(lm.keyer, "unit", rec.Column(lm.unit), lm.unitBuf); err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	cols, err := lm.pub.keys(rec)
	if err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	if lm.lane != nil {
		if err := lm.lane.rawTurn(ctx); err != nil {
			return err
		}
		defer lm.lane.pubTurnDone()
	}
	if err := lm.traces.Published(lm.unitBuf, cols); err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	return nil
}

func (lm *linkageMeasure) figures(_ context.Context, f *Figures) error {
	if err := lm.finishLanes(); err != nil {
		return err
	}
	tr, err := lm.traces.Result()
	if err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	before, err := lm.before.Result()
	if err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	gps, err := lm.gps.Result()
	if err != nil {
		return fmt.Errorf("unicity: %w", err)
	}
	f.Risk = &RiskFigures{Columns: lm.names, Traces: tr, Before: before, RawGPS: gps}
	return nil
}

// finishLanes waits for the lanes' last batches and returns the first
// error of either.
func (lm *linkageMeasure) finishLanes() error {
	gpsErr := lm.gpsLane.finish()
	var rawErr error
	if lm.lane != nil {
		rawErr = lm.lane.finish()
	}
	if gpsErr != nil {
		return gpsErr
	}
	return rawErr
}

// close stops the lanes of a run that ends early.
func (lm *linkageMeasure) close() {
	_ = lm.finishLanes() // the run reports its own error
}

// UnicityP is the number of points per trace the unicity measure draws:
// UnicityPoints, or 4. Both engines use it.
func (m *MobilityPolicy) UnicityP() int {
	if m.UnicityPoints == 0 {
		return 4
	}
	return m.UnicityPoints
}
