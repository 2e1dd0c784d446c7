package brakedisc

import (
	_ "embed" // the example policy ships inside the binary for `tarnkappe demo`
	"slices"
)

//go:embed policy.yaml
var demoPolicy []byte

// DemoPolicy returns the commented example policy (policy.yaml in this
// directory) that `tarnkappe demo` runs: opt-out, owner columns generalised
// to k=10, positions trimmed and coarsened to H3 cells, a random id per trip
// in place of the vehicle (trace k-anonymity), a DP release of disc
// temperature per cell. It refers to keys.json and optout.txt beside it.
func DemoPolicy() []byte { return slices.Clone(demoPolicy) }
