// Package anonymize applies a declarative policy to a stream of Arrow record
// batches: it is what a consortium member runs in its ETL job before pooling
// data.
//
// A Policy (YAML, versioned, strict) names what happens to every column:
// keep, drop, pseudonymize (keyed HMAC, AES-SIV or FF1 via package pseudonym),
// dateshift, generalize, coarsen or mask; optionally a k-anonymity block
// (package kanon), a movement-profile block (package mobility) and a
// differentially private release (package dp). A Runner streams a source
// through the policy in this order:
//
//	opt-out filter → mobility → pseudonyms / date shift / coarsen / mask /
//	generalize → k-anonymity (second pass) → drop/keep → sink
//
// and produces a Report (JSON for machines, self-contained HTML for people).
//
// What it promises:
//   - Deny by default. An input column the policy does not name is an error,
//     and so is a policy key this package does not know; policy errors give
//     file, line and column.
//   - Every input row is accounted for: rows.in = rows.out + rows.suppressed +
//     rows.filtered, checked at the end of every run.
//   - Opt-out lists are held keyed (HMAC under a keyring domain), never in
//     clear; the report counts opted-out rows and never lists subjects.
//   - Keys never appear in errors, logs or reports: reports carry key ids.
//   - The output is written to a temporary file and renamed on success; on any
//     error no output file remains and the input is untouched.
//   - Memory is bounded by the batch size and the number of distinct
//     quasi-identifier combinations and subjects, not by the number of rows.
//
// What it does not do: it does not decide which columns are identifying (the
// policy author does), it does not protect against an attacker who holds the
// keyring, and k-anonymity protects against re-identification by the listed
// quasi-identifiers only.
package anonymize
