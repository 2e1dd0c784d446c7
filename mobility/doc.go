// Package mobility protects movement data: it splits readings into trips,
// trims trip ends, coarsens positions to H3 cells and times to buckets,
// suppresses rarely visited (cell, bucket) groups, and measures how
// identifiable the traces are before and after (unicity).
//
// # Threat model
//
// Timestamped GPS readings of a vehicle are a movement profile. Two attacks
// matter:
//
//   - Home/work inference. Trips start and end at homes, workplaces,
//     schools, doctors. The first and last minutes of a trip point at an
//     address even when the vehicle id is pseudonymised.
//   - Linkage of traces. An adversary who knows a few places and times a
//     person was at (a photo, a parking receipt, a colleague's remark) picks
//     out the one trace that contains them and reads the rest. de Montjoye
//     et al. ("Unique in the Crowd", Sci. Rep. 3:1376, 2013) found four
//     hourly antenna-level points single out 95% of 1.5 M people; raw GPS
//     with millisecond timestamps is unique from one point.
//
// The defences, applied in this order, and what each removes:
//
//  1. Trips (Segmenter): a subject's readings are cut where consecutive
//     readings are more than Gap apart.
//  2. Endpoint trimming: every reading within TrimMetres (great-circle
//     radius) of the trip's first or last reading, or within TrimDuration
//     of the trip's start or end, leaves the trip. The radius rule is
//     stronger than "the first D metres of the path": straight-line distance
//     never exceeds path length, and readings where a trip loops back near
//     an endpoint go as well. Guarantee (tested): no reading of a released
//     trip lies within TrimMetres of the trip's original endpoints. The
//     readings are either dropped (EndpointsDrop) or released detached
//     (EndpointsDetach: null trip id, subject column removed), so that they
//     still count in per-cell aggregates. Dropping them biases those
//     aggregates where trips start and end: discs are cold at departure,
//     and on the demo fleet only 462 of 1,532 busy cell-hours keep their
//     mean disc temperature within 10% when endpoints are dropped.
//  3. Coarsening (Coarsener): coordinates become H3 cells, timestamps are
//     floored to buckets.
//  4. k-suppression (CellSuppressor): rows of a (cell, bucket) group that
//     fewer than K distinct subjects visit are removed, counting the real
//     subject (the vehicle), not the pseudonym.
//  5. Linkable unit (Scope): under ScopeTrip the subject column is replaced
//     by a random per-trip id (crypto/rand), so a vehicle's trips cannot be
//     joined into a multi-day profile. With a stable vehicle pseudonym a
//     coarsened 14-day trace stays unique (see the ablation in
//     benchmarks/mobility/RESULTS.md).
//  6. Trace k-anonymity (TraceGate, Protect's TraceK): a trip keeps its id only when
//     at least TraceK vehicles made a trip with exactly the same released
//     trace; the rows of rarer trips are released detached. Per-trip ids
//     alone leave 19% of trips unique at 4 points (H3 res 6, 1 h): routes
//     through quiet cells are rare. After this step no published trace, and
//     so no set of points drawn from one, singles out fewer than TraceK
//     vehicles; unicity is measured independently and is 0 on the demo.
//
// Other columns can re-link what these steps unlink: a slowly varying
// per-vehicle value (pad wear to the micrometre, odometer), or a rare
// make/model/year combination, joins a vehicle's trips and detached rows
// again. Coarsen or generalise such columns in the same release (package
// kanon, anonymize's column actions); this package only sees movement.
//
// # Composing the steps
//
// Protect runs everything over a record reader in two passes (spooling the
// coarsened rows to a temporary Arrow IPC file). A pipeline that has its own
// passes calls the pieces per batch: pass 1 — Segmenter.Push (then Flush),
// Coarsener.Apply, CellSuppressor.Observe, TraceGate.Observe; then
// TraceGate.Seal(suppressor); pass 2 — CellSuppressor.Apply, TraceGate.Apply,
// and replace the subject column by the trip id. Measure the result with a
// UnicityIndex on (trip, cell, time) with SkipNullSubjects, and the raw input
// with one on (subject, lat/lon, time).
//
// # Why H3
//
// Cells are H3 hexagons (github.com/uber/h3-go/v4) rather than geohash
// rectangles: H3 cells at one resolution have nearly equal area everywhere
// (geohash cells shrink towards the poles and change aspect ratio), every
// hexagon has six neighbours at the same distance (no corner neighbours, so
// traffic flows between cells are comparable), and the 16 resolutions nest
// hierarchically (about 7 children per parent, areas from 4.3 M km² to
// 0.9 m²), so a release can be coarsened further by taking parents. The cell
// column is dictionary<int32, utf8> of the 15-hex-digit index.
//
// # Unicity
//
// UnicityIndex builds, for each subject, its trace — the set of distinct
// (space, time) points of its rows at the data's current resolution: raw
// latitude, longitude and timestamp exactly as given, or a cell column and a
// bucket column — and an inverted index point → sorted subjects. Estimate
// draws subjects (without replacement), draws P distinct points of each
// subject's trace, and counts the subject unique when the intersection of
// the points' subject lists is the subject alone. It reports the fraction
// with a Wilson score interval (over the drawn subjects; the draw of points
// adds variance the interval does not cover). Sampling uses a seeded ChaCha8
// generator on purpose: unicity is a measurement, and the same data and
// seed must give the same figure; it is never used to protect data.
//
// Subjects with fewer than P points: de Montjoye et al. do not say. By
// default (ShortUseAll) their whole trace is the adversary's knowledge and
// they count as unique when no other trace contains all their points;
// ShortExclude leaves them out of the denominator. Both are reported
// (UnicityResult.Short). Under ScopeTrip the subject is the trip, and most
// trips have fewer than four cell-buckets, so the default matters; it is
// the conservative choice for a release because short trips in quiet cells
// count as unique.
//
// Points are identified by a 64-bit mix of their values, not stored: two
// distinct points collide with probability about n²/2⁶⁵ (10⁻⁵ for 10⁷
// points), which could only merge two points.
//
// # Input handling
//
// Null subjects, timestamps, latitudes or longitudes, NaN coordinates,
// latitudes outside [-90, 90] and longitudes outside [-180, 180] are errors
// that name the row and the column in package rowerr's format (`row N,
// column "x": …`; rows count from 1 across all batches a transform has
// seen, so for a transform fed every row of an input they are its data
// rows; errors.As finds the rowerr.Error); subject values are never printed,
// they are identifiers. A single-reading trip is its own first and last reading: any
// TrimMetres > 0 or TrimDuration > 0 drops it (TripStats.TripsEmpty counts
// trips that trimming removed entirely). Every input row is accounted for:
// RowsIn = RowsOut + RowsTrimmed (trips) and, in Protect, + RowsSuppressed.
//
// # Streaming and sorting
//
// The Segmenter takes batches as ingestion produces them (rows of all
// subjects interleaved in time order, OrderTime) and emits a trip's rows
// once no later reading can extend it, so memory is bounded by the open
// trips. Input in any other order is first sorted by SortBySubjectTime: runs
// of MaxRowsInMemory rows are sorted in memory, spilled to temporary Arrow
// IPC stream files and merged; its output goes through a Segmenter with
// OrderSubject. Tests check that unsorted input gives the same trips as
// time-ordered input. A Segmenter fed rows it cannot place fails with an
// error matching ErrOrder; Grouped then says whether OrderSubject would
// have streamed the rows so far (anonymize.Runner uses both to stream
// vehicle-by-vehicle exports unsorted and to sort only what must be).
//
// # Suggested policy (the demo's)
//
// Measured on the brake-disc demo fleet (examples/brakedisc DefaultConfig:
// 1 M rows, 2,000 vehicles, 14 days): unicity at 4 points 100% raw, 0 after
// (upper 95% bound 0.0003); hourly mean disc temperature within 10% in all
// 1,532 res-6 cell-hours with >= 20 vehicles; 11,931 of 31,647 trips keep a
// (random) trip id. Figures, ablation and commands:
// benchmarks/mobility/RESULTS.md. As ProtectOptions:
//
//	Gap: 10 * time.Minute, TrimMetres: 1000, TrimDuration: 2 * time.Minute,
//	Endpoints: EndpointsDetach, Resolution: 6 /* ≈ 36 km² */, Bucket: time.Hour,
//	K: 5, Scope: ScopeTrip, TripID: "trip", TraceK: 5
//
// and as an anonymize policy block:
//
//	mobility:
//	  trip_gap: 10m
//	  trim_metres: 1000
//	  trim_time: 2m
//	  endpoints: detach      # drop | detach
//	  cell_resolution: 6
//	  time_bucket: 1h
//	  k: 5                   # vehicles per (cell, hour)
//	  scope: trip            # trip | subject
//	  trace_k: 5             # vehicles per published trip trace
//
// Resolution 7 (≈ 5 km²) keeps finer cells but only 390 trips stay
// linkable; resolution 5 (≈ 253 km²) with K 10 and no TraceK reaches 4.3%
// unicity with every trip linkable but cells too coarse for most traffic
// questions.
//
// # What this package does not do
//
// It does not make movement data anonymous in the sense of a formal
// guarantee: unicity is an empirical measure against an adversary who knows
// P points, k-suppression bounds the smallest group but not what a group
// reveals (all vehicles in a cell-hour may share a destination), and a
// trip's remaining cells still show its route. Speed and timing along a
// trip may still narrow it down. It does not pseudonymise identifiers
// (package pseudonym) and does not add noise (package dp, for released
// aggregates). Trip ids under TripIDRandom are not reproducible across runs
// by design.
package mobility
