package mobility

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// fieldIndex returns the position of the named column, or an error naming the
// function, the option field and the column.
func fieldIndex(fn, field string, schema *arrow.Schema, name string) (int, error) {
	if name == "" {
		return -1, fmt.Errorf("%s: %s is required", fn, field)
	}
	idx := schema.FieldIndices(name)
	switch len(idx) {
	case 0:
		return -1, fmt.Errorf("%s: %s: column %q not in schema", fn, field, name)
	case 1:
		return idx[0], nil
	default:
		return -1, fmt.Errorf("%s: %s: column %q appears %d times in schema", fn, field, name, len(idx))
	}
}

// checkSameSchema rejects a batch whose schema differs from the one the
// transform was built for: column positions and types are resolved once.
func checkSameSchema(fn string, want *arrow.Schema, rec arrow.RecordBatch) error {
	if rec == nil {
		return fmt.Errorf("%s: nil record batch", fn)
	}
	if !rec.Schema().Equal(want) {
		return fmt.Errorf("%s: record batch schema %s differs from the schema the transform was built for %s", fn, rec.Schema(), want)
	}
	return nil
}

// isStringDict reports whether t is dictionary<integer, utf8|large_utf8>.
func isStringDict(t arrow.DataType) bool {
	dt, ok := t.(*arrow.DictionaryType)
	if !ok {
		return false
	}
	switch dt.ValueType.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return true
	}
	return false
}

// checkSubjectType accepts the types a subject (or trip) key may have.
func checkSubjectType(fn, field, name string, t arrow.DataType) error {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.INT64, arrow.INT32, arrow.UINT64, arrow.BINARY:
		return nil
	}
	if isStringDict(t) {
		return nil
	}
	return fmt.Errorf("%s: %s: column %q has type %s; want utf8, dictionary<int, utf8>, binary, int32, int64 or uint64", fn, field, name, t)
}

// checkTimeType accepts timestamp columns of any unit.
func checkTimeType(fn, field, name string, t arrow.DataType) error {
	if _, ok := t.(*arrow.TimestampType); ok {
		return nil
	}
	return fmt.Errorf("%s: %s: column %q has type %s; want timestamp", fn, field, name, t)
}

// checkCoordType accepts float64 coordinates.
func checkCoordType(fn, field, name string, t arrow.DataType) error {
	if t.ID() == arrow.FLOAT64 {
		return nil
	}
	return fmt.Errorf("%s: %s: column %q has type %s; want float64 degrees", fn, field, name, t)
}

// unitsPer converts a duration to timestamp ticks of the given unit.
func durationTicks(d int64, unit arrow.TimeUnit) int64 {
	// d is in nanoseconds (time.Duration).
	return d / int64(unit.Multiplier())
}

// stringKeyer turns the values of a subject-like column into strings, keeping
// dictionary arrays dictionary-encoded: each dictionary entry is converted once
// per batch and rows look up their index.
type stringKeyer struct {
	dict  *array.Dictionary
	dvals []string
	arr   arrow.Array
}

func newStringKeyer(a arrow.Array) *stringKeyer {
	k := &stringKeyer{arr: a}
	if d, ok := a.(*array.Dictionary); ok {
		k.dict = d
		dv := d.Dictionary()
		k.dvals = make([]string, dv.Len())
		for i := range k.dvals {
			k.dvals[i] = valueString(dv, i)
		}
	}
	return k
}

// key returns the row's key. The returned string may alias Arrow memory only
// through valueString's copy, so it outlives the batch.
func (k *stringKeyer) key(i int) string {
	if k.dict != nil {
		return k.dvals[k.dict.GetValueIndex(i)]
	}
	return valueString(k.arr, i)
}

// view returns the row's key without copying where possible; the string is
// only valid while the array is alive (for comparisons, not for state).
func (k *stringKeyer) view(i int) string {
	switch a := k.arr.(type) {
	case *array.Dictionary:
		return k.dvals[a.GetValueIndex(i)]
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Binary:
		return a.ValueString(i)
	}
	return valueString(k.arr, i)
}

// valueString copies the value at i to a Go string that does not alias the
// array's buffers (state outlives batches).
func valueString(a arrow.Array, i int) string {
	switch a := a.(type) {
	case *array.String:
		return string([]byte(a.Value(i)))
	case *array.LargeString:
		return string([]byte(a.Value(i)))
	case *array.Binary:
		return string(a.Value(i))
	case *array.Int64:
		return fmt.Sprint(a.Value(i))
	case *array.Int32:
		return fmt.Sprint(a.Value(i))
	case *array.Uint64:
		return fmt.Sprint(a.Value(i))
	default:
		return a.ValueStr(i)
	}
}

// checkNoNulls reports the first null of a required column.
func checkNoNulls(fn string, name string, a arrow.Array, rowBase int64) error {
	if a.NullN() == 0 {
		return nil
	}
	for i := 0; i < a.Len(); i++ {
		if a.IsNull(i) {
			return fmt.Errorf("%s: %w", fn, rowerr.Atf(rowerr.Row(rowBase, i), name, "null value"))
		}
	}
	return nil
}

// checkCoords validates latitude and longitude columns: no nulls, no NaN or
// infinities, latitude in [-90, 90], longitude in [-180, 180].
func checkCoords(fn, latName, lonName string, lat, lon *array.Float64, rowBase int64) error {
	if err := checkNoNulls(fn, latName, lat, rowBase); err != nil {
		return err
	}
	if err := checkNoNulls(fn, lonName, lon, rowBase); err != nil {
		return err
	}
	la, lo := lat.Float64Values(), lon.Float64Values()
	for i := range la {
		if v := la[i]; !(v >= -90 && v <= 90) {
			return fmt.Errorf("%s: %w", fn, rowerr.Atf(rowerr.Row(rowBase, i), latName, "latitude %v out of range [-90, 90]", v))
		}
		if v := lo[i]; !(v >= -180 && v <= 180) {
			return fmt.Errorf("%s: %w", fn, rowerr.Atf(rowerr.Row(rowBase, i), lonName, "longitude %v out of range [-180, 180]", v))
		}
	}
	return nil
}

// earthRadiusM is the mean Earth radius H3 uses (IUGG mean radius, 6371.0088 km),
// so haversine here and h3.GreatCircleDistanceM agree (tested).
const earthRadiusM = 6371.007180918475e3

// haversineM is the great-circle distance in metres. It is computed in Go
// rather than through h3.GreatCircleDistanceM because it runs for every row
// of every trip and a cgo call costs more than the formula; the test checks
// both agree.
func haversineM(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	p1, p2 := lat1*rad, lat2*rad
	dp := p2 - p1
	dl := (lon2 - lon1) * rad
	s1, s2 := math.Sin(dp/2), math.Sin(dl/2)
	a := s1*s1 + math.Cos(p1)*math.Cos(p2)*s2*s2
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(a)))
}

// DistanceMetres is the great-circle distance in metres between two WGS 84
// coordinates (the distance endpoint trimming uses).
func DistanceMetres(lat1, lon1, lat2, lon2 float64) float64 {
	return haversineM(lat1, lon1, lat2, lon2)
}
