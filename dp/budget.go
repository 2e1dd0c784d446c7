package dp

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/google/differential-privacy/go/v2/checks"
)

// ErrBudgetExceeded is returned (wrapped) when a release would spend more
// privacy budget than its Accountant has left. It is returned before any
// noise is drawn, so nothing has been released.
var ErrBudgetExceeded = errors.New("privacy budget exceeded")

// Spent states how much privacy budget a release (or an Accountant over all
// its releases) has used. The JSON names are the ones the anonymize report
// uses (dp.epsilon_spent, dp.delta_spent).
type Spent struct {
	EpsilonSpent float64 `json:"epsilon_spent"`
	DeltaSpent   float64 `json:"delta_spent"`
	EpsilonTotal float64 `json:"epsilon_total"`
	DeltaTotal   float64 `json:"delta_total"`
}

// Accountant holds the total (ε, δ) of a release and what has been spent of
// it. Spending is all-or-nothing: a request that does not fit leaves the
// Accountant unchanged. Safe for concurrent use.
//
// Composition is basic (sequential) composition: ε and δ of the parts add up.
type Accountant struct {
	mu           sync.Mutex
	epsilon      float64
	delta        float64
	spentEpsilon float64
	spentDelta   float64
}

// NewAccountant returns an Accountant with a total budget of (epsilon, delta).
// Epsilon must be finite and > 0; delta must be in [0, 1).
func NewAccountant(epsilon, delta float64) (*Accountant, error) {
	if err := checkEpsilon("NewAccountant", "Epsilon", epsilon); err != nil {
		return nil, err
	}
	if err := checkDelta("NewAccountant", "Delta", delta); err != nil {
		return nil, err
	}
	return &Accountant{epsilon: epsilon, delta: delta}, nil
}

// Remaining returns the budget not yet spent.
func (a *Accountant) Remaining() (epsilon, delta float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.remainingLocked()
}

func (a *Accountant) remainingLocked() (float64, float64) {
	return math.Max(0, a.epsilon-a.spentEpsilon), math.Max(0, a.delta-a.spentDelta)
}

// Spent reports the budget spent so far and the total.
func (a *Accountant) Spent() Spent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Spent{EpsilonSpent: a.spentEpsilon, DeltaSpent: a.spentDelta, EpsilonTotal: a.epsilon, DeltaTotal: a.delta}
}

// Spend takes (epsilon, delta) from the budget, or returns an error wrapping
// ErrBudgetExceeded and spends nothing.
func (a *Accountant) Spend(epsilon, delta float64) error {
	if err := a.spendAll([]share{{what: "the request", epsilon: epsilon, delta: delta}}); err != nil {
		return fmt.Errorf("dp.Accountant.Spend: %w", err)
	}
	return nil
}

// share is one mechanism's part of a release budget.
type share struct {
	what    string
	epsilon float64
	delta   float64
}

// budgetSlack (relative to the total) absorbs float rounding when shares that
// were computed by splitting the remaining budget are added up again.
const budgetSlack = 1e-9

// spendAll spends every share or none. Its errors name no caller: the
// caller adds its own name.
func (a *Accountant) spendAll(shares []share) error {
	var eps, del float64
	for _, s := range shares {
		if math.IsNaN(s.epsilon) || math.IsInf(s.epsilon, 0) || s.epsilon < 0 {
			return fmt.Errorf("%s: epsilon %v is not a finite non-negative number", s.what, s.epsilon)
		}
		if math.IsNaN(s.delta) || math.IsInf(s.delta, 0) || s.delta < 0 {
			return fmt.Errorf("%s: delta %v is not a finite non-negative number", s.what, s.delta)
		}
		eps += s.epsilon
		del += s.delta
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	remE, remD := a.remainingLocked()
	if eps > remE+budgetSlack*a.epsilon || del > remD+budgetSlack*a.delta {
		return fmt.Errorf("needs (ε=%g, δ=%g) but only (ε=%g, δ=%g) of (ε=%g, δ=%g) is left: %w",
			eps, del, remE, remD, a.epsilon, a.delta, ErrBudgetExceeded)
	}
	a.spentEpsilon = math.Min(a.epsilon, a.spentEpsilon+eps)
	a.spentDelta = math.Min(a.delta, a.spentDelta+del)
	return nil
}

// checkEpsilon, checkDelta, checkBounds and checkContributions are the one
// place where parameters are validated; they wrap the DP library's checks so
// that the rules are the library's and the errors name our function and field.
func checkEpsilon(fn, field string, eps float64) error {
	if err := checks.CheckEpsilonStrict(eps); err != nil {
		return fmt.Errorf("dp.%s: %s: %v", fn, field, err)
	}
	return nil
}

func checkDelta(fn, field string, delta float64) error {
	if err := checks.CheckDelta(delta); err != nil {
		return fmt.Errorf("dp.%s: %s: %v", fn, field, err)
	}
	return nil
}

func checkBounds(fn, field string, lo, hi float64) error {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return fmt.Errorf("dp.%s: %s: bounds [%v, %v] must be finite numbers", fn, field, lo, hi)
	}
	if lo >= hi {
		return fmt.Errorf("dp.%s: %s: lower bound %v must be smaller than upper bound %v", fn, field, lo, hi)
	}
	return nil
}

func checkContributions(fn, field string, v int64) error {
	if err := checks.CheckL0Sensitivity(v); err != nil {
		return fmt.Errorf("dp.%s: %s must be >= 1 (got %d)", fn, field, v)
	}
	return nil
}
