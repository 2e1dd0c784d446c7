package pool

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tarnkappe/tarnkappe/dp"
)

// The two aggregators, by their Prio3 aggregator id.
const (
	leader = 0
	helper = 1
)

var roleNames = [2]string{"leader", "helper"}

// vdafName names the VDAF in manifests.
const vdafName = "Prio3SumVec"

// VDAFParams are the Prio3 SumVec parameters of a pool's reports.
type VDAFParams struct {
	Name   string `json:"name"`
	Length uint   `json:"length"`
	Bits   uint   `json:"bits"`
	Chunk  uint   `json:"chunk_length"`
}

func (p *plan) vdafParams() VDAFParams {
	return VDAFParams{Name: vdafName, Length: p.length, Bits: p.bits, Chunk: p.chunk}
}

func (p *plan) vdaf() (*sumvec.SumVec, error) {
	return sumvec.New(2, p.length, p.bits, p.chunk, p.vdafCtx)
}

// Manifest is what a member signs for its upload of one round: the
// configuration's hash, its id, the report's nonce and public share, and the
// SHA-256 of the upload file each aggregator receives. It holds no data.
type Manifest struct {
	Version     int        `json:"version"`
	Pool        string     `json:"pool"`
	Config      string     `json:"config_sha256"`
	Period      string     `json:"period"`
	Member      string     `json:"member"`
	Nonce       string     `json:"nonce"`
	Reports     int        `json:"reports"`
	VDAF        VDAFParams `json:"vdaf"`
	PublicShare []byte     `json:"public_share"`
	Uploads     [2]string  `json:"uploads_sha256"` // leader, helper
	Created     time.Time  `json:"created"`
}

// Contribution is one member's upload for a round: a signed manifest and one
// file per aggregator, each holding the member's Prio3 input share for that
// aggregator, HPKE-encrypted to it.
type Contribution struct {
	Member   string
	Manifest []byte
	Uploads  [2][]byte // leader, helper
}

// uploadMagic starts every upload file.
const uploadMagic = "TKPOOL-UPLOAD-1\n"

// uploadInfo and uploadAAD bind an input share's encryption to its
// aggregator, configuration, member and report.
func uploadInfo(agg int) []byte {
	return []byte("tarnkappe-pool/v1 input share for the " + roleNames[agg])
}

func uploadAAD(c *Config, member, nonce string, agg int) []byte {
	h := c.Hash()
	b := append([]byte("tarnkappe-pool/v1 upload\x00"), h[:]...)
	return append(b, []byte("\x00"+member+"\x00"+nonce+"\x00"+roleNames[agg])...)
}

// Contribute encodes a member's bounded, pre-noise partial (package dp,
// bounded with the pool's release parameters) as fixed-point integers per
// partition, shards them with Prio3 SumVec between the two aggregators
// (each share alone is uniformly random; the proof lets the aggregators
// check that every entry lies in [0, 2^bits) without seeing it), encrypts
// each input share to its aggregator with HPKE, and signs the manifest with
// the member's key. The partial is not modified.
func Contribute(cfg *Config, key *Key, part *dp.Partial) (*Contribution, error) {
	const fn = "pool.Contribute"
	if part == nil {
		return nil, errors.New(fn + ": a partial is required")
	}
	m, err := cfg.member(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	meas, err := cfg.measurement(part)
	if err != nil {
		return nil, fmt.Errorf("%s: member %s: %w", fn, m.ID, err)
	}
	defer clear(meas)
	return contribute(cfg, key, m.ID, meas, nil)
}

// tamper, in tests only, alters the encoded input shares before they are
// encrypted (a cheating member).
type tamper func(shares [][]byte)

func contribute(cfg *Config, key *Key, member string, meas []uint64, tw tamper) (*Contribution, error) {
	const fn = "pool.Contribute"
	p := cfg.plan
	sv, err := p.vdaf()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	var nonce sumvec.Nonce
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	params := sv.Params()
	seed := make([]byte, params.RandSize())
	defer clear(seed)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	pub, shares, err := sv.Shard(meas, &nonce, seed)
	if err != nil {
		return nil, fmt.Errorf("%s: sharding: %w", fn, err)
	}
	enc := make([][]byte, 2)
	for i := range shares {
		if enc[i], err = shares[i].MarshalBinary(); err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
	}
	if tw != nil {
		tw(enc)
	}
	nonceHex := hex.EncodeToString(nonce[:])
	c := &Contribution{Member: member}
	man := Manifest{Version: 1, Pool: cfg.Pool, Config: cfg.HashHex(), Period: cfg.Budget.Period, Member: member,
		Nonce: nonceHex, Reports: 1, VDAF: p.vdafParams(), PublicShare: pub, Created: time.Now().UTC().Truncate(time.Second)}
	for agg, e := range []AggregatorEntry{cfg.Aggregators.Leader, cfg.Aggregators.Helper} {
		pk, err := parseHPKEPublic(e.HPKEKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		s, err := seal(pk, uploadInfo(agg), uploadAAD(cfg, member, nonceHex, agg), enc[agg])
		clear(enc[agg])
		if err != nil {
			return nil, fmt.Errorf("%s: encrypting to the %s: %w", fn, roleNames[agg], err)
		}
		c.Uploads[agg] = marshalSealed(uploadMagic, s)
		h := sha256.Sum256(c.Uploads[agg])
		man.Uploads[agg] = hex.EncodeToString(h[:])
	}
	if c.Manifest, err = marshalSigned(kindManifest, man, nil, key); err != nil {
		return nil, fmt.Errorf("%s: signing the manifest: %w", fn, err)
	}
	return c, nil
}

// member returns the configuration's entry for key, which must be that
// member's signing key.
func (c *Config) member(key *Key) (MemberEntry, error) {
	if key == nil || key.Role() != RoleMember {
		return MemberEntry{}, fmt.Errorf("want a member key, got %v", key)
	}
	for _, m := range c.Members {
		if m.ID == key.ID() {
			if key.Public().SignKey != m.SignKey {
				return MemberEntry{}, fmt.Errorf("the key for %q is not the one the pool configuration lists for that member (wrong key file?)", m.ID)
			}
			return m, nil
		}
	}
	return MemberEntry{}, fmt.Errorf("%q is not a member of pool %q", key.ID(), c.Pool)
}

// Upload file names in a round's upload directory.
func manifestName(member string) string { return member + ".manifest.json" }
func uploadName(member string, agg int) string {
	return member + "." + roleNames[agg] + ".upload"
}

// WriteFiles writes the contribution into dir: <member>.leader.upload,
// <member>.helper.upload, then <member>.manifest.json (its presence marks a
// complete upload). Existing files are never overwritten; on any error
// nothing is left behind.
func (c *Contribution) WriteFiles(dir string) error {
	paths := []string{filepath.Join(dir, uploadName(c.Member, leader)), filepath.Join(dir, uploadName(c.Member, helper)), filepath.Join(dir, manifestName(c.Member))}
	if err := writeFiles(paths, [][]byte{c.Uploads[leader], c.Uploads[helper], c.Manifest}, 0o644); err != nil {
		return fmt.Errorf("pool.Contribution.WriteFiles: %w", err)
	}
	return nil
}
