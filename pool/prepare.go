package pool

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/vdaf/prio3/sumvec"
)

// Upload is one member's files as an aggregator receives them.
type Upload struct {
	// Name says where the upload came from (its manifest's file name), for
	// rejections of manifests that name no member.
	Name string
	// Manifest is the member's signed manifest.
	Manifest []byte
	// Share is this aggregator's upload file; nil when it is missing.
	Share []byte
}

// Rejection says why a member's report was not counted.
type Rejection struct {
	Member string `json:"member"`
	File   string `json:"file,omitempty"`
	By     string `json:"by"` // leader, helper, or both (the proof is checked jointly)
	Reason string `json:"reason"`
}

func (r Rejection) String() string {
	who := r.Member
	if who == "" {
		who = r.File
	}
	return fmt.Sprintf("%s (rejected by %s): %s", who, r.By, r.Reason)
}

// PrepareOptions configure Prepare.
type PrepareOptions struct {
	// Peer is the leader's signed prep file. Required for the helper: it
	// carries the round's verification key, which the leader draws after
	// the uploads exist and encrypts to the helper. Unused by the leader.
	Peer []byte
	// Ledger is the aggregator's ledger: a report whose nonce it holds is
	// rejected as a replay. Required.
	Ledger *Ledger
}

// Prepared is an aggregator's result of the preparation step.
type Prepared struct {
	// File is the signed prep file: the Prio3 prep shares of the reports
	// this aggregator accepted, its rejections, and (leader) the round's
	// verification key for the helper. Both aggregators' Aggregate read it.
	File []byte
	// State is private to this aggregator: its Prio3 prep states (its
	// shares of the members' data). Keep it like the upload files (0600)
	// and pass it to Aggregate.
	State []byte
	// Accepted, Rejected and Missing summarise the step.
	Accepted []string
	Rejected []Rejection
	Missing  []string
}

// prepBody is the signed content of a prep file.
type prepBody struct {
	Version    int         `json:"version"`
	Pool       string      `json:"pool"`
	Config     string      `json:"config_sha256"`
	Aggregator string      `json:"aggregator"`
	ID         string      `json:"id"`
	Session    string      `json:"session"`
	VerifyKey  *sealed     `json:"verify_key,omitempty"`
	Accepted   []prepEntry `json:"accepted"`
	Rejected   []Rejection `json:"rejected"`
	Missing    []string    `json:"missing"`
	Created    time.Time   `json:"created"`
}

type prepEntry struct {
	Member    string `json:"member"`
	Nonce     string `json:"nonce"`
	Manifest  string `json:"manifest_sha256"`
	PrepShare []byte `json:"prep_share"`
}

// prepState is an aggregator's private state between its two steps.
type prepState struct {
	Version    int          `json:"version"`
	Config     string       `json:"config_sha256"`
	Aggregator string       `json:"aggregator"`
	Session    string       `json:"session"`
	Entries    []stateEntry `json:"entries"`
}

type stateEntry struct {
	Member   string `json:"member"`
	Nonce    string `json:"nonce"`
	Manifest string `json:"manifest_sha256"`
	State    []byte `json:"state"`
}

func verifyKeyInfo() []byte { return []byte("tarnkappe-pool/v1 verification key for the helper") }

func verifyKeyAAD(c *Config, session string) []byte {
	h := c.Hash()
	return append(append([]byte("tarnkappe-pool/v1 verification key\x00"), h[:]...), session...)
}

// aggregator returns the index (leader, helper) of the aggregator whose keys
// key holds.
func (c *Config) aggregator(key *Key) (int, error) {
	if key == nil || key.Role() != RoleAggregator {
		return 0, fmt.Errorf("want an aggregator key, got %v", key)
	}
	pub := key.Public()
	for i, e := range []AggregatorEntry{c.Aggregators.Leader, c.Aggregators.Helper} {
		if e.ID == key.ID() {
			if pub.SignKey != e.SignKey || pub.HPKEKey != e.HPKEKey {
				return 0, fmt.Errorf("the key for %q is not the one the pool configuration lists for the %s (wrong key file?)", e.ID, roleNames[i])
			}
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not an aggregator of pool %q", key.ID(), c.Pool)
}

// Prepare is an aggregator's first step: it checks every upload (the
// manifest's signature by a listed member, the configuration's hash, one
// upload per member, a nonce the ledger has not seen, the upload file's
// hash against the signed manifest), decrypts its input share and runs
// Prio3's preparation, which yields a prep share to exchange with the other
// aggregator. Uploads that fail a check are rejected with a reason; members
// of the configuration with no upload are listed as missing. Whether that
// fails the round is Aggregate's decision (the quorum).
func Prepare(cfg *Config, key *Key, uploads []Upload, opts PrepareOptions) (*Prepared, error) {
	const fn = "pool.Prepare"
	agg, err := cfg.aggregator(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if opts.Ledger == nil {
		return nil, errors.New(fn + ": a ledger is required (replay protection)")
	}
	if err := opts.Ledger.bind(cfg.Pool, key.ID()); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	p := cfg.plan
	body := prepBody{Version: 1, Pool: cfg.Pool, Config: cfg.HashHex(), Aggregator: roleNames[agg], ID: key.ID(),
		Created: time.Now().UTC().Truncate(time.Second), Accepted: []prepEntry{}, Rejected: []Rejection{}, Missing: []string{}}
	var vk sumvec.VerifyKey
	defer clear(vk[:])
	if agg == leader {
		var sess [16]byte
		if _, err := rand.Read(sess[:]); err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		if _, err := rand.Read(vk[:]); err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		body.Session = hex.EncodeToString(sess[:])
		hk, err := parseHPKEPublic(cfg.Aggregators.Helper.HPKEKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		s, err := seal(hk, verifyKeyInfo(), verifyKeyAAD(cfg, body.Session), vk[:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		body.VerifyKey = &s
	} else {
		if opts.Peer == nil {
			return nil, errors.New(fn + ": the helper prepares after the leader: the leader's prep file is required")
		}
		lb, err := readPrepFile(cfg, opts.Peer, leader)
		if err != nil {
			return nil, fmt.Errorf("%s: the leader's prep file: %w", fn, err)
		}
		if lb.VerifyKey == nil {
			return nil, fmt.Errorf("%s: the leader's prep file carries no verification key", fn)
		}
		sk, err := key.hpkePrivate()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		b, err := open(sk, verifyKeyInfo(), verifyKeyAAD(cfg, lb.Session), *lb.VerifyKey)
		if err != nil || len(b) != len(vk) {
			return nil, fmt.Errorf("%s: the leader's verification key: %w", fn, errDecrypt)
		}
		copy(vk[:], b)
		clear(b)
		body.Session = lb.Session
	}
	state := prepState{Version: 1, Config: cfg.HashHex(), Aggregator: roleNames[agg], Session: body.Session}
	checked, rejected := checkUploads(cfg, agg, uploads, opts.Ledger)
	body.Rejected = append(body.Rejected, rejected...)
	// Decryption and Prio3 preparation are independent per upload: they run
	// on every core, each worker with its own VDAF instance and HPKE key
	// (circl's keep state: neither may be shared between goroutines),
	// results in upload order.
	results := make([]prepResult, len(checked))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(checked)))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			sv, err := p.vdaf()
			if err != nil {
				errs[w] = err
				return
			}
			sk, err := key.hpkePrivate()
			if err != nil {
				errs[w] = err
				return
			}
			for i := w; i < len(checked); i += workers {
				results[i] = prepareOne(cfg, agg, sv, sk, &vk, &checked[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	for i, r := range results {
		u := &checked[i]
		switch {
		case r.err != nil:
			return nil, fmt.Errorf("%s: %w", fn, r.err)
		case r.reason != "":
			body.Rejected = append(body.Rejected, Rejection{Member: u.man.Member, File: u.name, By: roleNames[agg], Reason: r.reason})
		default:
			body.Accepted = append(body.Accepted, prepEntry{Member: u.man.Member, Nonce: u.man.Nonce, Manifest: u.hash, PrepShare: r.prepShare})
			state.Entries = append(state.Entries, stateEntry{Member: u.man.Member, Nonce: u.man.Nonce, Manifest: u.hash, State: r.state})
		}
	}
	body.Missing = cfg.missing(uploadsMembers(uploads, cfg), body.Rejected)
	if len(body.Accepted) < cfg.Quorum {
		// Fail early and loudly: Aggregate could not reach the quorum either.
		return nil, fmt.Errorf("%s: the %s accepts %d of %d members, the quorum is %d: %w%s", fn, roleNames[agg], len(body.Accepted), len(cfg.Members), cfg.Quorum, ErrQuorum, listProblems(body.Missing, body.Rejected))
	}
	out := &Prepared{Rejected: body.Rejected, Missing: body.Missing}
	for _, e := range body.Accepted {
		out.Accepted = append(out.Accepted, e.Member)
	}
	if out.File, err = marshalSigned(kindPrep, body, nil, key); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if out.State, err = json.Marshal(state); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return out, nil
}

// prepResult is one upload's preparation: its prep share and state, or why
// it is rejected (reason), or an internal failure (err).
type prepResult struct {
	prepShare, state []byte
	reason           string
	err              error
}

// prepareOne decrypts one upload's input share and runs Prio3's
// preparation on it.
func prepareOne(cfg *Config, agg int, sv *sumvec.SumVec, sk kem.PrivateKey, vk *sumvec.VerifyKey, u *checkedUpload) prepResult {
	pt, err := open(sk, uploadInfo(agg), uploadAAD(cfg, u.man.Member, u.man.Nonce, agg), u.sealed)
	if err != nil {
		return prepResult{reason: err.Error()}
	}
	params := sv.Params()
	var in sumvec.InputShare
	in.New(&params, uint(agg))
	err = in.UnmarshalBinary(pt)
	clear(pt)
	if err != nil {
		return prepResult{reason: "malformed input share: " + err.Error()}
	}
	var nonce sumvec.Nonce
	copy(nonce[:], u.nonce)
	st, ps, err := sv.PrepInit(vk, &nonce, uint8(agg), u.man.PublicShare, in)
	if err != nil {
		return prepResult{reason: "Prio3 preparation failed: " + err.Error()}
	}
	psb, err1 := ps.MarshalBinary()
	stb, err2 := st.MarshalBinary()
	if err := errors.Join(err1, err2); err != nil {
		return prepResult{err: err}
	}
	return prepResult{prepShare: psb, state: stb}
}

// checkedUpload is an upload whose manifest passed every check.
type checkedUpload struct {
	name   string
	man    Manifest
	hash   string // SHA-256 of the manifest file
	nonce  []byte
	sealed sealed
}

// checkUploads applies every check that needs no decryption; uploads come
// back sorted by member.
func checkUploads(cfg *Config, agg int, uploads []Upload, l *Ledger) ([]checkedUpload, []Rejection) {
	var ok []checkedUpload
	var rej []Rejection
	by := roleNames[agg]
	members := map[string]MemberEntry{}
	for _, m := range cfg.Members {
		members[m.ID] = m
	}
	perMember := map[string]int{}
	perNonce := map[string]int{}
	for _, u := range uploads {
		reject := func(member, reason string) {
			rej = append(rej, Rejection{Member: member, File: u.Name, By: by, Reason: reason})
		}
		f, _, err := parseSigned(u.Manifest, kindManifest)
		if err != nil {
			reject("", "manifest: "+err.Error())
			continue
		}
		var man Manifest
		if err := decodeBody(f.Body, &man); err != nil {
			reject("", "manifest: "+err.Error())
			continue
		}
		m, listed := members[man.Member]
		if !listed {
			reject(man.Member, "not a member of the pool")
			continue
		}
		pub, _ := parseSignPublic(m.SignKey) // validated with the configuration
		if err := f.verify(pub, nil); err != nil {
			reject(man.Member, "manifest signature does not verify with the member's key (wrong key, or tampered)")
			continue
		}
		if man.Config != cfg.HashHex() || man.Pool != cfg.Pool || man.Version != 1 {
			reject(man.Member, fmt.Sprintf("made for another configuration (config hash %.16s…, this pool's %.16s…)", man.Config, cfg.HashHex()))
			continue
		}
		if man.VDAF != cfg.plan.vdafParams() || man.Reports != 1 {
			reject(man.Member, "report parameters differ from the configuration's")
			continue
		}
		nonce, err := hex.DecodeString(man.Nonce)
		if err != nil || len(nonce) != len(sumvec.Nonce{}) {
			reject(man.Member, "malformed nonce")
			continue
		}
		if l.seen(man.Nonce) {
			reject(man.Member, ErrReplay.Error())
			continue
		}
		if u.Share == nil {
			reject(man.Member, "the upload file for the "+by+" is missing")
			continue
		}
		if h := sha256.Sum256(u.Share); hex.EncodeToString(h[:]) != man.Uploads[agg] {
			reject(man.Member, "the upload file does not match the signed manifest (tampered or swapped)")
			continue
		}
		s, err := unmarshalSealed(uploadMagic, u.Share)
		if err != nil {
			reject(man.Member, err.Error())
			continue
		}
		mh := sha256.Sum256(u.Manifest)
		perMember[man.Member]++
		perNonce[man.Nonce]++
		ok = append(ok, checkedUpload{name: u.Name, man: man, hash: hex.EncodeToString(mh[:]), nonce: nonce, sealed: s})
	}
	// A member counts once per round, and a report once: a duplicate would
	// weigh its subjects twice, beyond the sensitivity the noise covers.
	// Every copy is rejected (which one is genuine is not ours to guess).
	kept := ok[:0]
	for _, u := range ok {
		switch {
		case perMember[u.man.Member] > 1:
			rej = append(rej, Rejection{Member: u.man.Member, File: u.name, By: by, Reason: fmt.Sprintf("the member uploaded %d reports for one round", perMember[u.man.Member])})
		case perNonce[u.man.Nonce] > 1:
			rej = append(rej, Rejection{Member: u.man.Member, File: u.name, By: by, Reason: "the report's nonce appears twice in this round (replay)"})
		default:
			kept = append(kept, u)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].man.Member < kept[j].man.Member })
	return kept, rej
}

// uploadsMembers lists the members named by parseable manifests.
func uploadsMembers(uploads []Upload, cfg *Config) map[string]bool {
	out := map[string]bool{}
	for _, u := range uploads {
		if f, _, err := parseSigned(u.Manifest, kindManifest); err == nil {
			var man Manifest
			if decodeBody(f.Body, &man) == nil {
				out[man.Member] = true
			}
		}
	}
	return out
}

// missing lists the configuration's members with neither an upload nor a
// rejection.
func (c *Config) missing(present map[string]bool, rej []Rejection) []string {
	out := []string{}
	for _, m := range c.Members {
		if !present[m.ID] && !slices.ContainsFunc(rej, func(r Rejection) bool { return r.Member == m.ID }) {
			out = append(out, m.ID)
		}
	}
	return out
}

// readPrepFile verifies a prep file signed by aggregator agg for this
// configuration.
func readPrepFile(cfg *Config, data []byte, agg int) (*prepBody, error) {
	f, _, err := parseSigned(data, kindPrep)
	if err != nil {
		return nil, err
	}
	e := []AggregatorEntry{cfg.Aggregators.Leader, cfg.Aggregators.Helper}[agg]
	pub, _ := parseSignPublic(e.SignKey)
	if err := f.verify(pub, nil); err != nil {
		return nil, fmt.Errorf("not signed by the %s %q: %w", roleNames[agg], e.ID, err)
	}
	var b prepBody
	if err := decodeBody(f.Body, &b); err != nil {
		return nil, err
	}
	if b.Version != 1 || b.Aggregator != roleNames[agg] || b.ID != e.ID {
		return nil, fmt.Errorf("a prep file of %q (%s) where the %s's was expected", b.ID, b.Aggregator, roleNames[agg])
	}
	if b.Config != cfg.HashHex() || b.Pool != cfg.Pool {
		return nil, fmt.Errorf("made for another configuration (config hash %.16s…, this pool's %.16s…)", b.Config, cfg.HashHex())
	}
	if s, err := hex.DecodeString(b.Session); err != nil || len(s) != 16 {
		return nil, errors.New("malformed session")
	}
	return &b, nil
}
