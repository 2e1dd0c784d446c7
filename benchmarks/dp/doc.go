// Package dpbench benchmarks the dp package's release path against the DP
// library's objects fed row by row (what a user writes by hand) and against a
// plain, non-private group-by (the floor). See RESULTS.md.
package dpbench
