// Package pipelinebench measures the anonymize pipeline end to end against
// its baseline: BenchmarkPipeline (Parquet → the full example policy →
// Parquet) beside BenchmarkParquetRoundTrip (read and write the same file
// with nothing in between). Both report rows/s, ns/row and the process's
// peak RSS; run them in one `go test -bench` invocation to compare.
//
// The input is a synthetic fleet (examples/brakedisc) generated on first use
// into a cache directory ($TARNKAPPE_BENCH_DIR, default
// $TMPDIR/tarnkappe-bench) and reused by later runs. The row count is
// $TARNKAPPE_BENCH_ROWS (default 10,000,000; the fleet has one vehicle per
// 500 rows, the demo's density, up to 20,000 vehicles: larger inputs are
// longer histories of the same fleet).
//
// Nothing here runs under `go test ./...` beyond compiling: the functions
// are benchmarks only.
package pipelinebench
