package linkage

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"
)

// SubjectOptions configures Subjects.
type SubjectOptions struct {
	// Subjects is the number of subjects sampled; 0 means 1,000.
	Subjects int
	// Points is p, the points drawn per subject; 0 means 4.
	Points int
	// MaxPairs bounds memory: the (point, subject) pairs held, 16 bytes
	// each. Past it, only the points whose keyed hash falls in the lower
	// half of the range stay eligible, then the lower quarter, and so on
	// (SubjectResult.PointShare). 0 means 1<<21 (32 MiB).
	MaxPairs int
	// Key draws the sample. Required.
	Key *Key
	// Confidence of the interval; 0 means 0.95.
	Confidence float64
}

// Subjects measures the unicity of raw subjects' traces in one pass and
// bounded memory: a keyed uniform sample of subjects (the lowest keyed
// priorities), and every subject's eligible points — all of them, or a
// keyed uniform share of the distinct points when there are more than
// MaxPairs (distinct sampling: a point is eligible when its keyed hash is
// below a threshold that halves when memory runs out, so each eligible
// point's subjects are all known). Each sampled subject's p points are
// drawn from its eligible points; it is unique when no other subject's
// trace holds all of them. The same code measures raw traces at GPS
// precision and at the published precision.
type Subjects struct {
	opts SubjectOptions
	key  *Key
	// prfBuf is the scratch of the keyed priorities (admit, per row).
	prfBuf prfBuf
	conf   float64
	done   bool
	pairs  []pair // (point, subject) for eligible points
	// sorted: pairs[:sorted] is sorted and deduplicated
	sorted  int
	theta   uint64 // a point is eligible when its keyed hash is <= theta
	halving int
	rows    int64

	// recent holds, per slot, the last pair appended there. A subject's
	// rows repeat their point many times within minutes (at published
	// precision every reading of a cell-hour has the same point), and a
	// pair appended again would only be sorted and compacted away later:
	// skipping it here leaves the set of pairs unchanged and saves most of
	// the sorting (a direct-mapped cache; a miss appends as before).
	recent *[recentSlots]pair

	sample   map[uint64]*subjCand
	heap     subjHeap
	bar      uint64
	evicted  bool
	lastSubj uint64
}

// recentSlots is the size of Subjects.recent (256 KiB).
const recentSlots = 1 << 14

type subjCand struct {
	subj, prio uint64
	idx        int
}

type subjHeap []*subjCand

func (h subjHeap) Len() int           { return len(h) }
func (h subjHeap) Less(i, j int) bool { return h[i].prio > h[j].prio }
func (h subjHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *subjHeap) Push(x any) { c := x.(*subjCand); c.idx = len(*h); *h = append(*h, c) }
func (h *subjHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// NewSubjects validates opts.
func NewSubjects(opts SubjectOptions) (*Subjects, error) {
	const fn = "linkage.NewSubjects"
	if opts.Key == nil {
		return nil, fmt.Errorf("%s: Key is required", fn)
	}
	if opts.Subjects < 0 || opts.Points < 0 || opts.MaxPairs < 0 {
		return nil, fmt.Errorf("%s: Subjects, Points and MaxPairs must be >= 0", fn)
	}
	conf, err := confidence(fn, opts.Confidence)
	if err != nil {
		return nil, err
	}
	if opts.Subjects == 0 {
		opts.Subjects = 1000
	}
	if opts.Points == 0 {
		opts.Points = 4
	}
	if opts.MaxPairs == 0 {
		opts.MaxPairs = 1 << 21
	}
	return &Subjects{opts: opts, key: opts.Key, conf: conf, theta: ^uint64(0), bar: ^uint64(0),
		sample: map[uint64]*subjCand{}}, nil
}

// Add takes rows: per row its subject and its point's key (Combine of the
// point's columns). A subject of 0 is skipped.
func (s *Subjects) Add(subjects, points []uint64) error {
	if s.done {
		return errors.New("linkage.Subjects.Add: called after Result")
	}
	if len(subjects) != len(points) {
		return fmt.Errorf("linkage.Subjects.Add: %d subjects for %d points", len(subjects), len(points))
	}
	s.rows += int64(len(subjects))
	if s.recent == nil {
		s.recent = new([recentSlots]pair)
	}
	elig := s.key.seed ^ 0x5851f42d4c957f2d
	for i, sub := range subjects {
		if sub == 0 {
			continue
		}
		if sub != s.lastSubj {
			s.lastSubj = sub
			s.admit(sub)
		}
		pt := points[i]
		if mix64(pt^elig) > s.theta {
			continue
		}
		p := pair{pt, sub}
		slot := &s.recent[mix64(pt^sub*0x9e3779b97f4a7c15)&(recentSlots-1)]
		if *slot == p {
			continue
		}
		*slot = p
		s.pairs = append(s.pairs, p)
		if len(s.pairs) >= 2*max(s.sorted, 1024) {
			s.compact()
		}
	}
	for len(s.pairs) > s.opts.MaxPairs {
		s.compact()
		if len(s.pairs) <= s.opts.MaxPairs*3/4 {
			break
		}
		s.theta >>= 1
		s.halving++
		s.pairs = slices.DeleteFunc(s.pairs, func(p pair) bool { return mix64(p.point^elig) > s.theta })
		s.sorted = len(s.pairs)
	}
	return nil
}

func (s *Subjects) compact() {
	s.pairs = slices.Compact(sortPairs(s.pairs, s.sorted))
	s.sorted = len(s.pairs)
}

// admit enters a subject into the sample when its priority is among the
// lowest.
func (s *Subjects) admit(sub uint64) {
	if _, ok := s.sample[sub]; ok {
		return
	}
	prio := s.key.prfInto(&s.prfBuf, domSubject, sub)
	if prio >= s.bar {
		return
	}
	c := &subjCand{subj: sub, prio: prio}
	s.sample[sub] = c
	heap.Push(&s.heap, c)
	if len(s.heap) > s.opts.Subjects {
		out := heap.Pop(&s.heap).(*subjCand)
		delete(s.sample, out.subj)
		s.bar = out.prio
		s.evicted = true
	}
}

// Result draws the points of every sampled subject and counts the unique
// ones. It ends the measurement.
func (s *Subjects) Result() (SubjectResult, error) {
	if s.done {
		return SubjectResult{}, errors.New("linkage.Subjects.Result: called twice")
	}
	s.done = true
	s.compact()
	res := SubjectResult{P: s.opts.Points, Census: !s.evicted, Rows: s.rows, PointShare: 1 / float64(uint64(1)<<s.halving)}
	// Each sampled subject's eligible points.
	own := map[uint64][]bpoint{}
	for _, p := range s.pairs {
		if _, ok := s.sample[p.id]; ok {
			own[p.id] = append(own[p.id], bpoint{point: p.point})
		}
	}
	subs := make([]*subjCand, 0, len(s.sample))
	for _, c := range s.sample {
		subs = append(subs, c)
	}
	slices.SortFunc(subs, func(a, b *subjCand) int { return cmp.Compare(a.prio, b.prio) })
	var n, unique int
	var cur, next []uint64
	for _, c := range subs {
		pts := own[c.subj]
		if len(pts) == 0 {
			continue // no eligible point: nothing to draw
		}
		n++
		if len(pts) < s.opts.Points {
			res.Short++
		}
		pick := drawPoints(s.key, c.subj, pts, s.opts.Points)
		lists := make([][]pair, len(pick))
		for i, p := range pick {
			lists[i] = idsOf(s.pairs, p.point)
		}
		if ids := intersect(lists, &cur, &next); len(ids) == 1 {
			unique++
		}
	}
	res.Unicity = proportion(unique, n, s.conf)
	s.pairs, s.sample = nil, nil
	return res, nil
}
