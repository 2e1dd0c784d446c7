package pool

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// InitOptions describe a new pool for Init.
type InitOptions struct {
	// Pool names the pool. Required.
	Pool string
	// Members are the member ids. Required.
	Members []string
	// Leader, Helper and Collector are the other parties' ids. Required.
	Leader, Helper, Collector string
	// Release is the release of every round; Init fills in Partitions.
	Release ReleaseSpec
	// Partitions are the public partitions, values in Release.By order.
	// Required.
	Partitions [][]string
	// Budget per period. Required.
	Budget BudgetSpec
	// Quorum (0: all members).
	Quorum int
	// Public holds the public keys of parties that generated their own
	// keys (pool keygen), by id; Init generates keys for every other party.
	Public map[string]PublicKeys
}

// Init writes a new pool into dir: pool.yaml (public keys only),
// partitions.csv, and keys/<id>.key (mode 0600) for every party whose keys
// it generated. In a real pool each party runs `pool keygen` and sends only
// its public key; generating every key in one place suits trials and
// tests. Nothing is overwritten; on error nothing is left behind. It returns
// the loaded configuration and the key files written.
func Init(dir string, o InitOptions) (*Config, []string, error) {
	const fn = "pool.Init"
	if len(o.Partitions) == 0 {
		return nil, nil, errors.New(fn + ": no partitions")
	}
	var csvBuf bytes.Buffer
	w := csv.NewWriter(&csvBuf)
	if err := w.Write(o.Release.By); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fn, err)
	}
	for _, r := range o.Partitions {
		if err := w.Write(r); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", fn, err)
		}
	}
	w.Flush()
	sum := sha256.Sum256(csvBuf.Bytes())
	c := Config{Version: ConfigVersion, Pool: o.Pool, Release: o.Release, Budget: o.Budget, Quorum: o.Quorum}
	c.Release.Partitions = PartitionsSpec{File: "partitions.csv", SHA256: hex.EncodeToString(sum[:])}
	keys := map[string]*Key{}
	defer func() {
		for _, k := range keys {
			k.Destroy()
		}
	}()
	pub := func(role Role, id string) (PublicKeys, error) {
		if p, ok := o.Public[id]; ok {
			return p, nil
		}
		if keys[id] != nil {
			return PublicKeys{}, fmt.Errorf("%s: id %q is used twice", fn, id)
		}
		k, err := GenerateKey(role, id)
		if err != nil {
			return PublicKeys{}, err
		}
		keys[id] = k
		return k.Public(), nil
	}
	for _, m := range o.Members {
		p, err := pub(RoleMember, m)
		if err != nil {
			return nil, nil, err
		}
		c.Members = append(c.Members, MemberEntry{ID: m, SignKey: p.SignKey})
	}
	for _, a := range []struct {
		id string
		e  *AggregatorEntry
	}{{o.Leader, &c.Aggregators.Leader}, {o.Helper, &c.Aggregators.Helper}} {
		p, err := pub(RoleAggregator, a.id)
		if err != nil {
			return nil, nil, err
		}
		*a.e = AggregatorEntry{ID: a.id, HPKEKey: p.HPKEKey, SignKey: p.SignKey}
	}
	p, err := pub(RoleCollector, o.Collector)
	if err != nil {
		return nil, nil, err
	}
	c.Collector = CollectorEntry{ID: o.Collector, HPKEKey: p.HPKEKey}
	// Write the effective values (defaults filled in), except the quorum:
	// 0 keeps meaning "every member".
	if err := c.validate(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fn, err)
	}
	c.Quorum = o.Quorum
	var body bytes.Buffer
	enc := yaml.NewEncoder(&body)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fn, err)
	}
	enc.Close()
	src := append([]byte(configHeader), body.Bytes()...)
	cfgPath := filepath.Join(dir, "pool.yaml")
	cfg, err := ParseConfig(cfgPath, src, csvBuf.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fn, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fn, err)
	}
	var written []string
	ok := false
	defer func() {
		if !ok {
			for _, f := range written {
				os.Remove(f)
			}
		}
	}()
	for id, k := range keys {
		path := filepath.Join(dir, "keys", id+".key")
		if err := k.WriteFile(path); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", fn, err)
		}
		written = append(written, path)
	}
	if err := writeFiles([]string{filepath.Join(dir, "partitions.csv"), cfgPath}, [][]byte{csvBuf.Bytes(), src}, 0o644); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fn, err)
	}
	ok = true
	return cfg, written, nil
}

const configHeader = `# Tarnkappe pool configuration (written by 'tarnkappe pool init').
#
# Every party of the pool holds this same file: its SHA-256 is bound into
# every upload, prep file and share, so any change makes a new pool. It holds
# public keys only; private keys stay with their owners (keys/*.key, 0600).
# The partition list is partitions.csv, bound by its SHA-256 below.
`
