package pool

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"
)

// CollectOptions configure Collect.
type CollectOptions struct {
	// Mem allocates the release record. Defaults to memory.DefaultAllocator.
	Mem memory.Allocator
}

// Result is a pool release: the record and the report.
type Result struct {
	// Record has the partition key columns (utf8, the partition file's
	// text), then per aggregate: count "count" (int64), sum "sum_<col>"
	// and mean "mean_<col>" (float64), each with "<name>_ci_low" and
	// "<name>_ci_high" (float64) at the configured confidence, covering
	// both aggregators' noise; then "epsilon" and "delta" (float64, the
	// release's). The caller releases it.
	Record arrow.RecordBatch
	// Report says what was counted, rejected and spent.
	Report *Report

	// totals are the unsharded released integers per partition and
	// aggregate (noisy, units of each aggregate's grid), for tests.
	totals []int64
}

// Release releases the record.
func (r *Result) Release() {
	if r.Record != nil {
		r.Record.Release()
		r.Record = nil
	}
}

// Collect is the collector's step: it verifies both aggregators' signed
// share files (same configuration, round and counted members), decrypts
// them with the collector's HPKE key, adds them — only the noisy totals
// ever exist in clear — and computes the release: noisy counts, sums and
// means (the noisy sum over the noisy count, post-processing), with
// intervals that cover both noise draws.
func Collect(cfg *Config, key *Key, leaderShare, helperShare []byte, opts CollectOptions) (*Result, error) {
	const fn = "pool.Collect"
	if key == nil || key.Role() != RoleCollector || key.ID() != cfg.Collector.ID {
		return nil, fmt.Errorf("%s: want the key of collector %q, got %v", fn, cfg.Collector.ID, key)
	}
	if key.Public().HPKEKey != cfg.Collector.HPKEKey {
		return nil, fmt.Errorf("%s: the key for %q is not the one the pool configuration lists for the collector (wrong key file?)", fn, key.ID())
	}
	sk, err := key.hpkePrivate()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	p := cfg.plan
	var bodies [2]shareBody
	vecs := [2]fp128.Vec{}
	for agg, data := range [][]byte{leaderShare, helperShare} {
		b, vec, err := readShare(cfg, sk, data, agg)
		if err != nil {
			return nil, fmt.Errorf("%s: the %s's share: %w", fn, roleNames[agg], err)
		}
		bodies[agg], vecs[agg] = *b, vec
	}
	l, h := &bodies[leader], &bodies[helper]
	if l.Session != h.Session || l.Round != h.Round || !slices.Equal(l.Counted, h.Counted) {
		return nil, fmt.Errorf("%s: the two shares are from different rounds or count different members (leader %v, helper %v)", fn, l.Counted, h.Counted)
	}
	if l.Epsilon != cfg.Release.Epsilon || h.Epsilon != cfg.Release.Epsilon || l.Delta != cfg.Release.Delta || h.Delta != cfg.Release.Delta {
		return nil, fmt.Errorf("%s: a share states another ε or δ than the configuration", fn)
	}
	if len(l.Counted) < cfg.Quorum {
		return nil, fmt.Errorf("%s: %d members counted, the quorum is %d: %w", fn, len(l.Counted), cfg.Quorum, ErrQuorum)
	}
	totals, err := p.unshard(vecs[leader], vecs[helper])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	ips, err := p.intervals()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	mem := opts.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	rec, err := p.record(mem, cfg, totals, ips)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return &Result{Record: rec, Report: newReport(cfg, l, h, ips), totals: totals}, nil
}

// unshard adds the two noisy shares — the only place a total exists in
// clear, and only with both aggregators' noise in it — and decodes the
// signed integers.
func (p *plan) unshard(l, h fp128.Vec) ([]int64, error) {
	sum := make(fp128.Vec, len(l))
	copy(sum, l)
	sum.AddAssign(h)
	totals := make([]int64, len(sum))
	for i := range sum {
		var err error
		if totals[i], err = intFromField(&sum[i]); err != nil {
			return nil, fmt.Errorf("partition %s, %s: %w", strings.Join(p.rows[i/len(p.aggs)], ","), p.aggs[i%len(p.aggs)].name, err)
		}
	}
	return totals, nil
}

// readShare verifies and decrypts one aggregator's share file.
func readShare(cfg *Config, sk kem.PrivateKey, data []byte, agg int) (*shareBody, fp128.Vec, error) {
	f, blob, err := parseSigned(data, kindShare)
	if err != nil {
		return nil, nil, err
	}
	e := []AggregatorEntry{cfg.Aggregators.Leader, cfg.Aggregators.Helper}[agg]
	pub, _ := parseSignPublic(e.SignKey)
	if err := f.verify(pub, blob); err != nil {
		return nil, nil, fmt.Errorf("not signed by the %s %q: %w", roleNames[agg], e.ID, err)
	}
	var b shareBody
	if err := decodeBody(f.Body, &b); err != nil {
		return nil, nil, err
	}
	if b.Version != 1 || b.Aggregator != roleNames[agg] || b.ID != e.ID {
		return nil, nil, fmt.Errorf("a share of %q (%s) where the %s's was expected", b.ID, b.Aggregator, roleNames[agg])
	}
	if b.Config != cfg.HashHex() || b.Pool != cfg.Pool {
		return nil, nil, fmt.Errorf("made for another configuration (config hash %.16s…, this pool's %.16s…)", b.Config, cfg.HashHex())
	}
	s, err := unmarshalSealed(shareMagic, blob)
	if err != nil {
		return nil, nil, err
	}
	pt, err := open(sk, shareInfo(), shareAAD(f.Body), s)
	if err != nil {
		return nil, nil, err
	}
	vec := make(fp128.Vec, cfg.plan.outLen)
	if err := vec.UnmarshalBinary(pt); err != nil {
		return nil, nil, fmt.Errorf("malformed share vector: %v", err)
	}
	return &b, vec, nil
}

// record builds the release record from the unsharded totals.
func (p *plan) record(mem memory.Allocator, cfg *Config, totals []int64, ips []intervalPlan) (arrow.RecordBatch, error) {
	var fields []arrow.Field
	for _, b := range cfg.Release.By {
		fields = append(fields, arrow.Field{Name: b, Type: arrow.BinaryTypes.String})
	}
	for _, a := range p.aggs {
		t := arrow.DataType(arrow.PrimitiveTypes.Float64)
		if a.kind == "count" {
			t = arrow.PrimitiveTypes.Int64
		}
		fields = append(fields, arrow.Field{Name: a.name, Type: t},
			arrow.Field{Name: a.name + "_ci_low", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: a.name + "_ci_high", Type: arrow.PrimitiveTypes.Float64})
	}
	fields = append(fields, arrow.Field{Name: "epsilon", Type: arrow.PrimitiveTypes.Float64}, arrow.Field{Name: "delta", Type: arrow.PrimitiveTypes.Float64})
	schema := arrow.NewSchema(fields, nil)
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	rb.Reserve(len(p.rows))
	nk, na := len(cfg.Release.By), len(p.aggs)
	ci := slices.IndexFunc(p.aggs, func(a released) bool { return a.kind == "count" })
	for i, row := range p.rows {
		for k, v := range row {
			rb.Field(k).(*array.StringBuilder).Append(v)
		}
		var count float64
		if ci >= 0 {
			count = float64(totals[i*na+ci])
		}
		for j, a := range p.aggs {
			t := float64(totals[i*na+j])
			f := nk + 3*j
			var v, lo, hi float64
			switch a.kind {
			case "count":
				rb.Field(f).(*array.Int64Builder).Append(totals[i*na+j])
				lo, hi = math.Max(0, t-ips[j].hw), math.Max(0, t+ips[j].hw)
			case "sum":
				v = t * a.unit
				lo, hi = (t-ips[j].hw)*a.unit, (t+ips[j].hw)*a.unit
				if a.lower >= 0 {
					lo, hi = math.Max(0, lo), math.Max(0, hi)
				}
				if a.upper <= 0 {
					lo, hi = math.Min(0, lo), math.Min(0, hi)
				}
			case "mean":
				mid := float64(a.mid) * a.unit
				v = clamp(t*a.unit/math.Max(1, count)+mid, a.lower, a.upper)
				lo, hi = meanInterval(t, count, a.unit, mid, a.lower, a.upper, &ips[j])
			}
			if a.kind != "count" {
				rb.Field(f).(*array.Float64Builder).Append(v)
			}
			rb.Field(f + 1).(*array.Float64Builder).Append(lo)
			rb.Field(f + 2).(*array.Float64Builder).Append(hi)
		}
		rb.Field(nk + 3*na).(*array.Float64Builder).Append(cfg.Release.Epsilon)
		rb.Field(nk + 3*na + 1).(*array.Float64Builder).Append(cfg.Release.Delta)
	}
	return rb.NewRecordBatch(), nil
}

// Report is the collector's account of a release (JSON and HTML): who was
// counted, who was rejected and why, what the release spent and what the
// period has left. It holds no member's numbers.
type Report struct {
	Tool    string        `json:"tool"`
	Pool    string        `json:"pool"`
	Config  string        `json:"config_sha256"`
	Round   string        `json:"round"`
	Created time.Time     `json:"created"`
	Members ReportMembers `json:"members"`
	Release ReportRelease `json:"release"`
	// Budget is the period's budget as each aggregator's ledger holds it
	// after this release; EpsilonLeft the smaller of the two.
	Budget      []BudgetState `json:"budget"`
	EpsilonLeft float64       `json:"epsilon_left"`
	// Output is where the release was written (set by the caller).
	Output string `json:"output,omitempty"`
}

// ReportMembers lists the members of the round.
type ReportMembers struct {
	Configured int         `json:"configured"`
	Quorum     int         `json:"quorum"`
	Counted    []string    `json:"counted"`
	Missing    []string    `json:"missing"`
	Rejected   []Rejection `json:"rejected"`
}

// ReportRelease describes the release.
type ReportRelease struct {
	By                   []string          `json:"by"`
	Partitions           int               `json:"partitions"`
	Epsilon              float64           `json:"epsilon"`
	Delta                float64           `json:"delta"`
	Noise                string            `json:"noise"`
	Confidence           float64           `json:"confidence"`
	MaxPartitions        int64             `json:"max_partitions"`
	MaxPerPartition      int64             `json:"max_per_partition"`
	MaxMembersPerSubject int64             `json:"max_members_per_subject"`
	Aggregates           []ReportAggregate `json:"aggregates"`
}

// ReportAggregate is one aggregate's mechanism, in the value's units.
type ReportAggregate struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"`
	Column  string  `json:"column,omitempty"`
	Lower   float64 `json:"lower"`
	Upper   float64 `json:"upper"`
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
	// Sensitivity is how far one subject can move this aggregate in one
	// partition (all M members it may appear at together), in the value's
	// units; L0 partitions at most.
	Sensitivity float64 `json:"sensitivity"`
	L0          int64   `json:"l0"`
	// Resolution is the fixed-point unit of the encoding.
	Resolution float64 `json:"resolution"`
	// HalfWidth is the half-width of the interval of the noise alone (both
	// draws), in the value's units (for a mean: of its numerator).
	HalfWidth float64 `json:"noise_half_width"`
}

func newReport(cfg *Config, l, h *shareBody, ips []intervalPlan) *Report {
	r := &Report{Tool: "tarnkappe pool", Pool: cfg.Pool, Config: cfg.HashHex(), Round: l.Round, Created: time.Now().UTC().Truncate(time.Second)}
	rej := append([]Rejection{}, l.Rejected...)
	for _, x := range h.Rejected {
		if !slices.Contains(rej, x) {
			rej = append(rej, x)
		}
	}
	r.Members = ReportMembers{Configured: len(cfg.Members), Quorum: cfg.Quorum, Counted: l.Counted, Missing: l.Missing, Rejected: rej}
	rs := &cfg.Release
	r.Release = ReportRelease{By: rs.By, Partitions: len(cfg.plan.rows), Epsilon: rs.Epsilon, Delta: rs.Delta, Noise: rs.Noise,
		Confidence: rs.Confidence, MaxPartitions: rs.MaxPartitions, MaxPerPartition: rs.MaxPerPartition, MaxMembersPerSubject: rs.MaxMembersPerSubject}
	for j, a := range cfg.plan.aggs {
		ra := ReportAggregate{Name: a.name, Kind: a.kind, Lower: a.lower, Upper: a.upper, Epsilon: a.eps, Delta: a.delta,
			Sensitivity: float64(a.lInf) * a.unit, L0: a.l0, Resolution: a.unit}
		if a.kind != "count" {
			ra.Column = rs.Aggregates[j].Column
		}
		hw := ips[j].hw
		if a.kind == "mean" {
			// The numerator's own interval at the full confidence (the
			// mean's interval splits α with the count's).
			hw, _ = cfg.plan.halfWidth(a.l0, a.lInf, a.eps, a.delta, cfg.plan.alpha)
		}
		ra.HalfWidth = hw * a.unit
		r.Release.Aggregates = append(r.Release.Aggregates, ra)
	}
	r.Budget = []BudgetState{l.Budget, h.Budget}
	r.EpsilonLeft = math.Min(l.Budget.EpsilonLeft(), h.Budget.EpsilonLeft())
	return r
}

// JSON is the report as indented JSON.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
