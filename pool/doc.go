// Package pool makes one differentially private release across the members
// of a consortium without any party seeing another member's numbers:
// private aggregation with Prio3 (draft-irtf-cfrg-vdaf, the VDAF behind
// IETF DAP) from github.com/cloudflare/circl, RFC 9180 HPKE (circl),
// ed25519 signatures (crypto/ed25519) and noise from
// google/differential-privacy. Nothing cryptographic is made here: the
// package composes those primitives.
//
// # Why
//
// When each member publishes its own DP release, the pooled statistic
// carries every member's noise and a small member's release is mostly
// noise; when members send exact per-member aggregates to a pool operator,
// that operator learns every competitor's fleet statistics. Here members
// secret-share their bounded totals between two aggregators run by
// different organisations, each aggregator adds noise calibrated to the
// whole ε to its share of the sum, and the collector unshards only noisy
// totals: one release, with the noise of one release (twice the variance of
// a single draw, see below), over the union of the members' data.
//
// # Roles and rounds
//
// A pool is a [Config] (strict, versioned YAML, [LoadConfig]; its SHA-256 is bound into
// every file of the pool): the members and their ed25519 keys, the two
// aggregators (leader and helper) and the collector with their HPKE keys,
// the public partition domain, the aggregates (count, sum, mean) with their
// bounds, L0, L∞ and M, ε and δ per release, and the budget per period.
// Rounds go through files, as batch ETL jobs exchange them:
//
//	member      Contribute   partial → upload for the leader, upload for the helper, signed manifest
//	leader      Prepare      uploads → leader prep file (prep shares, verification key for the helper) + private state
//	helper      Prepare      uploads + leader prep file → helper prep file + private state
//	each        Aggregate    both prep files + own state → ledger spend → noisy share, HPKE to the collector, signed
//	collector   Collect      both shares → release (Arrow) + Report (JSON, HTML)
//
// ([Contribute], [Prepare], [Aggregate], [Collect]; [Init] writes a
// configuration and, for a trial, every party's keys; [GenerateKey] makes
// one party's.)
//
// A member's input is a [dp.Partial]: its data bounded per subject by package
// dp with the pool's parameters ([PolicyPartial] runs the member's own
// anonymisation policy as far as its release; [Config.ReaderPartial] bounds
// keyed data directly). [Contribute] checks the partial's spec against the
// configuration, encodes it (below) and shards it with Prio3 SumVec: the
// helper's input share is a 32-byte seed, the leader's the measurement
// minus the seed's expansion; each alone is uniformly random. The Prio3
// proof, checked jointly by the aggregators on their prep shares, shows
// that every entry lies in [0, 2^bits) — bits fixed by the public MaxRows —
// so no member can make the field wrap around; it does not (cannot) show
// that a member bounded its subjects honestly: a member is trusted with its
// own data.
//
// # Encoding
//
// Per partition, slot 0 is the bounded row count and every other slot is,
// for one (column, bounds) of the value aggregates, U = Σ(v − lo) in
// fixed-point units q = 2^e (about 2^ResolutionBits units between the
// bounds, the bounds rounded outwards onto the grid). The aggregators map
// their shares linearly to the released quantities — count = rows,
// sum = U + lo·rows, mean numerator = U + (lo − mid)·rows — so a sum with
// negative values never needs a negative entry. Rounding U moves it by at
// most one unit per member and partition, which the sensitivity includes.
// Every released value is decoded as a signed integer from the field
// (values beyond ±2^63 are an error); the configuration is refused unless
// the largest possible totals plus two int64 noise draws stay inside half
// the 128-bit field, so decoding is unambiguous.
//
// # Privacy model
//
// The protected unit is the subject (the vehicle), as in package dp, and a
// release is (ε, δ)-DP with respect to adding or removing all rows of one
// subject. Each member bounds its subjects to L0 partitions and L∞ rows
// each; a subject may appear at up to M members (MaxMembersPerSubject,
// default 1: subjects are disjoint across members), so one subject moves a
// released quantity by at most M·L∞·max|bound| (+M units of rounding) in at
// most L0 partitions (in the L2 sense for Gaussian noise: √L0·M·…). The
// release's ε is split evenly over its aggregates (basic composition); a
// mean is its noisy numerator over the released noisy count
// (post-processing, no extra budget), so a mean needs a count in the same
// release.
//
// Each aggregator adds noise from google/differential-privacy (secure,
// discretised Laplace or Gaussian, drawn as integers in the fixed-point
// units) to every released quantity of its own share, calibrated to the
// full ε share of that quantity. The released value is then
// T + N_leader + N_helper: if either aggregator is honest, its draw alone
// makes the release ε-DP, whatever the other did. The price is a second
// draw: the noise has twice the variance of one draw, and the intervals
// ([Result].Record's *_ci_low, *_ci_high) cover the sum of both draws (for
// Laplace the exact distribution of the sum of two draws, for Gaussian
// σ·√2, widened by one unit for the integer rounding: the stated confidence
// is a lower bound).
//
// # Trust model: who sees what
//
//   - A member sees only its own data and files.
//   - Each aggregator sees the members' manifests (ids, nonces, no data),
//     its own input shares and output shares (uniformly random alone), both
//     aggregators' prep shares (which reveal only whether each report is
//     valid), and its own noisy aggregate share. It never sees a member's
//     values or any total.
//   - The collector sees the two noisy aggregate shares, i.e. the release,
//     and the report (who was counted, who was rejected and why, the budget
//     left).
//   - If the two aggregators collude, they learn every member's per-partition
//     totals: the guarantee rests on them being different organisations
//     that do not pool their files. An aggregator colluding with the
//     collector or with members learns nothing beyond the release and the
//     colluders' own data (the other aggregator's noise still covers it).
//     An aggregator that skips its noise does not break the ε guarantee (the
//     other's noise suffices); one that skips the ledger does not either, as
//     long as the other refuses releases beyond the budget.
//
// # Budget, replay and failure
//
// Each aggregator keeps a [Ledger] ([OpenLedger]) per pool: the ε and δ spent
// per period and every report nonce aggregated, replaced atomically and
// written before the share is. A release that would exceed the period's
// budget, a replayed report (nonce seen), a member uploading twice, a
// manifest that does not verify with the member's configured key, an upload
// that does not match its signed manifest, one made for another
// configuration, an upload that does not decrypt, an invalid proof: each is
// a rejection with a reason ([Rejection]), and a round that cannot count
// Config.Quorum members ([ErrQuorum]) (by default all of them) fails with every reason listed
// and writes nothing. File writes go to temporary files renamed on success.
//
// # What it does not protect
//
//   - A member's own bounding is trusted (the proof covers the encoding's
//     range, not L0/L∞ per subject); a member that lies about its data skews
//     the release but cannot weaken the privacy of other members' subjects.
//   - Manifests reveal which members took part in a round and when, to the
//     aggregators and the collector.
//   - The partition domain, bounds, MaxRows and the configuration are public.
//   - Timing and file sizes depend on the configuration, not on the data.
package pool
