// Package fsumbench measures the exact sum (internal/fsum) that
// microaggregation uses against its baseline, a float64 += per group
// (BenchmarkAdd/float64): readings to 0.1 into 256 group sums, as the
// Runner's pass 1 adds each microaggregated value to its (cell, hour)
// group's sum.
//
// Nothing here runs under `go test ./...` beyond compiling: the functions
// are benchmarks only.
package fsumbench
