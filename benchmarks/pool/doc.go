// Package poolbench benchmarks a whole pool round (package pool: members,
// two aggregators, collector) beside the single-machine dp release of the
// same data, and measures the accuracy gained by pooling against the
// members' separate releases at the same ε. See RESULTS.md.
package poolbench
