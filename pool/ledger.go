package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// ErrBudgetExceeded is returned (wrapped) when a release would spend more
// of the period's budget than the aggregator's ledger has left. Nothing is
// spent and nothing is written.
var ErrBudgetExceeded = errors.New("privacy budget of the period exceeded")

// ErrReplay is returned (wrapped) for a report whose nonce the ledger has
// already aggregated.
var ErrReplay = errors.New("replayed report: its nonce was already aggregated")

// Ledger is one aggregator's persistent record of the privacy budget spent
// per period and of every report nonce it has aggregated. It lives in a
// directory of its own (the aggregator's state directory): ledger.json,
// replaced atomically (written to a temporary file, fsynced, renamed, the
// directory fsynced), so a crash leaves either the old or the new ledger;
// and a LOCK file held while a run uses it, so two runs cannot spend the
// same budget twice. A release is recorded before its share is written: a
// crash in between loses budget, never spends it unrecorded.
type Ledger struct {
	dir  string
	lock string
	st   ledgerState
}

type ledgerState struct {
	Version    int                     `json:"version"`
	Pool       string                  `json:"pool"`
	Aggregator string                  `json:"aggregator"`
	Periods    map[string]*periodSpend `json:"periods"`
	Nonces     []string                `json:"nonces"` // sorted hex
}

type periodSpend struct {
	EpsilonSpent float64        `json:"epsilon_spent"`
	DeltaSpent   float64        `json:"delta_spent"`
	Releases     []ledgerRecord `json:"releases"`
}

type ledgerRecord struct {
	Round   string    `json:"round"`
	Config  string    `json:"config_sha256"`
	Epsilon float64   `json:"epsilon"`
	Delta   float64   `json:"delta"`
	Members []string  `json:"members"`
	At      time.Time `json:"at"`
}

// BudgetState is a period's budget as one aggregator's ledger has it.
type BudgetState struct {
	Aggregator   string  `json:"aggregator"`
	Period       string  `json:"period"`
	EpsilonTotal float64 `json:"epsilon_total"`
	EpsilonSpent float64 `json:"epsilon_spent"`
	DeltaTotal   float64 `json:"delta_total"`
	DeltaSpent   float64 `json:"delta_spent"`
	Releases     int     `json:"releases"`
}

// EpsilonLeft is what the period has left.
func (b BudgetState) EpsilonLeft() float64 { return max(0, b.EpsilonTotal-b.EpsilonSpent) }

const (
	ledgerFile = "ledger.json"
	lockFile   = "LOCK"
)

// OpenLedger opens (creating if needed, mode 0700) the ledger in dir and
// takes its lock. Close releases the lock.
func OpenLedger(dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pool.OpenLedger: %w", err)
	}
	lock := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("pool.OpenLedger: %s is locked by another run (remove %s only if no run is active)", dir, lock)
		}
		return nil, fmt.Errorf("pool.OpenLedger: %w", err)
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
	l := &Ledger{dir: dir, lock: lock, st: ledgerState{Version: 1, Periods: map[string]*periodSpend{}}}
	b, err := os.ReadFile(filepath.Join(dir, ledgerFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return l, nil
	case err != nil:
		l.Close()
		return nil, fmt.Errorf("pool.OpenLedger: %w", err)
	}
	var st ledgerState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 || st.Pool == "" || st.Aggregator == "" || st.Periods == nil || !slices.IsSorted(st.Nonces) {
		l.Close()
		return nil, fmt.Errorf("pool.OpenLedger: %s is not a valid ledger; refusing to guess what was spent", filepath.Join(dir, ledgerFile))
	}
	l.st = st
	return l, nil
}

// Close releases the ledger's lock.
func (l *Ledger) Close() error {
	if l.lock == "" {
		return nil
	}
	err := os.Remove(l.lock)
	l.lock = ""
	return err
}

// bind checks that the ledger belongs to this pool and aggregator (a fresh
// ledger is bound on first use).
func (l *Ledger) bind(pool, aggregator string) error {
	if l.st.Pool == "" && len(l.st.Periods) == 0 {
		l.st.Pool, l.st.Aggregator = pool, aggregator
		return nil
	}
	if l.st.Pool != pool || l.st.Aggregator != aggregator {
		return fmt.Errorf("the ledger in %s belongs to aggregator %q of pool %q, not %q of %q", l.dir, l.st.Aggregator, l.st.Pool, aggregator, pool)
	}
	return nil
}

// seen reports whether a nonce (hex) was already aggregated.
func (l *Ledger) seen(nonce string) bool {
	_, ok := slices.BinarySearch(l.st.Nonces, nonce)
	return ok
}

// state is the period's budget as recorded.
func (l *Ledger) state(aggregator string, b BudgetSpec) BudgetState {
	s := BudgetState{Aggregator: aggregator, Period: b.Period, EpsilonTotal: b.Epsilon, DeltaTotal: b.Delta}
	if p := l.st.Periods[b.Period]; p != nil {
		s.EpsilonSpent, s.DeltaSpent, s.Releases = p.EpsilonSpent, p.DeltaSpent, len(p.Releases)
	}
	return s
}

// budgetSlack absorbs float rounding of repeated additions of ε.
const budgetSlack = 1e-9

// spend records a release and its nonces durably, or fails with
// ErrBudgetExceeded or ErrReplay and records nothing.
func (l *Ledger) spend(aggregator string, b BudgetSpec, rec ledgerRecord, nonces []string) (BudgetState, error) {
	if l.lock == "" {
		return BudgetState{}, errors.New("the ledger is closed")
	}
	for _, n := range nonces {
		if l.seen(n) {
			return BudgetState{}, fmt.Errorf("nonce %s: %w", n, ErrReplay)
		}
	}
	cur := l.state(aggregator, b)
	if cur.EpsilonSpent+rec.Epsilon > b.Epsilon*(1+budgetSlack) || cur.DeltaSpent+rec.Delta > b.Delta*(1+budgetSlack) {
		return cur, fmt.Errorf("period %s: spent ε=%s of %s, this release needs ε=%s: %w", b.Period,
			strconv.FormatFloat(cur.EpsilonSpent, 'g', -1, 64), strconv.FormatFloat(b.Epsilon, 'g', -1, 64),
			strconv.FormatFloat(rec.Epsilon, 'g', -1, 64), ErrBudgetExceeded)
	}
	next := l.st
	next.Periods = make(map[string]*periodSpend, len(l.st.Periods)+1)
	for k, v := range l.st.Periods {
		c := *v
		next.Periods[k] = &c
	}
	p := next.Periods[b.Period]
	if p == nil {
		p = &periodSpend{}
		next.Periods[b.Period] = p
	}
	p.EpsilonSpent += rec.Epsilon
	p.DeltaSpent += rec.Delta
	p.Releases = append(slices.Clip(p.Releases), rec)
	next.Nonces = append(slices.Clone(l.st.Nonces), nonces...)
	slices.Sort(next.Nonces)
	if err := l.write(&next); err != nil {
		return cur, fmt.Errorf("recording the spend: %w", err)
	}
	l.st = next
	return l.state(aggregator, b), nil
}

func (l *Ledger) write(st *ledgerState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(l.dir, ledgerFile)
	f, err := os.CreateTemp(l.dir, ".ledger.json.tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(l.dir)
	return nil
}
