// Package kanon makes tabular data k-anonymous (optionally l-diverse or
// t-close) by optimal full-domain generalisation and suppression, the model
// of ARX (arx.deidentifier.org), over Arrow record batches in bounded memory.
//
// # How it works
//
// Each quasi-identifier has a Hierarchy: level 0 is the value, each level
// above is coarser (table hierarchies from ARX-layout CSV files, interval,
// mask, date/time and geo-cell hierarchies). A transformation picks one
// level per quasi-identifier; all transformations form a lattice.
//
//  1. BuildHistogram (or HistogramBuilder.Add per batch) reads the data
//     once and counts each distinct combination of quasi-identifier values
//     (plus the sensitive value for l/t). Dictionary columns are mapped code
//     by code; memory is proportional to the distinct combinations, not
//     the rows.
//  2. Search finds the transformation of least information loss whose
//     classes satisfy the models, with at most floor(SuppressionLimit·rows)
//     rows suppressed. A node is evaluated by rolling the histogram (or the
//     smallest table already rolled up below it) up through per-level
//     lookup tables, never by rescanning rows: a rolled-up table has a row
//     per class with its size and, for l and t, its sensitive-value
//     frequencies, which the roll-up merges (as ARX's snapshots do). The
//     search is exact: nodes are taken in order of a data-free lower bound
//     of their loss, decided by FLASH-style binary search on paths with
//     predictive tagging (Kohlmayer et al. 2012), and proved non-anonymous
//     for free by one- and two-column marginals. Where l or t with
//     suppression make anonymity non-monotone, the search runs ARX's two
//     phases: it probes and tags the k-part (rows in classes too small for
//     any model fit the limit), which is monotone, then checks the nodes
//     where it holds, a batch at a time on all cores; a metric monotone
//     whatever is suppressed (discernibility) rules out the nodes above a
//     checked node that cannot beat the best found. Large roll-ups are
//     split across cores. Searches and histogram builders take their
//     scratch buffers (hash tables, candidate lists, cached tables) from
//     pools and give them back, so a process running many of them does
//     not allocate them each time.
//  3. Applier rewrites batches: quasi-identifiers become dictionary-encoded
//     generalised values, rows of suppressed classes are dropped and
//     counted (in = out + suppressed).
//  4. Verify checks any data independently: it groups the text of the
//     values in a Go map and shares no code with the search.
//
// # What it promises
//
// The definitions are ARX's (ARX 3.x, metric.v2 and criteria), and the test
// suite reproduces ARX's own reference optima on the Adult data set —
// transformation and loss — for k-anonymity with monotonic non-uniform
// entropy, entropy-l-diversity with non-monotonic entropy, and equal-distance
// t-closeness with discernibility. In particular:
//
//   - Suppression: a transformation is acceptable when the rows in classes
//     failing a model number at most floor(SuppressionLimit·rows).
//   - MetricEntropy is ARX's monotonic non-uniform entropy: log base 2,
//     frequencies over the whole input, suppressed rows counted as if
//     generalised like their class (which is what keeps it monotone).
//   - Entropy l-diversity compares the class entropy with log(l); the base
//     cancels (ARX uses log2 on both sides). Recursive (c,l): r1 < c·(r_l +
//     … + r_m). Distinct: at least l values.
//   - t-closeness: EMD against the sensitive distribution of the whole
//     input; equal distance = half the L1 distance; ordered distance =
//     Σ|cumulative difference|/(m-1), values ordered numerically when all
//     are numbers.
//   - Ties in loss go to the lower lattice level, as in ARX; exact ties on
//     the same level to ARX's FLASH ordering, then lexical order (ARX
//     resolves those in traversal order, so the loss is then what to
//     compare).
//
// Fail closed: a null in a quasi-identifier or sensitive column is an error
// naming column and row (fill or drop nulls first: a null is not a value
// kanon can generalise safely); a value missing from its hierarchy is an
// error naming row, column and value; ragged, duplicated or non-monotone
// hierarchies are errors; K < 2 (K = 0 only with l-diversity or
// t-closeness, which then stand alone, as in ARX), an empty input, or k
// larger than the rows (ErrNoSolution) never yield data. Errors about data
// are rowerr errors (row N, column "x", rows counted from 1 across
// batches) without a package prefix; errors about options name the
// function (kanon.Search: ...).
//
// Risk: prosecutor, journalist and marketer re-identification risk before
// and after (see Risk). Without a population table the journalist model
// uses the data as its own population, an upper bound.
//
// Mondrian (Mondrian) is the alternative for numeric quasi-identifiers when
// full-domain generalisation loses too much: strict multidimensional
// partitioning with median splits, output as ranges.
//
// # What it does not do
//
// k counts rows, as in ARX. When a subject (a vehicle, a person) has many
// rows, k rows may be one subject: group or sample per subject first, or
// choose k accordingly (the fleet benchmark uses k in rows).
//
// It does not do local recoding other than Mondrian, cell suppression,
// d-presence, k-map or differential privacy (see package dp); it keeps the
// histogram in memory (bounded by distinct combinations); attribute
// weights and generalisation/suppression factors are ARX's defaults (all 1,
// factor 0.5) and not configurable.
package kanon
