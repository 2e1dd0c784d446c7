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

// stringReader is a reader over one batch of string columns (nil cells are
// nulls).
func stringReader(t *testing.T, mem memory.Allocator, names []string, rows [][]*string) array.RecordReader {
	t.Helper()
	fields := make([]arrow.Field, len(names))
	for i, n := range names {
		fields[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, r := range rows {
		for i, v := range r {
			if v == nil {
				b.Field(i).AppendNull()
			} else {
				b.Field(i).(*array.StringBuilder).Append(*v)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	return rdr
}

// TestVerifySubject: with a subject column, a class counts distinct
// subjects, as the pipeline counts vehicles; rows alone would pass a class
// of one chatty vehicle. The null subjects of a class count as one.
func TestVerifySubject(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := func(v string) *string { return &v }
	// q1: vehicle A three times (3 rows, 1 subject); q2: A, B, and two rows
	// without a subject (4 rows, 3 subjects). Sensitive: A says x then y
	// (counted once, with x).
	rows := [][]*string{
		{s("q1"), s("A"), s("x")}, {s("q1"), s("A"), s("x")}, {s("q1"), s("A"), s("x")},
		{s("q2"), s("A"), s("x")}, {s("q2"), s("B"), s("y")}, {s("q2"), nil, s("z")}, {s("q2"), nil, s("w")},
	}
	for _, c := range []struct {
		name            string
		opts            VerifyOptions
		violations      int
		min, members    int64
		reason          string
		subjectsOfWorst int64
	}{
		{"rows", VerifyOptions{K: 3}, 0, 3, 7, "", 0},
		{"subjects", VerifyOptions{K: 3, Subject: "vin"}, 1, 1, 4, "1 subjects < k=3", 1},
		{"subjects k=2", VerifyOptions{K: 2, Subject: "vin"}, 1, 1, 4, "1 subjects < k=2", 1},
		{"l counts subjects", VerifyOptions{K: 1 + 1, Subject: "vin", LDiversity: &LDiversity{Sensitive: "s", L: 4, Variant: LDistinct}}, 2, 1, 4, "1 distinct sensitive values < l=4", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			rdr := stringReader(t, mem, []string{"q", "vin", "s"}, rows)
			defer rdr.Release()
			c.opts.QuasiIdentifiers = []string{"q"}
			rep, err := Verify(context.Background(), rdr, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Rows != 7 || rep.Violations != c.violations || rep.MinClassSize != c.min {
				t.Fatalf("rows %d, violations %d, min %d; want 7, %d, %d: %+v", rep.Rows, rep.Violations, rep.MinClassSize, c.violations, c.min, rep.Examples)
			}
			if c.opts.Subject != "" && (rep.Subject != "vin" || rep.Subjects != c.members) {
				t.Fatalf("subject %q, %d subjects; want vin, %d", rep.Subject, rep.Subjects, c.members)
			}
			if c.reason != "" {
				v := rep.Examples[0]
				if !strings.Contains(v.Reason, c.reason) || v.Rows != 3 || v.Subjects != c.subjectsOfWorst {
					t.Fatalf("first violation %+v, want %q in 3 rows, %d subjects", v, c.reason, c.subjectsOfWorst)
				}
			}
		})
	}
	// Risk counts the same way: q1 is one vehicle, so it is singled out.
	rdr := stringReader(t, mem, []string{"q", "vin", "s"}, rows)
	defer rdr.Release()
	r, err := MeasureSubjectRisk(context.Background(), rdr, []string{"q"}, "vin")
	if err != nil {
		t.Fatal(err)
	}
	if r.Prosecutor != 1 || r.MinClassSize != 1 || r.Rows != 4 || r.Subject != "vin" {
		t.Fatalf("subject risk %+v, want prosecutor 1 over 4 members", r)
	}
	rdr2 := stringReader(t, mem, []string{"q", "vin", "s"}, rows)
	defer rdr2.Release()
	if r, _ := MeasureRisk(context.Background(), rdr2, []string{"q"}); r.Prosecutor != 1.0/3 {
		t.Fatalf("row risk %+v, want 1/3", r)
	}
}
