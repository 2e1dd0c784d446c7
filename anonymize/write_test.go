package anonymize

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// probeReader passes a brake-disc fleet on with one more column, probe:
// the input row number. The test's policy keeps it, so that each written
// row can be joined to its raw reading (time, vehicle) that the test keeps
// aside; the output order sorts by published time bucket only, so
// the column does not shape the order it is used to test.
type probeReader struct {
	array.RecordReader
	mem    memory.Allocator
	schema *arrow.Schema
	cur    arrow.RecordBatch
	rows   int64
	ts     []int64 // ms, per input row
	veh    []int32 // vehicle, per input row
	vins   map[string]int32
}

func newProbeReader(src array.RecordReader, mem memory.Allocator) *probeReader {
	fs := append(slices.Clone(src.Schema().Fields()), arrow.Field{Name: "probe", Type: arrow.PrimitiveTypes.Int64})
	return &probeReader{RecordReader: src, mem: mem, schema: arrow.NewSchema(fs, nil), vins: map[string]int32{}}
}

func (p *probeReader) Schema() *arrow.Schema { return p.schema }

func (p *probeReader) Next() bool {
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
	if !p.RecordReader.Next() {
		return false
	}
	rec := p.RecordReader.RecordBatch()
	n := int(rec.NumRows())
	b := array.NewInt64Builder(p.mem)
	defer b.Release()
	vin := rec.Column(rec.Schema().FieldIndices(brakedisc.ColVIN)[0])
	ts := rec.Column(rec.Schema().FieldIndices(brakedisc.ColTS)[0]).(*array.Timestamp)
	for i := range n {
		b.Append(p.rows + int64(i))
		v, _ := valueText(vin, i)
		id, ok := p.vins[v]
		if !ok {
			id = int32(len(p.vins))
			p.vins[v] = id
		}
		p.veh = append(p.veh, id)
		p.ts = append(p.ts, int64(ts.Value(i)))
	}
	probe := b.NewArray()
	defer probe.Release()
	p.rows += int64(n)
	p.cur = array.NewRecordBatch(p.schema, append(slices.Clone(rec.Columns()), probe), int64(n))
	return true
}

func (p *probeReader) RecordBatch() arrow.RecordBatch { return p.cur }
func (p *probeReader) Record() arrow.RecordBatch      { return p.cur }

func (p *probeReader) Release() {
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
}

// TestWrittenOrderFleet runs the demo policy over the brake-disc fleet (1M
// rows; 200,000 with -short) and plays the attacker of issue #12 against
// the written file. Before the output-order step the rows left pass 2 in
// trip order, and a row's rank inside its hour estimated its original time
// to a median of about a minute. Now:
//
//   - the Spearman correlation between a row's position and its original
//     time, within each published hour and pooled over them, is |ρ| < 0.02
//     (and within 6/sqrt(n) of 0 in every hour of n >= 100 rows: a
//     false rejection probability below 1e-6 over all hours);
//   - the time an attacker reads off a row's rank in its hour is no closer
//     to the truth than what the same rank gives in a random order (median
//     error at least 0.95 of the random order's);
//   - a vehicle's rows, and a trip's, are neighbours no more often than in
//     an order random within each published hour: within 6 standard
//     deviations of the mean over 20 such orders (about 2e-9 false
//     rejection under normality).
//
// The probe column is the join key (see probeReader). TestOutputOrder
// shows the same statistics fail on pass 2's trip order.
func TestWrittenOrderFleet(t *testing.T) {
	rows, vehicles := int64(1_000_000), 2000
	if testing.Short() {
		rows, vehicles = 200_000, 600
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows = vehicles, rows
	gen, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Release()
	src := newProbeReader(gen, mem)
	defer src.Release()
	policy := bytes.Replace(brakedisc.DemoPolicy(), []byte("\ncolumns:\n"), []byte("\ncolumns:\n  probe: keep\n"), 1)
	// The probe is a join key by design: the linkage limit, which would
	// rightly refuse it, is lifted.
	policy = bytes.Replace(policy, []byte("  max_linkage: 0.05\n"), nil, 1)
	if bytes.Contains(policy, []byte("\n  max_linkage:")) {
		t.Fatal("the demo policy's max_linkage line changed: update the test")
	}
	p := writePolicy(t, string(policy))
	out, rel := &memSink{}, &memSink{}
	t.Cleanup(out.release)
	t.Cleanup(rel.release)
	r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem, Workers: 2, Release: sinkFor(rel), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Run(context.Background(), src, sinkFor(out))
	if err != nil {
		t.Fatal(err)
	}
	w := readWritten(t, out, src)
	if int64(len(w.bucket)) != rep.Rows.Out || rep.Rows.Out < rows/2 {
		t.Fatalf("%d rows written, report says %d, of %d", len(w.bucket), rep.Rows.Out, rows)
	}

	// Position against original time, within each hour.
	rho, n := spearmanWithin(w.bucket, w.raw)
	t.Logf("Spearman(position, original time) within the hour, pooled over %d rows: %.5f", n, rho)
	if math.Abs(rho) >= 0.02 {
		t.Errorf("Spearman(position, original time) within the hour = %.4f, want |ρ| < 0.02", rho)
	}
	if lim := 6 / math.Sqrt(float64(n)); math.Abs(rho) > lim {
		t.Errorf("Spearman(position, original time) within the hour = %.4f, want |ρ| < %.4f (6 standard deviations)", rho, lim)
	}
	checkEachGroup(t, w.bucket, w.raw, 100, 6)

	// The attack: a row's rank in its hour read as a time.
	rng := rand.New(rand.NewPCG(1, 2))
	attack := rankAttackError(w.bucket, w.raw, nil)
	shuffled := rankAttackError(w.bucket, w.raw, rng)
	t.Logf("rank attack: median error %.0f s (a random order within the hour: %.0f s)", attack, shuffled)
	if attack < 0.95*shuffled {
		t.Errorf("a row's rank in its hour gives its time to a median of %.0f s; a random order gives %.0f s", attack, shuffled)
	}

	// Neighbours: vehicles and trips.
	for _, c := range []struct {
		what string
		id   []int64
	}{{"vehicle", w.veh}, {"trip", w.trip}} {
		a := adjacency(c.id)
		mean, sd := adjacencyNull(w.bucket, c.id, 20, rng)
		t.Logf("%s neighbours: %d; random within the hour: %.1f ± %.1f", c.what, a, mean, sd)
		if math.Abs(float64(a)-mean) > 6*sd {
			t.Errorf("a %s's rows are neighbours %d times; a random order within the hour gives %.1f ± %.1f", c.what, a, mean, sd)
		}
	}
}

// written are the written rows of TestWrittenOrderFleet, joined to their
// raw readings through the probe column.
type written struct {
	bucket    []int64   // published hour, ms
	raw       []float64 // original time, ms
	veh, trip []int64   // -1: no trip id
}

func readWritten(t *testing.T, out *memSink, src *probeReader) written {
	t.Helper()
	var w written
	for _, rec := range out.recs {
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		ts, trip, probe := col("ts").(*array.Timestamp), col("trip").(*array.Int64), col("probe").(*array.Int64)
		unit := ts.DataType().(*arrow.TimestampType).Unit
		for i := range int(rec.NumRows()) {
			b := ts.Value(i).ToTime(unit).UnixMilli()
			row := probe.Value(i)
			if row < 0 || row >= src.rows {
				t.Fatalf("probe %d out of range", row)
			}
			w.bucket = append(w.bucket, b)
			w.raw = append(w.raw, float64(src.ts[row]))
			w.veh = append(w.veh, int64(src.veh[row]))
			id := int64(-1)
			if trip.IsValid(i) {
				id = trip.Value(i)
			}
			w.trip = append(w.trip, id)
			if src.ts[row] < b || src.ts[row] >= b+time.Hour.Milliseconds() {
				t.Fatalf("row with probe %d: original time %d outside its published hour %d", row, src.ts[row], b)
			}
		}
	}
	return w
}

// checkEachGroup checks |ρ| < z/sqrt(n-1) for the Spearman correlation of
// position and x within every group of at least minRows rows.
func checkEachGroup(t *testing.T, group []int64, x []float64, minRows int, z float64) {
	t.Helper()
	members := map[int64][]int{}
	for i, g := range group {
		members[g] = append(members[g], i)
	}
	worst, checked := 0.0, 0
	for g, idx := range members {
		if len(idx) < minRows {
			continue
		}
		checked++
		sub := make([]float64, len(idx))
		for k, i := range idx {
			sub[k] = x[i]
		}
		rho, n := spearmanWithin(make([]int64, len(idx)), sub)
		lim := z / math.Sqrt(float64(n-1))
		worst = max(worst, math.Abs(rho)/lim)
		if math.Abs(rho) > lim {
			t.Errorf("group %d (%d rows): Spearman %.4f, want |ρ| < %.4f", g, n, rho, lim)
		}
	}
	t.Logf("%d groups of >= %d rows; the largest |ρ| is %.2f of its bound", checked, minRows, worst)
}

// rankAttackError is the median absolute error (seconds) of the attack
// that reads a row's time off its rank within its hour: the k-th of n rows
// is taken to be at (k+0.5)/n of the hour. With rng the ranks are those of
// a random order within the hour instead (the baseline).
func rankAttackError(bucket []int64, raw []float64, rng *rand.Rand) float64 {
	members := map[int64][]int{}
	for i, b := range bucket {
		members[b] = append(members[b], i)
	}
	var errs []float64
	hour := float64(time.Hour.Milliseconds())
	for b, idx := range members {
		if rng != nil {
			idx = slices.Clone(idx)
			rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		}
		for k, i := range idx {
			est := float64(b) + (float64(k)+0.5)/float64(len(idx))*hour
			errs = append(errs, math.Abs(est-raw[i])/1000)
		}
	}
	sort.Float64s(errs)
	return errs[len(errs)/2]
}
