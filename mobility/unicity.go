package mobility

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/tarnkappe/tarnkappe/internal/wilson"
)

// ShortTraces says what Estimate does with subjects whose trace has fewer
// distinct points than P.
type ShortTraces int

const (
	// ShortUseAll uses the whole trace of a short subject: it is unique when
	// no other subject's trace contains all of its points. The zero value.
	ShortUseAll ShortTraces = iota
	// ShortExclude leaves short subjects out of the sample and the
	// denominator (they are still counted in UnicityResult.Short).
	ShortExclude
)

// UnicityColumns says which columns form a subject's trace.
type UnicityColumns struct {
	// Subject identifies the trace's owner: "vin" on raw data, the trip id
	// when the output's linkable unit is the trip. Required.
	Subject string
	// Space are the spatial columns of a point: either two float64 columns
	// latitude, longitude (validated as such: range and nulls) or one cell
	// column (any type). Required.
	Space []string
	// Time is the temporal column of a point (a timestamp, or any key type
	// such as a bucket). Required.
	Time string
	// SkipNullSubjects lets rows with a null subject through: they belong
	// to no trace (trip endpoints detached by EndpointsDetach) and are
	// counted in UnicityResult.Unlinked. Otherwise a null subject is an
	// error naming the row.
	SkipNullSubjects bool
}

// UnicityIndex holds the traces of all subjects: the set of distinct
// (space, time) points per subject and, for each point, the sorted list of
// subjects whose trace contains it. Points are compared at the resolution the
// data has: raw coordinates and timestamps exactly as given, cells and
// buckets as given.
//
// Points are identified by a 64-bit mix of their column values rather than
// stored; two distinct points collide with probability about n²/2⁶⁵ for n
// points (10⁻⁵ for 10⁷ points), which could only merge two points.
type UnicityIndex struct {
	cols     UnicityColumns
	schema   *arrow.Schema
	subj     int
	space    []int
	ts       int
	latlon   bool
	subjects *denser
	strs     *interner
	pairs    []subjPoint
	rows     int64
	unlinked int64
	buf      [][]uint64
	built    bool
	// built form
	nSubj      int
	traceStart []int
	traces     []uint32 // point ids per subject
	ptStart    []int
	ptSubj     []uint32 // subject ids per point, sorted
}

type subjPoint struct {
	p uint64
	s uint32
}

// NewUnicityIndex validates the columns against the schema.
func NewUnicityIndex(schema *arrow.Schema, cols UnicityColumns) (*UnicityIndex, error) {
	const fn = "mobility.NewUnicityIndex"
	if schema == nil {
		return nil, fmt.Errorf("%s: nil schema", fn)
	}
	u := &UnicityIndex{cols: cols, schema: schema, subjects: newDenser(), strs: newInterner()}
	var err error
	if u.subj, err = fieldIndex(fn, "Subject", schema, cols.Subject); err != nil {
		return nil, err
	}
	if err := checkKeyType(fn, "Subject", cols.Subject, schema.Field(u.subj).Type); err != nil {
		return nil, err
	}
	switch len(cols.Space) {
	case 1, 2:
	default:
		return nil, fmt.Errorf("%s: Space must name a cell column or a latitude and a longitude column, got %d columns", fn, len(cols.Space))
	}
	for _, name := range cols.Space {
		i, err := fieldIndex(fn, "Space", schema, name)
		if err != nil {
			return nil, err
		}
		if err := checkKeyType(fn, "Space", name, schema.Field(i).Type); err != nil {
			return nil, err
		}
		u.space = append(u.space, i)
	}
	if len(u.space) == 2 {
		for i, name := range cols.Space {
			if err := checkCoordType(fn, "Space", name, schema.Field(u.space[i]).Type); err != nil {
				return nil, fmt.Errorf("%w (two Space columns are latitude and longitude)", err)
			}
		}
		u.latlon = true
	}
	if u.ts, err = fieldIndex(fn, "Time", schema, cols.Time); err != nil {
		return nil, err
	}
	if err := checkKeyType(fn, "Time", cols.Time, schema.Field(u.ts).Type); err != nil {
		return nil, err
	}
	u.buf = make([][]uint64, 2+len(u.space))
	return u, nil
}

// Add records the points of one batch. Rows count from 0 across all batches
// in error messages.
func (u *UnicityIndex) Add(ctx context.Context, rec arrow.RecordBatch) error {
	const fn = "mobility.UnicityIndex.Add"
	if u.built {
		return fmt.Errorf("%s: called after Estimate", fn)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSameSchema(fn, u.schema, rec); err != nil {
		return err
	}
	n := int(rec.NumRows())
	for i := range u.buf {
		if cap(u.buf[i]) < n {
			u.buf[i] = make([]uint64, n)
		}
		u.buf[i] = u.buf[i][:n]
	}
	if u.latlon {
		lat, lon := rec.Column(u.space[0]).(*array.Float64), rec.Column(u.space[1]).(*array.Float64)
		if err := checkCoords(fn, u.cols.Space[0], u.cols.Space[1], lat, lon, u.rows); err != nil {
			return err
		}
	}
	if u.cols.SkipNullSubjects {
		nulls, err := u.subjects.keysNullable(fn, u.cols.Subject, rec.Column(u.subj), u.rows, u.buf[0])
		if err != nil {
			return err
		}
		u.unlinked += int64(nulls)
	} else if err := u.subjects.keys(fn, u.cols.Subject, rec.Column(u.subj), u.rows, u.buf[0]); err != nil {
		return err
	}
	if err := keyValues(fn, u.cols.Time, rec.Column(u.ts), u.strs, u.rows, u.buf[1]); err != nil {
		return err
	}
	for j, c := range u.space {
		if err := keyValues(fn, u.cols.Space[j], rec.Column(c), u.strs, u.rows, u.buf[2+j]); err != nil {
			return err
		}
	}
	if u.subjects.count() > math.MaxUint32-1 {
		return fmt.Errorf("%s: more than 2³² subjects", fn)
	}
	subj := u.buf[0]
	for i := 0; i < n; i++ {
		h := uint64(0x9e3779b97f4a7c15)
		for _, col := range u.buf[1:] {
			h = mix64(h ^ col[i])
		}
		if subj[i] == noSubject {
			continue
		}
		sp := subjPoint{p: h, s: uint32(subj[i])}
		// Consecutive duplicates are common (a parked or slow subject in one
		// cell-hour): skip them before they take memory.
		if k := len(u.pairs); k > 0 && u.pairs[k-1] == sp {
			continue
		}
		u.pairs = append(u.pairs, sp)
	}
	u.rows += int64(n)
	return nil
}

// build turns the collected pairs into the inverted index and the traces.
func (u *UnicityIndex) build() {
	if u.built {
		return
	}
	u.built = true
	pairs := u.pairs
	u.pairs = nil
	slices.SortFunc(pairs, func(a, b subjPoint) int {
		if a.p != b.p {
			if a.p < b.p {
				return -1
			}
			return 1
		}
		return int(a.s) - int(b.s)
	})
	pairs = slices.Compact(pairs)
	u.nSubj = u.subjects.count()
	// Inverted index: point id (dense, by hash order) → sorted subjects.
	u.ptSubj = make([]uint32, len(pairs))
	u.ptStart = u.ptStart[:0]
	pid := make([]uint32, len(pairs))
	for i, sp := range pairs {
		if i == 0 || sp.p != pairs[i-1].p {
			u.ptStart = append(u.ptStart, i)
		}
		u.ptSubj[i] = sp.s
		pid[i] = uint32(len(u.ptStart) - 1)
	}
	u.ptStart = append(u.ptStart, len(pairs))
	// Traces: counting sort of point ids by subject.
	u.traceStart = make([]int, u.nSubj+1)
	for _, sp := range pairs {
		u.traceStart[sp.s+1]++
	}
	for i := 1; i <= u.nSubj; i++ {
		u.traceStart[i] += u.traceStart[i-1]
	}
	fill := slices.Clone(u.traceStart[:u.nSubj])
	u.traces = make([]uint32, len(pairs))
	for i, sp := range pairs {
		u.traces[fill[sp.s]] = pid[i]
		fill[sp.s]++
	}
}

// UnicityOptions configures Estimate.
type UnicityOptions struct {
	// P is the number of points the adversary knows. Required, >= 1.
	P int
	// Samples is the number of subjects drawn (without replacement); 0 or a
	// number at least the subject count means every subject (a census).
	Samples int
	// Seed makes the draw of subjects and points reproducible. Unicity is a
	// measurement, not a privacy mechanism, so a seeded generator (ChaCha8)
	// is the right tool: the same data and seed give the same figure.
	Seed uint64
	// Short chooses how subjects with fewer than P points count.
	Short ShortTraces
	// Confidence of the Wilson interval, in (0, 1); 0 means 0.95.
	Confidence float64
}

// UnicityResult is a unicity estimate.
type UnicityResult struct {
	P          int     `json:"points"`
	Subjects   int     `json:"subjects"`        // subjects with at least one row
	Points     int     `json:"points_distinct"` // distinct (space, time) points
	Rows       int64   `json:"rows"`
	Unlinked   int64   `json:"unlinked_rows"` // rows with a null subject (SkipNullSubjects)
	Sampled    int     `json:"sampled"`       // subjects in the estimate's denominator
	Unique     int     `json:"unique"`        // of those, uniquely identified
	Short      int     `json:"short"`         // fewer than P points: among drawn (ShortUseAll) or left out (ShortExclude)
	Unicity    float64 `json:"unicity"`       // Unique / Sampled
	Lower      float64 `json:"lower"`         // Wilson score interval
	Upper      float64 `json:"upper"`
	Confidence float64 `json:"confidence"`
	Census     bool    `json:"census"` // every subject was evaluated
}

// Estimate draws subjects and, for each, P distinct points at random from its
// trace, and counts the subject unique when it is the only subject whose
// trace contains all P points (the definition of de Montjoye et al.,
// "Unique in the Crowd", Sci. Rep. 3:1376, 2013). The interval is the Wilson
// score interval for the binomial proportion over the drawn subjects; it
// covers the sampling of subjects, not the draw of points.
func (u *UnicityIndex) Estimate(opts UnicityOptions) (UnicityResult, error) {
	const fn = "mobility.UnicityIndex.Estimate"
	if opts.P < 1 {
		return UnicityResult{}, fmt.Errorf("%s: P must be >= 1, got %d", fn, opts.P)
	}
	if opts.Samples < 0 {
		return UnicityResult{}, fmt.Errorf("%s: Samples must be >= 0, got %d", fn, opts.Samples)
	}
	if opts.Short != ShortUseAll && opts.Short != ShortExclude {
		return UnicityResult{}, fmt.Errorf("%s: Short: unknown mode %d", fn, opts.Short)
	}
	conf := opts.Confidence
	if conf == 0 {
		conf = 0.95
	}
	if !(conf > 0 && conf < 1) {
		return UnicityResult{}, fmt.Errorf("%s: Confidence must be in (0, 1), got %v", fn, opts.Confidence)
	}
	u.build()
	res := UnicityResult{P: opts.P, Subjects: u.nSubj, Points: len(u.ptStart) - 1, Rows: u.rows, Unlinked: u.unlinked, Confidence: conf}
	if len(u.traces) == 0 {
		return res, fmt.Errorf("%s: no subjects (empty input)", fn)
	}
	var seed [32]byte
	for i := range 4 {
		v := mix64(opts.Seed + uint64(i)*0x9e3779b97f4a7c15)
		for j := range 8 {
			seed[i*8+j] = byte(v >> (8 * j))
		}
	}
	rng := rand.New(rand.NewChaCha8(seed))
	cand := make([]uint32, 0, u.nSubj)
	res.Subjects = 0
	for s := 0; s < u.nSubj; s++ {
		n := u.traceStart[s+1] - u.traceStart[s]
		if n == 0 {
			// An id without rows: a dictionary entry no row uses.
			continue
		}
		res.Subjects++
		if n < opts.P && opts.Short == ShortExclude {
			res.Short++
			continue
		}
		cand = append(cand, uint32(s))
	}
	draw := len(cand)
	res.Census = opts.Samples == 0 || opts.Samples >= len(cand)
	if !res.Census {
		draw = opts.Samples
		for i := 0; i < draw; i++ { // partial Fisher–Yates
			j := i + rng.IntN(len(cand)-i)
			cand[i], cand[j] = cand[j], cand[i]
		}
	}
	pick := make([]uint32, 0, opts.P)
	var scratch, other []uint32
	for _, s := range cand[:draw] {
		trace := u.traces[u.traceStart[s]:u.traceStart[s+1]]
		if len(trace) < opts.P {
			res.Short++
			pick = append(pick[:0], trace...)
		} else {
			pick = pick[:0]
			// Floyd's algorithm: P distinct indices without copying the trace.
			chosen := map[int]struct{}{}
			for j := len(trace) - opts.P; j < len(trace); j++ {
				t := rng.IntN(j + 1)
				if _, dup := chosen[t]; dup {
					t = j
				}
				chosen[t] = struct{}{}
				pick = append(pick, trace[t])
			}
		}
		if u.unique(s, pick, &scratch, &other) {
			res.Unique++
		}
	}
	res.Sampled = draw
	res.Unicity = float64(res.Unique) / float64(max(draw, 1))
	res.Lower, res.Upper = wilson.Interval(res.Unique, draw, conf)
	return res, nil
}

// unique reports whether s is the only subject whose trace holds every point.
func (u *UnicityIndex) unique(s uint32, pts []uint32, scratch, other *[]uint32) bool {
	if len(pts) == 0 {
		return false
	}
	// Start from the rarest point: the candidate set only shrinks.
	slices.SortFunc(pts, func(a, b uint32) int {
		return (u.ptStart[a+1] - u.ptStart[a]) - (u.ptStart[b+1] - u.ptStart[b])
	})
	first := u.ptSubj[u.ptStart[pts[0]]:u.ptStart[pts[0]+1]]
	if len(first) == 1 {
		return true
	}
	cur := append((*scratch)[:0], first...)
	for _, p := range pts[1:] {
		list := u.ptSubj[u.ptStart[p]:u.ptStart[p+1]]
		next := (*other)[:0]
		for _, x := range cur {
			if _, ok := slices.BinarySearch(list, x); ok {
				next = append(next, x)
			}
		}
		cur, *other = next, cur
		if len(cur) <= 1 {
			break
		}
	}
	*scratch = cur
	return len(cur) == 1
}

// Unicity reads every batch of src into an index and estimates unicity.
func Unicity(ctx context.Context, src array.RecordReader, cols UnicityColumns, opts UnicityOptions) (UnicityResult, error) {
	u, err := NewUnicityIndex(src.Schema(), cols)
	if err != nil {
		return UnicityResult{}, err
	}
	for src.Next() {
		if err := u.Add(ctx, src.RecordBatch()); err != nil {
			return UnicityResult{}, err
		}
	}
	if err := src.Err(); err != nil {
		return UnicityResult{}, fmt.Errorf("mobility.Unicity: read input: %w", err)
	}
	return u.Estimate(opts)
}
