package anonymize

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/linkage"
)

// RelinkLint is the data part of the re-linking lint for an engine that
// runs pass 1 on several workers (package beam): each worker Adds the Trans
// batches it sees, the partial States merge (MergeRelink), and Check fails
// the run as the Runner does between its passes. Every worker must use the
// same Runner options (Measure.Key): the states hold keyed hashes of
// subjects and values.
type RelinkLint struct {
	l *relinkLint
}

// NewRelinkLint returns the lint for the planned schema, or nil when the
// policy is not under mobility scope trip or publishes no column the lint
// watches (Steps.RelinkColumns).
func (s *Steps) NewRelinkLint() (*RelinkLint, error) {
	if len(relinkColumns(s.pl, s.r.p)) == 0 {
		return nil, nil
	}
	key, err := linkage.NewKey(s.r.opts.Measure.Key)
	if err != nil {
		return nil, err
	}
	return &RelinkLint{l: newRelinkLint(s.pl, s.r.p, key)}, nil
}

// Add watches one Trans batch.
func (l *RelinkLint) Add(ctx context.Context, rec arrow.RecordBatch) error {
	return l.l.pass1(ctx, rec, 0)
}

// Check fails when a watched column maps one to one to subjects.
func (l *RelinkLint) Check() error { return l.l.check() }

// State returns the partial state for Merge on another worker's lint.
func (l *RelinkLint) State() []byte {
	var b []byte
	u := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	u(uint64(len(l.l.cols)))
	for _, c := range l.l.cols {
		u(map[bool]uint64{false: 0, true: 1}[c.dead])
		for _, s := range []*lintSide{&c.subj, &c.val} {
			u(s.theta)
			u(uint64(len(s.partner)))
			for k, p := range s.partner {
				u(k)
				u(p)
			}
		}
	}
	return b
}

// Merge adds another lint's State (same policy, schema and key). A
// column dead (clearly not an identifier) in either part stays dead;
// otherwise each side keeps the keys below the lower sampling threshold,
// and a key seen with two different partners, here or there, has more
// than one. The merged check is the Runner's up to the order in which it
// would have sampled.
func (l *RelinkLint) Merge(state []byte) error {
	d := state
	bad := errors.New("lint: corrupt state")
	u := func() (uint64, error) {
		if len(d) < 8 {
			return 0, bad
		}
		v := binary.LittleEndian.Uint64(d)
		d = d[8:]
		return v, nil
	}
	n, err := u()
	if err != nil {
		return err
	}
	if n != uint64(len(l.l.cols)) {
		return fmt.Errorf("lint: state of %d columns, this lint watches %d", n, len(l.l.cols))
	}
	for _, c := range l.l.cols {
		dead, err := u()
		if err != nil {
			return err
		}
		c.dead = c.dead || dead != 0
		for _, s := range []*lintSide{&c.subj, &c.val} {
			theta, err := u()
			if err != nil {
				return err
			}
			m, err := u()
			if err != nil {
				return err
			}
			if m > uint64(len(d)/16) {
				return bad
			}
			other := make(map[uint64]uint64, m)
			for range m {
				k, _ := u()
				p, _ := u()
				other[k] = p
			}
			s.merge(other, theta, l.l.seed)
		}
	}
	if len(d) != 0 {
		return bad
	}
	return nil
}

// merge folds another side's sample (threshold theta) into s.
func (s *lintSide) merge(other map[uint64]uint64, theta, seed uint64) {
	s.theta = min(s.theta, theta)
	for k, p := range other {
		q, ok := s.partner[k]
		switch {
		case !ok:
			s.partner[k] = p
		case q != p:
			s.partner[k] = 0
		}
	}
	for len(s.partner) > lintCap {
		s.theta >>= 1
		s.prune(seed)
	}
	s.prune(seed)
}

// prune drops the keys above the threshold and recounts those with more
// than one partner.
func (s *lintSide) prune(seed uint64) {
	s.multi = 0
	for k, p := range s.partner {
		if linkageMix(k^seed) > s.theta {
			delete(s.partner, k)
			continue
		}
		if p == 0 {
			s.multi++
		}
	}
}
