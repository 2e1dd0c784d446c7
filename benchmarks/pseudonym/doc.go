// Package pseudonymbench measures the pseudonym package against what a user
// writes by hand, on one column of 10M VINs with 50k distinct values:
//
//   - naive: hmac.New per row, hex output, a Go string per row, appended to
//     an Arrow string builder — the baseline;
//   - plain: HMAC.Column on the plain string column (precomputed states,
//     parallel ranges, memo of repeated values, no per-row allocation);
//   - dict: HMAC.Column on the same data dictionary-encoded (one pseudonym
//     per dictionary entry, indices shared);
//   - distinct: one pseudonym per op (the cost per distinct value), against
//     BenchmarkSHA256Floor, sha256.Sum256 of 64 bytes: the two block
//     compressions an HMAC of a short value needs at the least.
//
// One op of naive/plain/dict is the whole column, so their ns/op compare
// directly; each also reports ns/row. Because the machine these run on is
// often shared, plain and dict also report x-naive (median over rounds that
// alternate one op of ours with the naive code on a window of rows) and
// distinct reports x-floor (median over alternating rounds of 1,000 values
// against sha256.Sum256): ratios whose two halves saw the same load. The
// column is built lazily on first use, so `go test ./...` only compiles
// this package. Run:
//
//	go test ./benchmarks/pseudonym/ -run '^$' -bench . -count 3
//
// Results and the machine they were taken on: RESULTS.md.
package pseudonymbench
