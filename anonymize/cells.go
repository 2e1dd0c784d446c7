package anonymize

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/mobility"
)

// cellSuppression is cell-hour k (mobility.k), and all of its state: in
// pass 1 the subjects of every (cell, time bucket) group and the row keys
// (rowkeys.go: each spilled row's subject, group and raw quasi-identifier
// combination), between the passes the groups below k (seal) and the ones
// settle (settle.go) adds, in pass 2 the rows it drops.
type cellSuppression struct {
	noHooks
	k     int
	cs    *mobility.CellSuppressor
	keys  *rowKeys
	kan   *kanonAcc // numbers each row's combination for the row keys; nil without kanon
	buf   [4][]uint32
	drop  []bool // per group id: pass 2 drops its rows (seal; grown by settle)
	rows  int64  // rows pass 2 dropped
	round settleStats
}

// settleStats describes settle's fixed point (MobilityFigures).
type settleStats struct {
	rounds, cells, classes int
}

// newCellSuppression counts subjects per group of pl.trans and writes the
// row keys to a scratch file in tempDir.
func newCellSuppression(pl *plan, subject string, m *MobilityPolicy, kan *kanonAcc, mem memory.Allocator, tempDir string) (*cellSuppression, error) {
	cs, err := mobility.NewCellSuppressor(pl.trans, mobility.SuppressOptions{Subject: subject, Cell: m.CellColumn, Time: m.Time, K: m.K, Mem: mem})
	if err != nil {
		return nil, err
	}
	keys, err := newRowKeys(tempDir, kan != nil && kan.div != nil)
	if err != nil {
		return nil, err
	}
	return &cellSuppression{k: m.K, cs: cs, keys: keys, kan: kan}, nil
}

// pass1 observes the batch's groups and writes its row keys.
func (c *cellSuppression) pass1(ctx context.Context, rec arrow.RecordBatch, base int64) error {
	n := int(rec.NumRows())
	for i := range c.buf {
		c.buf[i] = growU32(c.buf[i], n)
	}
	subj, group, combo := c.buf[0], c.buf[1], c.buf[2]
	if err := c.cs.ObserveIDs(ctx, rec, group, subj); err != nil {
		return fmt.Errorf("cell suppression: %w", err)
	}
	var sens []uint32 // l/t: the sensitive value's id (diversity.go)
	if c.kan != nil {
		if err := c.kan.comboIDsOf(rec, base, subj, combo); err != nil {
			return err
		}
		if c.kan.div != nil {
			sens = c.buf[3]
			if err := c.kan.div.sensIDs(rec, base, sens); err != nil {
				return err
			}
		}
	} else {
		clear(combo)
	}
	return c.keys.write(subj, group, combo, sens)
}

// seal ends pass 1: the row keys are rewound for reading, and the groups
// below k are marked for pass 2.
func (c *cellSuppression) seal() error {
	if err := c.keys.finish(); err != nil {
		return err
	}
	c.cs.Seal()
	c.drop = make([]bool, c.cs.Groups())
	for g := range c.drop {
		c.drop[g] = !c.cs.GroupKept(uint32(g))
	}
	return nil
}

// mask returns the pass-2 mask of rows that cell suppression keeps (nil
// when it keeps all) and the number it drops, from the rows' group ids.
func (c *cellSuppression) mask(mem memory.Allocator, group []uint32) (arrow.Array, int64) {
	var dropped int64
	for _, g := range group {
		if c.drop[g] {
			dropped++
		}
	}
	if dropped == 0 {
		return nil, 0
	}
	mb := array.NewBooleanBuilder(mem)
	defer mb.Release()
	mb.Reserve(len(group))
	for _, g := range group {
		mb.UnsafeAppend(!c.drop[g])
	}
	c.rows += dropped
	return mb.NewArray(), dropped
}

func (c *cellSuppression) figures(_ context.Context, f *Figures) error {
	m := f.Mobility
	m.CellSuppressedRows = c.rows
	m.SettleRounds, m.SettleCellGroups, m.SettleClasses = c.round.rounds, c.round.cells, c.round.classes
	return nil
}

func (c *cellSuppression) close() {
	c.keys.remove()
}

// traceGate is trace-level k (mobility.trace_k, scope trip): a trip keeps
// its id only when trace_k vehicles share its cell-hour trace.
type traceGate struct {
	noHooks
	g    *mobility.TraceGate
	trip int   // the trip id column (pl.trans and pl.gen alike)
	ends int64 // written rows that came without a trip id: trip ends detached by the segmenter
}

func newTraceGate(pl *plan, subject string, m *MobilityPolicy, mem memory.Allocator, tempDir string) (*traceGate, error) {
	g, err := mobility.NewTraceGate(pl.trans, mobility.TraceGateOptions{Subject: subject, Trip: m.TripIDColumn, Cell: m.CellColumn, Time: m.Time, K: m.TraceK, Mem: mem, TempDir: tempDir})
	if err != nil {
		return nil, err
	}
	return &traceGate{g: g, trip: pl.trans.FieldIndices(m.TripIDColumn)[0]}, nil
}

// apply detaches the rows of unpublished trips from a batch of pass 2
// that is about to be written (after every suppression), so that the
// gate's count of detached rows, and ends, count written rows.
func (t *traceGate) apply(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	col := rec.Column(t.trip)
	t.ends += int64(col.NullN())
	tc, err := t.g.ApplyTrips(ctx, col)
	if err != nil {
		return nil, fmt.Errorf("trace gate: %w", err)
	}
	defer tc.Release()
	cols := slices.Clone(rec.Columns())
	cols[t.trip] = tc
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows()), nil
}

func (t *traceGate) pass1(ctx context.Context, rec arrow.RecordBatch, _ int64) error {
	if err := t.g.Observe(ctx, rec); err != nil {
		return fmt.Errorf("trace gate: %w", err)
	}
	return nil
}

// seal decides, between the passes, which trips keep their id: traces are
// counted over the groups cell suppression keeps.
func (t *traceGate) seal(cells *cellSuppression) error {
	t.g.Seal(cells.cs)
	if err := t.g.Err(); err != nil {
		return fmt.Errorf("trace gate: %w", err)
	}
	return nil
}

func (t *traceGate) figures(_ context.Context, f *Figures) error {
	f.Mobility.RowsDetached = t.g.Stats().RowsDetached
	f.Mobility.RowsDetachedEnds = t.ends
	return nil
}

func (t *traceGate) close() { t.g.Close() }

// cellCheck recounts cell-hour k on the written rows, independently of the
// decisions: k-anonymity suppression runs after cell suppression and may
// thin a cell-hour out again (settle should have caught it; this checks).
type cellCheck struct {
	noHooks
	cs     *mobility.CellSuppressor
	schema *arrow.Schema
	mem    memory.Allocator
}

func newCellCheck(pl *plan, subject string, m *MobilityPolicy, mem memory.Allocator) (*cellCheck, error) {
	cs, err := mobility.NewCellSuppressor(pl.gen, mobility.SuppressOptions{Subject: subject, Cell: m.CellColumn, Time: m.Time, K: m.K, Mem: mem})
	if err != nil {
		return nil, err
	}
	return &cellCheck{cs: cs, schema: pl.gen, mem: mem}, nil
}

func (c *cellCheck) written(ctx context.Context, rec arrow.RecordBatch) error {
	if err := c.cs.Observe(ctx, rec); err != nil {
		return fmt.Errorf("output check: %w", err)
	}
	return nil
}

// figures seals the check (Apply on no rows) and counts the written groups
// and those below k; the report builder fails the run unless none is.
func (c *cellCheck) figures(ctx context.Context, f *Figures) error {
	b := array.NewRecordBuilder(c.mem, c.schema)
	empty := b.NewRecordBatch()
	b.Release()
	kept, _, err := c.cs.Apply(ctx, empty)
	empty.Release()
	if err != nil {
		return fmt.Errorf("output check: %w", err)
	}
	kept.Release()
	st := c.cs.Stats()
	f.Mobility.OutputGroups, f.Mobility.OutputGroupsBelowK = st.Groups, st.GroupsSuppressed
	return nil
}
