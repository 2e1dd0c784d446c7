package pool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validConfig returns a valid configuration's text and partition file.
func validConfig(t testing.TB) (string, []byte) {
	t.Helper()
	tp := newTestPool(t, 3, testRelease(), testSegs(4), nil)
	src, err := os.ReadFile(filepath.Join(tp.dir, "pool.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parts, err := os.ReadFile(filepath.Join(tp.dir, "partitions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return string(src), parts
}

// TestParseConfig: every mistake is an error naming file, line, column and
// key; nothing is defaulted that would weaken privacy.
func TestParseConfig(t *testing.T) {
	src, parts := validConfig(t)
	if _, err := ParseConfig("pool.yaml", []byte(src), parts); err != nil {
		t.Fatalf("the valid configuration: %v", err)
	}
	cases := []struct {
		name     string
		old, new string
		parts    []byte
		want     string
	}{
		{"unknown key", "budget:", "colour: red\nbudget:", nil, `unknown key "colour"`},
		{"version", "version: 1", "version: 2", nil, "pool.yaml:7:1: version: want version 1, got 2"},
		{"wrong type", "epsilon: 1\n", "epsilon: one\n", nil, `release.epsilon: want a number, got "one"`},
		{"duplicate key", "  epsilon: 1\n", "  epsilon: 1\n  epsilon: 2\n", nil, `duplicate key "epsilon"`},
		{"alias", "pool: test-pool", "pool: &p test-pool", nil, "anchors and aliases are not allowed"},
		{"second document", "budget:", "---\nbudget:", nil, "want exactly one YAML document"},
		{"member twice", "id: oem-b", "id: oem-a", nil, `member "oem-a" is listed twice`},
		{"bad member key", "sign_key: ed25519:", "sign_key: ed25519:AAAA", nil, "members[0].sign_key: malformed ed25519 public key"},
		{"helper is leader", "id: trustee", "id: authority", nil, "the helper must be another party than the leader"},
		{"mean without count", "    - kind: count\n", "", nil, "a mean needs a count aggregate"},
		{"unknown kind", "kind: sum", "kind: median", nil, `want count, sum or mean, got "median"`},
		{"bounds", "upper: 100\n    - kind: mean", "upper: -1\n    - kind: mean", nil, "lower bound 0 must be smaller than upper bound -1"},
		{"no epsilon", "  epsilon: 1\n", "", nil, "release.epsilon: want ε in (0, 100], got 0"},
		{"laplace delta", "  delta: 0\n  noise", "  delta: 0.1\n  noise", nil, "Laplace noise takes δ = 0"},
		{"budget", "  epsilon: 1000", "  epsilon: 0.5", nil, "the period's ε 0.5 is smaller than one release's ε 1"},
		{"changed partitions", "", "", []byte("seg\ns00\ns01\ns02\nzz\n"), "the list was changed"},
		{"l0", "max_partitions: 2", "max_partitions: 0", nil, "want L0 in 1..1048576, got 0"},
		{"max rows", "max_rows: 4096", "max_rows: 1", nil, "release.max_rows: want the most rows"},
		{"members per subject", "max_members_per_subject: 1", "max_members_per_subject: 9", nil, "want 1..3 (the number of members)"},
		{"encoding overflow", "resolution_bits: 10", "resolution_bits: 24", nil, "overflows 63 bits"},
		{"quorum", "budget:", "quorum: 4\nbudget:", nil, "quorum: want 1..3 members, got 4"},
		{"noise", "noise: laplace", "noise: uniform", nil, `want laplace or gaussian, got "uniform"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := src
			if c.old != "" || c.new != "" {
				if !strings.Contains(s, c.old) {
					t.Fatalf("the base configuration has no %q", c.old)
				}
				s = strings.Replace(s, c.old, c.new, 1)
				if c.name == "encoding overflow" {
					s = strings.Replace(s, "max_rows: 4096", "max_rows: 1099511627776", 1)
				}
			}
			p := parts
			if c.parts != nil {
				p = c.parts
			}
			_, err := ParseConfig("pool.yaml", []byte(s), p)
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("%v is not a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "pool.yaml:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestConfigHashBinding: any byte changed in the configuration is another
// pool.
func TestConfigHashBinding(t *testing.T) {
	src, parts := validConfig(t)
	a, err := ParseConfig("a.yaml", []byte(src), parts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseConfig("b.yaml", []byte(src+"# a comment\n"), parts)
	if err != nil {
		t.Fatal(err)
	}
	if a.HashHex() == b.HashHex() {
		t.Error("two different configuration files have the same hash")
	}
	if string(a.plan.vdafCtx) == string(b.plan.vdafCtx) {
		t.Error("two configurations share a VDAF context: proofs would carry over")
	}
}

func TestCheckWrap(t *testing.T) {
	src, parts := validConfig(t)
	c, err := ParseConfig("pool.yaml", []byte(src), parts)
	if err != nil {
		t.Fatal(err)
	}
	p := *c.plan
	if err := p.checkWrap(3); err != nil {
		t.Fatalf("3 members: %v", err)
	}
	p.bits = 63
	p.aggs = append([]released(nil), p.aggs...)
	p.aggs[2].coef = -(1 << 50)
	if err := p.checkWrap(1 << 20); err == nil {
		t.Error("totals beyond half the field were accepted")
	}
}

func FuzzParseConfig(f *testing.F) {
	src, parts := validConfig(f)
	f.Add([]byte(src))
	f.Add([]byte("version: 1\npool: x\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("fuzz.yaml", b, parts)
		if err == nil && c.plan == nil {
			t.Fatal("a configuration without a plan was accepted")
		}
	})
}
