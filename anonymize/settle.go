package anonymize

import (
	"bufio"
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/tarnkappe/tarnkappe/mobility"
)

// maxSettleRounds bounds the fixed-point iteration of settle; a run that
// has not settled by then fails (closed) rather than write.
const maxSettleRounds = 10

// settle makes cell-hour k and k-anonymity hold together on the rows pass 2
// will write. The search ran on the rows cell suppression keeps; its class
// suppression then removes rows, which can leave a cell-hour below
// mobility.k, and suppressing that cell-hour can leave a class below k. Each
// round reads the spill through every suppression decided so far, then
// suppresses, in addition, the cell-hours and the classes (at the levels
// the search chose) that fall below their k. The sets only grow, so the
// rounds end; usually the second finds nothing. The added cell suppressors
// run in pass 2 after the first one; the added classes join the search's
// suppressed classes. The k-anonymity suppression limit still applies to
// the members of all suppressed classes together.
func (r *Runner) settle(ctx context.Context, pl *plan, spill *spillFile, kr *kanonResult, acc *accumulators) error {
	m := r.p.Mobility
	k := int64(r.p.KAnon.K)
	for round := 0; ; round++ {
		if round == maxSettleRounds {
			return fmt.Errorf("mobility: cell-hour k and k-anonymity did not settle in %d rounds", maxSettleRounds)
		}
		cs, err := mobility.NewCellSuppressor(pl.trans, mobility.SuppressOptions{Subject: r.p.Subject, Cell: m.CellColumn, Time: m.Time, K: m.K, Mem: r.mem})
		if err != nil {
			return fmt.Errorf("mobility: %w", err)
		}
		cc := newClassCounter(kr)
		dc := kr.a.div.collector(kr) // l/t (diversity.go), or nil
		rd, err := ipc.NewReader(bufio.NewReaderSize(spill.f, 1<<20), ipc.WithAllocator(r.mem), ipc.WithSchema(spill.schema))
		if err != nil {
			return fmt.Errorf("spill: %w", err)
		}
		var rowBase int64
		for rd.Next() {
			if err := ctx.Err(); err != nil {
				rd.Release()
				return err
			}
			rec := rd.RecordBatch()
			n := rec.NumRows()
			rec.Retain()
			kept, err := acc.applyCells(ctx, rec, nil)
			if err == nil {
				var f arrow.RecordBatch
				f, err = cc.filter(ctx, pl, kept, rowBase)
				kept.Release()
				if err == nil {
					err = cs.Observe(ctx, f)
					if err == nil {
						err = dc.add(f, rowBase)
					}
					f.Release()
				}
			}
			if err != nil {
				rd.Release()
				return err
			}
			rowBase += n
		}
		err = rd.Err()
		rd.Release()
		if err != nil {
			return fmt.Errorf("spill: %w", err)
		}
		if err := spill.rewind(); err != nil {
			return err
		}
		// Seal (Apply on no rows) to count the groups below k.
		b := array.NewRecordBuilder(r.mem, pl.trans)
		empty := b.NewRecordBatch()
		b.Release()
		e, _, err := cs.Apply(ctx, empty)
		empty.Release()
		if err != nil {
			return fmt.Errorf("mobility: %w", err)
		}
		e.Release()
		thinCells := cs.Stats().GroupsSuppressed
		var newClasses int
		for cls, n := range cc.members {
			if n < k && !kr.suppressed[cls] {
				kr.suppressed[cls] = true
				newClasses++
			}
		}
		nd, err := dc.decide()
		if err != nil {
			return err
		}
		newClasses += nd
		acc.settleRounds = round + 1
		if thinCells > 0 {
			acc.extraCells = append(acc.extraCells, cs)
			acc.settleCells += thinCells
		}
		acc.settleClasses += newClasses
		if thinCells == 0 && newClasses == 0 {
			break
		}
	}
	if acc.settleClasses > 0 {
		// The limit covers every suppressed class's members, counted as the
		// search counts them (members at pass 1 after cell suppression).
		var supp int64
		for cls := range kr.suppressed {
			supp += kr.classes[cls]
		}
		if limit := int64(math.Floor(r.p.KAnon.Suppression * float64(kr.histRows))); supp > limit {
			return fmt.Errorf("kanon: %d members would be suppressed once cell-hour k holds as well, above the limit %d", supp, limit)
		}
	}
	return nil
}

// applyCells runs the cell suppressions decided so far (the first and those
// settle added) and adds what they drop to *dropped when not nil. It
// releases rec.
func (acc *accumulators) applyCells(ctx context.Context, rec arrow.RecordBatch, dropped *int64) (arrow.RecordBatch, error) {
	for _, cs := range append([]*mobility.CellSuppressor{acc.cells}, acc.extraCells...) {
		kept, d, err := cs.Apply(ctx, rec)
		rec.Release()
		if err != nil {
			return nil, fmt.Errorf("mobility: %w", err)
		}
		if dropped != nil {
			*dropped += d
		}
		rec = kept
	}
	return rec, nil
}

// classCounter counts, over the rows it filters, the members of every
// generalised class (distinct subjects, or rows), leaving out rows of
// classes already suppressed.
type classCounter struct {
	kr      *kanonResult
	intern  []*interner
	subj    *interner
	ids     map[string]uint32
	keys    []string
	pairs   map[uint64]struct{}
	members map[string]int64
}

func newClassCounter(kr *kanonResult) *classCounter {
	c := &classCounter{kr: kr, subj: newInterner(), ids: map[string]uint32{}, pairs: map[uint64]struct{}{}, members: map[string]int64{}}
	for range kr.a.qi {
		c.intern = append(c.intern, newInterner())
	}
	return c
}

// filter returns rec without the rows of suppressed classes and counts the
// members of the rest. It does not release rec.
func (c *classCounter) filter(ctx context.Context, pl *plan, rec arrow.RecordBatch, rowBase int64) (arrow.RecordBatch, error) {
	kr, a := c.kr, c.kr.a
	n := int(rec.NumRows())
	ids := make([][]uint32, len(a.qi))
	for j, col := range a.qiIdx {
		h, lvl := kr.hier[j], kr.levels[j]
		g, err := mapValues(kr.alloc, a.qi[j], rec.Column(col), rowBase, func(s string) (string, error) { return h.Generalize(s, lvl) })
		if err != nil {
			return nil, fmt.Errorf("kanon: %w", err)
		}
		ids[j] = make([]uint32, n)
		err = c.intern[j].column(a.qi[j], g, rowBase, ids[j])
		g.Release()
		if err != nil {
			return nil, err
		}
	}
	var sid []uint32
	if a.perSubject {
		sid = make([]uint32, n)
		if err := c.subj.column(pl.trans.Field(a.subjIdx).Name, rec.Column(a.subjIdx), rowBase, sid); err != nil {
			return nil, err
		}
	}
	mb := array.NewBooleanBuilder(kr.alloc)
	defer mb.Release()
	mb.Reserve(n)
	var packed []byte
	comp := make([]uint32, len(a.qi))
	dropped := 0
	for i := range n {
		for j := range a.qi {
			comp[j] = ids[j][i]
		}
		packed = packKey(packed[:0], comp...)
		id, ok := c.ids[string(packed)]
		if !ok {
			var g []byte
			for j := range a.qi {
				g = append(g, c.intern[j].vals[comp[j]]...)
				g = append(g, 0)
			}
			id = uint32(len(c.keys))
			c.ids[string(packed)] = id
			c.keys = append(c.keys, string(g))
		}
		cls := c.keys[id]
		if kr.suppressed[cls] {
			mb.UnsafeAppend(false)
			dropped++
			continue
		}
		mb.UnsafeAppend(true)
		if !a.perSubject {
			c.members[cls]++
			continue
		}
		pk := uint64(id)<<32 | uint64(sid[i])
		if _, seen := c.pairs[pk]; !seen {
			c.pairs[pk] = struct{}{}
			c.members[cls]++
		}
	}
	if dropped == 0 {
		rec.Retain()
		return rec, nil
	}
	mask := mb.NewArray()
	defer mask.Release()
	f, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, fmt.Errorf("kanon: batch at row %d: %w", rowBase, err)
	}
	return f, nil
}
