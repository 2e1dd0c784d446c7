package anonymize

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// tripIDs accounts for the trip id column of the written rows (mobility
// scope trip): rows with an id, rows without one, and the distinct ids,
// which are the trips the output publishes. Counted on the rows written,
// after every suppression, so the report says what the file holds.
// Memory: one map entry per published trip, as the trace gate holds.
type tripIDs struct {
	noHooks
	col           int
	with, without int64
	ids           map[int64]struct{}
}

func newTripIDs(pl *plan, m *MobilityPolicy) *tripIDs {
	return &tripIDs{col: pl.gen.FieldIndices(m.TripIDColumn)[0], ids: map[int64]struct{}{}}
}

func (t *tripIDs) written(_ context.Context, rec arrow.RecordBatch) error {
	trip, ok := rec.Column(t.col).(*array.Int64)
	if !ok {
		return fmt.Errorf("trip ids: column %q is %s, not int64", rec.ColumnName(t.col), rec.Column(t.col).DataType())
	}
	nulls := trip.NullN()
	t.without += int64(nulls)
	t.with += int64(trip.Len() - nulls)
	vals := trip.Int64Values()
	for i, v := range vals {
		// A trip's rows come together: one map update per run.
		if (nulls == 0 || trip.IsValid(i)) && (i == 0 || v != vals[i-1] || (nulls > 0 && trip.IsNull(i-1))) {
			t.ids[v] = struct{}{}
		}
	}
	return nil
}

func (t *tripIDs) figures(_ context.Context, f *Figures) error {
	m := f.Mobility
	m.RowsWithTripID, m.RowsWithoutTripID, m.TripsPublished = t.with, t.without, len(t.ids)
	return nil
}
