package beam

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"google.golang.org/protobuf/proto"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// fixture is a generated fleet with the demo policy, a keyring and an
// opt-out list, in a temporary directory.
type fixture struct {
	dir, input, policy, keys string
	optout                   []string // clear VINs
	cfg                      Config
}

// demoPolicy is the module's pinned test policy (testdata/policy.yaml): the
// vehicle-level demo policy without mobility, released per make.
func demoPolicy(t testing.TB) []byte {
	src, err := os.ReadFile(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func newFixture(t testing.TB, vehicles int, rows int64, batch int) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{dir: dir, input: filepath.Join(dir, "fleet.parquet"), policy: filepath.Join(dir, "policy.yaml"), keys: filepath.Join(dir, "keys.json")}
	if err := brakedisc.WriteFile(ctx, f.input, brakedisc.Config{Vehicles: vehicles, Rows: rows, Seed: 7, BatchSize: batch}, memory.NewGoAllocator()); err != nil {
		t.Fatal(err)
	}
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Destroy()
	if err := kr.WriteFile(f.keys, false); err != nil {
		t.Fatal(err)
	}
	// Opt out the first three vehicles seen.
	src, err := arrowio.Open(ctx, f.input, arrowio.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for src.Next() && len(f.optout) < 3 {
		rec := src.RecordBatch()
		vins, err := rowTexts("vin", rec.Column(0), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vins {
			if !seen[v] && len(f.optout) < 3 {
				seen[v] = true
				f.optout = append(f.optout, v)
			}
		}
	}
	src.Close()
	if err := os.WriteFile(filepath.Join(dir, "optout.txt"), []byte(strings.Join(f.optout, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := demoPolicy(t)
	if err := os.WriteFile(f.policy, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	f.cfg = Config{Policy: pol, PolicyFile: f.policy, Keys: f.keys, Inputs: []string{f.input},
		Output: filepath.Join(dir, "beam.parquet"), ReleaseOutput: filepath.Join(dir, "beam.release.parquet"),
		Report: filepath.Join(dir, "beam.report.json"), TempDir: filepath.Join(dir, "beam.parquet.shards"), BatchSize: 4096, Shards: 4,
		MeasureKey: []byte("beam test: the measures' key 32b")}
	return f
}

// single runs the single-machine anonymize.Runner on the fixture.
func (f *fixture) single(t testing.TB, out string) *anonymize.Report {
	t.Helper()
	rep, err := f.singleRun(t, f.input, out)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// sortedRows reorders the rows of per-column text values (readText) into
// sorted order, for comparing outputs as multisets of rows: both engines
// write rows in a random order within each time bucket
// (anonymize.OutputOrder).
func sortedRows(cols [][]string) [][]string {
	if len(cols) == 0 {
		return cols
	}
	idx := make([]int, len(cols[0]))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		for _, c := range cols {
			if x := strings.Compare(c[a], c[b]); x != 0 {
				return x
			}
		}
		return 0
	})
	out := make([][]string, len(cols))
	for j, c := range cols {
		out[j] = make([]string, len(idx))
		for k, i := range idx {
			out[j][k] = c[i]
		}
	}
	return out
}

// readText reads a file into per-column text values (nulls as "<null>").
func readText(t testing.TB, path string) (*arrow.Schema, [][]string) {
	t.Helper()
	src, err := arrowio.Open(context.Background(), path, arrowio.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cols := make([][]string, src.Schema().NumFields())
	for src.Next() {
		rec := src.RecordBatch()
		for j := range cols {
			c := rec.Column(j)
			for i := range c.Len() {
				if c.IsNull(i) {
					cols[j] = append(cols[j], "<null>")
					continue
				}
				s, err := anonymize.ValueText(c, i)
				if err != nil {
					t.Fatalf("%s column %d: %v", path, j, err)
				}
				cols[j] = append(cols[j], s)
			}
		}
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return src.Schema(), cols
}

// prismMu serialises pipelines: prism's in-process server is shared.
var prismMu sync.Mutex

func runPrism(t testing.TB, cfg Config) (*anonymize.Report, error) {
	prismMu.Lock()
	defer prismMu.Unlock()
	return Run(context.Background(), "prism", cfg)
}

// TestPrismMatchesSingleMachine runs the demo policy (without mobility) on
// a generated fleet on prism and on the single-machine Runner with the same
// keyring, and compares every output value (pseudonyms included), the
// k-anonymity transformation and suppressed rows, and the report fields.
func TestPrismMatchesSingleMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	f := newFixture(t, 400, 40_000, 4096)
	// Private partition selection is random: at the demo's ε = 1 a make with
	// ~50 vehicles is near the threshold and may be kept by one run and not
	// the other. At ε = 1000 (≈166 per partition for selection) a partition
	// with >= 2 vehicles is kept and one with a single vehicle dropped, each
	// except with probability about δ = 1e-6, so the kept sets below differ
	// by chance with probability < 1e-4 over the ~10 makes and both runs.
	pol := bytes.Replace(f.cfg.Policy, []byte("epsilon: 1.0"), []byte("epsilon: 1000"), 1)
	if bytes.Equal(pol, f.cfg.Policy) {
		t.Fatal("demo policy: release epsilon not found")
	}
	// The opt-out list as a spreadsheet exports it (matched by mode vin),
	// and a mask that meets values too short to keep prefix and suffix
	// (models such as "Golf"), counted alike on both paths.
	pol = bytes.Replace(pol, []byte("  domain: optout\n"), []byte("  domain: optout\n  normalize: vin\n"), 1)
	pol = bytes.Replace(pol, []byte("  model: keep\n"), []byte("  model: {mask: {keep_prefix: 2, keep_suffix: 2}}\n"), 1)
	var list strings.Builder
	list.WriteString("\ufeff# VIN\r\n")
	for _, v := range f.optout {
		list.WriteString(`"` + strings.ToLower(v) + `"  # asked` + "\r\n")
	}
	if err := os.WriteFile(filepath.Join(f.dir, "optout.txt"), []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.policy, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	f.cfg.Policy = pol
	want := f.single(t, filepath.Join(f.dir, "single.parquet"))
	if want.OptOut == nil || want.OptOut.Listed != 3 || want.OptOut.Subjects != 3 || want.OptOut.Normalize != "vin" {
		t.Errorf("single machine opt-out %+v: want the 3 listed vehicles matched", want.OptOut)
	}
	if want.MaskedWhole["model"] == 0 {
		t.Errorf("masked whole %v: the fixture should mask short models whole", want.MaskedWhole)
	}
	got, err := runPrism(t, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows.In != want.Rows.In || got.Rows.Out != want.Rows.Out || got.Rows.Suppressed != want.Rows.Suppressed || got.Rows.Filtered != want.Rows.Filtered {
		t.Errorf("rows: beam %+v, single machine %+v", got.Rows, want.Rows)
	}
	if got.OptOut == nil || want.OptOut == nil || *got.OptOut != *want.OptOut {
		t.Errorf("opt-out: beam %+v, single machine %+v", got.OptOut, want.OptOut)
	}
	if !reflect.DeepEqual(got.MaskedWhole, want.MaskedWhole) {
		t.Errorf("masked whole: beam %v, single machine %v", got.MaskedWhole, want.MaskedWhole)
	}
	if want.Rows.Filtered == 0 || want.Rows.Suppressed == 0 {
		t.Errorf("the fixture should exercise opt-out and suppression: %+v", want.Rows)
	}
	if got.KAnon == nil || want.KAnon == nil {
		t.Fatal("kanon block missing")
	}
	if !reflect.DeepEqual(got.KAnon.Transformation, want.KAnon.Transformation) {
		t.Errorf("transformation: beam %v, single machine %v", got.KAnon.Transformation, want.KAnon.Transformation)
	}
	if got.KAnon.Classes != want.KAnon.Classes || got.KAnon.SuppressedClasses != want.KAnon.SuppressedClasses {
		t.Errorf("classes: beam %d (%d suppressed), single machine %d (%d suppressed)", got.KAnon.Classes, got.KAnon.SuppressedClasses, want.KAnon.Classes, want.KAnon.SuppressedClasses)
	}
	// Losses are sums over the histogram, fed in a different order on the
	// two paths: equal up to floating-point rounding.
	if len(got.KAnon.InformationLoss) != len(want.KAnon.InformationLoss) {
		t.Errorf("information loss: beam %v, single machine %v", got.KAnon.InformationLoss, want.KAnon.InformationLoss)
	}
	for m, w := range want.KAnon.InformationLoss {
		if g := got.KAnon.InformationLoss[m]; math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
			t.Errorf("information loss %s: beam %v, single machine %v", m, g, w)
		}
	}
	if !reflect.DeepEqual(got.KAnon.ClassSizes, want.KAnon.ClassSizes) {
		t.Errorf("class sizes: beam %v, single machine %v", got.KAnon.ClassSizes, want.KAnon.ClassSizes)
	}
	if got.Risk == nil || want.Risk == nil {
		t.Fatal("risk block missing")
	}
	compareRisk(t, got, want)
	if !reflect.DeepEqual(got.Keys, want.Keys) {
		t.Errorf("key ids: beam %v, single machine %v", got.Keys, want.Keys)
	}
	if !reflect.DeepEqual(got.Columns, want.Columns) {
		t.Errorf("columns: beam %v, single machine %v", got.Columns, want.Columns)
	}
	if got.DP == nil || want.DP == nil {
		t.Fatal("dp block missing")
	}
	if got.DP.EpsilonSpent != want.DP.EpsilonSpent || got.DP.DeltaSpent != want.DP.DeltaSpent {
		t.Errorf("budget: beam ε=%g δ=%g, single machine ε=%g δ=%g", got.DP.EpsilonSpent, got.DP.DeltaSpent, want.DP.EpsilonSpent, want.DP.DeltaSpent)
	}
	ws, wc := readText(t, filepath.Join(f.dir, "single.parquet"))
	gs, gc := readText(t, f.cfg.Output)
	if !ws.Equal(gs) {
		t.Fatalf("schema:\nbeam   %s\nsingle %s", gs, ws)
	}
	wc, gc = sortedRows(wc), sortedRows(gc)
	for j := range wc {
		if len(gc[j]) != len(wc[j]) {
			t.Fatalf("column %s: %d rows on beam, %d on one machine", ws.Field(j).Name, len(gc[j]), len(wc[j]))
		}
		for i := range wc[j] {
			if gc[j][i] != wc[j][i] {
				t.Fatalf("column %s, row %d: beam %q, single machine %q", ws.Field(j).Name, i, gc[j][i], wc[j][i])
			}
		}
	}
	// The opted-out VINs' pseudonyms are absent, and the raw VINs too.
	vin := wc[ws.FieldIndices("vin")[0]]
	for _, v := range vin {
		for _, o := range f.optout {
			if v == o {
				t.Fatal("a clear VIN reached the output")
			}
		}
	}
	// The release has the same partitions (make) on both sides (see ε above).
	_, wr := readText(t, filepath.Join(f.dir, "single.release.parquet"))
	_, gr := readText(t, f.cfg.ReleaseOutput)
	if len(wr[0]) < 3 {
		t.Errorf("the single-machine release kept only %v: the comparison would be vacuous", wr[0])
	}
	if !reflect.DeepEqual(sorted(wr[0]), sorted(gr[0])) {
		t.Errorf("released partitions: beam %v, single machine %v", sorted(gr[0]), sorted(wr[0]))
	}
	if _, err := os.Stat(f.cfg.TempDir); !os.IsNotExist(err) {
		t.Errorf("shard directory left behind: %v", err)
	}
}

// compareRisk compares the k-anonymity risks of both reports.
func compareRisk(t *testing.T, got, want *anonymize.Report) {
	t.Helper()
	for _, r := range []struct {
		name string
		g, w *float64
	}{
		{"before.prosecutor", got.Risk.Before.Prosecutor, want.Risk.Before.Prosecutor},
		{"before.marketer", got.Risk.Before.Marketer, want.Risk.Before.Marketer},
		{"after.prosecutor", got.Risk.After.Prosecutor, want.Risk.After.Prosecutor},
		{"after.marketer", got.Risk.After.Marketer, want.Risk.After.Marketer},
	} {
		if r.g == nil || r.w == nil || *r.g != *r.w {
			t.Errorf("risk %s: beam %v, single machine %v", r.name, r.g, r.w)
		}
	}
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// partialSink writes the merged partial to a file (tests only).
type partialSink struct{ Path string }

func (p *partialSink) ProcessElement(b []byte) error { return os.WriteFile(p.Path, b, 0o600) }

func init() { beam.RegisterType(reflect.TypeOf((*partialSink)(nil)).Elem()) }

// TestReleasePartialBounded compares the pre-noise partial computed on prism
// (subjects sharded, bounded per shard, merged in a CombineFn) with the one
// package dp computes on one machine over the same rows: per partition the
// same subjects and the same bounded row counts (L0 = 2 never binds: a
// vehicle has one make), and contributions within L∞.
func TestReleasePartialBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	f := newFixture(t, 120, 20_000, 4096)
	out := filepath.Join(f.dir, "partial.json")
	p, s := beam.NewPipelineWithRoot()
	raw, _ := Read(s, f.cfg)
	trans, _ := beam.ParDo2(s, &transformFn{workerDoFn: wf(f.cfg), OptOut: true, Columns: true}, raw)
	beam.ParDo0(s, &partialSink{Path: out}, ReleasePartial(s, f.cfg, trans))
	prismMu.Lock()
	_, err := beam.Run(context.Background(), "prism", p)
	prismMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got dp.Partial
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	// Reference: dp on one machine over the clear input minus the opted-out
	// vehicles (the subject's pseudonym is a bijection of the VIN, so the
	// partition structure is the same).
	w, err := newWorker(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := w.planInput(context.Background(), f.input); err != nil {
		t.Fatal(err)
	}
	opts, err := w.st.DPOptions()
	if err != nil {
		t.Fatal(err)
	}
	ag, err := dp.NewAggregator(opts)
	if err != nil {
		t.Fatal(err)
	}
	src, err := arrowio.Open(context.Background(), f.input, arrowio.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opted := map[string]bool{}
	for _, v := range f.optout {
		opted[v] = true
	}
	for src.Next() {
		rec := src.RecordBatch()
		vins, _ := rowTexts("vin", rec.Column(0), 0)
		var keep []int32
		for i, v := range vins {
			if !opted[v] {
				keep = append(keep, int32(i))
			}
		}
		sub, err := takeRows(context.Background(), memory.DefaultAllocator, rec, keep)
		if err != nil {
			t.Fatal(err)
		}
		err = ag.Add(context.Background(), sub)
		sub.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	src.Close()
	want, err := ag.Partial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Partitions) != len(want.Partitions) || len(want.Partitions) < 3 {
		t.Fatalf("partitions: beam %d, single machine %d", len(got.Partitions), len(want.Partitions))
	}
	for k, wp := range want.Partitions {
		gp, ok := got.Partitions[k]
		if !ok {
			t.Fatalf("partition %q missing on beam", k)
		}
		if gp.Subjects != wp.Subjects || gp.Rows != wp.Rows {
			t.Errorf("partition %q: beam %d subjects %d rows, single machine %d subjects %d rows", k, gp.Subjects, gp.Rows, wp.Subjects, wp.Rows)
		}
		if gp.Rows > gp.Subjects*int64(w.p.Release.MaxPerPartition) {
			t.Errorf("partition %q: %d rows from %d subjects exceeds L∞=%d", k, gp.Rows, gp.Subjects, w.p.Release.MaxPerPartition)
		}
	}
	if got.Stats != want.Stats {
		t.Errorf("stats: beam %+v, single machine %+v", got.Stats, want.Stats)
	}
}

// TestPipelineHoldsNoKeys marshals the pipeline as a runner receives it and
// checks that no key material (raw, base64 or hex) is in it.
func TestPipelineHoldsNoKeys(t *testing.T) {
	f := newFixture(t, 20, 500, 256)
	p, s := beam.NewPipelineWithRoot()
	if err := Anonymize(s, f.cfg); err != nil {
		t.Fatal(err)
	}
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := graphx.Marshal(edges, &graphx.Options{Environment: &pipepb.Environment{Urn: "beam:env:external:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := proto.Marshal(pipe)
	if err != nil {
		t.Fatal(err)
	}
	// DoFn payloads are nested encodings (base64 of protos holding JSON):
	// search the blob and everything decodable in it.
	blob = expandEncodings(blob, 4)
	var kf struct {
		Keys []struct{ Key string } `json:"keys"`
	}
	raw, _ := os.ReadFile(f.keys)
	if err := json.Unmarshal(raw, &kf); err != nil || len(kf.Keys) == 0 {
		t.Fatalf("keyring file: %v", err)
	}
	if !bytes.Contains(blob, []byte(f.keys)) {
		t.Error("the pipeline should carry the keyring's path (the test would not notice the config missing)")
	}
	// The opt-out list travels by path too: no listed VIN is in the graph.
	for _, v := range f.optout {
		if bytes.Contains(blob, []byte(v)) {
			t.Fatalf("opted-out subject %s found in the marshalled pipeline", v)
		}
	}
	for _, k := range kf.Keys {
		key, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil || len(key) != 32 {
			t.Fatalf("keyring key: %v", err)
		}
		for _, form := range [][]byte{key, []byte(k.Key), []byte(fmt.Sprintf("%x", key)), []byte(base64.RawURLEncoding.EncodeToString(key)), key[:12]} {
			if bytes.Contains(blob, form) {
				t.Fatal("key material found in the marshalled pipeline")
			}
		}
	}
}

// TestBadRowFailsWithoutOutput: a null value in data row 1235 (the subject,
// or with the demo policy a coordinate, checked before the shuffle by
// subject) fails the job with the file, row and column, and leaves no
// output, release or shards.
func TestBadRowFailsWithoutOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	for _, tc := range []struct {
		name, column string
		demo         bool
	}{{"subject", "vin", false}, {"coordinate on the demo policy", "lat", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 50, 3000, 1000)
			if tc.demo {
				f = newDemoFixture(t, 50, 3000, 1000)
			}
			bad := writeWithNull(t, f, tc.column, 1234)
			cfg := f.cfg
			cfg.Inputs = []string{bad}
			_, err := runPrism(t, cfg)
			if err == nil {
				t.Fatal("a null value should fail the job")
			}
			for _, want := range []string{fmt.Sprintf(`row 1235, column %q: null`, tc.column), "bad.parquet"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			for _, p := range []string{cfg.Output, cfg.ReleaseOutput, cfg.Report, cfg.TempDir} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failed job", p)
				}
			}
		})
	}
}

// writeWithNull copies the fixture's input to bad.parquet with a null in
// the given (string or float64) column at one row.
func writeWithNull(t *testing.T, f *fixture, column string, row int64) string {
	t.Helper()
	mem := memory.NewGoAllocator()
	src, err := arrowio.Open(context.Background(), f.input, arrowio.OpenOptions{BatchSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bad := filepath.Join(f.dir, "bad.parquet")
	var sink *arrowio.Sink
	var base int64
	for src.Next() {
		rec := src.RecordBatch()
		j := rec.Schema().FieldIndices(column)[0]
		var col arrow.Array
		typ := rec.Column(j).DataType()
		if fc, ok := rec.Column(j).(*array.Float64); ok {
			fb := array.NewFloat64Builder(mem)
			for i, v := range fc.Float64Values() {
				if base+int64(i) == row {
					fb.AppendNull()
					continue
				}
				fb.Append(v)
			}
			col = fb.NewArray()
			fb.Release()
		} else {
			vals, _ := rowTexts(column, rec.Column(j), 0)
			sb := array.NewStringBuilder(mem)
			for i, v := range vals {
				if base+int64(i) == row {
					sb.AppendNull()
					continue
				}
				sb.Append(v)
			}
			col = sb.NewArray()
			sb.Release()
			typ = arrow.BinaryTypes.String
		}
		cols := slices.Clone(rec.Columns())
		cols[j] = col
		fields := slices.Clone(rec.Schema().Fields())
		fields[j] = arrow.Field{Name: column, Type: typ, Nullable: true}
		nr := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
		col.Release()
		if sink == nil {
			if sink, err = arrowio.Create(bad, nr.Schema(), arrowio.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := sink.Write(nr); err != nil {
			t.Fatal(err)
		}
		nr.Release()
		base += rec.NumRows()
	}
	if err := sink.Commit(); err != nil {
		t.Fatal(err)
	}
	return bad
}

// TestConfigRejects: unsupported policy blocks and missing fields are
// errors, never skipped.
func TestConfigRejects(t *testing.T) {
	f := newFixture(t, 5, 50, 64)
	cases := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"no inputs", func(c *Config) { c.Inputs = nil }, "Inputs is required"},
		{"no temp dir", func(c *Config) { c.TempDir = "" }, "TempDir is required"},
		{"no release output", func(c *Config) { c.ReleaseOutput = "" }, "ReleaseOutput"},
		{"no keys", func(c *Config) { c.Keys = "" }, "no keyring"},
		{"wrong keys path", func(c *Config) { c.Keys = filepath.Join(f.dir, "nope.json") }, "nope.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := f.cfg
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

var b64run = regexp.MustCompile(`[A-Za-z0-9+/_-]{16,}={0,2}`)

// expandEncodings appends to b every base64 run in it, decoded, recursively.
// A run may start with a stray byte of the enclosing encoding (a proto
// length that happens to be a base64 letter), so every offset is tried.
func expandEncodings(b []byte, depth int) []byte {
	if depth == 0 {
		return b
	}
	out := append([]byte(nil), b...)
	for _, m := range b64run.FindAll(b, -1) {
		m = bytes.TrimRight(m, "=")
		for off := 0; off < 4 && off < len(m); off++ {
			r := m[off:]
			if len(r)%4 == 1 {
				r = r[:len(r)-1]
			}
			var d []byte
			var err error
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				if d, err = enc.DecodeString(string(r)); err == nil {
					break
				}
			}
			if err == nil {
				out = append(out, 0)
				out = append(out, expandEncodings(d, depth-1)...)
			}
		}
	}
	return out
}
