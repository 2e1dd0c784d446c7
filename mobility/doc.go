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
//     of the trip's start or end, is dropped. The radius rule is stronger
//     than "the first D metres of the path": straight-line distance never
//     exceeds path length, and readings where a trip loops back near an
//     endpoint go as well. Guarantee (tested): no released reading lies
//     within TrimMetres of its trip's original endpoints.
//  3. Coarsening (Coarsener): coordinates become H3 cells, timestamps are
//     floored to buckets.
//  4. k-suppression (CellSuppressor): rows of a (cell, bucket) group that
//     fewer than K distinct subjects visit are removed, counting the real
//     subject (the vehicle), not the pseudonym.
//  5. Linkable unit (Scope): under ScopeTrip the subject column is replaced
//     by a random per-trip id (crypto/rand), so a vehicle's trips cannot be
//     joined into a multi-day profile. This is what brings unicity down:
//     coarsening alone does not (over 14 days a vehicle's set of cell-hours
//     stays unique, as de Montjoye's own coarsening experiments show — the
//     unicity of a trace decays only slowly with resolution).
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
// that name the column and the row (rows count from 0 across all batches a
// transform has seen); subject values are never printed, they are
// identifiers. A single-reading trip is its own first and last reading: any
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
// time-ordered input.
//
// # Suggested policy (the demo's)
//
// Measured on the brake-disc demo fleet (examples/brakedisc DefaultConfig:
// 1 M rows, 2,000 vehicles, 14 days; figures and command in
// benchmarks/mobility/RESULTS.md):
//
//	mobility:
//	  trip_gap: 10m          # Gap
//	  trim_metres: 1000      # TrimMetres
//	  trim_time: 2m          # TrimDuration
//	  cell_resolution: 7     # Resolution (≈ 5.2 km² hexagons)
//	  time_bucket: 1h        # Bucket
//	  k: 5                   # K, distinct vehicles per (cell, hour)
//	  scope: trip            # Scope: per-trip random ids replace the vin
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
