package kanon

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestVerifyReference: t-closeness against a given overall distribution
// instead of the checked data's own (a pipeline checks its output against
// the distribution it searched, before suppression).
func TestVerifyReference(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// Two classes: q1 = {A, A}, q2 = {A, B}. Own distribution: A 3/4, B 1/4.
	rows := [][2]string{{"q1", "A"}, {"q1", "A"}, {"q2", "A"}, {"q2", "B"}}
	tests := []struct {
		name       string
		ref        map[string]int64
		t          float64
		violations int
		reason     string
	}{
		// Own distribution: q1 at 1/4, q2 at 1/4 (equal distance).
		{"own", nil, 0.25, 0, ""},
		// Reference A 1/2, B 1/2: q1 at 1/2, q2 at 0.
		{"reference", map[string]int64{"A": 5, "B": 5}, 0.25, 1, "distance 0.5"},
		{"reference loose", map[string]int64{"A": 5, "B": 5}, 0.5, 0, ""},
		// A value the reference lacks is a violation, whatever t.
		{"value not in reference", map[string]int64{"A": 1}, 0.99, 1, "not in the reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := arrow.NewSchema([]arrow.Field{{Name: "q", Type: arrow.BinaryTypes.String}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil)
			b := array.NewRecordBuilder(mem, schema)
			for _, r := range rows {
				b.Field(0).(*array.StringBuilder).Append(r[0])
				b.Field(1).(*array.StringBuilder).Append(r[1])
			}
			rec := b.NewRecordBatch()
			b.Release()
			rdr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
			rec.Release()
			if err != nil {
				t.Fatal(err)
			}
			defer rdr.Release()
			rep, err := Verify(context.Background(), rdr, VerifyOptions{QuasiIdentifiers: []string{"q"}, K: 2,
				TCloseness: &TCloseness{Sensitive: "s", T: tt.t, Distance: TEqual}, Reference: tt.ref})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Violations != tt.violations {
				t.Fatalf("%d violations, want %d: %+v", rep.Violations, tt.violations, rep.Examples)
			}
			if tt.reason != "" && !strings.Contains(rep.Examples[0].Reason, tt.reason) {
				t.Errorf("reason %q, want %q", rep.Examples[0].Reason, tt.reason)
			}
		})
	}
}
