// Package beam runs a tarnkappe anonymisation policy on Apache Beam, for data
// pools larger than one machine: the same policy file, the same column
// kernels (packages pseudonym, kanon, dp), the same results and report
// fields as the single-machine anonymize.Runner.
//
// It is its own Go module (github.com/tarnkappe/tarnkappe/beam) so that
// Beam's dependency graph never reaches users who import only the library.
//
// The pipeline (Anonymize, or Run to build and execute it):
//
//	Read          input files → Arrow record batches (Arrow IPC elements)
//	OptOut        drop every row of listed subjects (list held keyed)
//	Pseudonymize  column actions with package pseudonym's column kernels
//	Generalize    exact k-anonymity: (combination, subject) pairs via
//	              CombinePerKey → one global Combine → kanon.Search →
//	              generalise + suppress in a second ParDo (decision as a
//	              side input) → recount of the written classes
//	Release       subjects sharded by key (GroupByKey) → dp.Aggregator
//	              bounds contributions per shard → dp.Partial merged in a
//	              CombineFn → noise and partition selection once, at the end
//	Commit        one final step merges the output shards into the output
//	              file (temporary file + rename), writes the release and the
//	              report; nothing is committed when any step failed
//
// What it promises:
//   - Keys never travel in the pipeline graph: Config carries the keyring's
//     path and every worker reads it in Setup (tested: the marshalled
//     pipeline holds no key bytes). Opt-out lists are read the same way and
//     held keyed.
//   - Pseudonyms equal the single-machine run's under the same keyring; the
//     k-anonymity transformation and the suppressed rows are the same; the
//     DP release bounds contributions per subject exactly as package dp does
//     on one machine (subjects are never split across shards, as
//     dp.Partial.Merge requires), and spends the policy's (ε, δ) once.
//   - A worker error names the input file, column and row; the output and
//     release files appear only after every step succeeded.
//
// What it does not do (yet): any policy field this package does not
// implement is an error when set (checked by reflection over the policy
// types, so a field added to package anonymize later fails closed here). Not
// implemented: the policy's mobility block (trip segmentation
// needs every subject's readings in time order: a GroupByKey per subject
// with sorted values, not built here), l-diversity, t-closeness and public
// partition lists (public_partitions, public) and release.hour_of_day.
// An input file is read by one worker (files, not row groups, are the
// unit of parallel reading). Files are read and written through the local file system (internal/arrowio), so on
// a cluster the paths must be on storage every worker mounts; Beam's gs://
// and s3:// file systems are not wired in. Unicity (risk.*.unicity) is not
// measured.
package beam
