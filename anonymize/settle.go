package anonymize

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// maxSettleRounds bounds the fixed-point iteration of settle; a run that
// has not settled by then fails (closed) rather than write.
const maxSettleRounds = 10

// settle makes cell-hour k and k-anonymity hold together on the rows pass 2
// will write. The search ran on the rows cell suppression keeps; its class
// suppression then removes rows, which can leave a cell-hour below
// mobility.k, and suppressing that cell-hour can leave a class below k. Each
// round goes over the row keys (subject, cell-hour group, raw combination
// of every spilled row) through every suppression decided so far, then
// suppresses, in addition, the cell-hours and the classes (at the levels the
// search chose) that fall below their k, or, with an l or t block, fail
// l-diversity / t-closeness on the surviving members (the row keys then
// carry each row's sensitive id; diversity.go). The sets only grow, so the rounds
// end; usually the second finds nothing. A round that suppresses cell-hours
// also drops, in pass 2, the rows of cell-hours it saw no row of (all their
// rows already gone); as a cell suppressor of the round's rows would. The
// added classes join the search's suppressed classes. The k-anonymity
// suppression limit still applies to the members of all suppressed classes
// together. Memory: a few bytes per cell-hour group, per combination and
// per (class, subject) pair, none per row.
func settle(ctx context.Context, cells *cellSuppression, kr *kanonResult) error {
	mk := cells.k
	a := kr.a
	k := int64(a.pol.K)
	keys := cells.keys
	drop := cells.drop
	ng := len(drop)
	// The class of every combination, numbered.
	clsOf := make([]uint32, len(a.num.keys))
	var clsKeys []string
	clsIdx := map[string]uint32{}
	for c, key := range a.num.keys {
		cls, err := kr.classOf(key)
		if err != nil {
			return err
		}
		id, ok := clsIdx[cls]
		if !ok {
			id = uint32(len(clsKeys))
			clsIdx[cls] = id
			clsKeys = append(clsKeys, cls)
		}
		clsOf[c] = id
	}
	clsSupp := make([]bool, len(clsKeys))
	for i, cls := range clsKeys {
		clsSupp[i] = kr.suppressed[cls]
	}
	subs := make([][]uint32, ng)
	observed := make([]bool, ng)
	members := make([]int64, len(clsKeys))
	for round := 0; ; round++ {
		if round == maxSettleRounds {
			return fmt.Errorf("mobility: cell-hour k and k-anonymity did not settle in %d rounds", maxSettleRounds)
		}
		for g := range subs {
			subs[g] = subs[g][:0]
		}
		clear(observed)
		clear(members)
		pairs := map[uint64]struct{}{}
		dc := a.div.keyCollector(kr) // l/t (diversity.go), or nil
		err := keys.scan(ctx, func(subj, group, combo, sens []uint32) error {
			for i, g := range group {
				if drop[g] {
					continue
				}
				c := combo[i]
				if c > nullCombo-uint32(len(a.qi)) {
					return nullInTrip(a.qi[nullCombo-c])
				}
				cls := clsOf[c]
				if clsSupp[cls] {
					continue
				}
				s := subj[i]
				if a.perSubject {
					pk := uint64(cls)<<32 | uint64(s)
					if _, seen := pairs[pk]; !seen {
						pairs[pk] = struct{}{}
						members[cls]++
					}
				} else {
					members[cls]++
				}
				if dc != nil {
					dc.addMember(clsKeys[cls], s, sens[i])
				}
				observed[g] = true
				if gs := subs[g]; len(gs) < mk && !slices.Contains(gs, s) {
					subs[g] = append(gs, s)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		thinCells := 0
		for g := range ng {
			if observed[g] && len(subs[g]) < mk {
				thinCells++
			}
		}
		if thinCells > 0 {
			for g := range ng {
				if !observed[g] || len(subs[g]) < mk {
					drop[g] = true
				}
			}
		}
		var newClasses int
		for cls, n := range members {
			if n > 0 && n < k && !clsSupp[cls] {
				clsSupp[cls] = true
				kr.suppressed[clsKeys[cls]] = true
				newClasses++
			}
		}
		nd, err := dc.decide()
		if err != nil {
			return err
		}
		if nd > 0 {
			for i, cls := range clsKeys {
				clsSupp[i] = clsSupp[i] || kr.suppressed[cls]
			}
		}
		newClasses += nd
		cells.round.rounds = round + 1
		cells.round.cells += thinCells
		cells.round.classes += newClasses
		if thinCells == 0 && newClasses == 0 {
			break
		}
	}
	if cells.round.classes > 0 {
		// The limit covers every suppressed class's members, counted as the
		// search counts them (members at pass 1 after cell suppression).
		var supp int64
		for cls := range kr.suppressed {
			supp += kr.classes[cls]
		}
		if limit := int64(math.Floor(a.pol.Suppression * float64(kr.histRows))); supp > limit {
			return fmt.Errorf("kanon: %d members would be suppressed once cell-hour k holds as well, above the limit %d", supp, limit)
		}
	}
	return nil
}
