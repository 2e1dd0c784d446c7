package pool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLedger(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLedger(dir); err == nil || !strings.Contains(err.Error(), "locked by another run") {
		t.Errorf("a second run opened a locked ledger: %v", err)
	}
	if err := l.bind("pool-a", "authority"); err != nil {
		t.Fatal(err)
	}
	b := BudgetSpec{Period: "2026-03", Epsilon: 2}
	rec := ledgerRecord{Round: "r1", Epsilon: 1}
	st, err := l.spend("authority", b, rec, []string{"n1", "n2"})
	if err != nil || st.EpsilonSpent != 1 || st.Releases != 1 {
		t.Fatalf("first spend: %+v, %v", st, err)
	}
	if _, err := l.spend("authority", b, ledgerRecord{Round: "r2", Epsilon: 1}, []string{"n2"}); !errors.Is(err, ErrReplay) {
		t.Errorf("a nonce was aggregated twice: %v", err)
	}
	if _, err := l.spend("authority", b, ledgerRecord{Round: "r2", Epsilon: 1}, []string{"n3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.spend("authority", b, ledgerRecord{Round: "r3", Epsilon: 0.01}, []string{"n4"}); !errors.Is(err, ErrBudgetExceeded) {
		t.Errorf("a spend beyond the budget: %v", err)
	}
	// Another period has its own budget; nonces are remembered across periods.
	if _, err := l.spend("authority", BudgetSpec{Period: "2026-04", Epsilon: 2}, ledgerRecord{Epsilon: 1}, []string{"n5"}); err != nil {
		t.Fatal(err)
	}
	l.Close()

	// The ledger persists; a crash's leftover temporary file is ignored.
	os.WriteFile(filepath.Join(dir, ".ledger.json.tmp-123"), []byte("{garbage"), 0o600)
	l, err = OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := l.state("authority", b); s.EpsilonSpent != 2 || s.Releases != 2 || !l.seen("n1") || !l.seen("n5") || l.seen("n9") {
		t.Errorf("reloaded ledger: %+v", s)
	}
	if err := l.bind("pool-b", "authority"); err == nil {
		t.Error("a ledger was used for another pool")
	}
	l.Close()

	// A damaged ledger is refused, never guessed.
	os.WriteFile(filepath.Join(dir, ledgerFile), []byte(`{"version":1}`), 0o600)
	if _, err := OpenLedger(dir); err == nil || !strings.Contains(err.Error(), "not a valid ledger") {
		t.Errorf("a damaged ledger was opened: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, lockFile)); err == nil {
		t.Error("a failed open left the lock behind")
	}
}
