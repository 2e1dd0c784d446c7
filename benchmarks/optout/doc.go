// Package optoutbench measures the opt-out filter (anonymize.Steps.OptOut)
// in each normalisation mode against its baseline: the matching before
// normalisation existed, an HMAC of the value as written per row and a map
// lookup (BenchmarkOptOut/baseline-exact-match). Plain string columns pay
// per row, dictionary columns (Parquet's) per distinct value.
//
// Nothing here runs under `go test ./...` beyond compiling: the functions
// are benchmarks only.
package optoutbench
