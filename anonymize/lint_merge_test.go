package anonymize

import (
	"maps"
	"testing"
)

// TestRelinkLintMerge: partial lints over disjoint subject sets (Beam's
// subject shards) merged through their states judge each column as one
// lint over every row: an identifier is caught, a shared value is not, and
// the merged samples are the single lint's.
func TestRelinkLintMerge(t *testing.T) {
	const seed = 0x9e3779b97f4a7c15
	newLint := func() *RelinkLint {
		l := &relinkLint{seed: seed}
		for _, name := range []string{"plate", "colour", "speed"} {
			l.cols = append(l.cols, &lintCol{name: name,
				subj: lintSide{partner: map[uint64]uint64{}, theta: ^uint64(0)},
				val:  lintSide{partner: map[uint64]uint64{}, theta: ^uint64(0)}})
		}
		return &RelinkLint{l: l}
	}
	// values of subject s (from 1) in reading r for each column
	values := func(s, r uint64) [3]uint64 {
		return [3]uint64{1_000_000 + s, 2_000_000 + s%4, 3_000_000 + (s*7919+r*104729)%5000}
	}
	observe := func(l *RelinkLint, subjects []uint64) {
		for _, s := range subjects {
			for r := range uint64(50) {
				v := values(s, r)
				for j, c := range l.l.cols {
					if c.dead {
						continue
					}
					c.subj.see(s, v[j], seed)
					c.val.see(v[j], s, seed)
				}
			}
			for _, c := range l.l.cols {
				c.dead = c.dead || c.subj.dying() || c.val.dying()
			}
		}
	}
	var all, even, odd []uint64
	for s := uint64(1); s <= 6000; s++ { // beyond lintCap: the samples thin
		all = append(all, s)
		if s%2 == 0 {
			even = append(even, s)
		} else {
			odd = append(odd, s)
		}
	}
	one := newLint()
	observe(one, all)
	a, b := newLint(), newLint()
	observe(a, even)
	observe(b, odd)
	if err := a.Merge(b.State()); err != nil {
		t.Fatal(err)
	}
	for j, c := range a.l.cols {
		w := one.l.cols[j]
		if c.dead != w.dead {
			t.Errorf("%s: merged dead %v, single %v", c.name, c.dead, w.dead)
		}
		if c.dead {
			continue
		}
		for i, side := range []*lintSide{&c.subj, &c.val} {
			ws := []*lintSide{&w.subj, &w.val}[i]
			if side.theta != ws.theta || side.multi != ws.multi || !maps.Equal(side.partner, ws.partner) {
				t.Errorf("%s side %d: merged theta %x, %d keys, %d multi; single %x, %d, %d", c.name, i, side.theta, len(side.partner), side.multi, ws.theta, len(ws.partner), ws.multi)
			}
		}
	}
	err, werr := a.Check(), one.Check()
	if err == nil || werr == nil || err.Error() != werr.Error() {
		t.Errorf("merged check %v, single %v; want both to name plate", err, werr)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, append(b.State(), 0)} {
		if err := newLint().Merge(bad); err == nil {
			t.Errorf("state %x merged", bad)
		}
	}
}
