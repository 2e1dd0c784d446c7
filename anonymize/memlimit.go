package anonymize

import (
	"runtime/debug"
	"sync"
)

// memLimits shares the Go runtime's soft memory limit between the Runs of
// one process. The limit is process-wide, so two Runs that each saved and
// restored it on their own would, when they overlap, restore each other's
// limit: the one that ends last would leave the other's limit behind for
// good. Instead the first Run saves the limit in force, every active Run's
// limit is kept, the lowest of them and the saved one is in force, and the
// last Run to end restores the saved limit.
var memLimits = &memLimiter{active: map[int64]int{}}

type memLimiter struct {
	mu     sync.Mutex
	active map[int64]int // limit → Runs holding it
	saved  int64         // the limit in force before the first active Run
}

// hold puts lim in force (if it is below the limit in force before the
// first active Run and the other Runs' limits) until release is called.
func (m *memLimiter) hold(lim int64) (release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.active) == 0 {
		m.saved = debug.SetMemoryLimit(-1) // -1 reads without changing
	}
	m.active[lim]++
	m.apply()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.active[lim]--; m.active[lim] == 0 {
				delete(m.active, lim)
			}
			if len(m.active) == 0 {
				debug.SetMemoryLimit(m.saved)
				return
			}
			m.apply()
		})
	}
}

// apply sets the lowest of the saved limit and the active ones.
func (m *memLimiter) apply() {
	l := m.saved
	for k := range m.active {
		l = min(l, k)
	}
	debug.SetMemoryLimit(l)
}
