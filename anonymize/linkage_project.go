package anonymize

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/linkage"
)

// pointProjector turns rows into the keys of their published point: one
// key per published column (all but the trace's unit), by value, so that a
// raw row projected to the published precision and the published row it
// became have the same keys. On the raw side the quasi-identifiers are
// generalised to the levels the k-anonymity search chose (in the key
// domain, memoised), since the rows still hold raw values there.
type pointProjector struct {
	keyer *linkage.Keyer
	names []string // point columns
	idx   []int    // their positions in the rows projected
	block []int    // positions in names of the cell and time columns
	qi    []*qiGen // per point column: its generaliser (raw side), or nil
	bufs  [][]uint64
}

// qiGen generalises one quasi-identifier's value keys to a level.
type qiGen struct {
	h     kanon.Hierarchy
	level int
	memo  map[uint64]uint64
}

// pointColumns are the published columns of a plan but unit, in output
// order, with their positions in trans (and gen, which has the same
// layout), and the positions of cell and time among them.
func pointColumns(pl *plan, unit, cell, ts string) (names []string, idx, block []int, err error) {
	for _, k := range pl.keep {
		name := pl.trans.Field(k).Name
		if name == unit {
			continue
		}
		if name == cell || name == ts {
			block = append(block, len(names))
		}
		names = append(names, name)
		idx = append(idx, k)
	}
	if len(block) != 2 {
		return nil, nil, nil, fmt.Errorf("the cell column %q and the time column %q must both be published", cell, ts)
	}
	for j, k := range idx {
		if t := pl.gen.Field(k).Type; !linkage.Supported(t) {
			return nil, nil, nil, fmt.Errorf("column %q: type %s cannot be compared by value", names[j], t)
		}
	}
	return names, idx, block, nil
}

func newPointProjector(keyer *linkage.Keyer, names []string, idx, block []int) *pointProjector {
	return &pointProjector{keyer: keyer, names: names, idx: idx, block: block, qi: make([]*qiGen, len(names)), bufs: make([][]uint64, len(names))}
}

// generalise makes the projector generalise the point column name to
// level of h.
func (p *pointProjector) generalise(name string, h kanon.Hierarchy, level int) {
	for j, n := range p.names {
		if n == name {
			p.qi[j] = &qiGen{h: h, level: level, memo: map[uint64]uint64{}}
		}
	}
}

// keys returns the keys of every point column of rec; valid until the
// next call.
func (p *pointProjector) keys(rec arrow.RecordBatch) ([][]uint64, error) {
	n := int(rec.NumRows())
	for j, k := range p.idx {
		p.bufs[j] = growU64(p.bufs[j], n)
		col := rec.Column(k)
		if err := p.keyer.Column(p.names[j], col, p.bufs[j]); err != nil {
			return nil, err
		}
		if g := p.qi[j]; g != nil {
			if err := g.apply(p.keyer, p.names[j], col, p.bufs[j]); err != nil {
				return nil, err
			}
		}
	}
	return p.bufs, nil
}

// apply replaces raw value keys by the keys of the generalised values (the
// text the generalised column holds), memoised by raw key.
func (g *qiGen) apply(k *linkage.Keyer, name string, col arrow.Array, keys []uint64) error {
	null := k.Null()
	var last, lastOut uint64
	for i, raw := range keys {
		if raw == null {
			continue
		}
		if raw == last && lastOut != 0 {
			keys[i] = lastOut
			continue
		}
		out, ok := g.memo[raw]
		if !ok {
			text, err := valueText(col, i)
			if err != nil {
				return fmt.Errorf("column %q: %w", name, err)
			}
			gen, err := g.h.Generalize(text, g.level)
			if err != nil {
				// The search checked every value of the rows it counted;
				// a row it did not count (suppressed by cell k) may hold
				// one outside the hierarchy: it is never published, so
				// it matches nothing.
				gen = "\x00unpublishable\x00" + text
			}
			out = k.String(gen)
			g.memo[raw] = out
		}
		keys[i], last, lastOut = out, raw, out
	}
	return nil
}

// unitKeys writes the key of every row's unit into dst (0 for a null: a
// row in no trace).
func unitKeys(k *linkage.Keyer, name string, col arrow.Array, dst []uint64) error {
	if err := k.Column(name, col, dst); err != nil {
		return err
	}
	if d, ok := col.(*array.Dictionary); ok {
		// A dictionary entry may be null too: its rows key as Null.
		null := k.Null()
		for i := range dst {
			if d.IsNull(i) || dst[i] == null {
				dst[i] = 0
			}
		}
		return nil
	}
	if col.NullN() == 0 {
		return nil
	}
	for i := range dst {
		if col.IsNull(i) {
			dst[i] = 0
		}
	}
	return nil
}
