package pool

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tarnkappe/tarnkappe/internal/strictyaml"
)

// ConfigVersion is the only pool configuration version this package reads.
const ConfigVersion = 1

// Config is a validated pool configuration: who takes part (members with
// their ed25519 keys, the two aggregators and the collector with their HPKE
// keys), the release every round computes (partition domain, aggregates,
// bounds, ε, δ) and the budget per period. Every party of a pool holds the
// same file; its SHA-256 (Hash) is bound into every upload, prep file and
// aggregate share, so parties working from different configurations cannot
// be mixed. Obtain one with LoadConfig or ParseConfig; it is immutable
// afterwards. It holds public keys only.
type Config struct {
	// Version must be 1. Required.
	Version int `yaml:"version"`
	// Pool names the pool (letters, digits, '.', '_', '-'). Required.
	Pool string `yaml:"pool"`
	// Members contribute data. Required: at least one.
	Members []MemberEntry `yaml:"members"`
	// Aggregators are the two non-colluding aggregators. Required.
	Aggregators AggregatorsEntry `yaml:"aggregators"`
	// Collector receives the two noisy aggregate shares. Required.
	Collector CollectorEntry `yaml:"collector"`
	// Release is what every round computes. Required.
	Release ReleaseSpec `yaml:"release"`
	// Budget is the privacy budget of one period. Required.
	Budget BudgetSpec `yaml:"budget"`
	// Quorum is how many members a round must count; 0 means all of them,
	// so that any missing or rejected member fails the round loudly.
	Quorum int `yaml:"quorum,omitempty"`

	file string
	hash [32]byte
	pos  strictyaml.Positions
	plan *plan
}

// MemberEntry is one member and its signing key.
type MemberEntry struct {
	// ID names the member in files and reports. Required.
	ID string `yaml:"id"`
	// SignKey is the member's ed25519 public key, "ed25519:<base64>". Required.
	SignKey string `yaml:"sign_key"`
}

// AggregatorsEntry names the two aggregators. The leader draws each round's
// verification key; otherwise both do the same work.
type AggregatorsEntry struct {
	Leader AggregatorEntry `yaml:"leader"`
	Helper AggregatorEntry `yaml:"helper"`
}

// AggregatorEntry is one aggregator's identity and public keys.
type AggregatorEntry struct {
	// ID names the aggregator. Required.
	ID string `yaml:"id"`
	// HPKEKey receives the members' input shares, "x25519:<base64>". Required.
	HPKEKey string `yaml:"hpke_key"`
	// SignKey signs its prep files and aggregate shares, "ed25519:<base64>". Required.
	SignKey string `yaml:"sign_key"`
}

// CollectorEntry is the collector's identity and public key.
type CollectorEntry struct {
	// ID names the collector. Required.
	ID string `yaml:"id"`
	// HPKEKey receives the noisy aggregate shares, "x25519:<base64>". Required.
	HPKEKey string `yaml:"hpke_key"`
}

// ReleaseSpec is the release of every round. Members' data must have been
// bounded by exactly these parameters (package dp; Contribute checks the
// partial's spec against them).
type ReleaseSpec struct {
	// Subject names the privacy unit's column (e.g. vin). Required.
	Subject string `yaml:"subject"`
	// By names the partition key columns. Required.
	By []string `yaml:"by"`
	// Partitions is the public partition domain. Required.
	Partitions PartitionsSpec `yaml:"partitions"`
	// MaxPartitions (L0) is how many partitions one subject may contribute
	// to at one member. Required, >= 1.
	MaxPartitions int64 `yaml:"max_partitions"`
	// MaxPerPartition (L∞) is how many rows one subject may contribute to
	// one partition at one member. Required, >= 1.
	MaxPerPartition int64 `yaml:"max_per_partition"`
	// MaxMembersPerSubject (M) is at how many members one subject may
	// appear; sensitivities scale by M. 0 means 1: subjects are disjoint
	// across members (a vehicle reports through its maker only).
	MaxMembersPerSubject int64 `yaml:"max_members_per_subject"`
	// MaxRows is the most bounded rows one member may contribute to one
	// partition. It is public and sets the bit width every member's shares
	// are proven to fit (a contribution over it fails at the member).
	// Required, >= MaxPerPartition.
	MaxRows int64 `yaml:"max_rows"`
	// ResolutionBits sets the fixed-point unit of each value aggregate to
	// the power of two nearest (upper-lower)/2^ResolutionBits. 0 means 10.
	ResolutionBits int `yaml:"resolution_bits"`
	// Aggregates to release per partition. Required.
	Aggregates []AggregateSpec `yaml:"aggregates"`
	// Epsilon of one release, split evenly over the aggregates. Required.
	Epsilon float64 `yaml:"epsilon"`
	// Delta of one release: 0 with Laplace noise, in (0, 1) with Gaussian.
	Delta float64 `yaml:"delta"`
	// Noise is "laplace" (default) or "gaussian".
	Noise string `yaml:"noise"`
	// Confidence of the released intervals, in (0, 1). 0 means 0.95.
	Confidence float64 `yaml:"confidence"`
}

// PartitionsSpec names the public partition list: a CSV file whose header
// names the By columns, one partition per line, and its SHA-256.
type PartitionsSpec struct {
	// File is relative to the configuration file. Required.
	File string `yaml:"file"`
	// SHA256 of the file, hex. Required: it binds the list into the
	// configuration's hash.
	SHA256 string `yaml:"sha256"`
}

// AggregateSpec is one released aggregate.
type AggregateSpec struct {
	// Kind is count (bounded rows), sum or mean. Required.
	Kind string `yaml:"kind"`
	// Column holds the values (sum and mean). Values were clamped to
	// [Lower, Upper] by each member's bounding.
	Column string  `yaml:"column,omitempty"`
	Lower  float64 `yaml:"lower,omitempty"`
	Upper  float64 `yaml:"upper,omitempty"`
}

// BudgetSpec is the privacy budget of one period: each aggregator's ledger
// refuses a release that would spend more.
type BudgetSpec struct {
	// Period names the accounting period (e.g. 2026-03). Required.
	Period string `yaml:"period"`
	// Epsilon and Delta are the period's totals. Epsilon required.
	Epsilon float64 `yaml:"epsilon"`
	Delta   float64 `yaml:"delta"`
}

// LoadConfig reads and validates a pool configuration and its partition
// file. Errors in the file are *ConfigError with file, line and column.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pool.LoadConfig: %w", err)
	}
	return ParseConfig(path, src, nil)
}

// ParseConfig parses and validates a configuration. file names it in errors
// and is the base of the partition file's path; partitions, when not nil,
// is the partition file's content (otherwise it is read from disk).
func ParseConfig(file string, src []byte, partitions []byte) (*Config, error) {
	c := &Config{file: file}
	pos, err := parseStrict(file, src, c)
	if err != nil {
		return nil, err
	}
	c.pos = pos
	c.hash = sha256.Sum256(src)
	if err := c.validate(); err != nil {
		return nil, err
	}
	if partitions == nil {
		path := c.Release.Partitions.File
		if !filepath.IsAbs(path) && file != "" {
			path = filepath.Join(filepath.Dir(file), path)
		}
		if partitions, err = os.ReadFile(path); err != nil {
			return nil, c.errf("release.partitions.file", "%v", err)
		}
	}
	if got := sha256.Sum256(partitions); hex.EncodeToString(got[:]) != strings.ToLower(c.Release.Partitions.SHA256) {
		return nil, c.errf("release.partitions.sha256", "the partition file's SHA-256 is %x, not the one declared: the list was changed", got)
	}
	rows, err := readPartitionCSV(bytes.NewReader(partitions), c.Release.By)
	if err != nil {
		return nil, c.errf("release.partitions.file", "%v", err)
	}
	if c.plan, err = newPlan(c, rows); err != nil {
		return nil, err
	}
	return c, nil
}

// Hash is the SHA-256 of the configuration file's bytes.
func (c *Config) Hash() [32]byte { return c.hash }

// HashHex is Hash in hex, as files and reports show it.
func (c *Config) HashHex() string { return hex.EncodeToString(c.hash[:]) }

// File is the path the configuration was read from.
func (c *Config) File() string { return c.file }

// Partitions is the number of public partitions.
func (c *Config) Partitions() int { return len(c.plan.rows) }

func (c *Config) errf(path, format string, args ...any) error {
	e := &ConfigError{File: c.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if p, ok := c.pos.Near(path); ok {
		e.Line, e.Column = p.Line, p.Column
	}
	return e
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Noise kinds.
const (
	noiseLaplace  = "laplace"
	noiseGaussian = "gaussian"
)

// minShareEpsilon is the smallest ε one aggregate may get: below it the
// library's noise granularity would make our interval bounds loose.
const minShareEpsilon = 1e-5

func (c *Config) validate() error {
	if c.Version != ConfigVersion {
		return c.errf("version", "want version %d, got %d", ConfigVersion, c.Version)
	}
	if !idPattern.MatchString(c.Pool) {
		return c.errf("pool", "want a name of letters, digits, '.', '_' or '-' (up to 64), got %q", c.Pool)
	}
	if len(c.Members) == 0 {
		return c.errf("members", "at least one member is required")
	}
	ids := map[string]bool{}
	keys := map[string]string{}
	for i, m := range c.Members {
		path := fmt.Sprintf("members[%d]", i)
		if !idPattern.MatchString(m.ID) {
			return c.errf(path+".id", "want an id of letters, digits, '.', '_' or '-', got %q", m.ID)
		}
		if ids[m.ID] {
			return c.errf(path+".id", "member %q is listed twice", m.ID)
		}
		ids[m.ID] = true
		if _, err := parseSignPublic(m.SignKey); err != nil {
			return c.errf(path+".sign_key", "%v", err)
		}
		if other, ok := keys[m.SignKey]; ok {
			return c.errf(path+".sign_key", "member %q has the same key as %q: one party cannot be two members", m.ID, other)
		}
		keys[m.SignKey] = m.ID
	}
	for _, a := range []struct {
		path string
		e    AggregatorEntry
	}{{"aggregators.leader", c.Aggregators.Leader}, {"aggregators.helper", c.Aggregators.Helper}} {
		if !idPattern.MatchString(a.e.ID) {
			return c.errf(a.path+".id", "want an id of letters, digits, '.', '_' or '-', got %q", a.e.ID)
		}
		if _, err := parseHPKEPublic(a.e.HPKEKey); err != nil {
			return c.errf(a.path+".hpke_key", "%v", err)
		}
		if _, err := parseSignPublic(a.e.SignKey); err != nil {
			return c.errf(a.path+".sign_key", "%v", err)
		}
	}
	l, h := c.Aggregators.Leader, c.Aggregators.Helper
	if l.ID == h.ID || l.HPKEKey == h.HPKEKey || l.SignKey == h.SignKey {
		// The guarantee rests on two parties that do not collude: one party
		// holding both roles sees every member's data.
		return c.errf("aggregators.helper", "the helper must be another party than the leader (id and keys must differ)")
	}
	if !idPattern.MatchString(c.Collector.ID) {
		return c.errf("collector.id", "want an id of letters, digits, '.', '_' or '-', got %q", c.Collector.ID)
	}
	if _, err := parseHPKEPublic(c.Collector.HPKEKey); err != nil {
		return c.errf("collector.hpke_key", "%v", err)
	}
	if err := c.validateRelease(); err != nil {
		return err
	}
	b := c.Budget
	if !idPattern.MatchString(b.Period) {
		return c.errf("budget.period", "want a period name of letters, digits, '.', '_' or '-', got %q", b.Period)
	}
	if !(b.Epsilon > 0) {
		return c.errf("budget.epsilon", "want ε > 0, got %v", b.Epsilon)
	}
	if b.Epsilon < c.Release.Epsilon {
		return c.errf("budget.epsilon", "the period's ε %v is smaller than one release's ε %v", b.Epsilon, c.Release.Epsilon)
	}
	if b.Delta < c.Release.Delta || b.Delta >= 1 {
		return c.errf("budget.delta", "want δ in [release.delta, 1), got %v", b.Delta)
	}
	if c.Quorum == 0 {
		c.Quorum = len(c.Members)
	}
	if c.Quorum < 1 || c.Quorum > len(c.Members) {
		return c.errf("quorum", "want 1..%d members, got %d", len(c.Members), c.Quorum)
	}
	return nil
}

func (c *Config) validateRelease() error {
	r := &c.Release
	if r.Subject == "" {
		return c.errf("release.subject", "the subject column is required")
	}
	if len(r.By) == 0 {
		return c.errf("release.by", "at least one partition key column is required")
	}
	for i, b := range r.By {
		if b == "" || slices.Index(r.By, b) != i {
			return c.errf("release.by", "key columns must be named once each, got %q", r.By)
		}
	}
	if r.Partitions.File == "" {
		return c.errf("release.partitions.file", "the partition file is required")
	}
	if h, err := hex.DecodeString(r.Partitions.SHA256); err != nil || len(h) != sha256.Size {
		return c.errf("release.partitions.sha256", "want the file's SHA-256 as 64 hex digits")
	}
	if r.MaxPartitions < 1 || r.MaxPartitions > 1<<20 {
		return c.errf("release.max_partitions", "want L0 in 1..%d, got %d", 1<<20, r.MaxPartitions)
	}
	if r.MaxPerPartition < 1 || r.MaxPerPartition > 1<<20 {
		return c.errf("release.max_per_partition", "want L∞ in 1..%d, got %d", 1<<20, r.MaxPerPartition)
	}
	if r.MaxMembersPerSubject == 0 {
		r.MaxMembersPerSubject = 1
	}
	if r.MaxMembersPerSubject < 1 || r.MaxMembersPerSubject > int64(len(c.Members)) {
		return c.errf("release.max_members_per_subject", "want 1..%d (the number of members), got %d", len(c.Members), r.MaxMembersPerSubject)
	}
	if r.MaxRows < r.MaxPerPartition || r.MaxRows > 1<<40 {
		return c.errf("release.max_rows", "want the most rows one member may give one partition, in %d..2^40, got %d", r.MaxPerPartition, r.MaxRows)
	}
	if r.ResolutionBits == 0 {
		r.ResolutionBits = 10
	}
	if r.ResolutionBits < 1 || r.ResolutionBits > 24 {
		return c.errf("release.resolution_bits", "want 1..24, got %d", r.ResolutionBits)
	}
	if len(r.Aggregates) == 0 {
		return c.errf("release.aggregates", "at least one aggregate is required")
	}
	names := map[string]bool{}
	hasCount, hasMean := false, -1
	for i, a := range r.Aggregates {
		path := fmt.Sprintf("release.aggregates[%d]", i)
		switch a.Kind {
		case "count":
			if a.Column != "" || a.Lower != 0 || a.Upper != 0 {
				return c.errf(path, "a count takes no column or bounds (it counts bounded rows)")
			}
			hasCount = true
		case "sum", "mean":
			if a.Column == "" {
				return c.errf(path+".column", "a %s needs a column", a.Kind)
			}
			if !(a.Lower < a.Upper) {
				return c.errf(path, "lower bound %v must be smaller than upper bound %v", a.Lower, a.Upper)
			}
			if math.Max(math.Abs(a.Lower), math.Abs(a.Upper)) > 1e15 {
				return c.errf(path, "bounds beyond ±1e15 are not supported")
			}
			if a.Kind == "mean" && hasMean < 0 {
				hasMean = i
			}
		default:
			return c.errf(path+".kind", "want count, sum or mean, got %q", a.Kind)
		}
		if n := aggregateName(a); names[n] {
			return c.errf(path, "aggregate %s is listed twice", n)
		} else {
			names[n] = true
		}
	}
	if hasMean >= 0 && !hasCount {
		// The mean is the noisy sum over the released noisy count
		// (post-processing): without a count there is no denominator.
		return c.errf(fmt.Sprintf("release.aggregates[%d]", hasMean), "a mean needs a count aggregate in the same release (its denominator)")
	}
	if !(r.Epsilon > 0) || r.Epsilon > 100 {
		return c.errf("release.epsilon", "want ε in (0, 100], got %v", r.Epsilon)
	}
	if r.Epsilon/float64(len(r.Aggregates)) < minShareEpsilon {
		return c.errf("release.epsilon", "ε %v over %d aggregates leaves less than %g each", r.Epsilon, len(r.Aggregates), minShareEpsilon)
	}
	switch r.Noise {
	case "":
		r.Noise = noiseLaplace
		fallthrough
	case noiseLaplace:
		if r.Delta != 0 {
			return c.errf("release.delta", "Laplace noise takes δ = 0, got %v", r.Delta)
		}
	case noiseGaussian:
		if !(r.Delta > 0 && r.Delta < 1) {
			return c.errf("release.delta", "Gaussian noise needs δ in (0, 1), got %v", r.Delta)
		}
	default:
		return c.errf("release.noise", "want laplace or gaussian, got %q", r.Noise)
	}
	if r.Confidence == 0 {
		r.Confidence = 0.95
	}
	if !(r.Confidence > 0 && r.Confidence < 1) {
		return c.errf("release.confidence", "want a level in (0, 1), got %v", r.Confidence)
	}
	return nil
}

// aggregateName is the release's column name of an aggregate, as package dp
// names them: count, sum_<column>, mean_<column>.
func aggregateName(a AggregateSpec) string {
	if a.Kind == "count" {
		return "count"
	}
	return a.Kind + "_" + a.Column
}

// maxPartitions bounds the partition domain (memory and share sizes).
const maxPartitions = 1 << 20

// ParsePartitions reads a partition list: a CSV whose header names the
// columns of by (in any order), then one partition per line, each listed
// once. Rows come back with values in the order of by.
func ParsePartitions(csvData []byte, by []string) ([][]string, error) {
	return readPartitionCSV(bytes.NewReader(csvData), by)
}

// readPartitionCSV reads a partition list: a header naming the columns of by
// (in any order), then one partition per line, each listed once.
func readPartitionCSV(rd io.Reader, by []string) ([][]string, error) {
	cr := csv.NewReader(rd)
	cr.Comment = '#'
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("empty partition file (want a header naming %v)", by)
	}
	if err != nil {
		return nil, err
	}
	if len(header) != len(by) {
		return nil, fmt.Errorf("header %q must name exactly the key columns %q", header, by)
	}
	pos := make([]int, len(by))
	for i, col := range by {
		if pos[i] = slices.Index(header, col); pos[i] < 0 {
			return nil, fmt.Errorf("header %q lacks key column %q", header, col)
		}
	}
	var rows [][]string
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		row := make([]string, len(by))
		for i, p := range pos {
			row[i] = rec[p]
		}
		k := canonicalKey(row)
		if first, dup := seen[k]; dup {
			return nil, fmt.Errorf("line %d repeats the partition of line %d", line, first)
		}
		seen[k] = line
		rows = append(rows, row)
		if len(rows) > maxPartitions {
			return nil, fmt.Errorf("more than %d partitions", maxPartitions)
		}
	}
	if len(rows) == 0 {
		return nil, errors.New("no partitions after the header")
	}
	return rows, nil
}
