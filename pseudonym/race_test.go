//go:build race

package pseudonym

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = true
