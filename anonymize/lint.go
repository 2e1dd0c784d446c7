package anonymize

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/linkage"
)

// relinkLint is the data part of the lint against re-linking (issue #12
// item 7; the static part is Policy.validateLinkage): under scope trip, a
// published column whose values map one to one to subjects on the data — a
// second copy of the VIN, a licence plate, a pseudonym or a mask that
// keeps them apart — names the vehicle of every trip, whatever the trip id
// hides. It watches every published column as pass 1 writes it (after the
// column actions: a plate masked down to its district is no longer one to
// one) and fails the run between the passes, before anything is written,
// unless the policy lists the column under mobility.subject_columns.
//
// Bounded memory: per column, a keyed sample of subjects with the value
// each was seen with, and a keyed sample of values with the subject each
// was seen with (each capped, the sampling share halving when full). A
// column stops being watched as soon as half of what it samples has more
// than one partner: per-reading values drop out within a batch.
//
// Left out: the trip id, cell and time columns (the trace itself), the
// quasi-identifiers (k-anonymity makes every published class hold k
// subjects) and microaggregated columns (the mean of a cell-hour).
type relinkLint struct {
	noHooks
	keyer   *linkage.Keyer
	seed    uint64
	subj    int
	cols    []*lintCol
	subjBuf []uint64
	valBuf  []uint64
}

type lintCol struct {
	name string
	idx  int
	dead bool
	subj lintSide // sampled subject → its value
	val  lintSide // sampled value → its subject
}

// lintSide maps sampled keys to the one partner seen with them (0: more
// than one).
type lintSide struct {
	partner map[uint64]uint64
	multi   int
	theta   uint64
}

// lintCap bounds each side's sample; lintMinEvidence is the subjects and
// values a side must hold before a column is judged (fewer: the data is too
// small to tell an identifier from a coincidence).
const (
	lintCap         = 4096
	lintMinEvidence = 20
)

// relinkColumns are the Trans columns the data part of the lint watches
// under scope trip: the published ones but those left out above and those
// listed under mobility.subject_columns.
func relinkColumns(pl *plan, p *Policy) []int {
	m := p.Mobility
	if m == nil || m.Scope != "trip" {
		return nil
	}
	skip := map[string]bool{m.TripIDColumn: true, m.CellColumn: true, m.Time: true, p.Subject: true}
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			skip[q] = true
		}
	}
	for _, c := range m.SubjectColumns {
		skip[c] = true
	}
	var cols []int
	for _, k := range pl.keep {
		f := pl.trans.Field(k)
		if skip[f.Name] || pl.actions[k] == ActionMicroaggregate || !linkage.Supported(f.Type) {
			continue
		}
		cols = append(cols, k)
	}
	return cols
}

// newRelinkLint returns nil when no published column needs watching.
func newRelinkLint(pl *plan, p *Policy, key *linkage.Key) *relinkLint {
	cols := relinkColumns(pl, p)
	if len(cols) == 0 {
		return nil
	}
	l := &relinkLint{keyer: linkage.NewKeyer(key.Seed()), seed: key.Seed() ^ 0x2545f4914f6cdd1d, subj: pl.subjTrans}
	for _, k := range cols {
		l.cols = append(l.cols, &lintCol{name: pl.trans.Field(k).Name, idx: k,
			subj: lintSide{partner: map[uint64]uint64{}, theta: ^uint64(0)},
			val:  lintSide{partner: map[uint64]uint64{}, theta: ^uint64(0)}})
	}
	return l
}

func (l *relinkLint) pass1(_ context.Context, rec arrow.RecordBatch, _ int64) error {
	n := int(rec.NumRows())
	alive := slices.ContainsFunc(l.cols, func(c *lintCol) bool { return !c.dead })
	if !alive {
		return nil
	}
	l.subjBuf = growU64(l.subjBuf, n)
	l.valBuf = growU64(l.valBuf, n)
	if err := unitKeys(l.keyer, "subject", rec.Column(l.subj), l.subjBuf); err != nil {
		return fmt.Errorf("lint: %w", err)
	}
	null := l.keyer.Null()
	for _, c := range l.cols {
		if c.dead {
			continue
		}
		if err := l.keyer.Column(c.name, rec.Column(c.idx), l.valBuf); err != nil {
			return fmt.Errorf("lint: %w", err)
		}
		var lastS, lastV uint64
		for i, s := range l.subjBuf[:n] {
			v := l.valBuf[i]
			if s == 0 || v == null || (s == lastS && v == lastV) {
				continue
			}
			lastS, lastV = s, v
			c.subj.see(s, v, l.seed)
			c.val.see(v, s, l.seed)
		}
		// Clearly not an identifier: half of either sample has two partners.
		c.dead = c.subj.dying() || c.val.dying()
	}
	return nil
}

// see records that key was seen with partner, when key is sampled.
func (s *lintSide) see(key, partner, seed uint64) {
	if linkageMix(key^seed) > s.theta {
		return
	}
	p, ok := s.partner[key]
	switch {
	case !ok:
		s.partner[key] = partner
		if len(s.partner) > lintCap {
			s.theta >>= 1
			for k, p := range s.partner {
				if linkageMix(k^seed) > s.theta {
					if p == 0 {
						s.multi--
					}
					delete(s.partner, k)
				}
			}
		}
	case p != 0 && p != partner:
		s.partner[key] = 0
		s.multi++
	}
}

func (s *lintSide) dying() bool {
	return len(s.partner) >= lintMinEvidence && 2*s.multi >= len(s.partner)
}

// oneToOne reports whether the side's keys have a single partner (90% of
// them, with enough evidence).
func (s *lintSide) oneToOne() bool {
	return len(s.partner) >= lintMinEvidence && 10*s.multi <= len(s.partner)
}

// check fails the run when a watched column maps one to one to subjects.
func (l *relinkLint) check() error {
	for _, c := range l.cols {
		if c.dead || !c.subj.oneToOne() || !c.val.oneToOne() {
			continue
		}
		return fmt.Errorf("lint: column %q identifies the subject on the data: %.0f%% of the %d subjects sampled have one value, and %.0f%% of the %d values sampled belong to one subject; under mobility scope trip it would link every trip to its vehicle. Drop it (or mask or generalise it until values are shared), or list it under mobility.subject_columns if the output may link trips to vehicles",
			c.name, share(c.subj), len(c.subj.partner), share(c.val), len(c.val.partner))
	}
	return nil
}

func share(s lintSide) float64 {
	return 100 * float64(len(s.partner)-s.multi) / float64(len(s.partner))
}

// linkageMix spreads a key's bits for the keyed samples of the lint.
func linkageMix(x uint64) uint64 { return linkage.Combine(x) }
