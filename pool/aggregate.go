package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"
	"github.com/cloudflare/circl/vdaf/prio3/sumvec"
)

// ErrQuorum is returned (wrapped) when fewer members than the quorum can be
// counted; the error lists every missing and rejected member.
var ErrQuorum = errors.New("too few members can be counted")

// AggregateOptions configure Aggregate.
type AggregateOptions struct {
	// Leader and Helper are the two signed prep files of the round.
	// Required.
	Leader, Helper []byte
	// State is this aggregator's private state from Prepare. Required.
	State []byte
	// Ledger records the spend and the nonces before the share is written;
	// it refuses a release beyond the period's budget. Required.
	Ledger *Ledger

	// noise replaces the library noise in tests (a no-noise double for
	// exact arithmetic). Unexported: never selectable by users or the CLI.
	noise noiseSource
}

// Share is an aggregator's result: its noisy aggregate share, HPKE-encrypted
// to the collector and signed.
type Share struct {
	// File is the signed share file for the collector.
	File []byte
	// Counted, Missing and Rejected say which members the round counts.
	Counted  []string
	Missing  []string
	Rejected []Rejection
	// Budget is the period's budget after this release.
	Budget BudgetState
}

// shareBody is the signed header of a share file; the blob is the sealed
// share vector.
type shareBody struct {
	Version    int         `json:"version"`
	Pool       string      `json:"pool"`
	Config     string      `json:"config_sha256"`
	Aggregator string      `json:"aggregator"`
	ID         string      `json:"id"`
	Session    string      `json:"session"`
	Round      string      `json:"round"`
	Counted    []string    `json:"counted"`
	Missing    []string    `json:"missing"`
	Rejected   []Rejection `json:"rejected"`
	Partitions int         `json:"partitions"`
	Aggregates []string    `json:"aggregates"`
	Epsilon    float64     `json:"epsilon"`
	Delta      float64     `json:"delta"`
	Noise      string      `json:"noise"`
	Budget     BudgetState `json:"budget"`
	Created    time.Time   `json:"created"`
}

const shareMagic = "TKPOOL-SHARE-1\n"

func shareInfo() []byte { return []byte("tarnkappe-pool/v1 aggregate share for the collector") }

func shareAAD(headerBody []byte) []byte {
	h := sha256.Sum256(headerBody)
	return append([]byte("tarnkappe-pool/v1 aggregate share\x00"), h[:]...)
}

// Aggregate is an aggregator's second step. From both prep files it
// decides, identically on both sides, which reports are valid (each
// aggregator accepted it and the Prio3 proof verifies on the combined prep
// shares), checks the quorum, records the release in the ledger (which
// refuses replays and a release beyond the period's budget), sums the
// valid reports' output shares, adds noise from google/differential-privacy
// calibrated to the full ε to every released quantity of its share, and
// encrypts the noisy share to the collector. Either aggregator's noise
// alone makes the release ε-DP, so the release stays private if one of them
// does not add its noise. On any error nothing is spent and nothing is
// written.
func Aggregate(cfg *Config, key *Key, opts AggregateOptions) (*Share, error) {
	const fn = "pool.Aggregate"
	agg, err := cfg.aggregator(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if opts.Ledger == nil {
		return nil, errors.New(fn + ": a ledger is required")
	}
	if err := opts.Ledger.bind(cfg.Pool, key.ID()); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	r, err := combine(cfg, agg, opts.Leader, opts.Helper, opts.State)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	body := shareBody{Version: 1, Pool: cfg.Pool, Config: cfg.HashHex(), Aggregator: roleNames[agg], ID: key.ID(),
		Session: r.session, Round: r.round, Counted: r.counted, Missing: r.missing, Rejected: r.rejected,
		Partitions: len(cfg.plan.rows), Epsilon: cfg.Release.Epsilon, Delta: cfg.Release.Delta, Noise: cfg.Release.Noise,
		Created: time.Now().UTC().Truncate(time.Second)}
	for _, a := range cfg.plan.aggs {
		body.Aggregates = append(body.Aggregates, a.name)
	}
	// Spend first, then draw: no release is made that the ledger does not
	// hold, and a refused one draws nothing.
	rec := ledgerRecord{Round: r.round, Config: cfg.HashHex(), Epsilon: cfg.Release.Epsilon, Delta: cfg.Release.Delta, Members: r.counted, At: body.Created}
	if body.Budget, err = opts.Ledger.spend(key.ID(), cfg.Budget, rec, r.nonces); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	n := opts.noise
	if n == nil {
		n = cfg.plan.libraryNoise()
	}
	if err := cfg.plan.addNoise(r.share, n); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	file, err := sealShare(cfg, key, &body, r.share)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return &Share{File: file, Counted: r.counted, Missing: r.missing, Rejected: r.rejected, Budget: body.Budget}, nil
}

// combined is one aggregator's round after both prep files: who is counted
// and its (noise-free) share of the released quantities.
type combined struct {
	session, round   string
	counted, missing []string
	nonces           []string
	rejected         []Rejection
	share            fp128.Vec // partitions × aggregates
}

// combine verifies both prep files, decides which reports are valid (the
// same decision on both sides), checks the quorum, and sums the valid
// reports' output shares into this aggregator's share of the released
// quantities. It spends nothing and draws no noise.
func combine(cfg *Config, agg int, leaderPrep, helperPrep, state []byte) (*combined, error) {
	lb, err := readPrepFile(cfg, leaderPrep, leader)
	if err != nil {
		return nil, fmt.Errorf("the leader's prep file: %w", err)
	}
	hb, err := readPrepFile(cfg, helperPrep, helper)
	if err != nil {
		return nil, fmt.Errorf("the helper's prep file: %w", err)
	}
	if lb.Session != hb.Session {
		return nil, fmt.Errorf("the prep files belong to different rounds (sessions %s and %s)", lb.Session, hb.Session)
	}
	var st prepState
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, fmt.Errorf("malformed state: %v", err)
	}
	if st.Config != cfg.HashHex() || st.Aggregator != roleNames[agg] || st.Session != lb.Session {
		return nil, errors.New("the state is not this aggregator's for this round")
	}
	own := []*prepBody{lb, hb}[agg]
	p := cfg.plan
	sv, err := p.vdaf()
	if err != nil {
		return nil, err
	}
	states := map[string]stateEntry{}
	for _, e := range st.Entries {
		states[e.Member] = e
	}
	if len(states) != len(own.Accepted) {
		return nil, errors.New("the state does not match this aggregator's prep file")
	}
	helperByMember := map[string]prepEntry{}
	for _, e := range hb.Accepted {
		helperByMember[e.Member] = e
	}
	r := &combined{session: lb.Session, rejected: append(append([]Rejection{}, lb.Rejected...), hb.Rejected...)}
	aggShare := sv.AggregateInit()
	for _, le := range lb.Accepted {
		he, ok := helperByMember[le.Member]
		delete(helperByMember, le.Member)
		if !ok || he.Nonce != le.Nonce || he.Manifest != le.Manifest {
			if !ok && !rejectedBy(r.rejected, le.Member, "helper") {
				r.rejected = append(r.rejected, Rejection{Member: le.Member, By: "helper", Reason: "no upload reached the helper"})
			} else if ok {
				r.rejected = append(r.rejected, Rejection{Member: le.Member, By: "both", Reason: "the aggregators received different uploads from this member"})
			}
			continue
		}
		se, ok := states[le.Member]
		if !ok || se.Nonce != le.Nonce || se.Manifest != le.Manifest {
			return nil, fmt.Errorf("the state does not match the prep files (member %s)", le.Member)
		}
		out, reason := prepNext(sv, le.PrepShare, he.PrepShare, se.State)
		if reason != "" {
			r.rejected = append(r.rejected, Rejection{Member: le.Member, By: "both", Reason: reason})
			continue
		}
		sv.AggregateUpdate(&aggShare, out)
		r.counted = append(r.counted, le.Member)
		r.nonces = append(r.nonces, le.Nonce)
	}
	for m := range helperByMember {
		if !rejectedBy(r.rejected, m, "leader") {
			r.rejected = append(r.rejected, Rejection{Member: m, By: "leader", Reason: "no upload reached the leader"})
		}
	}
	sort.Slice(r.rejected, func(i, j int) bool { return r.rejected[i].Member < r.rejected[j].Member })
	present := map[string]bool{}
	for _, m := range r.counted {
		present[m] = true
	}
	r.missing = cfg.missing(present, r.rejected)
	if len(r.counted) < cfg.Quorum {
		return nil, fmt.Errorf("%d of %d members counted, the quorum is %d: %w%s", len(r.counted), len(cfg.Members), cfg.Quorum, ErrQuorum, listProblems(r.missing, r.rejected))
	}
	r.round = roundID(cfg, lb.Session, lb.Accepted, r.counted)
	raw, err := aggShare.MarshalBinary()
	if err != nil {
		return nil, err
	}
	vec := make(fp128.Vec, p.length)
	if err := vec.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	r.share = p.project(vec)
	return r, nil
}

// sealShare encrypts a noisy share to the collector, bound to its header,
// and signs both.
func sealShare(cfg *Config, key *Key, body *shareBody, share fp128.Vec) ([]byte, error) {
	pt, err := share.MarshalBinary()
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	ck, err := parseHPKEPublic(cfg.Collector.HPKEKey)
	if err != nil {
		return nil, err
	}
	s, err := seal(ck, shareInfo(), shareAAD(hdr), pt)
	if err != nil {
		return nil, fmt.Errorf("encrypting to the collector: %w", err)
	}
	return marshalSigned(kindShare, json.RawMessage(hdr), marshalSealed(shareMagic, s), key)
}

// addNoise adds one draw to every released quantity of a share (partitions
// × aggregates), calibrated to the quantity's sensitivity and its full
// share of ε: the noise of one aggregator alone makes the release private.
func (p *plan) addNoise(share fp128.Vec, n noiseSource) error {
	na := len(p.aggs)
	for i := range p.rows {
		for j, a := range p.aggs {
			x, err := n.draw(a.l0, a.lInf, a.eps, a.delta)
			if err != nil {
				return fmt.Errorf("noise for %s: %w", a.name, err)
			}
			f := fieldFromInt(x)
			share[i*na+j].AddAssign(&f)
		}
	}
	return nil
}

// prepNext combines a report's two prep shares into the prep message —
// which verifies the member's proof — and finishes this aggregator's
// preparation. It returns the output share, or why the report is invalid.
func prepNext(sv *sumvec.SumVec, lps, hps, state []byte) (*sumvec.OutShare, string) {
	pr := sv.Params()
	var ps [2]sumvec.PrepShare
	for i, b := range [][]byte{lps, hps} {
		ps[i].New(&pr)
		if err := ps[i].UnmarshalBinary(b); err != nil {
			return nil, "malformed prep share from the " + roleNames[i]
		}
	}
	msg, err := sv.PrepSharesToPrep(ps[:])
	if err != nil {
		return nil, "invalid proof: the member's shares do not prove values in the declared range (" + err.Error() + ")"
	}
	var st sumvec.PrepState
	st.New(&pr)
	if err := st.UnmarshalBinary(state); err != nil {
		return nil, "malformed prep state"
	}
	out, err := sv.PrepNext(&st, msg)
	if err != nil {
		return nil, "invalid joint randomness: " + err.Error()
	}
	return out, ""
}

func rejectedBy(rej []Rejection, member, by string) bool {
	for _, r := range rej {
		if r.Member == member && (r.By == by || r.By == "both") {
			return true
		}
	}
	return false
}

// roundID names a round by what it counts: the configuration, the session
// and each counted report.
func roundID(cfg *Config, session string, accepted []prepEntry, counted []string) string {
	h := sha256.New()
	ch := cfg.Hash()
	h.Write([]byte("tarnkappe-pool/v1 round\x00"))
	h.Write(ch[:])
	h.Write([]byte(session))
	for _, e := range accepted {
		for _, m := range counted {
			if m == e.Member {
				h.Write([]byte("\x00" + e.Member + "\x00" + e.Nonce + "\x00" + e.Manifest))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func listProblems(missing []string, rej []Rejection) string {
	var b strings.Builder
	for _, m := range missing {
		b.WriteString("\n  missing: " + m + " (no upload)")
	}
	for _, r := range rej {
		b.WriteString("\n  rejected: " + r.String())
	}
	return b.String()
}
