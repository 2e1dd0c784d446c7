package kanonbench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// findArxBench finds the arxbench harness (run.sh, outside this
// repository): $ARXBENCH (its folder), else shared/tools/arxbench beside
// the module root or one of its parents — ../../../shared/tools/arxbench
// from this folder in the main checkout.
func findArxBench() (string, string) {
	if d := os.Getenv("ARXBENCH"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "run.sh")); err != nil {
			return "", "ARXBENCH=" + d + " has no run.sh"
		}
		return d, ""
	}
	wd, _ := os.Getwd()
	for d := wd; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
			continue
		}
		for up := filepath.Dir(d); ; up = filepath.Dir(up) {
			dir := filepath.Join(up, "shared", "tools", "arxbench")
			if _, err := os.Stat(filepath.Join(dir, "run.sh")); err == nil {
				return dir, ""
			}
			if filepath.Dir(up) == up {
				return "", "ARX harness not found in shared/tools/arxbench beside " + d + " or its parents (set ARXBENCH to the folder of arxbench's run.sh)"
			}
		}
	}
	return "", "module root not found (set ARXBENCH)"
}

// arxLine is one case line of ArxBench's output.
type arxLine struct {
	best, median, cpuMedian float64
	ok                      bool
	raw                     string
}

// runArx runs ARX's harness on all seven cases and parses its output.
func runArx(ctx context.Context, dir, adultDir string, runs, warmup int) (map[string]arxLine, string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "run.sh"), adultDir, strconv.Itoa(runs), "--warmup", strconv.Itoa(warmup), "--cases", "all")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %v\n%s%s", cmd, err, out, stderr.Bytes())
	}
	lines := map[string]arxLine{}
	header := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 1 && f[0] == "#" && f[1] == "ARX" {
			header = sc.Text()
		}
		if len(f) < 2 || f[0] != "case" {
			continue
		}
		l := arxLine{ok: f[len(f)-1] == "ok", raw: sc.Text()}
		for _, kv := range f[2:] {
			k, v, _ := strings.Cut(kv, "=")
			x, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "best_ms":
				l.best = x
			case "median_ms":
				l.median = x
			case "cpu_median_ms":
				l.cpuMedian = x
			}
		}
		lines[f[1]] = l
	}
	return lines, header, nil
}

// kanonTimes is one case timed the way ArxBench times ARX.
type kanonTimes struct {
	best, median, cpuMedian float64
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// BenchmarkArxSideBySide times ARX 3.9.2 and kanon on arxbench's seven
// Adult cases in one window: ARX, then kanon, then ARX again, each case
// with the same warm-up calls and timed runs ($ARXBENCH_RUNS, default 5;
// $ARXBENCH_WARMUP, default 1) and the same statistics (best and median
// wall time, median process CPU time). Run it with -benchtime 1x:
//
//	go test ./benchmarks/kanon/ -run '^$' -bench ArxSideBySide -benchtime 1x
//
// What each side times: ARX's anonymize() on a loaded Data object (its
// dictionary already built on the warm-up call): encoding the hierarchies,
// projecting the data, the search. kanon's op is BenchmarkKAnonAdult's:
// BuildHistogram over the parsed, dictionary-encoded batch (hierarchies
// turned into dimensions, every row counted) and Search. Neither times
// reading the CSV files. The ratios are ARX's faster and slower run of the
// two over kanon's: of the median wall times, of the best wall times, and
// of the median process CPU times (every thread: ARX's JIT compiler and
// garbage collector, kanon's roll-up workers and garbage collector; ARX's
// in 10 ms steps). On a machine other jobs load, the wall times measure
// the scheduler as much as the code; the CPU times much less so.
//
// It skips with a message where the harness, Java or the Adult data is
// absent; it fails when either side's optimum is not ARX's reference.
func BenchmarkArxSideBySide(b *testing.B) {
	adult.load(b)
	arxDir, skip := findArxBench()
	if skip != "" {
		b.Skip(skip)
	}
	if _, err := exec.LookPath("java"); err != nil {
		b.Skip("java not on PATH: ARX cannot run")
	}
	adultDir, _ := findAdult()
	runs := max(1, envInt("ARXBENCH_RUNS", 5))
	warmup := envInt("ARXBENCH_WARMUP", 1)
	ctx := context.Background()
	for b.Loop() {
		var arx [2]map[string]arxLine
		var loads [3]string
		var header string
		loads[0] = loadAvg()
		t0 := time.Now()
		var err error
		if arx[0], header, err = runArx(ctx, arxDir, adultDir, runs, warmup); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		loads[1] = loadAvg()
		ours := map[string]kanonTimes{}
		for _, c := range adultCases {
			var wall, cpu []float64
			for i := range warmup + runs {
				c0, w0 := cpuTime(), time.Now()
				res, err := c.run(ctx)
				w, cp := time.Since(w0), cpuTime()-c0
				if err != nil {
					b.Fatalf("%s: %v", c.name, err)
				}
				if err := c.check(res); err != nil {
					b.Fatal(err)
				}
				if i >= warmup {
					wall = append(wall, float64(w.Microseconds())/1000)
					cpu = append(cpu, float64(cp.Microseconds())/1000)
				}
			}
			ours[c.name] = kanonTimes{best: slices.Min(wall), median: median(wall), cpuMedian: median(cpu)}
		}
		t2 := time.Now()
		loads[2] = loadAvg()
		if arx[1], _, err = runArx(ctx, arxDir, adultDir, runs, warmup); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		var tab strings.Builder
		fmt.Fprintf(&tab, "%s\n", header)
		fmt.Fprintf(&tab, "ARX %s–%s UTC, kanon %s–%s, ARX %s–%s; load average (1/5/15 min) at the starts: %s | %s | %s; %d warm-up + %d timed runs per case\n\n",
			t0.UTC().Format("15:04:05"), t1.UTC().Format("15:04:05"), t1.UTC().Format("15:04:05"), t2.UTC().Format("15:04:05"),
			t2.UTC().Format("15:04:05"), t3.UTC().Format("15:04:05"), loads[0], loads[1], loads[2], warmup, runs)
		fmt.Fprintf(&tab, "| case | ARX median ms (1st, 2nd run) | ARX best ms | ARX CPU ms | kanon median ms | kanon best ms | kanon CPU ms | ratio (median) | ratio (best) | ratio (CPU) |\n")
		fmt.Fprintf(&tab, "|---|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range adultCases {
			a0, a1 := arx[0][c.name], arx[1][c.name]
			if !a0.ok || !a1.ok {
				b.Errorf("ARX %s: %q / %q", c.name, a0.raw, a1.raw)
			}
			k := ours[c.name]
			loM, hiM := min(a0.median, a1.median), max(a0.median, a1.median)
			loB, hiB := min(a0.best, a1.best), max(a0.best, a1.best)
			loC, hiC := min(a0.cpuMedian, a1.cpuMedian), max(a0.cpuMedian, a1.cpuMedian)
			fmt.Fprintf(&tab, "| %s | %.1f, %.1f | %.1f–%.1f | %.0f, %.0f | %.2f | %.2f | %.2f | %.1f–%.1f× | %.1f–%.1f× | %.1f–%.1f× |\n",
				c.name, a0.median, a1.median, loB, hiB, a0.cpuMedian, a1.cpuMedian, k.median, k.best, k.cpuMedian,
				loM/k.median, hiM/k.median, loB/k.best, hiB/k.best, loC/k.cpuMedian, hiC/k.cpuMedian)
			b.ReportMetric(loM/k.median, "x_"+metricName(c.name))
		}
		// On stdout: the testing package cuts a benchmark's log at ten
		// lines.
		fmt.Print("\n" + tab.String() + "\n")
	}
}

// metricName shortens a case name to a metric unit without spaces.
func metricName(s string) string {
	return strings.NewReplacer(",", "_", "=", "", "-", "").Replace(s)
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
