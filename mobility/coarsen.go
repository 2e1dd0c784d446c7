package mobility

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/h3"
	"github.com/tarnkappe/tarnkappe/rowerr"
)

// CoarsenOptions configures a Coarsener.
type CoarsenOptions struct {
	// Lat and Lon are the float64 coordinate columns in degrees. Required.
	// Both are removed from the output; the cell column takes Lat's place.
	Lat, Lon string
	// Resolution is the H3 resolution, 0 (coarsest) to 15. Average cell
	// areas: 5 ≈ 253 km², 6 ≈ 36 km², 7 ≈ 5.2 km², 8 ≈ 0.74 km².
	Resolution int
	// Cell names the output column: dictionary<int32, utf8> of H3 indexes in
	// their 15-hex-digit form (e.g. "871f8d7a4ffffff"). Required.
	Cell string
	// Time, if not empty, is a timestamp column floored to Bucket in place
	// (buckets are aligned to the Unix epoch, so hours and days are UTC
	// hours and days). Leave empty to coarsen time elsewhere.
	Time string
	// Bucket is the time bucket width; required (> 0) when Time is set.
	Bucket time.Duration
	// Mem allocates the output; nil means memory.DefaultAllocator.
	Mem memory.Allocator
	// Cache, if not nil, is shared by the Coarseners of one stream (for
	// batches coarsened in parallel by one Coarsener each); it must be for
	// Resolution. nil gives each Coarsener its own. See CellCache.
	Cache *CellCache
}

// Coarsener replaces coordinates by H3 cells and floors timestamps to
// buckets, batch by batch (stateless, so it fits streaming pipelines).
type Coarsener struct {
	opts       CoarsenOptions
	mem        memory.Allocator
	in, out    *arrow.Schema
	la, lo, ts int
	bucket     int64
	rows       int64
	cellType   *arrow.DictionaryType
	cache      *CellCache
}

// NewCoarsener validates opts against the input schema.
func NewCoarsener(schema *arrow.Schema, opts CoarsenOptions) (*Coarsener, error) {
	const fn = "mobility.NewCoarsener"
	if schema == nil {
		return nil, fmt.Errorf("%s: nil schema", fn)
	}
	c := &Coarsener{opts: opts, in: schema, mem: opts.Mem, ts: -1}
	if c.mem == nil {
		c.mem = memory.DefaultAllocator
	}
	var err error
	if c.la, err = fieldIndex(fn, "Lat", schema, opts.Lat); err != nil {
		return nil, err
	}
	if c.lo, err = fieldIndex(fn, "Lon", schema, opts.Lon); err != nil {
		return nil, err
	}
	if err := checkCoordType(fn, "Lat", opts.Lat, schema.Field(c.la).Type); err != nil {
		return nil, err
	}
	if err := checkCoordType(fn, "Lon", opts.Lon, schema.Field(c.lo).Type); err != nil {
		return nil, err
	}
	if opts.Resolution < 0 || opts.Resolution > 15 {
		return nil, fmt.Errorf("%s: Resolution must be in 0..15, got %d", fn, opts.Resolution)
	}
	if opts.Cell == "" {
		return nil, fmt.Errorf("%s: Cell (the output column name) is required", fn)
	}
	c.cache = opts.Cache
	if c.cache == nil {
		if c.cache, err = NewCellCache(opts.Resolution); err != nil {
			return nil, err
		}
	} else if c.cache.res != opts.Resolution {
		return nil, fmt.Errorf("%s: Cache is for resolution %d, not %d", fn, c.cache.res, opts.Resolution)
	}
	if idx := schema.FieldIndices(opts.Cell); len(idx) > 0 && opts.Cell != opts.Lat && opts.Cell != opts.Lon {
		return nil, fmt.Errorf("%s: Cell column %q already exists in the input", fn, opts.Cell)
	}
	if opts.Time != "" {
		if c.ts, err = fieldIndex(fn, "Time", schema, opts.Time); err != nil {
			return nil, err
		}
		if err := checkTimeType(fn, "Time", opts.Time, schema.Field(c.ts).Type); err != nil {
			return nil, err
		}
		if opts.Bucket <= 0 {
			return nil, fmt.Errorf("%s: Bucket must be > 0 when Time is set, got %v", fn, opts.Bucket)
		}
		unit := schema.Field(c.ts).Type.(*arrow.TimestampType).Unit
		if c.bucket = durationTicks(int64(opts.Bucket), unit); c.bucket <= 0 {
			return nil, fmt.Errorf("%s: Bucket %v is below the resolution of column %q", fn, opts.Bucket, opts.Time)
		}
	} else if opts.Bucket != 0 {
		return nil, fmt.Errorf("%s: Bucket is set but Time is empty", fn)
	}
	c.cellType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	var fields []arrow.Field
	for i, f := range schema.Fields() {
		switch i {
		case c.la:
			fields = append(fields, arrow.Field{Name: opts.Cell, Type: c.cellType})
		case c.lo:
		default:
			fields = append(fields, f)
		}
	}
	md := schema.Metadata()
	c.out = arrow.NewSchema(fields, &md)
	return c, nil
}

// Schema is the output schema.
func (c *Coarsener) Schema() *arrow.Schema { return c.out }

// Apply returns rec with coordinates replaced by cells and time floored. The
// caller releases the result. Null or out-of-range coordinates and null
// timestamps are errors naming the column and row (rows count from 0 across
// all batches given to this Coarsener).
func (c *Coarsener) Apply(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	const fn = "mobility.Coarsener.Apply"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkSameSchema(fn, c.in, rec); err != nil {
		return nil, err
	}
	lat, lon := rec.Column(c.la).(*array.Float64), rec.Column(c.lo).(*array.Float64)
	if err := checkCoords(fn, c.opts.Lat, c.opts.Lon, lat, lon, c.rows); err != nil {
		return nil, err
	}
	var tsArr arrow.Array
	if c.ts >= 0 {
		if err := checkNoNulls(fn, c.opts.Time, rec.Column(c.ts), c.rows); err != nil {
			return nil, err
		}
		var err error
		if tsArr, err = floorTimes(c.mem, rec.Column(c.ts).(*array.Timestamp), c.bucket, c.opts.Time, c.rows); err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		defer tsArr.Release()
	}
	cells := c.cellArray(lat.Float64Values(), lon.Float64Values())
	defer cells.Release()
	cols := make([]arrow.Array, 0, len(c.out.Fields()))
	for i := range rec.Columns() {
		switch i {
		case c.la:
			cols = append(cols, cells)
		case c.lo:
		case c.ts:
			cols = append(cols, tsArr)
		default:
			cols = append(cols, rec.Column(i))
		}
	}
	c.rows += rec.NumRows()
	return array.NewRecordBatch(c.out, cols, rec.NumRows()), nil
}

// cellArray maps coordinates to a dictionary array of H3 cells; each distinct
// cell is formatted once per batch. The cell cache answers for points well
// inside cells seen before (most of them), the H3 library for the rest.
func (c *Coarsener) cellArray(lat, lon []float64) arrow.Array {
	idx := make(map[h3.Cell]int32)
	indices := make([]int32, len(lat))
	var dict []string
	local := make(map[uint64][]*cellGeom)
	for i := range lat {
		cell := c.cache.lookup(lat[i], lon[i], local)
		d, ok := idx[cell]
		if !ok {
			d = int32(len(dict))
			idx[cell] = d
			dict = append(dict, cell.String())
		}
		indices[i] = d
	}
	ib := array.NewInt32Builder(c.mem)
	ib.AppendValues(indices, nil)
	ia := ib.NewArray()
	ib.Release()
	defer ia.Release()
	sb := array.NewStringBuilder(c.mem)
	sb.AppendValues(dict, nil)
	da := sb.NewArray()
	sb.Release()
	defer da.Release()
	return array.NewDictionaryArray(c.cellType, ia, da)
}

// floorTimes floors every timestamp to a multiple of bucket (towards -inf).
// A timestamp whose bucket starts before the smallest int64 cannot be
// floored (the product would wrap to the far future): an error naming the
// column and the row (rowBase rows came before ts).
func floorTimes(mem memory.Allocator, ts *array.Timestamp, bucket int64, name string, rowBase int64) (arrow.Array, error) {
	minQ := math.MinInt64 / bucket
	b := array.NewTimestampBuilder(mem, ts.DataType().(*arrow.TimestampType))
	defer b.Release()
	b.Reserve(ts.Len())
	for i, v := range ts.TimestampValues() {
		q := floorDiv(int64(v), bucket)
		if q < minQ {
			return nil, rowerr.Atf(rowerr.Row(rowBase, i), name, "timestamp %d cannot be floored to the time bucket: the bucket starts before the earliest representable time", int64(v))
		}
		b.UnsafeAppend(arrow.Timestamp(q * bucket))
	}
	return b.NewArray(), nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// CellOf returns the H3 cell index string of a coordinate at a resolution,
// as the Coarsener writes it; for callers that aggregate raw data onto the
// same grid (e.g. to measure utility).
func CellOf(lat, lon float64, resolution int) (string, error) {
	if !(lat >= -90 && lat <= 90) || !(lon >= -180 && lon <= 180) {
		return "", fmt.Errorf("mobility.CellOf: coordinate (%v, %v) out of range", lat, lon)
	}
	if resolution < 0 || resolution > 15 {
		return "", fmt.Errorf("mobility.CellOf: resolution must be in 0..15, got %d", resolution)
	}
	return h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lon}, resolution).String(), nil
}
