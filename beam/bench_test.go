package beam

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// benchFixture returns a cached fleet (1M rows by default, 2,000 vehicles:
// the demo's density), a keyring, an opt-out list of 1% of the vehicles and
// a policy: "example" (examples/brakedisc/policy.yaml), "attributes"
// (policy-attributes.yaml), else the pinned test policy (testdata, without
// mobility). It is built on first use, inside the benchmark, never at init.
func benchFixture(b *testing.B, policy string) (cfg Config, rows int64) {
	b.Helper()
	rows = 1_000_000
	if s := os.Getenv("TARNKAPPE_BENCH_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			b.Fatalf("TARNKAPPE_BENCH_ROWS=%q: want a positive integer", s)
		}
		rows = n
	}
	dir := os.Getenv("TARNKAPPE_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tarnkappe-bench-beam")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	in := filepath.Join(dir, fmt.Sprintf("fleet-%d.parquet", rows))
	if _, err := os.Stat(in); err != nil {
		c := brakedisc.DefaultConfig()
		c.Rows = rows
		c.Vehicles = int(min(max(rows/500, 10), 20_000))
		b.Logf("generating %d rows into %s", rows, in)
		if err := brakedisc.WriteFile(context.Background(), in, c, memory.DefaultAllocator); err != nil {
			b.Fatal(err)
		}
	}
	keys := filepath.Join(dir, "keys.json")
	if _, err := os.Stat(keys); err != nil {
		kr, err := pseudonym.NewKeyring()
		if err != nil {
			b.Fatal(err)
		}
		if err := kr.WriteFile(keys, true); err != nil {
			b.Fatal(err)
		}
		kr.Destroy()
	}
	// 1% of the VINs (every 100th distinct one) opt out.
	optout := filepath.Join(dir, "optout.txt")
	if _, err := os.Stat(optout); err != nil {
		src, err := arrowio.Open(context.Background(), in, arrowio.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		seen := map[string]bool{}
		var list []string
		for src.Next() {
			vins, err := rowTexts("vin", src.RecordBatch().Column(0), 0)
			if err != nil {
				b.Fatal(err)
			}
			for _, v := range vins {
				if !seen[v] {
					seen[v] = true
					if len(seen)%100 == 0 {
						list = append(list, v)
					}
				}
			}
		}
		src.Close()
		if err := os.WriteFile(optout, []byte(strings.Join(list, "\n")+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	pol, name := demoPolicy(b), "policy.yaml"
	switch policy {
	case "example":
		pol, name = brakedisc.DemoPolicy(), "example-policy.yaml"
	case "attributes":
		pol, name = brakedisc.AttributesPolicy(), "attributes-policy.yaml"
	}
	policyFile := filepath.Join(dir, name)
	if err := os.WriteFile(policyFile, pol, 0o600); err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	return Config{Policy: pol, PolicyFile: policyFile, Keys: keys, Inputs: []string{in},
		Output: filepath.Join(out, "beam.parquet"), ReleaseOutput: filepath.Join(out, "beam.release.parquet"),
		TempDir: filepath.Join(out, "shards")}, rows
}

// BenchmarkBeamPrism runs a policy over the same Parquet fleet on the
// single-machine anonymize.Runner and on Beam's prism runner (in-process,
// one machine), side by side: policy=vehicle is testdata/policy.yaml, the
// vehicle-level policy without a mobility block (opt-out, HMAC pseudonyms,
// coarsening, exact k-anonymity, DP release per make); policy=example the
// example policy the demo runs (trips, H3 cells, cell-hour k, trace k,
// microaggregated readings, the linkage and unicity measures with
// mobility.max_linkage, public DP partitions per cell); policy=attributes
// the policy before issue #12 (k-anonymity beside trips, the settle fixed
// point). The prism sub-benchmark reports its slowdown against the
// single-machine one as x_single when both run in the same invocation.
func BenchmarkBeamPrism(b *testing.B) {
	for _, policy := range []string{"vehicle", "example", "attributes"} {
		b.Run("policy="+policy, func(b *testing.B) { benchBoth(b, policy) })
	}
}

func benchBoth(b *testing.B, policy string) {
	var singleNsRow float64
	b.Run("single", func(b *testing.B) {
		cfg, rows := benchFixture(b, policy)
		p, err := anonymize.ParsePolicy(cfg.PolicyFile, cfg.Policy)
		if err != nil {
			b.Fatal(err)
		}
		kr, err := pseudonym.LoadKeyring(cfg.Keys)
		if err != nil {
			b.Fatal(err)
		}
		defer kr.Destroy()
		create := func(path string) anonymize.CreateFunc {
			return func(s *arrow.Schema) (anonymize.Sink, error) { return arrowio.Create(path, s, arrowio.CreateOptions{}) }
		}
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Release: create(cfg.ReleaseOutput)})
			if err != nil {
				b.Fatal(err)
			}
			src, err := arrowio.Open(context.Background(), cfg.Inputs[0], arrowio.OpenOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Run(context.Background(), src, create(cfg.Output)); err != nil {
				b.Fatal(err)
			}
			src.Close()
			r.Close()
		}
		ns := float64(time.Since(start).Nanoseconds()) / float64(b.N) / float64(rows)
		singleNsRow = ns
		b.ReportMetric(ns, "ns/row")
		b.ReportMetric(1e9/ns, "rows/s")
	})
	b.Run("prism", func(b *testing.B) {
		cfg, rows := benchFixture(b, policy)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			prismMu.Lock()
			_, err := Run(context.Background(), "prism", cfg)
			prismMu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
		ns := float64(time.Since(start).Nanoseconds()) / float64(b.N) / float64(rows)
		b.ReportMetric(ns, "ns/row")
		b.ReportMetric(1e9/ns, "rows/s")
		if singleNsRow > 0 {
			b.ReportMetric(ns/singleNsRow, "x_single")
		}
	})
}
