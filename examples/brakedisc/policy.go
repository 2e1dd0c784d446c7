package brakedisc

import (
	_ "embed" // the example policy ships inside the binary for `tarnkappe demo`
	"slices"
)

//go:embed policy.yaml
var demoPolicy []byte

// DemoPolicy returns the commented example policy (policy.yaml in this
// directory) that `tarnkappe demo` runs: opt-out, VIN pseudonymised, owner
// columns generalised to k=10, positions trimmed and coarsened, a DP release
// of disc temperature per cell. It refers to keys.json and optout.txt beside
// it.
func DemoPolicy() []byte { return slices.Clone(demoPolicy) }

//go:embed policy-trips.yaml
var demoTripPolicy []byte

// DemoTripPolicy returns policy-trips.yaml: the movement-data variant of
// DemoPolicy, where a random id per trip replaces the vehicle (trimmed
// endpoints detached, trace k-anonymity), for traffic analyses.
func DemoTripPolicy() []byte { return slices.Clone(demoTripPolicy) }
