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
// # Passes and memory
//
// When the policy has a kanon or mobility block, the Runner needs two passes:
// pass 1 reads the source once, applies opt-out, trips, trimming, cells and
// the column actions, feeds the accumulators (quasi-identifier combinations,
// subjects per cell and time bucket, the DP aggregator, the unicity index)
// and spills the transformed rows to a temporary Arrow IPC stream; pass 2
// reads the spill back, suppresses cell-buckets with fewer than k subjects,
// generalises the quasi-identifiers to the levels the search chose,
// suppresses classes below k and writes. Spilling the transformed rows
// (rather than re-opening the source) means stdin needs no special case and
// the expensive steps (trips, H3 cells, pseudonyms) run once; its cost is
// temporary disk space about the size of the uncompressed transformed data.
//
// Memory is bounded by the batch size times the number of batches in flight
// (2 × Workers), plus state that grows with distinct subjects and groups, not
// rows: quasi-identifier combinations per subject, (cell, bucket, subject)
// sets, the DP reservoirs (subject × partition × max_per_partition) and the
// unicity indexes, which are capped at Options.UnicityMaxRows rows.
//
// k-anonymity counts distinct subjects per class by default (kanon.per_subject):
// with hundreds of readings per vehicle, counting rows would overstate k. The
// search runs on a histogram with one entry per (subject, combination); the
// written output is then verified independently (every written class has at
// least k distinct subjects) and the run fails if not.
//
// Risk before and after: prosecutor risk is 1 / the smallest class, journalist
// risk equals it (no population table is given, so the data is its own
// population), marketer risk is classes / subjects. Unicity (package
// mobility) is measured on the raw positions before and on (cell, time
// bucket) of the written rows after, for the output's linkable unit.
//
// What it does not do: it does not decide which columns are identifying (the
// policy author does), it does not protect against an attacker who holds the
// keyring, and k-anonymity protects against re-identification by the listed
// quasi-identifiers only. l-diversity and t-closeness blocks are parsed and
// validated but the Runner refuses them (use `tarnkappe kanon` on the
// output); a release with public_partitions is refused likewise.
//
// k-anonymity is searched over exactly the rows cell suppression keeps: with a
// mobility block, the quasi-identifier histogram is filled by a read of the
// spill after pass 1 that applies the (sealed) cell suppression, so a vehicle
// whose rows all fall in rare cell-hours does not count towards its class.
// k-anonymity suppression then removes whole classes; that can leave a
// cell-hour with fewer than mobility.k vehicles in the output (the cells are
// not re-checked after it).
package anonymize
