package anonymize

import (
	"context"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// decision is what the steps between the passes decide for pass 2: the
// k-anonymity transformation and the classes it suppresses (nil without a
// kanon block). Which (cell, bucket) groups pass 2 drops is cell
// suppression's state (cellSuppression.drop), which trips keep their id the
// trace gate's.
type decision struct {
	kanon *kanonResult
}

// decide runs between the passes, over what pass 1 counted: cell-hour k
// marks the groups below k, the trace gate decides which trips keep their
// id, the k-anonymity search picks the transformation over the rows cell
// suppression keeps, and settle makes both k hold together.
func (ru *run) decide(ctx context.Context) (*decision, error) {
	dec := &decision{}
	if ru.lint != nil {
		// Before anything is written: a column that names the vehicle.
		if err := ru.lint.check(); err != nil {
			return nil, err
		}
	}
	if ru.cells != nil {
		if err := ru.cells.seal(); err != nil {
			return nil, err
		}
	}
	if ru.gate != nil {
		if err := ru.gate.seal(ru.cells); err != nil {
			return nil, err
		}
	}
	if ru.kan == nil {
		return dec, ru.sealLinkage(nil)
	}
	if ru.cells != nil {
		if err := countSurvivors(ctx, ru.cells, ru.kan); err != nil {
			return nil, err
		}
	}
	kr, err := ru.kan.search()
	if err != nil {
		return nil, err
	}
	if ru.cells != nil {
		if err := settle(ctx, ru.cells, kr); err != nil {
			return nil, err
		}
	}
	dec.kanon = kr
	return dec, ru.sealLinkage(kr)
}

// sealLinkage keeps the linkage sample to the trips the trace gate
// publishes and hands it the chosen generalisation.
func (ru *run) sealLinkage(kr *kanonResult) error {
	if ru.link == nil {
		return nil
	}
	return ru.link.seal(ru.gate, kr)
}

// nullInTrip is the error for a null quasi-identifier in a row that cell
// suppression keeps: the row keys' rows are trips' rows, which have no data
// row number.
func nullInTrip(column string) error {
	return rowerr.Atf(0, column, "null value in a quasi-identifier or subject (in a trip's row: trips regroup the input, so there is no data row number)")
}

// countSurvivors feeds the k-anonymity histogram with exactly the rows pass
// 2 will hand to it: it reads the row keys once, applies cell-hour
// suppression (the only mobility step after pass 1 that removes rows; the
// trace gate only detaches them) and counts the quasi-identifier combinations
// of the rows kept. Counting in pass 1 instead let a vehicle whose rows all
// fall in rare cell-hours count towards its class, and on small fleets the
// written class then had fewer than k vehicles (the output verification
// caught it and the run failed).
func countSurvivors(ctx context.Context, cells *cellSuppression, kan *kanonAcc) error {
	cs := cells.cs
	return cells.keys.scan(ctx, func(subj, group, combo, sens []uint32) error {
		for i, g := range group {
			if !cs.GroupKept(g) {
				continue
			}
			if c := combo[i]; c > nullCombo-uint32(len(kan.qi)) {
				return nullInTrip(kan.qi[nullCombo-c])
			}
			kan.addPair(combo[i], subj[i])
			if kan.div != nil {
				if err := kan.div.addPair(kan, combo[i], subj[i], sens[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
