// Package maskbench measures the mask action (through anonymize.Steps) on a
// plain string column against its baseline: the mask before it counted
// short values and normalised to NFC, a rune-slice replacement per distinct
// value into a dictionary (BenchmarkMask/baseline).
//
// Nothing here runs under `go test ./...` beyond compiling: the functions
// are benchmarks only.
package maskbench
