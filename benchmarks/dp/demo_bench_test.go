package dpbench

import (
	"bytes"
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// demoReleaseBefore is the example policy's release block before it was
// tuned (issue #14): the whole fleet box at H3 resolution 5 × 24 hours of
// the day, 504 public partitions.
const demoReleaseBefore = `release:
  by: [cell, hour_of_day]
  hour_of_day: ts
  cell_resolution: 5
  public:
    bbox: [47.95, 11.25, 48.35, 11.85]
  epsilon: 1.0
  delta: 1e-6
  max_partitions: 4
  max_per_partition: 10
  count: true
  aggregates:
    - {column: disc_temp_c, kind: mean, lower: 0, upper: 200}
`

// BenchmarkDemoRelease runs the demo's policy (examples/brakedisc) on the
// demo fleet (1,000,000 rows, 2,000 vehicles) with the release block as it
// is ("after") and as it was ("before"), and reports how much each release
// says, by dp.Result.Verdict on the released record: the share of mean
// intervals narrower than half the clamp range, the share of counts whose
// 95 % error is at most half the value, the means published on a clamp
// bound, and the partitions. The opt-out list the demo writes (20 of 2,000
// vehicles) is left out. Each iteration is one whole run (≈ 5 s); use
// -benchtime 1x.
func BenchmarkDemoRelease(b *testing.B) {
	after := brakedisc.DemoPolicy()
	i := bytes.Index(after, []byte("\nrelease:\n"))
	if i < 0 {
		b.Fatal("the demo policy has no release block")
	}
	before := append(append([]byte(nil), after[:i+1]...), demoReleaseBefore...)
	for _, c := range []struct {
		name   string
		policy []byte
	}{{"before", before}, {"after", after}} {
		b.Run(c.name, func(b *testing.B) {
			p, err := anonymize.ParsePolicy("policy.yaml", c.policy)
			if err != nil {
				b.Fatal(err)
			}
			p.OptOut = nil
			kr, err := pseudonym.NewKeyring()
			if err != nil {
				b.Fatal(err)
			}
			defer kr.Destroy()
			var mean, count, atBound, parts float64
			for b.Loop() {
				v, n := demoRelease(b, p, kr)
				mean += v.Aggregates[1].Share
				count += v.Aggregates[0].Share
				atBound += float64(v.Aggregates[1].AtBound)
				parts += float64(n)
			}
			n := float64(b.N)
			b.ReportMetric(mean/n, "narrow-mean-share")
			b.ReportMetric(count/n, "narrow-count-share")
			b.ReportMetric(atBound/n, "means-at-bound")
			b.ReportMetric(parts/n, "partitions")
		})
	}
}

// demoRelease runs p over the demo fleet and judges its release.
func demoRelease(b *testing.B, p *anonymize.Policy, kr *pseudonym.Keyring) (*dp.Verdict, int64) {
	mem := memory.NewGoAllocator()
	var rel captureSink
	defer rel.release()
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Mem: mem,
		Release: func(*arrow.Schema) (anonymize.Sink, error) { return &rel, nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	steps, err := r.Steps(brakedisc.Schema())
	if err != nil {
		b.Fatal(err)
	}
	opts, err := steps.DPOptions()
	steps.Close()
	if err != nil {
		b.Fatal(err)
	}
	spec, err := opts.Spec()
	if err != nil {
		b.Fatal(err)
	}
	src, err := brakedisc.NewReader(brakedisc.DefaultConfig(), mem)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	if _, err := r.Run(context.Background(), src, func(*arrow.Schema) (anonymize.Sink, error) { return discard{}, nil }); err != nil {
		b.Fatal(err)
	}
	if len(rel.recs) != 1 {
		b.Fatalf("release written in %d batches, want 1", len(rel.recs))
	}
	res := &dp.Result{Record: rel.recs[0], Aggregates: spec.Aggregates}
	v, err := res.Verdict()
	if err != nil {
		b.Fatal(err)
	}
	return v, rel.recs[0].NumRows()
}

// captureSink keeps the release's batches.
type captureSink struct{ recs []arrow.RecordBatch }

func (s *captureSink) Write(rec arrow.RecordBatch) error {
	rec.Retain()
	s.recs = append(s.recs, rec)
	return nil
}
func (s *captureSink) Commit() error { return nil }
func (s *captureSink) Abort() error  { return nil }
func (s *captureSink) release() {
	for _, r := range s.recs {
		r.Release()
	}
}

// discard drops the anonymised rows.
type discard struct{}

func (discard) Write(arrow.RecordBatch) error { return nil }
func (discard) Commit() error                 { return nil }
func (discard) Abort() error                  { return nil }
