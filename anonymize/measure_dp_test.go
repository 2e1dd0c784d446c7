package anonymize

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestReleaseOrder: the DP release is a file too, and its rows must not be
// in an order the data chose (first appearance of a partition, say). Its
// rows are in the order of their keys: sorted (private partitions) or the
// public list's (which the policy fixes), whatever the input order. Here
// the same rows run in input order and reversed; both releases list their
// partitions in strictly increasing key order.
func TestReleaseOrder(t *testing.T) {
	policy := `version: 1
subject: vin
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  ts: drop
  lat: drop
  lon: drop
  disc_temp_c: keep
  postcode: keep
  owner_birth_year: drop
  owner_sex: drop
release: {by: [postcode], epsilon: 4, delta: 1e-5, max_partitions: 1, max_per_partition: 5, count: true}
`
	for _, reverse := range []bool{false, true} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 400, trips: 1, readings: 3, batch: 100})
		if reverse {
			slices.Reverse(recs)
		}
		rdr, err := array.NewRecordReader(schema, recs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			r.Release()
		}
		out, rel := &memSink{}, &memSink{}
		r, err := NewRunner(Options{Policy: writePolicy(t, policy), Keyring: newKeyring(t), Mem: mem, Release: sinkFor(rel), TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background(), rdr, sinkFor(out)); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, rec := range rel.recs {
			for i := range int(rec.NumRows()) {
				k, _ := textOrNull(rec.Column(rec.Schema().FieldIndices("postcode")[0]), i)
				keys = append(keys, k)
			}
		}
		if len(keys) < 10 || !slices.IsSortedFunc(keys, strings.Compare) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
			t.Errorf("reverse %v: release keys not strictly increasing: %q", reverse, keys)
		}
		r.Close()
		rdr.Release()
		out.release()
		rel.release()
		mem.AssertSize(t, 0)
	}
}
