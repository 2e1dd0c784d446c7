package pool

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

type nopSink struct{}

func (nopSink) Write(arrow.RecordBatch) error { return nil }
func (nopSink) Commit() error                 { return nil }
func (nopSink) Abort() error                  { return nil }

// TestPolicyPartial: a member runs the demo policy (opt-out, trips and H3
// cells, column actions, bounding per vehicle) as far as its release; every
// input row is accounted for, opted-out vehicles are gone, and the partial
// fits a pool made from the same policy (same bounds, the same public
// partitions as PublicPartitionRows derives without data).
func TestPolicyPartial(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, brakedisc.DemoPolicy(), 0o644); err != nil {
		t.Fatal(err)
	}
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Destroy()
	fleet := brakedisc.Config{Vehicles: 40, Rows: 8000, Seed: 3}
	// Opt out the first vehicle of the stream.
	src, err := brakedisc.NewReader(fleet, mem)
	if err != nil {
		t.Fatal(err)
	}
	src.Next()
	vin := src.RecordBatch().Column(0).(*array.Dictionary)
	out := vin.Dictionary().(*array.String).Value(vin.GetValueIndex(0))
	src.Release()
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), []byte(out+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := anonymize.LoadPolicy(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Mem: mem,
		Release: func(*arrow.Schema) (anonymize.Sink, error) { return nopSink{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src, err = brakedisc.NewReader(fleet, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	part, ms, err := PolicyPartial(context.Background(), r, src)
	if err != nil {
		t.Fatal(err)
	}
	s := ms.Release
	if ms.RowsIn != 8000 || ms.OptedOut == 0 || s.RowsIn != s.RowsUsed+s.RowsNotPublic+s.RowsDroppedL0+s.RowsDroppedLInf {
		t.Errorf("rows not accounted for: %+v", ms)
	}
	var rows int64
	for _, ps := range part.Partitions {
		rows += ps.Rows
	}
	if rows != s.RowsUsed || rows == 0 {
		t.Errorf("the partial holds %d rows, %d used", rows, s.RowsUsed)
	}
	// A pool made from the same policy takes the partial.
	parts, err := anonymize.PublicPartitionRows(p)
	if err != nil {
		t.Fatal(err)
	}
	rel := ReleaseSpec{Subject: p.Subject, By: p.Release.By, MaxPartitions: int64(p.Release.MaxPartitions), MaxPerPartition: int64(p.Release.MaxPerPartition),
		MaxRows: 1 << 16, Epsilon: 1, Aggregates: []AggregateSpec{{Kind: "count"}}}
	for _, a := range p.Release.Aggregates {
		rel.Aggregates = append(rel.Aggregates, AggregateSpec{Kind: a.Kind, Column: a.Column, Lower: a.Lower, Upper: a.Upper})
	}
	tp := newTestPool(t, 1, rel, parts, nil)
	if _, err := Contribute(tp.cfg, tp.members[0], part); err != nil {
		t.Fatalf("the policy's partial does not fit the pool made from the policy: %v", err)
	}
}
