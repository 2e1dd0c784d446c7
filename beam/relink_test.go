package beam

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestSupportedExamplePolicy: Beam runs every field of the example policy
// (microaggregate, mobility.max_linkage) and of the one before issue #12.
func TestSupportedExamplePolicy(t *testing.T) {
	for name, pol := range map[string][]byte{"policy.yaml": brakedisc.DemoPolicy(), "policy-attributes.yaml": brakedisc.AttributesPolicy()} {
		p, err := anonymize.ParsePolicy(name, pol)
		if err != nil {
			t.Fatal(err)
		}
		if err := supported(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestPrismRelinkLint is the data part of the re-linking lint on Beam: a
// licence plate kept beside trips (one value per vehicle) fails the run,
// nothing is written, and the message is the single machine's; listed
// under mobility.subject_columns it runs.
func TestPrismRelinkLint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	// The policy before issue #12: no mobility.max_linkage, which a
	// plate kept beside trips (linkage 100%) would trip first.
	f := newDemoFixture(t, 60, 6_000, 1024)
	withPlate(t, f.input)
	f.withPolicyEdits(t, [2]string{"  pad_wear_mm: drop\n", "  pad_wear_mm: drop\n  plate: keep\n"})
	_, werr := f.singleRun(t, f.input, f.dir+"/single.parquet")
	_, err := runPrism(t, f.cfg)
	const want = `column "plate" identifies the subject`
	if werr == nil || !strings.Contains(werr.Error(), want) {
		t.Fatalf("single machine: %v, want %q", werr, want)
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("beam: %v, want %q", err, want)
	}
	for _, p := range []string{f.cfg.Output, f.cfg.ReleaseOutput, f.cfg.Report} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written although the lint failed", p)
		}
	}
	f.withPolicyEdits(t, [2]string{"  trace_k: 5\n", "  trace_k: 5\n  subject_columns: [plate]\n"})
	if _, err := runPrism(t, f.cfg); err != nil {
		t.Fatalf("plate listed under subject_columns: %v", err)
	}
}

// withPlate adds a column "plate" to a fleet file: a value per vehicle
// (from the VIN's serial number), as a licence plate would be.
func withPlate(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	mem := memory.NewGoAllocator()
	src, err := arrowio.Open(ctx, path, arrowio.OpenOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for src.Next() {
		rec := src.RecordBatch()
		vins, err := rowTexts("vin", rec.Column(rec.Schema().FieldIndices("vin")[0]), 0)
		if err != nil {
			t.Fatal(err)
		}
		b := array.NewStringBuilder(mem)
		for _, v := range vins {
			b.Append("M-" + v[11:])
		}
		plate := b.NewArray()
		b.Release()
		fields := append(rec.Schema().Fields(), arrow.Field{Name: "plate", Type: arrow.BinaryTypes.String})
		recs = append(recs, array.NewRecordBatch(arrow.NewSchema(fields, nil), append(rec.Columns(), plate), rec.NumRows()))
		plate.Release()
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	src.Close()
	tmp := path + ".plate.parquet"
	sk, err := arrowio.Create(tmp, recs[0].Schema(), arrowio.CreateOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := sk.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sk.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestPrismMaxLinkageFailsClosed: the policy before issue #12 with
// mobility.max_linkage links nearly every published trip; Beam measures
// it as the single machine does and fails with the same message (the
// measured share, its interval and the columns that drive it), and writes
// nothing: no output, release or report.
func TestPrismMaxLinkageFailsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Beam pipeline on prism")
	}
	f := newDemoFixture(t, 100, 8_000, 2048)
	f.withPolicyEdits(t, [2]string{"  unicity_points: 4\n", "  unicity_points: 4\n  max_linkage: 0.05\n"})
	_, werr := f.singleRun(t, f.input, f.dir+"/single.parquet")
	_, err := runPrism(t, f.cfg)
	if werr == nil || err == nil {
		t.Fatalf("single machine %v, beam %v: both must fail", werr, err)
	}
	_, wmsg, _ := strings.Cut(werr.Error(), "linkage: ")
	_, msg, _ := strings.Cut(err.Error(), "linkage: ")
	if wmsg == "" || msg != wmsg || !strings.Contains(msg, "mobility.max_linkage") || !strings.Contains(msg, "speed_kmh") {
		t.Errorf("beam: %v\nsingle machine: %v", err, werr)
	}
	for _, p := range []string{f.cfg.Output, f.cfg.ReleaseOutput, f.cfg.Report} {
		if _, serr := os.Stat(p); !os.IsNotExist(serr) {
			t.Errorf("beam wrote %s after failing: %v", p, serr)
		}
	}
}
