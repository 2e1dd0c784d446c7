// Package dp releases per-group aggregates (count, sum, mean, variance,
// quantiles) of Arrow data with differential privacy, on top of
// github.com/google/differential-privacy/go/v2 (its secure Laplace and
// Gaussian noise, partition selection and confidence intervals; this package
// draws no noise of its own).
//
// # Privacy model
//
// The protected unit is the subject (Options.Subject, e.g. a vehicle's vin):
// every row of one subject together. A release is (ε, δ)-differentially
// private with respect to adding or removing all rows of one subject:
// whatever one vehicle did, the released table is almost equally likely
// with or without it. To make that true, contributions are bounded before
// any aggregation:
//
//   - L0 (MaxPartitions): a subject contributes to at most L0 partitions;
//     if it has more, L0 of them are kept, chosen uniformly at random.
//   - L∞ (MaxPerPartition): at most L∞ rows per (subject, partition); extra
//     rows are dropped uniformly at random (reservoir sampling, so the choice
//     does not depend on the order rows arrive in).
//   - values are clamped to the declared [Lower, Upper] of each aggregate.
//
// Randomness for bounding comes from ChaCha8 seeded by crypto/rand. Noise is
// drawn once per partition and aggregate, with the sensitivities the
// library's dpagg objects use for the same bounds (L0, L∞, clamping);
// means and variances share the release's noisy count (see Budget).
//
// Partitions are either public (Options.Public: a list fixed without looking
// at the data; listed partitions absent from the data are released with noise
// over zero, unlisted data partitions are dropped) or selected privately with
// the library's PreAggSelectPartition (for L0 > 3: the library's algorithm
// for that case, a thresholded Gaussian count of subjects, with the threshold
// computed once per release), which releases a partition only when enough
// distinct subjects are in it that its presence reveals nobody.
// Private selection spends its own share of ε and needs δ > 0; at ε ≈ 0.25 a
// partition needs a few hundred subjects to be kept reliably, so choose
// coarse partitions (or a public list). Result reports how many partitions
// were kept and dropped.
//
// # Budget
//
// An Accountant holds the total (ε, δ). A release spends a share per
// aggregate (Aggregate.Epsilon/Delta, or an even split of what declared
// shares leave) plus the selection share, by basic composition. A release
// that does not fit fails before any noise is drawn and spends nothing.
// Result.Spent (JSON epsilon_spent, delta_spent) states what was spent.
//
// A mean or variance in a release that also has a Count divides by that
// Count's released value instead of drawing a noisy count of its own (the
// library's BoundedMean and BoundedVariance draw one), provided the Count's
// share is at least what its own count would get (ε/2, δ/2 of a mean's
// share, ε/3, δ/3 of a variance's: the estimate is then never noisier than
// the library's, and the choice depends on declared budgets only). All
// three count the same bounded rows, the released count has the
// sensitivity (L0, L∞) the
// library's own count would have, and dividing by a released value is
// post-processing, which costs no budget. So the mean's whole share goes to
// its noisy normalised sum (sensitivity (Upper-mid)·L∞, mid the midpoint of
// the bounds) — half the noise of the library's split at the same total —
// and the variance's share is split in halves between its sum and sum of
// squares. The accountant spends the same declared shares either way; the
// mean's interval combines the sum's interval at the mean's share with the
// count's interval at the count's share (independent draws, α split between
// them as the library does). Result.Denominator names the Count column
// and Result.DividedByCount the aggregates that use it; the others are the
// library's estimators.
//
// # Post-processing
//
// Published values are post-processed, which costs no budget (any function
// of a differentially private output is as private): a noisy count below 0
// is published as 0; a sum whose bounds are non-negative (non-positive) is
// published with that sign; means are clamped to their bounds and
// variances to [0, (Upper-Lower)²/4], as the library does; intervals are
// the library's, clipped to the same feasible range (counts and
// non-negative sums at 0, means to their bounds). So every published value
// lies inside its own interval and within what its bounds allow. A mean
// that divides by the release's Count divides by that count's draw before
// it was clamped — max(1, draw), as the library's BoundedMean does with
// its own count, so the value is the same; its interval uses the draw as
// the library's would.
//
// # Accuracy before and after the release
//
// Predict gives, from the options and a budget alone (no data, no noise,
// nothing spent), the interval each aggregate would be published with for
// a partition with an assumed number of subjects — the same library
// intervals from the same mechanisms, so the predicted widths are the
// released widths — and, with private selection, the chance that such a
// partition is released at all. Use it to choose partitions coarse enough
// that the release says something. Result.Verdict judges a release
// afterwards from its published record only (share of intervals narrow
// enough to say something, per aggregate), so it may be published with it.
//
// # Pipeline
//
//	opts.Validate()                     // optional: check a policy early
//	ag, _ := dp.NewAggregator(opts)     // validates every parameter
//	ag.Add(ctx, batch)                  // per batch: O(pairs·L∞) memory
//	p, _ := ag.Partial(ctx)             // bound contributions, pre-aggregate
//	p.Merge(other)                      // optional: partials of disjoint subjects
//	res, _ := p.Release(ctx, acct, dp.ReleaseOptions{})  // noise, once
//
// A Partial is the exact, bounded, pre-noise state per partition; it is as
// sensitive as the input and must not be published. Partials built from
// disjoint sets of subjects merge into the partial of the whole, and
// serialise, so a distributed combiner (the beam module) can use them.
// Results are single-use: Release consumes the partial. AggregateReader does
// all of it for one array.RecordReader.
//
// The result record has the key columns, then per aggregate its noisy value
// and, for count, sum and mean, the library's confidence interval at
// Options.Confidence (<name>_ci_low, <name>_ci_high); the library has no
// interval for variance and quantiles.
//
// # Performance
//
// Bounding works on columns: subject and key values become dense integer
// codes (dictionary columns by remapping their dictionary once per batch,
// other columns through open-addressing tables), rows are staged per bucket
// of subjects (small cache-resident buffers copied in bursts to a big stage)
// and applied to the bucket's pair state — dense records of key, row count
// and reservoir with a small index — after one sequential sweep of that
// state into the cache; shards of subjects run on all cores. Dictionary-coded
// subject and key columns with float64 values take a fully parallel path.
// Noise is drawn once per partition and aggregate, selection first;
// intervals and the selection threshold are computed once per release. The
// library's noise draws all go through one mutex-guarded crypto/rand buffer
// (several µs per draw, no gain from parallel workers), so a release costs
// about 6 µs per partition and aggregate whatever the input size. See
// benchmarks/dp.
//
// # Input handling (fail closed)
//
// Subject and key columns: string, dictionary of strings, integer or
// timestamp; a null is an error naming column and row. Value columns:
// float or integer; null, NaN and ±Inf are errors naming column and row
// (they have no place between declared bounds, and silently dropping them
// would make the row count depend on them). Errors locate data as package
// rowerr does (`row N, column "x": …`, rows counted from 1 over the whole
// stream; errors.As reaches the *rowerr.Error). After an error the Aggregator is
// unusable and nothing can be released. Empty input is an error at Release
// (unless public partitions are given). Every input row is accounted for in
// Stats (used, not public, dropped by L0, dropped by L∞).
//
// # What it does not protect
//
//   - Subjects are whatever the Subject column says: if one person owns two
//     vehicles, the person is protected only at twice the ε (group privacy).
//   - Bounds, public partition lists and the schema are assumed public; bounds
//     derived from the data would leak.
//   - Budgets compose only inside one Accountant: releasing the same data
//     again under a fresh Accountant adds up in reality.
//   - The Partial (pre-noise state) is not private, and neither are the
//     operator's figures in Result (Stats, PartitionsDropped,
//     PartitionsPublicEmpty): they are exact counts, which differ between
//     neighbouring inputs, so whoever sees them gets ε = ∞. Only
//     Result.Record is the release, with what is derived from it alone
//     (PartitionsKept is its number of rows; Verdict) and the public
//     parameters (Spent, Aggregates, Noise, Confidence).
//   - Floating-point side channels of the library's noise are handled by
//     the library (secure discretised noise); our arithmetic on exact sums is
//     ordinary float64 addition.
//   - Timing and memory use depend on the data.
package dp
