package anonymize

import (
	"runtime/debug"
	"testing"
)

// TestMemLimiterOverlap: Runs that overlap share the process-wide limit:
// the lowest active one is in force, whatever order they end in, and the
// last to end restores the limit from before the first. Saving and
// restoring per Run would leave a limit behind in the second order.
func TestMemLimiterOverlap(t *testing.T) {
	const before, a, b = 4 << 30, 1 << 30, 2 << 30
	for _, tt := range []struct {
		name       string
		firstEnded string
	}{
		{"a ends first", "a"},
		{"b ends first", "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prev := debug.SetMemoryLimit(before)
			defer debug.SetMemoryLimit(prev)
			m := &memLimiter{active: map[int64]int{}}
			relA := m.hold(a)
			if got := debug.SetMemoryLimit(-1); got != a {
				t.Fatalf("after a: limit %d, want %d", got, a)
			}
			relB := m.hold(b)
			if got := debug.SetMemoryLimit(-1); got != a {
				t.Fatalf("after b: limit %d, want the lower %d", got, a)
			}
			if tt.firstEnded == "a" {
				relA()
				relA() // a second call does nothing
				if got := debug.SetMemoryLimit(-1); got != b {
					t.Fatalf("a ended: limit %d, want %d", got, b)
				}
				relB()
			} else {
				relB()
				if got := debug.SetMemoryLimit(-1); got != a {
					t.Fatalf("b ended: limit %d, want %d", got, a)
				}
				relA()
			}
			if got := debug.SetMemoryLimit(-1); got != before {
				t.Fatalf("both ended: limit %d, want %d restored", got, before)
			}
		})
	}
}

// TestMemLimiterNeverRaises: a limit above the one in force changes nothing.
func TestMemLimiterNeverRaises(t *testing.T) {
	prev := debug.SetMemoryLimit(1 << 30)
	defer debug.SetMemoryLimit(prev)
	m := &memLimiter{active: map[int64]int{}}
	rel := m.hold(2 << 30)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("limit %d, want %d kept", got, 1<<30)
	}
	rel()
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("after: limit %d, want %d", got, 1<<30)
	}
}
