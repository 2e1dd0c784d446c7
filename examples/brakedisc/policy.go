package brakedisc

import (
	_ "embed" // the example policies ship inside the binary for `tarnkappe demo`
	"slices"
)

//go:embed policy.yaml
var demoPolicy []byte

//go:embed policy-attributes.yaml
var attributesPolicy []byte

// DemoPolicy returns the commented example policy (policy.yaml in this
// directory) that `tarnkappe demo` runs: opt-out, positions trimmed and
// coarsened to H3 cells, a random id per trip in place of the vehicle
// (trace k-anonymity), per-reading values microaggregated per cell-hour,
// linkage of published trips measured and limited (mobility.max_linkage),
// a DP release of disc temperature per cell. It refers to keys.json and
// optout.txt beside it.
func DemoPolicy() []byte { return slices.Clone(demoPolicy) }

// AttributesPolicy returns the example policy as it was before issue #12
// (policy-attributes.yaml): owner columns generalised to k=10 and the
// per-reading values kept beside trips. It is NOT safe — an adversary who
// holds the raw readings links its published trips to their vehicles — and
// is kept for tests of k-anonymity beside movement data and of the linkage
// attack.
func AttributesPolicy() []byte { return slices.Clone(attributesPolicy) }
