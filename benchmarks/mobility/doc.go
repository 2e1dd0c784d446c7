// Package mobilitybench holds the benchmarks and the demo-fleet figures of
// package mobility: unicity before and after the demo policy, the utility of
// the released data, and trip segmentation / unicity throughput on 10 M rows
// beside naive baselines. Results and commands: RESULTS.md.
package mobilitybench
