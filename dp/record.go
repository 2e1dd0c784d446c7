package dp

import (
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// resultBuilder assembles the result record column by column.
type resultBuilder struct {
	s      *Spec
	schema *arrow.Schema
	rb     *array.RecordBuilder
}

func newResultBuilder(mem memory.Allocator, s *Spec) *resultBuilder {
	var fields []arrow.Field
	for i, g := range s.GroupBy {
		fields = append(fields, arrow.Field{Name: g, Type: s.KeyTypes[i].arrowType()})
	}
	for _, a := range s.Aggregates {
		for j, name := range a.outputNames() {
			t := arrow.DataType(arrow.PrimitiveTypes.Float64)
			if a.Kind == Count && j == 0 {
				t = arrow.PrimitiveTypes.Int64
			}
			fields = append(fields, arrow.Field{Name: name, Type: t})
		}
	}
	schema := arrow.NewSchema(fields, nil)
	return &resultBuilder{s: s, schema: schema, rb: array.NewRecordBuilder(mem, schema)}
}

func (b *resultBuilder) release() { b.rb.Release() }

func (b *resultBuilder) record() arrow.RecordBatch { return b.rb.NewRecordBatch() }

func (b *resultBuilder) appendKey(k string) error {
	vals, err := splitTupleKey(k)
	if err != nil {
		return err
	}
	for i, v := range vals {
		kt := b.s.KeyTypes[i]
		switch fb := b.rb.Field(i).(type) {
		case *array.StringBuilder:
			fb.Append(v)
		case *array.Int64Builder:
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("key column %q: %q is not an integer", b.s.GroupBy[i], v)
			}
			fb.Append(x)
		case *array.TimestampBuilder:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("key column %q: %q is not an RFC 3339 timestamp", b.s.GroupBy[i], v)
			}
			ts, err := arrow.TimestampFromTime(t, kt.Unit)
			if err != nil {
				return fmt.Errorf("key column %q: %w", b.s.GroupBy[i], err)
			}
			fb.Append(ts)
		}
	}
	return nil
}

// fieldIndex is the first output column of aggregate i.
func (b *resultBuilder) fieldIndex(i int) int {
	idx := len(b.s.GroupBy)
	for j := 0; j < i; j++ {
		idx += len(b.s.Aggregates[j].outputNames())
	}
	return idx
}

func (b *resultBuilder) appendAggregate(i int, o *aggOut) {
	f := b.fieldIndex(i)
	if b.s.Aggregates[i].Kind == Count {
		b.rb.Field(f).(*array.Int64Builder).Append(o.count)
		f++
	}
	for j, v := range o.vals {
		b.rb.Field(f + j).(*array.Float64Builder).Append(v)
	}
}
