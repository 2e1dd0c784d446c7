package pipelinebench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// benchInput returns the cached fleet file, generating it on first use,
// plus its row count and an opt-out list of 1% of its vehicles.
func benchInput(b *testing.B) (path string, rows int64, optout string) {
	b.Helper()
	rows = 10_000_000
	if s := os.Getenv("TARNKAPPE_BENCH_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			b.Fatalf("TARNKAPPE_BENCH_ROWS=%q: want a positive integer", s)
		}
		rows = n
	}
	dir := os.Getenv("TARNKAPPE_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tarnkappe-bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path = filepath.Join(dir, fmt.Sprintf("fleet-%d.parquet", rows))
	optout = filepath.Join(dir, fmt.Sprintf("optout-%d.txt", rows))
	if _, err := os.Stat(path); err == nil {
		if _, err := os.Stat(optout); err == nil {
			return path, rows, optout
		}
	}
	cfg := brakedisc.DefaultConfig()
	cfg.Rows = rows
	// One vehicle per 500 rows (the demo's density) up to 20,000 vehicles:
	// larger inputs are longer histories of the same fleet, so per-subject
	// state stays the same and peak memory shows what rows cost.
	cfg.Vehicles = int(min(max(rows/500, 10), 20_000))
	b.Logf("generating %d rows, %d vehicles into %s", rows, cfg.Vehicles, path)
	if err := brakedisc.WriteFile(context.Background(), path, cfg, memory.DefaultAllocator); err != nil {
		b.Fatal(err)
	}
	// Every 100th VIN opts out.
	src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	seen := map[string]bool{}
	vi := src.Schema().FieldIndices("vin")[0]
	for src.Next() {
		d := src.RecordBatch().Column(vi).(*array.Dictionary)
		s := d.Dictionary().(*array.String)
		for i := range s.Len() {
			seen[strings.Clone(s.Value(i))] = true
		}
	}
	if err := src.Err(); err != nil {
		b.Fatal(err)
	}
	vins := make([]string, 0, len(seen))
	for v := range seen {
		vins = append(vins, v)
	}
	sort.Strings(vins)
	var sb strings.Builder
	for i := 0; i < len(vins); i += 100 {
		sb.WriteString(vins[i] + "\n")
	}
	if err := os.WriteFile(optout, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path, rows, optout
}

// cpuSeconds is the process's CPU time so far (user + sys): on a shared
// machine it is the figure to compare, wall time depends on the neighbours.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func report(b *testing.B, path string, rows int64, cpu0 float64) {
	b.Helper()
	b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N)/float64(rows), "cpu-ns/row")
	if st, err := os.Stat(path); err == nil {
		b.SetBytes(st.Size())
	}
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(rows)/per, "rows/s")
	b.ReportMetric(per*1e9/float64(rows), "ns/row")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		// Maxrss is in KiB on Linux; it is the process's peak so far, so run
		// one benchmark per process to attribute it.
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}

// BenchmarkParquetRoundTrip is the baseline: read the fleet and write it
// back, nothing in between.
func BenchmarkParquetRoundTrip(b *testing.B) {
	in, rows, _ := benchInput(b)
	out := filepath.Join(b.TempDir(), "roundtrip.parquet")
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for b.Loop() {
		src, err := arrowio.Open(context.Background(), in, arrowio.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		sink, err := arrowio.Create(out, src.Schema(), arrowio.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for src.Next() {
			n += src.RecordBatch().NumRows()
			if err := sink.Write(src.RecordBatch()); err != nil {
				b.Fatal(err)
			}
		}
		if err := src.Err(); err != nil {
			b.Fatal(err)
		}
		if err := sink.Commit(); err != nil {
			b.Fatal(err)
		}
		src.Close()
		if n != rows {
			b.Fatalf("round trip read %d rows, want %d", n, rows)
		}
	}
	report(b, in, rows, cpu0)
}

// BenchmarkPipeline runs the full example policy (opt-out, trips with
// detached endpoints, H3 cells, cell suppression, trace k-anonymity with
// per-trip ids, microaggregated readings, DP release over public
// partitions, the linkage and unicity measures, utility) from Parquet to
// Parquet.
func BenchmarkPipeline(b *testing.B) {
	in, rows, optout := benchInput(b)
	pipeline(b, in, rows, optout, false)
}

// pipeline runs the example policy over the fleet file in, b.N times. With
// reopen the Runner may open the file again (Options.Reopen) and keeps no
// copy of what it reads; without, it writes one to an encrypted temporary
// file as it reads, in case the order needs a second reading (stdin).
func pipeline(b *testing.B, in string, rows int64, optout string, reopen bool) {
	b.Helper()
	dir := b.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "brakedisc", "policy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, src, 0o600); err != nil {
		b.Fatal(err)
	}
	ob, err := os.ReadFile(optout)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), ob, 0o600); err != nil {
		b.Fatal(err)
	}
	p, err := anonymize.LoadPolicy(policyPath)
	if err != nil {
		b.Fatal(err)
	}
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Destroy()
	out := filepath.Join(dir, "anonymized.parquet")
	rel := filepath.Join(dir, "release.parquet")
	// Wall time per step (Options.OnStep), summed over the runs: where
	// the run's time goes, reported as seconds per run.
	steps := map[string]time.Duration{}
	var stepName string
	var stepStart time.Time
	endStep := func() {
		if stepName != "" {
			steps[stepName] += time.Since(stepStart)
		}
	}
	opts := anonymize.Options{
		OnStep: func(_ context.Context, step string) {
			endStep()
			stepName, stepStart = step, time.Now()
		},
		Policy: p, Keyring: kr, TempDir: dir,
		Release: func(s *arrow.Schema) (anonymize.Sink, error) {
			return arrowio.Create(rel, s, arrowio.CreateOptions{})
		},
	}
	if reopen {
		opts.Reopen = func() (array.RecordReader, error) {
			return arrowio.Open(context.Background(), in, arrowio.OpenOptions{})
		}
	}
	r, err := anonymize.NewRunner(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ReportAllocs()
	b.ResetTimer()
	var last *anonymize.Report
	cpu0 := cpuSeconds()
	for b.Loop() {
		src, err := arrowio.Open(context.Background(), in, arrowio.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rep, err := r.Run(context.Background(), src, func(s *arrow.Schema) (anonymize.Sink, error) {
			return arrowio.Create(out, s, arrowio.CreateOptions{})
		})
		src.Close()
		endStep()
		stepName = ""
		if err != nil {
			b.Fatal(err)
		}
		if rep.Rows.In != rows {
			b.Fatalf("pipeline read %d rows, want %d", rep.Rows.In, rows)
		}
		last = rep
	}
	report(b, in, rows, cpu0)
	for name, d := range steps {
		b.ReportMetric(d.Seconds()/float64(b.N), strings.ReplaceAll(name, " ", "")+"-s")
	}
	if last != nil {
		b.ReportMetric(float64(last.Rows.Out)/float64(rows), "out/in")
		b.Logf("input read in order %q (%d sort runs); %d rows out", last.InputDetails.Order, last.InputDetails.SortRuns, last.Rows.Out)
		if r := last.Risk; r != nil && r.After.Linkage != nil {
			// Issue #12: the example policy's linkage and unicity at
			// published precision, before and after, with the measure in
			// the timed run.
			b.ReportMetric(*r.After.Linkage, "linkage")
			b.ReportMetric(r.After.LinkageCI[1], "linkage-upper")
			b.ReportMetric(*r.After.Unicity, "unicity-after")
			b.ReportMetric(*r.Before.Unicity, "unicity-before")
			b.ReportMetric(*r.Before.UnicityRawGPS, "unicity-raw-gps")
			b.ReportMetric(float64(r.Method.TracesSampled), "traces-sampled")
		}
	}
}
