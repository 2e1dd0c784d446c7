package brakedisc

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// baseEmitS is the telematics reporting interval while driving.
const baseEmitS = 30

// rowsPerVehicleDay30s is the measured mean number of readings a vehicle
// produces per day at the 30 s interval (DefaultConfig: ~1M rows in 14 days
// for 2,000 vehicles). It only calibrates the interval for other sizes; the
// row count itself is always exact.
const rowsPerVehicleDay30s = 35.7

// emitInterval returns the reporting interval that spreads cfg.Rows over
// cfg.Days: 30 s, or shorter (down to 1 s) when more rows are asked for.
// It rounds down (the default fleet reports every 29 s), so the rows fit
// the window rather than overrun it.
func emitInterval(cfg Config) int {
	if cfg.Interval > 0 {
		return int(cfg.Interval / time.Second)
	}
	if cfg.Rows <= 0 {
		return baseEmitS
	}
	expected := float64(cfg.Vehicles) * float64(cfg.Days) * rowsPerVehicleDay30s
	dt := int(baseEmitS * expected / float64(cfg.Rows))
	return min(max(dt, 1), baseEmitS)
}

// reader streams the fleet's readings as record batches, interleaved across
// vehicles in time order. It is not safe for concurrent use.
type reader struct {
	cfg    Config
	schema *arrow.Schema
	mem    memory.Allocator
	refs   atomic.Int64

	vehicles []vehicle
	heap     []heapEntry // min-heap by (ms, idx)

	vinDict, makeDict, modelDict, postcodeDict, sexDict arrow.Array

	vinB, makeB, modelB, postcodeB, sexB    *array.Int32Builder
	tsB                                     *array.TimestampBuilder
	latB, lonB, speedB, pressB, tempB, padB *array.Float64Builder
	modelYearB, birthYearB                  *array.Int64Builder

	emitted int64
	cur     arrow.RecordBatch
	err     error
}

// Compile-time check: the fleet is a record reader.
var _ array.RecordReader = (*reader)(nil)

// NewReader returns a record reader over the fleet cfg describes: exactly
// cfg.Rows rows in batches of cfg.BatchSize, interleaved across vehicles in
// time order, allocated from mem (nil means memory.DefaultAllocator). The
// caller must Release it. Building the fleet costs O(Vehicles) time and
// memory; rows are simulated as they are read, so any number can stream.
func NewReader(cfg Config, mem memory.Allocator) (array.RecordReader, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	statics, dicts := buildFleet(cfg)
	r := &reader{cfg: cfg, schema: Schema(), mem: mem}
	r.refs.Store(1)
	r.vinDict = stringArray(mem, dicts.vins)
	r.makeDict = stringArray(mem, dicts.makes)
	r.modelDict = stringArray(mem, dicts.models)
	r.postcodeDict = stringArray(mem, dicts.postcodes)
	r.sexDict = stringArray(mem, []string{"F", "M"})

	startMS := cfg.Start.UnixMilli()
	dt := emitInterval(cfg)
	r.vehicles = make([]vehicle, len(statics))
	r.heap = make([]heapEntry, len(statics))
	for i := range statics {
		v := &r.vehicles[i]
		v.init(&statics[i], cfg.Seed, i, startMS, cfg.Start.Weekday(), dt)
		r.heap[i] = heapEntry{ms: v.nextMS, idx: int32(i)}
	}
	for i := len(r.heap)/2 - 1; i >= 0; i-- {
		r.down(i)
	}

	r.vinB = array.NewInt32Builder(mem)
	r.makeB = array.NewInt32Builder(mem)
	r.modelB = array.NewInt32Builder(mem)
	r.postcodeB = array.NewInt32Builder(mem)
	r.sexB = array.NewInt32Builder(mem)
	r.tsB = array.NewTimestampBuilder(mem, r.schema.Field(1).Type.(*arrow.TimestampType))
	r.latB = array.NewFloat64Builder(mem)
	r.lonB = array.NewFloat64Builder(mem)
	r.speedB = array.NewFloat64Builder(mem)
	r.pressB = array.NewFloat64Builder(mem)
	r.tempB = array.NewFloat64Builder(mem)
	r.padB = array.NewFloat64Builder(mem)
	r.modelYearB = array.NewInt64Builder(mem)
	r.birthYearB = array.NewInt64Builder(mem)
	return r, nil
}

func stringArray(mem memory.Allocator, vals []string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

// heapEntry keeps the key beside the index so sifting does not chase
// pointers into the (cache-cold) vehicles.
type heapEntry struct {
	ms  int64
	idx int32
}

func less(a, b heapEntry) bool {
	return a.ms < b.ms || a.ms == b.ms && a.idx < b.idx
}

func (r *reader) down(i int) {
	h := r.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if rr := l + 1; rr < n && less(h[rr], h[l]) {
			m = rr
		}
		if !less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// Schema returns Schema().
func (r *reader) Schema() *arrow.Schema { return r.schema }

// Next builds the next batch; it returns false after exactly Config.Rows
// rows.
func (r *reader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil || r.vehicles == nil || r.emitted >= r.cfg.Rows {
		return false
	}
	n := int(min(int64(r.cfg.BatchSize), r.cfg.Rows-r.emitted))
	for _, b := range []array.Builder{r.vinB, r.makeB, r.modelB, r.postcodeB, r.sexB, r.tsB,
		r.latB, r.lonB, r.speedB, r.pressB, r.tempB, r.padB, r.modelYearB, r.birthYearB} {
		b.Reserve(n)
	}
	for k := 0; k < n; k++ {
		i := r.heap[0].idx
		v := &r.vehicles[i]
		st := v.st
		r.vinB.UnsafeAppend(i)
		r.makeB.UnsafeAppend(st.makeIdx)
		r.modelB.UnsafeAppend(st.modelIdx)
		r.postcodeB.UnsafeAppend(st.postcodeIdx)
		r.sexB.UnsafeAppend(st.sexIdx)
		r.modelYearB.UnsafeAppend(st.modelYear)
		r.birthYearB.UnsafeAppend(st.birthYear)
		r.tsB.UnsafeAppend(arrow.Timestamp(v.nextMS))
		r.latB.UnsafeAppend(v.lat)
		r.lonB.UnsafeAppend(v.lon)
		r.speedB.UnsafeAppend(v.speedKmh)
		r.pressB.UnsafeAppend(v.pressureBar)
		r.tempB.UnsafeAppend(v.discTempC)
		r.padB.UnsafeAppend(v.padReportedMM)
		v.advance()
		r.heap[0].ms = v.nextMS
		r.down(0)
	}
	r.emitted += int64(n)

	cols := make([]arrow.Array, 0, 14)
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	dict := func(b *array.Int32Builder, d arrow.Array) arrow.Array {
		idx := b.NewArray()
		defer idx.Release()
		return array.NewDictionaryArray(dictType(), idx, d)
	}
	cols = append(cols,
		dict(r.vinB, r.vinDict), r.tsB.NewArray(), r.latB.NewArray(), r.lonB.NewArray(),
		r.speedB.NewArray(), r.pressB.NewArray(), r.tempB.NewArray(), r.padB.NewArray(),
		dict(r.makeB, r.makeDict), dict(r.modelB, r.modelDict), r.modelYearB.NewArray(),
		dict(r.postcodeB, r.postcodeDict), r.birthYearB.NewArray(), dict(r.sexB, r.sexDict))
	r.cur = array.NewRecordBatch(r.schema, cols, int64(n))
	return true
}

// RecordBatch returns the current batch, valid until the next call to Next.
func (r *reader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record returns the current batch.
//
// Deprecated: use RecordBatch; this exists to satisfy array.RecordReader.
func (r *reader) Record() arrow.RecordBatch { return r.cur }

// Err returns nil: the simulation cannot fail once configured. It exists
// for array.RecordReader.
func (r *reader) Err() error { return r.err }

// Retain adds a reference.
func (r *reader) Retain() { r.refs.Add(1) }

// Release drops a reference; the last one frees the dictionaries, builders
// and current batch.
func (r *reader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for _, d := range []arrow.Array{r.vinDict, r.makeDict, r.modelDict, r.postcodeDict, r.sexDict} {
		d.Release()
	}
	for _, b := range []array.Builder{r.vinB, r.makeB, r.modelB, r.postcodeB, r.sexB, r.tsB,
		r.latB, r.lonB, r.speedB, r.pressB, r.tempB, r.padB, r.modelYearB, r.birthYearB} {
		b.Release()
	}
	r.vehicles, r.heap = nil, nil
	r.err = errors.New("brakedisc: reader released")
}
