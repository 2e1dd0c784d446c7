package anonymize

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/dp"
)

// publicKeysOf lists the canonical keys dp releases for options o (an
// empty partial lists its public partitions).
func publicKeysOf(t *testing.T, o dp.Options) []string {
	t.Helper()
	ag, err := dp.NewAggregator(o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ag.Partial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p.Spec.PublicKeys
}

// TestPublicPartitionRows: the rows a party without data derives from a
// policy are exactly the partitions the Runner's release uses, for a bbox
// and for a file.
func TestPublicPartitionRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema, recs := buildFleet(t, mem, fleetSpec{vehicles: 2, trips: 1, readings: 2, batch: 10})
	for _, r := range recs {
		r.Release()
	}
	for _, tc := range []struct {
		name, block string
		files       map[string]string
		n           int
	}{
		{"bbox", `release:
  by: [cell, hour_of_day]
  hour_of_day: ts
  cell_resolution: 5
  public: {bbox: [48.0, 11.4, 48.3, 11.7]}
  epsilon: 1
  max_partitions: 10
  max_per_partition: 5
  count: true
`, nil, 24 * len(coverBBox(48.0, 11.4, 48.3, 11.7, 5))},
		{"file", `release:
  by: [cell, hour_of_day]
  hour_of_day: ts
  public_partitions: parts.csv
  epsilon: 1
  max_partitions: 10
  max_per_partition: 5
  count: true
`, map[string]string{"parts.csv": "# public list\nhour_of_day,cell\n6,8a1f8d000000fff\n7,8a1f8d000000fff\n6,8a1f8d000000fff\n"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writePolicy(t, publicRelease(tc.block))
			for name, body := range tc.files {
				if err := os.WriteFile(filepath.Join(filepath.Dir(p.File()), name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rows, err := PublicPartitionRows(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.n {
				t.Fatalf("%d rows, want %d", len(rows), tc.n)
			}
			r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem, Release: sinkFor(&memSink{})})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			st, err := r.Steps(schema)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			opts, err := st.DPOptions()
			if err != nil {
				t.Fatal(err)
			}
			want := publicKeysOf(t, opts)
			l, _ := dp.NewPartitionList(p.Release.By...)
			for _, row := range rows {
				l.Add(row...)
			}
			opts.Public = l
			if got := publicKeysOf(t, opts); !slices.Equal(got, want) {
				t.Errorf("rows give %d partitions, the Runner's release %d", len(got), len(want))
			}
		})
	}
	if _, err := PublicPartitionRows(writePolicy(t, testPolicy)); err == nil {
		t.Error("a policy without public partitions listed some")
	}
}
