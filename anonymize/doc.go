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
//	generalize → k-anonymity (second pass) → drop/keep → output order → sink
//
// and produces a Report (JSON for machines, self-contained HTML for people).
//
// Rows may come in any order. With a mobility block the trips need each
// subject's readings in time order; Run streams input in time order (as
// ingestion writes it) or grouped by subject (a vehicle-by-vehicle export)
// as it comes, finding out which while it streams, and sorts any other
// input by subject and time first, in bounded memory (encrypted temporary
// files). Nothing needs declaring; the report's input_details.order says
// how the rows were read. See Runner.Run and Options.Reopen.
//
// Errors about data name the data row and the column in package rowerr's
// format, `row N, column "x": …`, rows counted from 1 in input order
// (errors.As finds the rowerr.Error; the chain below it is kept): after the
// opt-out removed rows, the row is still the input's (RowSpan). Rows that
// trips regrouped, and the spill's, are no data rows: such errors name the
// column only. Run adds "anonymize: " once; each stage adds what it was
// doing (trips, cell suppression, kanon, release, …), never a callee's
// package name again.
//
// What it promises:
//   - Deny by default. An input column the policy does not name is an error,
//     and so is a policy key this package does not know; policy errors give
//     file, line and column.
//   - Every input row is accounted for: rows.in = rows.out + rows.suppressed +
//     rows.filtered, checked at the end of every run; under mobility scope
//     trip, rows.out = rows with a trip id + rows without (detached trip
//     ends + rows of trips the trace gate did not publish), all counted on
//     the written rows.
//   - The order of the written rows carries no information beyond the
//     published values: rows are sorted by their published time bucket and
//     are in a random order within it (a secret drawn per run, never
//     stored), in bounded memory; batch boundaries and dictionaries depend
//     on the written rows alone (OutputOrder). The DP release lists its
//     partitions in key order (sorted, or the public list's).
//   - Opt-out lists are held keyed (HMAC under a keyring domain), never in
//     clear; the report counts opted-out rows and never lists subjects. A
//     subject is matched by its normalised identity, not its spelling (see
//     Opt-out below).
//   - A mask never publishes a value unchanged: a value too short to keep
//     its prefix and suffix is masked whole, and the report counts it.
//   - Keys never appear in errors, logs or reports: reports carry key ids.
//   - A report says which build, policy and input made it, without holding
//     any value of the data: Version, the policy file's SHA-256, the
//     input's size, the SHA-256 of its column names and types, and a keyed
//     fingerprint of the input file (not a plain hash, which would let
//     anyone with a guess of the data confirm it; see FingerprintFiles).
//   - A DP release's report shows every released value with its interval
//     and dp's verdict on how much they say (Result.Verdict).
//   - The data's sink is made before the first row is read (a path that
//     cannot be written fails at once); every output (data, release, the
//     reports of Options.Reports) is written to a temporary file and all are
//     committed together at the end (arrowio.CommitAll: all or none). On any
//     error, and when ctx is cancelled at any step, no output remains, the
//     scratch files are removed and the input is untouched.
//   - Scratch files live in a folder of the run's own, locked while its
//     process lives; each Run removes the folders of runs that died (killed,
//     crashed) before it starts.
//   - Memory is bounded by the batch size and the number of distinct
//     quasi-identifier combinations and subjects, not by the number of rows.
//
// # Opt-out
//
// Opt-out is the one step where a miss publishes someone who refused, so
// the list and the subject column go through the same normalisation before
// they are compared (OptOutPolicy.Normalize, default text): a lower-case VIN
// in the list, a spreadsheet's byte order mark, quotes or CRLF, a trailing
// space, a no-break or zero-width space, or full-width characters in either
// the list or the data do not leave a vehicle in the output. Mode vin also
// removes spaces and dashes inside, upper-cases and reads I, O, Q as 1, 0, 0,
// and requires every list entry to be a 17-character VIN, so a header line
// or a CSV export with several columns fails the run instead of matching
// nothing; mode exact compares values as written. An int64 subject column is
// matched by value ("00123" in the list is 123). With form pseudonym the
// subject is normalised before its pseudonym is computed, and the pseudonym
// of the value as written is tried too (a pseudonym copied from an earlier
// output); in mode text the normal form keeps case, so a case variant there
// has a pseudonym of its own, which mode vin avoids by upper-casing.
//
// The list file: UTF-8 (a BOM is skipped; UTF-16 with a BOM is decoded);
// lines end in LF, CRLF or CR; blank lines and # comments (whole-line, or
// after white space) are skipped; an entry may be quoted; NUL bytes,
// invalid UTF-8, unclosed quotes and text after a closing quote are errors
// naming the line, never quoting an entry. The report's opt_out.listed
// counts distinct subjects after normalisation (duplicates and variants
// once); opt_out.rows_not_normalized counts the input rows whose subject is
// not in normal form (under exact, the text form). Matching sees through
// them, but the later per-subject steps (k-anonymity per subject, DP
// contribution bounds, date shift, pseudonyms) use the value as written and
// so count two subjects in "WVW…" and "wvw… ": the run warns
// (Report.Warnings, on stderr through the CLI) so that the data owner cleans
// the column.
//
// # Mask
//
// The mask action keeps keep_prefix leading and keep_suffix trailing
// characters (Unicode code points of the NFC form, never bytes) and writes
// the mask character for the rest. A value no longer than keep_prefix +
// keep_suffix is masked whole rather than published unchanged (a 5-digit
// postcode under a 3+3 mask); the report counts such rows per column
// (masked_whole) and the run warns. We chose masking over failing the run:
// short values are common in real columns (short names, old postcodes) and
// masking them whole loses nothing the policy meant to keep. Without width
// the output has the input's length, which publishes the length (fine for
// fixed-length codes); with width every value is written as exactly that
// many characters.
//
// # Passes and memory
//
// Run is six steps, a file each (run.go lists them): start, pass 1,
// decide, pass 2, write, finish. Every run has both passes (the output
// order needs every row before it writes the first): pass 1 reads the
// source once, applies opt-out,
// trips, trimming, cells and the column actions, feeds the measures (one
// small type each, measure.go: quasi-identifier combinations when there is
// no mobility block, subjects per cell and time bucket, the DP aggregator,
// the unicity indexes, the utility means, the trace gate) and spills the
// transformed rows to a temporary Arrow IPC stream. With a
// mobility block it also writes 12 bytes of keys per row (subject, cell-hour
// group, raw quasi-identifier combination): the quasi-identifier
// combinations of the rows cell suppression keeps are counted from them (see
// below), and so are the settle rounds and pass 2's cell suppression, without
// decoding the spill; pass 2 reads the spill back, suppresses cell-buckets with fewer than k subjects,
// generalises the quasi-identifiers to the levels the search chose,
// suppresses classes below k, detaches the trips the trace gate does not
// publish and hands the rows to the output order, which puts them into
// encrypted partition files by time bucket; write reads one partition at a
// time, shuffles it within its buckets and writes it. finish hands the figures the passes
// and the measures gathered to the report builder (Steps.Report, which the
// Beam pipeline calls too), renders the reports, prepares every output and
// commits them together. Spilling the transformed rows
// (rather than re-opening the source) means stdin needs no special case and
// the expensive steps (trips, H3 cells, pseudonyms) run once; its cost is
// temporary disk space about the size of the uncompressed transformed data.
//
// Memory is bounded by the batch size times the number of batches in flight
// (2 × Workers), plus state that grows with distinct subjects and groups, not
// rows: quasi-identifier combinations per subject, (cell, bucket, subject)
// sets, the DP reservoirs (subject × partition × max_per_partition), the
// unicity indexes, which are capped at Options.UnicityMaxRows rows, and the
// utility measure's vehicles per raw cell-hour, over a 31-day window from
// the first input batch's day (the report says when the data is longer).
// The trace gate's per-trip traces go to temporary partition files past 2^18
// open trips. The output order holds one partition in memory (about 32 MiB
// as estimated from the written schema; twice that while it is read back)
// and a 64 KiB buffer per partition file while pass 2 writes them. On top of that, Run sets a soft memory limit for the Go
// runtime (Options.MemoryLimit, default 768 MiB, unless GOMEMLIMIT is set):
// without it the collector lets garbage grow to twice the live state.
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
// # Movement data: why the example policy publishes trips, not vehicles
//
// examples/brakedisc/policy.yaml (what `tarnkappe demo` runs) uses mobility
// scope trip: a random id per trip replaces the vehicle, trip ends are
// detached (kept, with no trip id, for per-cell figures), positions become
// H3 cells of resolution 6, times hours, cell-hours with fewer than 5
// vehicles are suppressed and a trip keeps its id only when 5 vehicles made
// a trip with the same trace. With scope subject (the VIN pseudonymised as
// the linkable unit) the same cells and hours left 90% of vehicles unique at
// 4 points on the demo fleet: a stable pseudonym joins 14 days of trips into
// one trace, and no amount of coarsening at useful resolutions fixes that.
// Per trip the measured unicity at 4 points is 0% (issue 7: <= 5%), while
// the hourly mean disc temperature per cell with >= 20 vehicles stays within
// 10% of raw in every such cell-hour (mobility.utility in the report).
// Columns that would re-link trips are not published beside them: pad wear
// to the micrometre (a per-vehicle series: publish it in a separate release
// without positions) and the model (rare models, with their year, pick out
// few vehicles); the owner columns are generalised to k=10 vehicles. The
// VIN never leaves the run, but it is still used inside it, keyed: opt-out,
// k-anonymity per vehicle, cell-hour k and DP contribution bounds all count
// vehicles, not trips. The unicity figure measures the movement trace only;
// it does not model an attacker who joins trips by their other columns.
//
// What it does not do: it does not decide which columns are identifying (the
// policy author does), it does not protect against an attacker who holds the
// keyring, and k-anonymity protects against re-identification by the listed
// quasi-identifiers only.
//
// # l-diversity and t-closeness
//
// kanon.l and kanon.t protect one sensitive column: every written class
// also satisfies l-diversity (distinct, entropy or recursive (c,l)) or
// t-closeness (equal or ordered distance) of it. The models are package
// kanon's: the search runs on a histogram that carries the sensitive value
// and suppresses (within kanon.suppression) or generalises further until the
// models hold; the Runner then decides which classes to suppress, repeats
// that in every settle round (cell-hour suppression can take a class's
// diversity away while leaving it k members) and re-checks the written rows,
// each time with kanon.Verify, the independent checker, over one row per
// member of every class. The run fails closed if the written rows fail.
//
// How a class's sensitive distribution is counted when classes count
// subjects (per_subject, the default): each subject once, with its value —
// the distinct (subject, value) pairs of the class, where a subject may hold
// only one value. The sensitive column must therefore be an attribute of
// the subject (the owner's diagnosis, the vehicle's make), not a per-reading
// measurement; a subject whose rows carry two values is an error naming the
// column and row. Why not rows: one vehicle with 500 readings would
// outweigh four vehicles with one each, so a class of four "severe" owners
// and one chatty "mild" one would look 99% mild, and the attacker who knows
// a target is in the class is 80% sure of "severe". Why not several values
// per subject, counted once each: the shares then no longer describe
// people. Five vehicles all with value A, one of which also reports B, C, D
// and E, give pairs A:5 B:1 C:1 D:1 E:1 — distinct 5-diverse and of entropy
// above log 3, yet every member has A (the homogeneity attack l-diversity
// exists to stop). One value per subject makes the counts exactly the
// textbook model over people, and k is still counted in subjects. With
// per_subject false, every row is a person and rows are counted (ARX's
// model).
//
// The distribution t-closeness compares with is that of the members the
// search counted (before suppression, after cell suppression), as in ARX;
// the checks of settle rounds and of the output use the same one. The
// sensitive values checked are the published ones (after the column's
// action), which is what an attacker sees; the column must be published
// (not dropped), must not be the subject or a quasi-identifier, and ordered
// t-closeness refuses a pseudonymised column (pseudonyms keep values apart
// but have no order). A null sensitive value is an error naming the column
// and row. The report's kanon block names the models (kanon.l, kanon.t),
// what was counted (kanon.sensitive_counted) and the classes suppressed for
// them alone (kanon.diversity_suppressed_classes); kanon.verified covers
// them. Not supported through Steps (Steps.KAnonSearch and so beam refuse a
// policy with l or t rather than search k alone).
//
// A release block either selects partitions privately (delta > 0; with a few
// thousand subjects that releases few fine-grained partitions) or releases a
// public list: a CSV file (public_partitions, or public.file) or one generated
// from public parameters only (public.bbox: every H3 cell covering the box
// at the release's cell resolution, × the 24 values of hour_of_day). Public
// partitions spend no budget on selection; every listed partition is
// released, with noise over zero where the data has none, and rows in other
// partitions do not count. hour_of_day (the UTC hour of a timestamp column)
// and release.cell_resolution (parents of the output cells) are derived for
// the release only. The example policy releases mean disc temperature per
// resolution-5 cell over Munich's city area, public partitions: 7 on the
// demo (finer partitions were mostly noise at the demo's fleet size).
//
// k-anonymity is searched over exactly the rows cell suppression keeps: with a
// mobility block, the quasi-identifier histogram is filled by a read of the
// row keys after pass 1 that applies the (sealed) cell suppression, so a vehicle
// whose rows all fall in rare cell-hours does not count towards its class.
// k-anonymity suppression then removes whole classes, which can leave a
// cell-hour with fewer than mobility.k vehicles (84 of 4,231 on the demo);
// suppressing those can in turn thin a class out. Before pass 2 the Runner
// iterates the two to a fixed point (settle: each round reads the row keys
// through every suppression so far and adds the cell-hours and classes that
// fell below their k; the sets only grow, so it ends — two rounds on the
// demo — and fails after 10). The k-anonymity suppression limit covers the
// added classes. Both properties are then checked independently on the
// written rows (classes ≥ k, cell-hours ≥ mobility.k), and the run fails
// closed if either does not hold. The trace gate was sealed before the
// added suppressions: a published trip can lose points afterwards (its
// trace then differs from the ones counted); unicity after is measured on
// the written rows, so the figure includes that effect.
package anonymize
