package linkage

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Engines that spread the rows over workers (package beam) run one
// measurement per worker with the same options and Key, move the partial
// states as bytes and merge them; the result is the one a single
// measurement over all the rows gives (the samples are the lowest keyed
// priorities, which merge exactly; the distinct sampling of Subjects takes
// the lower threshold).

// enc and dec are a minimal little-endian encoding of uint64 sequences.
type enc struct{ b []byte }

func (e *enc) u(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) n(v int)    { e.u(uint64(v)) }
func (e *enc) bl(v bool)  { e.u(map[bool]uint64{false: 0, true: 1}[v]) }
func (e *enc) us(v []uint64) {
	e.n(len(v))
	for _, x := range v {
		e.u(x)
	}
}
func (e *enc) pairs(ps []pair) {
	e.n(len(ps))
	for _, p := range ps {
		e.u(p.point)
		e.u(p.id)
	}
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) u() uint64 {
	if len(d.b) < 8 {
		if d.err == nil {
			d.err = errors.New("linkage: truncated state")
		}
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// n reads a length, refusing one longer than the bytes left could hold.
func (d *dec) n(each int) int {
	v := d.u()
	if v > uint64(len(d.b)/max(each, 1)) {
		if d.err == nil {
			d.err = errors.New("linkage: corrupt state (length)")
		}
		return 0
	}
	return int(v)
}
func (d *dec) bl() bool { return d.u() != 0 }
func (d *dec) us() []uint64 {
	n := d.n(8)
	out := make([]uint64, n)
	for i := range out {
		out[i] = d.u()
	}
	return out
}
func (d *dec) pairs() []pair {
	n := d.n(16)
	out := make([]pair, n)
	for i := range out {
		out[i] = pair{d.u(), d.u()}
	}
	return out
}

const (
	magicCands   = 0x746b6c6331 // "tklc1"
	magicRaw     = 0x746b6c7231 // "tklr1"
	magicSubject = 0x746b6c7331 // "tkls1"
	magicPub     = 0x746b6c7031 // "tklp1"
)

// Candidates returns the state of phase 1 (the candidates offered so far)
// for MergeCandidates on another Traces.
func (t *Traces) Candidates() ([]byte, error) {
	if t.phase != 1 {
		return nil, errors.New("linkage.Traces.Candidates: after Seal")
	}
	e := &enc{}
	e.u(magicCands)
	e.bl(t.evicted1)
	e.u(t.bar)
	e.n(len(t.heap))
	for _, c := range t.heap {
		e.u(c.unit)
		e.u(c.prio)
		e.u(c.truth)
		e.us(c.blocks)
	}
	return e.b, nil
}

// MergeCandidates adds another Traces' phase-1 state (same options and
// Key): the candidates are then the lowest of both.
func (t *Traces) MergeCandidates(b []byte) error {
	const fn = "linkage.Traces.MergeCandidates"
	if t.phase != 1 {
		return fmt.Errorf("%s: after Seal", fn)
	}
	d := &dec{b: b}
	if d.u() != magicCands {
		return fmt.Errorf("%s: not a candidates state", fn)
	}
	evicted, bar := d.bl(), d.u()
	n := d.n(32)
	for range n {
		unit, prio, truth, blocks := d.u(), d.u(), d.u(), d.us()
		if d.err != nil {
			break
		}
		if c, ok := t.cands[unit]; ok {
			if c.truth != truth {
				c.truth = 0
			}
			c.blocks = append(c.blocks, blocks...)
			t.candPairs += len(blocks)
			continue
		}
		if prio >= t.bar {
			continue
		}
		c := &cand{unit: unit, prio: prio, truth: truth, blocks: blocks}
		t.cands[unit] = c
		heap.Push(&t.heap, c)
		t.candPairs += len(blocks)
		if len(t.heap) > t.candCap {
			t.evictCand()
		}
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", fn, d.err)
	}
	// The other part's bar: units at or above it were not kept there.
	if bar < t.bar {
		t.bar = bar
		for len(t.heap) > 0 && t.heap[0].prio >= t.bar {
			t.evictCand()
		}
	}
	t.evicted1 = t.evicted1 || evicted
	t.lastCand = nil
	for t.candPairs > t.opts.MaxPairs && len(t.heap) > 1 {
		t.evictCand()
	}
	return nil
}

// RawState returns what Raw indexed (phase 2), for MergeRaw on another
// Traces sealed with the same candidates.
func (t *Traces) RawState() ([]byte, error) {
	if t.phase != 2 {
		return nil, errors.New("linkage.Traces.RawState: call Seal first (and not after Result)")
	}
	e := &enc{}
	e.u(magicRaw)
	keys := make([]uint64, 0, len(t.blocks))
	for b := range t.blocks {
		keys = append(keys, b)
	}
	slices.Sort(keys)
	e.n(len(keys))
	for _, b := range keys {
		bl := t.blocks[b]
		compactPairs(&bl.raw, &bl.rawSorted)
		e.u(b)
		e.pairs(bl.raw)
		e.us(bl.diagRows)
	}
	return e.b, nil
}

// MergeRaw adds another Traces' raw index (phase 2; same options, Key and
// candidates), keeping the blocks this one still needs.
func (t *Traces) MergeRaw(b []byte) error {
	const fn = "linkage.Traces.MergeRaw"
	if t.phase != 2 {
		return fmt.Errorf("%s: call Seal first (and not after Result)", fn)
	}
	d := &dec{b: b}
	if d.u() != magicRaw {
		return fmt.Errorf("%s: not a raw state", fn)
	}
	n := d.n(24)
	w := len(t.opts.Columns) + 1
	for range n {
		key, raw, diag := d.u(), d.pairs(), d.us()
		if d.err != nil {
			break
		}
		bl := t.blocks[key]
		if bl == nil {
			continue // evicted here
		}
		bl.raw = append(bl.raw, raw...)
		t.pairs += len(raw)
		if bl.diagRefs > 0 && len(diag)%w == 0 {
			bl.diagRows = append(bl.diagRows, diag...)
			t.pairs += len(diag) / 2
		}
		t.pairs -= compactPairs(&bl.raw, &bl.rawSorted)
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", fn, d.err)
	}
	t.bound()
	return nil
}

// PublishedState returns what Published indexed (phase 2): the sampled
// traces' published points (and diagnosis rows) and the published rows of
// their blocks, for MergePublished on another Traces sealed with the same
// candidates.
func (t *Traces) PublishedState() ([]byte, error) {
	if t.phase != 2 {
		return nil, errors.New("linkage.Traces.PublishedState: call Seal first (and not after Result)")
	}
	e := &enc{}
	e.u(magicPub)
	var trs []*trace
	for _, tr := range t.traces {
		if len(tr.points) > 0 {
			trs = append(trs, tr)
		}
	}
	e.n(len(trs))
	for _, tr := range trs {
		e.u(tr.unit)
		e.n(len(tr.points))
		for _, p := range tr.points {
			e.u(p.block)
			e.u(p.point)
		}
		e.us(tr.cols)
	}
	keys := make([]uint64, 0, len(t.blocks))
	for b, bl := range t.blocks {
		if len(bl.pub) > 0 {
			keys = append(keys, b)
		}
	}
	slices.Sort(keys)
	e.n(len(keys))
	for _, b := range keys {
		bl := t.blocks[b]
		compactPairs(&bl.pub, &bl.pubSorted)
		e.u(b)
		e.pairs(bl.pub)
	}
	return e.b, nil
}

// MergePublished adds another Traces' published index (phase 2; same
// options, Key and candidates), keeping the traces and blocks this one
// still holds.
func (t *Traces) MergePublished(b []byte) error {
	const fn = "linkage.Traces.MergePublished"
	if t.phase != 2 {
		return fmt.Errorf("%s: call Seal first (and not after Result)", fn)
	}
	d := &dec{b: b}
	if d.u() != magicPub {
		return fmt.Errorf("%s: not a published state", fn)
	}
	ncol := len(t.opts.Columns)
	n := d.n(24)
	for range n {
		unit := d.u()
		np := d.n(16)
		pts := make([]bpoint, 0, np)
		for range np {
			pts = append(pts, bpoint{d.u(), d.u()})
		}
		cols := d.us()
		if d.err != nil {
			break
		}
		tr := t.byUnit[unit]
		if tr == nil {
			continue // not sampled here, or evicted
		}
		tr.points = append(tr.points, pts...)
		t.pairs += len(pts)
		if tr.diag && len(cols)%max(ncol, 1) == 0 {
			tr.cols = append(tr.cols, cols...)
			t.pairs += len(cols) / 2
		}
	}
	nb := d.n(16)
	for range nb {
		key, pub := d.u(), d.pairs()
		if d.err != nil {
			break
		}
		bl := t.blocks[key]
		if bl == nil {
			continue
		}
		bl.pub = append(bl.pub, pub...)
		t.pairs += len(pub)
		t.pairs -= compactPairs(&bl.pub, &bl.pubSorted)
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", fn, d.err)
	}
	t.bound()
	return nil
}

// State returns the state of a Subjects for Merge on another one.
func (s *Subjects) State() ([]byte, error) {
	if s.done {
		return nil, errors.New("linkage.Subjects.State: after Result")
	}
	s.compact()
	e := &enc{}
	e.u(magicSubject)
	e.u(s.theta)
	e.n(s.halving)
	e.u(uint64(s.rows))
	e.bl(s.evicted)
	e.u(s.bar)
	e.n(len(s.heap))
	for _, c := range s.heap {
		e.u(c.subj)
		e.u(c.prio)
	}
	e.pairs(s.pairs)
	return e.b, nil
}

// Merge adds another Subjects' state (same options and Key): the sample is
// the lowest priorities of both, the points those below the lower
// threshold.
func (s *Subjects) Merge(b []byte) error {
	const fn = "linkage.Subjects.Merge"
	if s.done {
		return fmt.Errorf("%s: after Result", fn)
	}
	d := &dec{b: b}
	if d.u() != magicSubject {
		return fmt.Errorf("%s: not a subjects state", fn)
	}
	theta, halving, rows, evicted, bar := d.u(), d.n(0), d.u(), d.bl(), d.u()
	n := d.n(16)
	type sc struct{ subj, prio uint64 }
	sample := make([]sc, 0, n)
	for range n {
		sample = append(sample, sc{d.u(), d.u()})
	}
	pairs := d.pairs()
	if d.err != nil {
		return fmt.Errorf("%s: %w", fn, d.err)
	}
	s.rows += int64(rows)
	s.evicted = s.evicted || evicted
	if bar < s.bar {
		s.bar = bar
		for len(s.heap) > 0 && s.heap[0].prio >= s.bar {
			out := heap.Pop(&s.heap).(*subjCand)
			delete(s.sample, out.subj)
		}
	}
	for _, c := range sample {
		if _, ok := s.sample[c.subj]; ok || c.prio >= s.bar {
			continue
		}
		nc := &subjCand{subj: c.subj, prio: c.prio}
		s.sample[c.subj] = nc
		heap.Push(&s.heap, nc)
		if len(s.heap) > s.opts.Subjects {
			out := heap.Pop(&s.heap).(*subjCand)
			delete(s.sample, out.subj)
			s.bar = out.prio
			s.evicted = true
		}
	}
	elig := s.key.seed ^ 0x5851f42d4c957f2d
	if theta < s.theta {
		s.compact() // the deletion below keeps the order, and so the sorted prefix whole
		s.theta, s.halving = theta, halving
		s.pairs = slices.DeleteFunc(s.pairs, func(p pair) bool { return mix64(p.point^elig) > s.theta })
		s.sorted = len(s.pairs)
	}
	for _, p := range pairs {
		if mix64(p.point^elig) <= s.theta {
			s.pairs = append(s.pairs, p)
		}
	}
	s.compact()
	for len(s.pairs) > s.opts.MaxPairs {
		s.theta >>= 1
		s.halving++
		s.pairs = slices.DeleteFunc(s.pairs, func(p pair) bool { return mix64(p.point^elig) > s.theta })
		s.sorted = len(s.pairs)
	}
	s.lastSubj = 0
	return nil
}
