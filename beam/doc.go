// Package beam runs a tarnkappe anonymisation policy on Apache Beam, for data
// pools larger than one machine: the same policy file, the same column
// kernels (packages pseudonym, kanon, dp), the same results and report
// fields as the single-machine anonymize.Runner.
//
// It is its own Go module (github.com/tarnkappe/tarnkappe/beam) so that
// Beam's dependency graph never reaches users who import only the library.
//
// Every transformation of rows is package anonymize's own code, reached
// through its exported seam anonymize.Steps (the single-machine Runner's
// plan for one input schema: opt-out, trip segmentation and coarsening,
// column actions, generalisation, the DP release's input and options, the
// k-anonymity search and the report blocks). This package only schedules
// those steps on Beam workers and replaces the Runner's in-memory state and
// spill-file passes by shuffles and combiners.
//
// The pipeline (Anonymize, or Run to build and execute it):
//
//	Read          input files → Arrow record batches (Arrow IPC elements)
//	OptOut        drop every row of listed subjects (list held keyed)
//	Pseudonymize  column actions with package pseudonym's column kernels
//	              (policies without a mobility block)
//	Trips         mobility block: rows sharded by subject (GroupByKey), put
//	              in (subject, time) order (mobility.SortBySubjectTime,
//	              stable over input order), cut into trips and trimmed by the
//	              Runner's Segmenter, coarsened to H3 cells, column actions;
//	              checkpointed by a Reshuffle (trip ids are random)
//	Generalize    mobility: (cell, bucket) → distinct subjects capped at k
//	              (CombinePerKey) → thin groups; trip → points (CombinePerKey)
//	              → trace outside thin groups → GroupByKey → trips that at
//	              least trace_k subjects share keep their id.
//	              Exact k-anonymity: (combination, subject) pairs of the rows
//	              cell suppression keeps via CombinePerKey → one global
//	              Combine → kanon.Search (anonymize.Steps.KAnonSearch).
//	              With l/t the sensitive value joins
//	              every pair (per subject with the input position of the
//	              pair's first row, kept by a minimum, so that a subject with
//	              two values fails at the row the Runner names) or every
//	              combination's row count; the written rows' members are
//	              counted per (class, sensitive value) for the Runner's own
//	              check (in the report builder, anonymize.Steps.Report).
//	              The Runner's fixed point of cell-hour k and k-anonymity,
//	              unrolled over its 10 rounds (each a pass with two
//	              CombinePerKeys and a decision; a settled state passes
//	              through); with l/t each round also counts the surviving
//	              members per (class, sensitive value) (CombinePerKeys) and
//	              the Runner's decision suppresses the classes failing l/t
//	              (anonymize.Steps.KAnonDiversityFails). A second ParDo suppresses thin groups, detaches
//	              unpublished trips, generalises and suppresses classes
//	              (decisions as side inputs); the written classes and
//	              (cell, bucket) groups are recounted for verification
//	Microaggregate  the microaggregate column action: per bundle of trip
//	              batches the group sums (anonymize.MicroAgg, exact sums)
//	              of every row before suppression, merged by one Combine;
//	              the second ParDo writes each row's (cell, bucket) mean
//	              (side input) after cell suppression, before k-anonymity
//	Release       subjects sharded by key (GroupByKey) → dp.Aggregator
//	              bounds contributions per shard → dp.Partial merged in a
//	              CombineFn → noise once, at the end; private or public
//	              partitions, hour_of_day and coarser release cells as on
//	              one machine
//	Measures      mobility: per (cell, bucket) value sums, row counts and
//	              distinct subjects capped at min_subjects of the raw rows
//	              (CombinePerKey) for mobility.utility; under scope trip the
//	              re-linking lint (anonymize.RelinkLint) over the trip
//	              batches, a partial per bundle merged by a Combine
//	Risk          mobility: the Runner's linkage and unicity measure
//	              (anonymize.Linkage, keyed samples: Config.MeasureKey):
//	              raw GPS unicity over the opted-in input batches and the
//	              candidate traces over the trip batches, a partial per
//	              bundle merged by a Combine; the raw readings at published
//	              precision (trip batches, microaggregated, the candidates
//	              sealed with the trace gate's ids and the k-anonymity
//	              levels: side inputs), one index per bundle for the commit
//	              step, the unicity before merged by a Combine; the second
//	              ParDo of Generalize indexes the written rows per bundle
//	Commit        one final step writes the output shards' rows into the
//	              output file (temporary file + rename) through the Runner's
//	              output-order step (anonymize.OutputOrder: by published time
//	              bucket, at random within; partitions sized by the rows per
//	              bucket the final step counted), measures the written rows
//	              (utility means), checks the re-linking lint, gathers the run's
//	              anonymize.Figures and has the Runner's report builder
//	              (anonymize.Steps.Report) check them and make the report
//	              (the linkage measure: every partial state merged;
//	              mobility.max_linkage checked first, before any output
//	              file is written: anonymize.Steps.CheckLinkage), so
//	              the two engines' reports hold the same fields (tested
//	              field by field); it writes the release and the report;
//	              nothing is committed when any step failed
//
// What it promises:
//   - Keys never travel in the pipeline graph: Config carries the keyring's
//     path and every worker reads it in Setup (tested: the marshalled
//     pipeline holds no key bytes). Opt-out lists are read the same way and
//     held keyed. The one key the graph does carry is Config.MeasureKey,
//     drawn per run: it decides which subjects and traces the linkage and
//     unicity measures sample, and protects no value.
//   - The same rows as the single-machine run under the same keyring (tested
//     on the example policy the demo runs, examples/brakedisc/policy.yaml,
//     and on the one before issue #12 with k-anonymity beside trips): same pseudonyms, trips (which
//     rows share a trip id; the ids themselves are random in both), trimmed,
//     detached and suppressed rows, settle rounds, k-anonymity
//     transformation and classes. The DP release bounds contributions per
//     subject exactly as package dp does on one machine (subjects are never
//     split across shards, as dp.Partial.Merge requires), releases the same
//     partitions when they are public, and spends the policy's (ε, δ) once.
//     The file's rows are in the Runner's output order (by published time
//     bucket, uniformly at random within it), not in the order of the
//     shards (subject shards and trips); tests compare rows as multisets.
//   - Microaggregated values equal to the single machine's bit for bit:
//     the group sums are exact, so the order in which workers add rows
//     does not matter (tested on the example policy).
//   - The report's mobility.utility as on one machine: the same groups,
//     window and counts (tested equal; the relative errors up to the order
//     of float additions). Under scope trip a published column that maps
//     one to one to subjects fails the run with the single machine's
//     message before anything is committed (the re-linking lint's partial
//     states merged; tested).
//   - The report's risk block as on one machine (tested field by field):
//     linkage and linkage_correct of published traces, unicity before and
//     after at published precision and at raw GPS precision, the columns
//     driving linkage; the samples are keyed and their partial states merge
//     exactly (package linkage), so with the same MeasureKey the figures
//     are the single machine's. Under scope trip the trip ids are random in
//     both engines and key the trace sample's draws: the figures are equal
//     when every published trip is sampled (up to 2,000) and diagnosed (up
//     to 300), and another draw of the same sample design beyond. A policy
//     whose measured linkage may exceed mobility.max_linkage fails with the
//     single machine's message and commits nothing (tested).
//   - With l-diversity or t-closeness (tested with and without a mobility
//     block) the same rows, suppressed classes (those failing l/t
//     included), settle rounds and kanon report fields (l, t,
//     sensitive_counted, diversity_suppressed_classes) as on one machine;
//     bad sensitive data (a null, a subject with two values) fails with the
//     single machine's message, column and row (without a mobility block;
//     with one see below).
//   - A worker error names the input file and, in package rowerr's format,
//     the data row and column the Runner names (`row N, column "x": …`,
//     from 1 in the file; Batch.Removed maps rows after the opt-out back to
//     the file's), checked before the shuffle by subject where row numbers
//     are lost; the output and release files appear only after every step
//     succeeded.
//
// What it does not do (yet): any policy field this package does not
// implement is an error when set (checked by reflection over the policy
// types, so a field added to package anonymize later fails closed here).
// With a
// mobility block, an error in the
// sensitive column (a null, a subject with two values) names the subject
// shard of the trip step and the column but no row: trips regroup the rows
// (the Runner names none either); the same data fails on both with the same
// message. The commit step measures written columns: the utility column
// must be written (an error otherwise). The published trip ids are a side input of the final
// pass (one int64 per published trip on every worker), and each trip shard
// is sorted by one worker (spilling to its local temporary directory beyond
// 1M rows). Input rows need not be in time order (the Runner requires time
// order within the trip gap; Beam sorts). An input file is read by one
// worker (files, not row groups, are the unit of parallel reading). Files
// are read and written through the local file system (arrowio), so
// on a cluster the paths must be on storage every worker mounts; Beam's
// gs:// and s3:// file systems are not wired in.
package beam
