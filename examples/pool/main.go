// Command pool runs a whole pooling round with the tarnkappe CLI: three
// carmakers — BMW, Volkswagen and Mercedes-Benz, each holding only its own
// vehicles from a synthetic fleet of its own seed (examples/brakedisc) —
// pool one DP release of the hourly disc temperature per H3 cell, with a
// traffic authority and a trustee as the two aggregators and an analyst as
// the collector. No party sees another carmaker's numbers.
//
// Every step is a tarnkappe command, printed before it runs (copy them into
// your own jobs):
//
//	pool init        the configuration from the demo policy's release block, every party's keys (a trial)
//	pool contribute  each carmaker: its policy (opt-out, trips, cells, bounds per vehicle) → encrypted shares
//	pool prepare     authority, then trustee
//	pool aggregate   authority and trustee (each adds its noise, records the spend)
//	pool collect     the analyst: release.parquet, report.json, report.html
//
// Then each carmaker's separate release at the same ε (tarnkappe aggregate
// --policy) shows what pooling gains: the mean 95 % interval width of the
// pooled release against the average of the three separate ones.
//
//	go run ./examples/pool [-dir DIR] [-tarnkappe PATH] [-vehicles 2000] [-rows 400000]
//
// Without -tarnkappe the command is built from ./cmd/tarnkappe first.
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// Member is one carmaker of the example.
type Member struct {
	ID   string // pool id
	Make string // the make it holds (brakedisc's make column)
	Seed int64  // its fleet's seed
}

// Members are the example's three carmakers.
func Members() []Member {
	return []Member{{"bmw", "BMW", 11}, {"volkswagen", "Volkswagen", 12}, {"mercedes", "Mercedes-Benz", 13}}
}

// Config sizes the example.
type Config struct {
	Dir       string // working directory (created)
	Tarnkappe string // the tarnkappe command
	Vehicles  int    // vehicles in each member's fleet before keeping its make
	Rows      int64  // rows of each member's fleet before keeping its make
}

// Summary is what the round produced.
type Summary struct {
	Counted        []string
	Partitions     int
	EpsilonLeft    float64
	PooledWidth    float64   // mean 95% interval width of the pooled mean
	SeparateWidths []float64 // the same for each member's own release
	MemberRows     []int64   // rows each member held
	// Busy partitions have a pooled released count of at least 500; the
	// widths over them, pooled and averaged over the separate releases.
	Busy                               int
	PooledBusyWidth, SeparateBusyWidth float64
}

// Run writes the members' data, runs the round and the separate releases,
// and prints every command and the comparison to w.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Summary, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	tk := func(args ...string) error {
		fmt.Fprintf(w, "$ tarnkappe %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, cfg.Tarnkappe, args...)
		cmd.Dir = cfg.Dir
		cmd.Stdout, cmd.Stderr = w, w
		return cmd.Run()
	}
	s := &Summary{}
	policy := brakedisc.DemoPolicy()
	pol, err := anonymize.ParsePolicy("policy.yaml", policy)
	if err != nil {
		return nil, err
	}
	if pol.Release == nil || len(pol.Release.Aggregates) == 0 {
		return nil, errors.New("the demo policy has no release aggregate to pool")
	}
	agg := pol.Release.Aggregates[0]
	relCols := releaseColumns{by: pol.Release.By, low: agg.Kind + "_" + agg.Column + "_ci_low", high: agg.Kind + "_" + agg.Column + "_ci_high"}
	for _, m := range Members() {
		dir := filepath.Join(cfg.Dir, m.ID)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		n, err := writeMember(ctx, filepath.Join(dir, "data.parquet"), m, cfg)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", m.ID, err)
		}
		s.MemberRows = append(s.MemberRows, n)
		fmt.Fprintf(w, "# %s holds %d rows of its %s vehicles (fleet seed %d)\n", m.ID, n, m.Make, m.Seed)
		// Each carmaker runs the demo policy with its own keyring and
		// (empty) opt-out list.
		if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), policy, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "optout.txt"), nil, 0o644); err != nil {
			return nil, err
		}
		if err := tk("keygen", "--out", m.ID+"/keys.json"); err != nil {
			return nil, err
		}
	}
	var ids []string
	for _, m := range Members() {
		ids = append(ids, m.ID)
	}
	steps := [][]string{
		{"pool", "init", "--dir", "pool", "--pool", "munich-brakes", "--period", "2026-03", "--members", strings.Join(ids, ","),
			"--leader", "authority", "--helper", "trustee", "--collector", "analyst", "--policy", "bmw/policy.yaml", "--budget", "3", "--max-rows", "65536"},
	}
	for _, m := range ids {
		steps = append(steps, []string{"pool", "contribute", "--config", "pool/pool.yaml", "--key", "pool/keys/" + m + ".key",
			"--policy", m + "/policy.yaml", "--in", m + "/data.parquet", "--out", "round/uploads"})
	}
	for _, a := range []string{"authority", "trustee"} {
		steps = append(steps, []string{"pool", "prepare", "--config", "pool/pool.yaml", "--key", "pool/keys/" + a + ".key",
			"--uploads", "round/uploads", "--state", "state/" + a, "--prep", "round/prep"})
	}
	for _, a := range []string{"authority", "trustee"} {
		steps = append(steps, []string{"pool", "aggregate", "--config", "pool/pool.yaml", "--key", "pool/keys/" + a + ".key",
			"--state", "state/" + a, "--prep", "round/prep", "--out", "round/shares"})
	}
	steps = append(steps, []string{"pool", "collect", "--config", "pool/pool.yaml", "--key", "pool/keys/analyst.key",
		"--shares", "round/shares", "--out", "release.csv", "--report", "report.json", "--html", "report.html"})
	for _, m := range ids {
		steps = append(steps, []string{"aggregate", "--policy", m + "/policy.yaml", "--in", m + "/data.parquet", "--out", m + "/release.csv"})
	}
	for _, st := range steps {
		if err := tk(st...); err != nil {
			return nil, fmt.Errorf("tarnkappe %s: %w", strings.Join(st, " "), err)
		}
	}
	var rep struct {
		Members struct {
			Counted []string `json:"counted"`
		} `json:"members"`
		Release struct {
			Partitions int `json:"partitions"`
		} `json:"release"`
		EpsilonLeft float64 `json:"epsilon_left"`
	}
	b, err := os.ReadFile(filepath.Join(cfg.Dir, "report.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, err
	}
	s.Counted, s.Partitions, s.EpsilonLeft = rep.Members.Counted, rep.Release.Partitions, rep.EpsilonLeft
	pooled, err := readRelease(filepath.Join(cfg.Dir, "release.csv"), relCols)
	if err != nil {
		return nil, err
	}
	// Busy partitions: a pooled released count of at least 500 (chosen
	// from the release alone, post-processing). Elsewhere most intervals of
	// a fleet this size are clamped to the bounds.
	busy := map[string]bool{}
	for k, r := range pooled {
		if r.count >= 500 {
			busy[k] = true
		}
	}
	s.PooledWidth, s.PooledBusyWidth = pooled.width(nil), pooled.width(busy)
	s.Busy = len(busy)
	var sum, sumBusy float64
	for _, m := range ids {
		sep, err := readRelease(filepath.Join(cfg.Dir, m, "release.csv"), relCols)
		if err != nil {
			return nil, err
		}
		s.SeparateWidths = append(s.SeparateWidths, sep.width(nil))
		sum += sep.width(nil)
		sumBusy += sep.width(busy)
	}
	n := float64(len(ids))
	fmt.Fprintf(w, "# pooled release: %d partitions from %v, ε=1; ε left in the period: %g\n", s.Partitions, s.Counted, s.EpsilonLeft)
	fmt.Fprintf(w, "# mean 95%% interval width of the %s of %s (bounds [%g, %g]), pooled vs the members' separate releases at the same ε:\n", agg.Kind, agg.Column, agg.Lower, agg.Upper)
	fmt.Fprintf(w, "#   all %d partitions: pooled %.1f, separate %.1f on average %v\n", s.Partitions, s.PooledWidth, sum/n, rounded(s.SeparateWidths))
	if s.Busy > 0 {
		s.SeparateBusyWidth = sumBusy / n
		fmt.Fprintf(w, "#   %d partitions with a pooled count ≥ 500: pooled %.1f, separate %.1f on average: %.2f× narrower\n", s.Busy, s.PooledBusyWidth, s.SeparateBusyWidth, s.SeparateBusyWidth/s.PooledBusyWidth)
	}
	return s, nil
}

func rounded(xs []float64) []string {
	var out []string
	for _, x := range xs {
		out = append(out, strconv.FormatFloat(x, 'f', 1, 64))
	}
	return out
}

// writeMember writes the rows of the member's make from its own fleet.
func writeMember(ctx context.Context, path string, m Member, cfg Config) (int64, error) {
	mem := memory.DefaultAllocator
	src, err := brakedisc.NewReader(brakedisc.Config{Vehicles: cfg.Vehicles, Rows: cfg.Rows, Seed: m.Seed}, mem)
	if err != nil {
		return 0, err
	}
	defer src.Release()
	sink, err := arrowio.Create(path, src.Schema(), arrowio.CreateOptions{Mem: mem})
	if err != nil {
		return 0, err
	}
	var n int64
	mk := src.Schema().FieldIndices(brakedisc.ColMake)[0]
	for src.Next() {
		rec := src.RecordBatch()
		mask, err := makeMask(mem, rec.Column(mk), m.Make)
		if err != nil {
			sink.Abort()
			return 0, err
		}
		kept, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
		mask.Release()
		if err != nil {
			sink.Abort()
			return 0, err
		}
		n += kept.NumRows()
		err = sink.Write(kept)
		kept.Release()
		if err != nil {
			sink.Abort()
			return 0, err
		}
	}
	if err := src.Err(); err != nil {
		sink.Abort()
		return 0, err
	}
	return n, sink.Commit()
}

// makeMask marks the rows of one make in a dictionary column.
func makeMask(mem memory.Allocator, col arrow.Array, mk string) (arrow.Array, error) {
	d, ok := col.(*array.Dictionary)
	if !ok {
		return nil, errors.New("the make column is not a dictionary")
	}
	dict := d.Dictionary().(*array.String)
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	for i := range d.Len() {
		b.Append(d.IsValid(i) && dict.Value(d.GetValueIndex(i)) == mk)
	}
	return b.NewArray(), nil
}

// release is a released table by partition key (cell/hour): the count and
// the mean's interval.
type release map[string]struct{ count, lo, hi float64 }

// width is the average width of the mean's interval over the partitions in
// keys (all when nil).
func (r release) width(keys map[string]bool) float64 {
	var sum float64
	var n int
	for k, v := range r {
		if keys == nil || keys[k] {
			sum += v.hi - v.lo
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// releaseColumns names the columns of a release that readRelease needs:
// the partition key columns and one aggregate's interval.
type releaseColumns struct {
	by        []string
	low, high string
}

func readRelease(path string, rc releaseColumns) (release, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, c := range append([]string{"count", rc.low, rc.high}, rc.by...) {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s has no column %s", path, c)
		}
	}
	out := release{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var v [3]float64
		for i, c := range []string{"count", rc.low, rc.high} {
			if v[i], err = strconv.ParseFloat(rec[col[c]], 64); err != nil {
				return nil, fmt.Errorf("%s: column %s: %v", path, c, err)
			}
		}
		key := make([]string, len(rc.by))
		for i, c := range rc.by {
			key[i] = rec[col[c]]
		}
		out[strings.Join(key, "/")] = struct{ count, lo, hi float64 }{v[0], v[1], v[2]}
	}
}

func main() {
	cfg := Config{Dir: "tarnkappe-pool", Vehicles: 2000, Rows: 400_000}
	flag.StringVar(&cfg.Dir, "dir", cfg.Dir, "working directory")
	flag.StringVar(&cfg.Tarnkappe, "tarnkappe", "", "the tarnkappe command (default: built from ./cmd/tarnkappe)")
	flag.IntVar(&cfg.Vehicles, "vehicles", cfg.Vehicles, "vehicles in each member's fleet before keeping its make")
	flag.Int64Var(&cfg.Rows, "rows", cfg.Rows, "rows of each member's fleet before keeping its make")
	flag.Parse()
	ctx := context.Background()
	if cfg.Tarnkappe == "" {
		bin := filepath.Join(cfg.Dir, "bin", "tarnkappe")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tarnkappe").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "pool: building tarnkappe (run from the repository root, or pass -tarnkappe): %v\n%s", err, out)
			os.Exit(2)
		}
		cfg.Tarnkappe, _ = filepath.Abs(bin)
	}
	if _, err := Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pool:", err)
		os.Exit(2)
	}
}
