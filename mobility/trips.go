package mobility

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/compute/exec"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// TripIDMode chooses how trip identifiers are drawn.
type TripIDMode int

const (
	// TripIDRandom draws each trip id from crypto/rand (63 bits). Ids carry
	// no information about the subject or about the order of trips, so trips
	// of one subject cannot be linked through them. The zero value, and the
	// one to publish with.
	TripIDRandom TripIDMode = iota
	// TripIDSequence numbers trips 1, 2, 3, ... in the order they start.
	// Reproducible, for tests and internal use. On input sorted by
	// (subject, time) consecutive ids belong to the same subject: do not
	// publish them as an unlinkable key.
	TripIDSequence
)

// InputOrder says how rows arrive at a Segmenter.
type InputOrder int

const (
	// OrderTime: rows of all subjects interleaved in time order (within
	// Lateness), as ingestion produces them. Trips close when the stream's
	// newest timestamp has moved Gap+Lateness past them. The zero value.
	OrderTime InputOrder = iota
	// OrderSubject: rows grouped by subject, each subject's rows in time
	// order, as SortBySubjectTime produces them. Trips close when the
	// subject changes; a subject that reappears later is an error.
	OrderSubject
)

// ErrOrder is matched (errors.Is) by every error of a Segmenter whose input
// is not in the order it streams (TripOptions.Order): a subject's reading
// earlier than its previous one, a row that would continue a trip already
// emitted (OrderTime), a subject that reappears (OrderSubject). The
// segmenter's output up to then is sound but incomplete: a caller that can
// read the input again restarts with OrderSubject when [Segmenter.Grouped]
// says the rows so far allow it, and with SortBySubjectTime otherwise.
var ErrOrder = errors.New("input not in an order the segmenter streams")

// orderError is an ErrOrder with its own message (kept as it was before
// ErrOrder existed).
type orderError struct{ msg string }

func (e *orderError) Error() string        { return e.msg }
func (e *orderError) Is(target error) bool { return target == ErrOrder }

func orderErrorf(format string, args ...any) error {
	return &orderError{msg: fmt.Sprintf(format, args...)}
}

// EndpointMode says what happens to the readings trimming takes off a trip.
type EndpointMode int

const (
	// EndpointsDrop removes them (counted in TripStats.RowsTrimmed). The
	// zero value.
	EndpointsDrop EndpointMode = iota
	// EndpointsDetach keeps them but cuts them from the trip: their trip id
	// is null, so they join per-cell aggregates (no bias against cells where
	// trips start and end) without being attachable to any trip. Requires
	// TripIDColumn, and the subject column must then be dropped or replaced
	// by the trip id (Protect's ScopeTrip does): a detached row that still
	// carries the subject points at its home again.
	EndpointsDetach
)

// TripOptions configures a Segmenter.
type TripOptions struct {
	// Subject is the column that identifies whose reading a row is (e.g.
	// "vin"). Required.
	Subject string
	// Time is the timestamp column (any unit). Required.
	Time string
	// Lat and Lon are the float64 coordinate columns in degrees (WGS 84).
	// Required.
	Lat, Lon string
	// Gap splits a subject's readings into trips: a reading more than Gap
	// after the subject's previous one starts a new trip. Required, > 0.
	Gap time.Duration
	// TrimMetres drops every reading of a trip within this great-circle
	// radius of the trip's first or of its last reading (the origin and the
	// destination: homes and workplaces). The radius criterion is stronger
	// than "the first D metres along the path": the straight-line distance
	// never exceeds the path length, and points where a trip loops back near
	// an endpoint go as well. 0 disables it; must be >= 0 and finite.
	TrimMetres float64
	// TrimDuration drops every reading less than this long after the trip's
	// first reading or before its last. 0 disables it; must be >= 0.
	TrimDuration time.Duration
	// Lateness is how far behind the newest timestamp seen so far a row may
	// arrive on interleaved input. A trip is closed once the newest timestamp
	// is more than Gap+Lateness past the trip's last reading; a row that
	// would have continued a closed trip is an error. Must be >= 0.
	Lateness time.Duration
	// Endpoints says whether trimmed readings are dropped (default) or
	// detached from their trip.
	Endpoints EndpointMode
	// Order says how rows arrive (default OrderTime).
	Order InputOrder
	// TripIDColumn, if not empty, names an int64 column appended to the
	// output that holds each row's trip id.
	TripIDColumn string
	// TripIDs chooses how trip ids are drawn (default TripIDRandom).
	TripIDs TripIDMode
	// Mem allocates the output; nil means memory.DefaultAllocator.
	Mem memory.Allocator
}

// TripStats counts what a Segmenter did. After Flush,
// RowsIn == RowsOut + RowsTrimmed.
type TripStats struct {
	RowsIn       int64 // rows pushed
	RowsOut      int64 // rows emitted (including detached ones)
	RowsTrimmed  int64 // rows dropped by endpoint trimming ("filtered")
	RowsDetached int64 // rows emitted detached from their trip (null trip id)
	Trips        int64 // trips closed
	TripsEmpty   int64 // trips of which trimming left nothing
	OpenRows     int64 // rows held in open trips right now
	MaxOpenRows  int64 // the most rows ever held at once
}

// Segmenter splits interleaved readings into trips per subject, trims trip
// endpoints and emits the remaining rows once their trip is closed. Rows must
// arrive in non-decreasing time order per subject, with rows of different
// subjects interleaved in (roughly, see Lateness) time order, as ingestion
// produces them; sort other input with SortBySubjectTime first.
//
// Memory is bounded by the rows of open trips (and the input batches they
// point into, which stay retained until their last open row is emitted).
//
// A Segmenter is not safe for concurrent use. After an error it refuses
// further input: its state may be partial, and it must be released.
type Segmenter struct {
	opts             TripOptions
	mem              memory.Allocator
	in, out          *arrow.Schema
	subj, ts, la, lo int
	gap, trim, late  int64 // in timestamp ticks
	subjects         map[string]*subjectState
	open             tripHeap
	held             []*heldBatch
	pending          []outRef
	seq              int64
	nextID           int64
	watermark        int64
	haveWatermark    bool
	stats            TripStats
	err              error
	current          *subjectState // OrderSubject: the subject being read
	// last is the subject of the previous row; ungrouped is set once a
	// subject's rows resumed after another subject's, or went back in time
	// (Grouped).
	last      *subjectState
	ungrouped bool
	free      [][]point // point buffers of closed trips, reused
	slots     []refSlot // sortRefs' tables, reused
}

type heldBatch struct {
	rec     arrow.RecordBatch
	seq     int64
	pending int // rows still in open trips
}

type point struct {
	h        *heldBatch
	row      int32
	ts       int64
	lat, lon float64
}

type trip struct {
	id      int64
	key     int64 // heap key: a past lastTs, refreshed lazily (<= subj.lastTs)
	subj    *subjectState
	pts     []point
	heapIdx int
}

type subjectState struct {
	open        *trip
	lastTs      int64
	seen        bool
	closedEarly bool // last trip closed by the watermark, not by a gap
	done        bool // OrderSubject: the subject's group has ended
}

// detachedTrip marks an output row detached from its trip (trip ids are >= 0).
const detachedTrip = -1

type outRef struct {
	h    *heldBatch
	row  int32
	trip int64
}

// NewSegmenter validates opts against the input schema.
func NewSegmenter(schema *arrow.Schema, opts TripOptions) (*Segmenter, error) {
	const fn = "mobility.NewSegmenter"
	if schema == nil {
		return nil, fmt.Errorf("%s: nil schema", fn)
	}
	s := &Segmenter{opts: opts, in: schema, mem: opts.Mem, subjects: map[string]*subjectState{}}
	if s.mem == nil {
		s.mem = memory.DefaultAllocator
	}
	var err error
	if s.subj, err = fieldIndex(fn, "Subject", schema, opts.Subject); err != nil {
		return nil, err
	}
	if s.ts, err = fieldIndex(fn, "Time", schema, opts.Time); err != nil {
		return nil, err
	}
	if s.la, err = fieldIndex(fn, "Lat", schema, opts.Lat); err != nil {
		return nil, err
	}
	if s.lo, err = fieldIndex(fn, "Lon", schema, opts.Lon); err != nil {
		return nil, err
	}
	if err := checkSubjectType(fn, "Subject", opts.Subject, schema.Field(s.subj).Type); err != nil {
		return nil, err
	}
	if err := checkTimeType(fn, "Time", opts.Time, schema.Field(s.ts).Type); err != nil {
		return nil, err
	}
	if err := checkCoordType(fn, "Lat", opts.Lat, schema.Field(s.la).Type); err != nil {
		return nil, err
	}
	if err := checkCoordType(fn, "Lon", opts.Lon, schema.Field(s.lo).Type); err != nil {
		return nil, err
	}
	if opts.Gap <= 0 {
		return nil, fmt.Errorf("%s: Gap must be > 0, got %v", fn, opts.Gap)
	}
	if math.IsNaN(opts.TrimMetres) || math.IsInf(opts.TrimMetres, 0) || opts.TrimMetres < 0 {
		return nil, fmt.Errorf("%s: TrimMetres must be finite and >= 0, got %v", fn, opts.TrimMetres)
	}
	if opts.TrimDuration < 0 {
		return nil, fmt.Errorf("%s: TrimDuration must be >= 0, got %v", fn, opts.TrimDuration)
	}
	if opts.Lateness < 0 {
		return nil, fmt.Errorf("%s: Lateness must be >= 0, got %v", fn, opts.Lateness)
	}
	switch opts.Endpoints {
	case EndpointsDrop:
	case EndpointsDetach:
		if opts.TripIDColumn == "" {
			return nil, fmt.Errorf("%s: Endpoints EndpointsDetach requires TripIDColumn (detached rows are marked by a null trip id)", fn)
		}
	default:
		return nil, fmt.Errorf("%s: Endpoints: unknown mode %d", fn, opts.Endpoints)
	}
	if opts.Order != OrderTime && opts.Order != OrderSubject {
		return nil, fmt.Errorf("%s: Order: unknown mode %d", fn, opts.Order)
	}
	if opts.TripIDs != TripIDRandom && opts.TripIDs != TripIDSequence {
		return nil, fmt.Errorf("%s: TripIDs: unknown mode %d", fn, opts.TripIDs)
	}
	unit := schema.Field(s.ts).Type.(*arrow.TimestampType).Unit
	s.gap = durationTicks(int64(opts.Gap), unit)
	s.trim = durationTicks(int64(opts.TrimDuration), unit)
	s.late = durationTicks(int64(opts.Lateness), unit)
	if s.gap <= 0 {
		return nil, fmt.Errorf("%s: Gap %v is below the resolution of column %q (%s)", fn, opts.Gap, opts.Time, unit)
	}
	s.out = schema
	if opts.TripIDColumn != "" {
		if len(schema.FieldIndices(opts.TripIDColumn)) > 0 {
			return nil, fmt.Errorf("%s: TripIDColumn %q already exists in the input", fn, opts.TripIDColumn)
		}
		fields := append(slices.Clone(schema.Fields()), arrow.Field{Name: opts.TripIDColumn, Type: arrow.PrimitiveTypes.Int64, Nullable: opts.Endpoints == EndpointsDetach})
		md := schema.Metadata()
		s.out = arrow.NewSchema(fields, &md)
	}
	return s, nil
}

// Schema is the output schema: the input's, plus the trip id column if asked.
func (s *Segmenter) Schema() *arrow.Schema { return s.out }

// Stats returns the counters so far.
func (s *Segmenter) Stats() TripStats { return s.stats }

// Grouped reports whether the rows pushed so far came grouped by subject,
// each subject's in time order: OrderSubject would have streamed them. It
// is tracked in either order, so that after an ErrOrder under OrderTime a
// caller can tell a vehicle-by-vehicle export (restart with OrderSubject)
// from one that needs sorting.
func (s *Segmenter) Grouped() bool { return !s.ungrouped }

// Push consumes one batch and returns the rows of every trip that closed,
// trimmed, in input order (possibly zero rows; never nil on success). The
// caller releases the result. Push retains rec as long as it needs it.
func (s *Segmenter) Push(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	const fn = "mobility.Segmenter.Push"
	if s.err != nil {
		return nil, fmt.Errorf("%s: segmenter failed earlier: %w", fn, s.err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkSameSchema(fn, s.in, rec); err != nil {
		return nil, err
	}
	if err := s.consume(ctx, rec); err != nil {
		s.err = err
		return nil, err
	}
	out, err := s.emit(ctx)
	if err != nil {
		s.err = err
	}
	return out, err
}

// Flush closes every open trip and returns its rows. Call once at the end of
// the input; the caller releases the result.
func (s *Segmenter) Flush(ctx context.Context) (arrow.RecordBatch, error) {
	if s.err != nil {
		return nil, fmt.Errorf("mobility.Segmenter.Flush: segmenter failed earlier: %w", s.err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for s.open.Len() > 0 {
		s.close(s.open[0], false)
	}
	out, err := s.emit(ctx)
	if err != nil {
		s.err = err
	}
	return out, err
}

// Release drops every batch the Segmenter still holds.
func (s *Segmenter) Release() {
	for _, h := range s.held {
		h.rec.Release()
	}
	s.held = nil
	s.pending = nil
	s.open = nil
	s.free = nil
	if s.err == nil {
		s.err = errors.New("segmenter released")
	}
}

func (s *Segmenter) consume(ctx context.Context, rec arrow.RecordBatch) error {
	const fn = "mobility.Segmenter.Push"
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	if int64(n) > math.MaxInt32 {
		return fmt.Errorf("%s: batch of %d rows is too large", fn, n)
	}
	base := s.stats.RowsIn
	subjCol, tsCol := rec.Column(s.subj), rec.Column(s.ts)
	if err := checkNoNulls(fn, s.opts.Subject, subjCol, base); err != nil {
		return err
	}
	if err := checkNoNulls(fn, s.opts.Time, tsCol, base); err != nil {
		return err
	}
	lat, lon := rec.Column(s.la).(*array.Float64), rec.Column(s.lo).(*array.Float64)
	if err := checkCoords(fn, s.opts.Lat, s.opts.Lon, lat, lon, base); err != nil {
		return err
	}
	tsv := tsCol.(*array.Timestamp).TimestampValues()
	lav, lov := lat.Float64Values(), lon.Float64Values()

	rec.Retain()
	h := &heldBatch{rec: rec, seq: s.seq}
	s.seq++
	s.held = append(s.held, h)

	keys := newStringKeyer(subjCol)
	var byDict []*subjectState
	if keys.dict != nil {
		byDict = make([]*subjectState, len(keys.dvals))
	}
	lookup := func(i int) *subjectState {
		if byDict != nil {
			d := keys.dict.GetValueIndex(i)
			if st := byDict[d]; st != nil {
				return st
			}
			st := s.subject(keys.dvals[d])
			byDict[d] = st
			return st
		}
		return s.subject(keys.key(i))
	}
	for i := 0; i < n; i++ {
		if i&0xffff == 0xffff {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		st, ts := lookup(i), int64(tsv[i])
		if st != s.last {
			if st.seen {
				s.ungrouped = true
			}
			s.last = st
		}
		if s.opts.Order == OrderSubject && st != s.current {
			if st.done {
				return fmt.Errorf("%s: %w", fn, rowerr.At(rowerr.Row(base, i), s.opts.Subject, orderErrorf("subject seen before in another group; with Order OrderSubject rows must be grouped by subject (sort with mobility.SortBySubjectTime)")))
			}
			if c := s.current; c != nil {
				if c.open != nil {
					s.close(c.open, false)
				}
				c.done = true
			}
			s.current = st
		}
		if st.seen && ts < st.lastTs {
			s.ungrouped = true
			// The subject's value is not printed: it is an identifier.
			return fmt.Errorf("%s: %w", fn, rowerr.At(rowerr.Row(base, i), s.opts.Time, orderErrorf("timestamp earlier than the subject's previous reading; input must be in time order per subject (sort it with mobility.SortBySubjectTime)")))
		}
		if st.open != nil && ts-st.lastTs > s.gap {
			s.close(st.open, false)
		}
		if st.open == nil {
			if st.seen && st.closedEarly && ts-st.lastTs <= s.gap {
				return fmt.Errorf("%s: %w", fn, rowerr.At(rowerr.Row(base, i), s.opts.Time, orderErrorf("row arrives more than Lateness (%v) behind the newest timestamp and would continue a trip already emitted; raise Lateness or sort the input", s.opts.Lateness)))
			}
			t := &trip{id: s.newID(), subj: st, key: ts}
			if k := len(s.free); k > 0 {
				t.pts, s.free = s.free[k-1], s.free[:k-1]
			}
			st.open = t
			heap.Push(&s.open, t)
		}
		t := st.open
		t.pts = append(t.pts, point{h: h, row: int32(i), ts: ts, lat: lav[i], lon: lov[i]})
		h.pending++
		st.lastTs, st.seen, st.closedEarly = ts, true, false
		if !s.haveWatermark || ts > s.watermark {
			s.watermark, s.haveWatermark = ts, true
		}
	}
	s.stats.RowsIn += int64(n)
	s.stats.OpenRows += int64(n)
	s.stats.MaxOpenRows = max(s.stats.MaxOpenRows, s.stats.OpenRows)
	// Close trips no later row can continue.
	// Heap keys are refreshed lazily: a key never exceeds its trip's true
	// last timestamp, so when the smallest key does not qualify, no trip does.
	for s.opts.Order == OrderTime && s.open.Len() > 0 {
		t := s.open[0]
		if s.watermark-t.key <= s.gap+s.late {
			break
		}
		if t.key != t.subj.lastTs {
			t.key = t.subj.lastTs
			heap.Fix(&s.open, 0)
			continue
		}
		s.close(t, true)
	}
	return nil
}

func (s *Segmenter) subject(key string) *subjectState {
	st := s.subjects[key]
	if st == nil {
		st = &subjectState{}
		s.subjects[key] = st
	}
	return st
}

func (s *Segmenter) newID() int64 {
	if s.opts.TripIDs == TripIDSequence {
		s.nextID++
		return s.nextID
	}
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go >= 1.24)
	return int64(binary.LittleEndian.Uint64(b[:]) & math.MaxInt64)
}

// close ends trip t: trims its endpoints and queues the kept rows for output.
func (s *Segmenter) close(t *trip, early bool) {
	heap.Remove(&s.open, t.heapIdx)
	t.subj.open = nil
	t.subj.closedEarly = early
	first, last := t.pts[0], t.pts[len(t.pts)-1]
	ends := newEndpointRadius(first, last, s.opts.TrimMetres)
	kept, detached := 0, 0
	for _, p := range t.pts {
		p.h.pending--
		switch {
		case s.keep(p, first, last, &ends):
			s.pending = append(s.pending, outRef{h: p.h, row: p.row, trip: t.id})
			kept++
		case s.opts.Endpoints == EndpointsDetach:
			s.pending = append(s.pending, outRef{h: p.h, row: p.row, trip: detachedTrip})
			detached++
		}
	}
	s.stats.Trips++
	s.stats.OpenRows -= int64(len(t.pts))
	s.stats.RowsTrimmed += int64(len(t.pts) - kept - detached)
	s.stats.RowsDetached += int64(detached)
	if kept == 0 {
		s.stats.TripsEmpty++
	}
	if cap(t.pts) <= 1<<12 && len(s.free) < 1<<12 {
		clear(t.pts) // drop the batch pointers
		s.free = append(s.free, t.pts[:0])
	}
	t.pts = nil
}

// keep applies the trimming rule to one point of a trip.
func (s *Segmenter) keep(p, first, last point, ends *endpointRadius) bool {
	if s.trim > 0 && (p.ts-first.ts < s.trim || last.ts-p.ts < s.trim) {
		return false
	}
	return s.opts.TrimMetres <= 0 || !ends.within(p.lat, p.lon)
}

// endpointRadius tests "within d metres of either endpoint" without the
// arcsine and square root of the haversine: d' <= d exactly when the
// haversine term a <= sin²(d/2R), and the endpoints' cosines are computed
// once per trip, the point's once for both endpoints. The test checks it
// against haversineM.
type endpointRadius struct {
	lat1, lon1, cos1 float64
	lat2, lon2, cos2 float64
	thr              float64
}

func newEndpointRadius(first, last point, d float64) endpointRadius {
	const rad = math.Pi / 180
	e := endpointRadius{
		lat1: first.lat * rad, lon1: first.lon * rad,
		lat2: last.lat * rad, lon2: last.lon * rad,
	}
	e.cos1, e.cos2 = math.Cos(e.lat1), math.Cos(e.lat2)
	if x := d / (2 * earthRadiusM); x >= math.Pi/2 {
		e.thr = 1 // the radius covers the globe
	} else {
		sx := math.Sin(x)
		e.thr = sx * sx
	}
	return e
}

func (e *endpointRadius) within(lat, lon float64) bool {
	const rad = math.Pi / 180
	p, l := lat*rad, lon*rad
	cp := math.Cos(p)
	s1, s2 := math.Sin((p-e.lat1)/2), math.Sin((l-e.lon1)/2)
	if s1*s1+cp*e.cos1*s2*s2 <= e.thr {
		return true
	}
	s1, s2 = math.Sin((p-e.lat2)/2), math.Sin((l-e.lon2)/2)
	return s1*s1+cp*e.cos2*s2*s2 <= e.thr
}

// emit builds the output batch from the queued rows, in input order, and
// releases input batches no open trip needs any more.
func (s *Segmenter) emit(ctx context.Context) (arrow.RecordBatch, error) {
	refs := sortRefs(s.pending, &s.slots)
	out, err := s.build(ctx, refs)
	s.stats.RowsOut += int64(len(refs))
	// build has copied what it needs: keep the slice's array for the next
	// batch's refs (it held ~64K refs; reallocating it every batch was the
	// Segmenter's largest allocation).
	clear(refs)
	s.pending = refs[:0]
	kept := s.held[:0]
	for _, h := range s.held {
		if h.pending == 0 {
			h.rec.Release()
			continue
		}
		kept = append(kept, h)
	}
	clear(s.held[len(kept):])
	s.held = kept
	return out, err
}

// sortRefs orders refs by (batch sequence, row) in linear time: each row's
// trip is placed in a slot table per held batch (in *scratch, reused), and
// the tables are read back in order (a comparison sort of the ~64K refs of
// every batch was a third of the Segmenter's time). Rows appear once in refs;
// if not, it falls back to sorting.
func sortRefs(refs []outRef, scratch *[]refSlot) []outRef {
	if len(refs) < 2 {
		return refs
	}
	base := map[*heldBatch]int{}
	var hs []*heldBatch
	total := 0
	for _, r := range refs {
		if _, ok := base[r.h]; !ok {
			base[r.h] = total
			total += int(r.h.rec.NumRows())
			hs = append(hs, r.h)
		}
	}
	if cap(*scratch) < total {
		*scratch = make([]refSlot, total)
	}
	slots := (*scratch)[:total]
	clear(slots)
	for _, r := range refs {
		sl := &slots[base[r.h]+int(r.row)]
		if sl.set {
			return sortRefsCmp(refs)
		}
		*sl = refSlot{trip: r.trip, set: true}
	}
	slices.SortFunc(hs, func(a, b *heldBatch) int { return cmp.Compare(a.seq, b.seq) })
	out := refs[:0]
	for _, h := range hs {
		b := base[h]
		for row, sl := range slots[b : b+int(h.rec.NumRows())] {
			if sl.set {
				out = append(out, outRef{h: h, row: int32(row), trip: sl.trip})
			}
		}
	}
	return out
}

// refSlot is one row's place in sortRefs' tables.
type refSlot struct {
	trip int64
	set  bool
}

func sortRefsCmp(refs []outRef) []outRef {
	slices.SortFunc(refs, func(a, b outRef) int {
		if a.h.seq != b.h.seq {
			return cmp.Compare(a.h.seq, b.h.seq)
		}
		return int(a.row) - int(b.row)
	})
	return refs
}

func (s *Segmenter) build(ctx context.Context, refs []outRef) (arrow.RecordBatch, error) {
	if len(refs) == 0 {
		return emptyBatch(s.mem, s.out), nil
	}
	ctx = exec.WithAllocator(ctx, s.mem)
	var parts []arrow.RecordBatch
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	ib := array.NewInt32Builder(s.mem)
	defer ib.Release()
	for i := 0; i < len(refs); {
		j := i
		for j < len(refs) && refs[j].h == refs[i].h {
			ib.Append(refs[j].row)
			j++
		}
		idx := ib.NewArray()
		part, err := takeRecord(ctx, refs[i].h.rec, idx)
		idx.Release()
		if err != nil {
			return nil, fmt.Errorf("mobility.Segmenter: take rows: %w", err)
		}
		parts = append(parts, part)
		i = j
	}
	cols, err := concatRecords(s.mem, parts)
	if err != nil {
		return nil, fmt.Errorf("mobility.Segmenter: concatenate: %w", err)
	}
	if s.opts.TripIDColumn != "" {
		b := array.NewInt64Builder(s.mem)
		b.Reserve(len(refs))
		for _, r := range refs {
			if r.trip == detachedTrip {
				b.UnsafeAppendBoolToBitmap(false)
			} else {
				b.UnsafeAppend(r.trip)
			}
		}
		cols = append(cols, b.NewArray())
		b.Release()
	}
	rec := array.NewRecordBatch(s.out, cols, int64(len(refs)))
	for _, c := range cols {
		c.Release()
	}
	return rec, nil
}

// takeRecord gathers rows idx of rec (dictionary columns stay encoded).
func takeRecord(ctx context.Context, rec arrow.RecordBatch, idx arrow.Array) (arrow.RecordBatch, error) {
	d, err := compute.Take(ctx, *compute.DefaultTakeOptions(), compute.NewDatumWithoutOwning(rec), compute.NewDatumWithoutOwning(idx))
	if err != nil {
		return nil, err
	}
	return d.(*compute.RecordDatum).Value, nil
}

// concatRecords concatenates batches column by column (dictionaries are
// unified); the caller releases the returned arrays.
func concatRecords(mem memory.Allocator, parts []arrow.RecordBatch) ([]arrow.Array, error) {
	ncol := int(parts[0].NumCols())
	cols := make([]arrow.Array, 0, ncol)
	chunk := make([]arrow.Array, len(parts))
	for c := 0; c < ncol; c++ {
		if len(parts) == 1 {
			a := parts[0].Column(c)
			a.Retain()
			cols = append(cols, a)
			continue
		}
		for p := range parts {
			chunk[p] = parts[p].Column(c)
		}
		a, err := array.Concatenate(chunk, mem)
		if err != nil {
			for _, x := range cols {
				x.Release()
			}
			return nil, err
		}
		cols = append(cols, a)
	}
	return cols, nil
}

// emptyBatch returns a zero-row batch of the schema.
func emptyBatch(mem memory.Allocator, schema *arrow.Schema) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	return b.NewRecordBatch()
}

// tripHeap orders open trips by their (lazily refreshed) last reading,
// oldest first.
type tripHeap []*trip

func (h tripHeap) Len() int           { return len(h) }
func (h tripHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h tripHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *tripHeap) Push(x any) { t := x.(*trip); t.heapIdx = len(*h); *h = append(*h, t) }
func (h *tripHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// SegmentAll runs a Segmenter over every batch of src, passing each output
// batch to emit (which must not keep it without retaining it), and returns
// the final statistics. It is the convenience form for whole inputs.
func SegmentAll(ctx context.Context, src array.RecordReader, opts TripOptions, emit func(arrow.RecordBatch) error) (TripStats, error) {
	seg, err := NewSegmenter(src.Schema(), opts)
	if err != nil {
		return TripStats{}, err
	}
	defer seg.Release()
	send := func(rec arrow.RecordBatch, err error) error {
		if err != nil {
			return err
		}
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		return emit(rec)
	}
	for src.Next() {
		if err := send(seg.Push(ctx, src.RecordBatch())); err != nil {
			return seg.Stats(), err
		}
	}
	if err := src.Err(); err != nil {
		return seg.Stats(), fmt.Errorf("mobility.SegmentAll: read input: %w", err)
	}
	if err := send(seg.Flush(ctx)); err != nil {
		return seg.Stats(), err
	}
	return seg.Stats(), nil
}
