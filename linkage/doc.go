// Package linkage measures how well published traces can be linked back to
// the subjects of the raw data, and how unique traces are, at the precision
// they are published with, in bounded memory.
//
// # The adversary
//
// Someone holds the raw readings of the subjects — a consortium member (it
// runs the pipeline on its own data), whoever obtains a leak of those raw
// readings, or a vehicle's own app, which sees that vehicle's readings —
// and knows the policy (cell resolution, time buckets, coarsening steps,
// generalisation levels: the report publishes them). It projects its raw
// readings to the published precision and looks for the subjects whose
// readings contain a published trace's points. When exactly one subject
// does, the trace is linked: its id hides nothing any more. That is the
// attack on real taxi traces that linked 90% of published trips through
// per-reading values the trace gate did not look at; every published column
// is part of a point here, not only the cell and the hour.
//
// The measures:
//
//   - Traces: linkage (share of published traces contained in exactly one
//     subject's raw readings, and the share linked to the right subject when
//     the truth is known), unicity after publication (share of published
//     traces that p points drawn from them single out among all published
//     traces: de Montjoye et al., "Unique in the Crowd", Sci. Rep. 3:1376,
//     2013), and which columns drive the linkage (the linkage with each
//     column left out).
//   - Subjects: unicity of raw subjects' traces, at any precision: the raw
//     readings projected to the published precision (comparable with the
//     unicity after publication) or as they are (raw GPS).
//
// A point is the key of a row's values (Keyer, Combine): equal values key
// alike whatever their Arrow type, so a published file read back from
// Parquet or CSV matches the rows the pipeline wrote.
//
// # Samples and memory
//
// Both measures work on keyed uniform samples of the whole input — the
// units (traces, subjects) with the lowest keyed pseudo-random priority
// (AES-256 of the unit under a Key), which is a uniform sample without
// replacement that nobody can predict without the key — never on a prefix
// of the rows. Traces indexes only the raw and published rows in the
// blocks (cell, time bucket) the sampled traces touch: a subject whose
// readings contain a point has a reading in the point's block. Subjects
// keeps every subject's points, or, when they exceed its bound, the points
// whose keyed hash falls below a threshold that halves as needed (distinct
// sampling), so that every eligible point's subjects are all known. Both
// shrink their sample rather than grow past MaxPairs, and say so.
// Intervals are Wilson score intervals over the sampled units.
//
// # What it does not do
//
// It does not model an adversary who knows only part of the raw readings
// (that one links less), nor inference from values across rows (a disc's
// temperature continuing from one reading to the next): the measure is the
// raw-holder's exact-match attack, the strongest of its kind. It measures;
// the protections are the policy's (package anonymize).
package linkage
