package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/pool"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

func newPoolCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "pool",
		Short: "One DP release across consortium members, with no party seeing another's numbers",
		Long: `pool runs private aggregation across the members of a consortium (Prio3 secret
sharing between two aggregators, HPKE, DP noise added by each aggregator), in rounds
of files that batch jobs exchange:

  pool init        the pool configuration (and, for a trial, every party's keys)
  pool keygen      one party's own keys (its public half goes into the configuration)
  pool contribute  a member: its data, bounded per vehicle, as two encrypted shares
  pool prepare     an aggregator: check and decrypt the uploads, Prio3 preparation
  pool aggregate   an aggregator: check the proofs, spend the budget, add noise
  pool collect     the collector: the noisy release, a JSON and an HTML report

See examples/pool for a whole round with three members.`,
	}
	c.AddCommand(newPoolKeygenCmd(), newPoolInitCmd(), newPoolContributeCmd(), newPoolPrepareCmd(), newPoolAggregateCmd(), newPoolCollectCmd())
	return c
}

// poolError adds a hint to the failures a round can meet.
func poolError(err error) error {
	switch {
	case errors.Is(err, pool.ErrQuorum):
		return usageError(err, "every member the configuration lists must upload a valid report (or the configuration's quorum be lowered); nothing was written")
	case errors.Is(err, pool.ErrBudgetExceeded):
		return usageError(err, "the period's privacy budget is spent: the next release belongs to the next period; nothing was written or spent")
	case errors.Is(err, pool.ErrReplay):
		return usageError(err, "this round's reports were aggregated before; members must contribute afresh")
	}
	return usageError(err, "")
}

func loadPoolConfig(path string) (*pool.Config, error) {
	if path == "" {
		return nil, usageError(errors.New("pool: --config is required"), "the pool configuration written by 'tarnkappe pool init'")
	}
	cfg, err := pool.LoadConfig(path)
	if err != nil {
		return nil, usageError(err, "every party must hold the same pool configuration; every key is checked against the documented format")
	}
	return cfg, nil
}

func loadPoolKey(path string) (*pool.Key, error) {
	if path == "" {
		return nil, usageError(errors.New("pool: --key is required"), "your private key file from 'tarnkappe pool keygen' or 'pool init'")
	}
	k, err := pool.LoadKey(path)
	if err != nil {
		return nil, usageError(err, "")
	}
	return k, nil
}

// loadPoolParty reads the pool configuration and this party's private key,
// each checked as loadPoolConfig and loadPoolKey do. The caller destroys
// the key.
func loadPoolParty(cfgPath, keyPath string) (*pool.Config, *pool.Key, error) {
	cfg, err := loadPoolConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := loadPoolKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	return cfg, key, nil
}

// loadAggregator is loadPoolParty for the aggregators' steps: it also says
// which aggregator the key belongs to ("leader" or "helper"). The caller
// destroys the key.
func loadAggregator(cfgPath, keyPath string) (*pool.Config, *pool.Key, string, error) {
	cfg, key, err := loadPoolParty(cfgPath, keyPath)
	if err != nil {
		return nil, nil, "", err
	}
	role, err := cfg.Role(key)
	if err != nil {
		key.Destroy()
		return nil, nil, "", usageError(err, "")
	}
	return cfg, key, role, nil
}

func newPoolKeygenCmd() *cobra.Command {
	var role, id, out string
	c := &cobra.Command{
		Use:   "keygen --role member|aggregator|collector --id ID --out FILE",
		Short: "Create one party's pool keys (private file 0600; public keys on stdout)",
		Long: `keygen writes a party's private keys to FILE (mode 0600, never overwritten) and
prints the public keys on stdout as YAML that 'pool init --public-keys' reads:
collect every party's output in one file. Private keys never leave FILE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" || id == "" || out == "" {
				return usageError(errors.New("pool keygen: --role, --id and --out are required"), "tarnkappe pool keygen --role member --id oem-a --out oem-a.key")
			}
			k, err := pool.GenerateKey(pool.Role(role), id)
			if err != nil {
				return usageError(err, "")
			}
			defer k.Destroy()
			if err := k.WriteFile(out); err != nil {
				return usageError(err, "")
			}
			enc := yaml.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent(2)
			if err := enc.Encode(map[string]pool.PublicKeys{id: k.Public()}); err != nil {
				return err
			}
			enc.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: pool keygen: wrote %s keys for %q to %s (mode 0600)\n", role, id, out)
			return nil
		},
	}
	c.Flags().StringVar(&role, "role", "", "member, aggregator or collector")
	c.Flags().StringVar(&id, "id", "", "the party's id in the pool")
	c.Flags().StringVar(&out, "out", "", "private key file to write")
	return c
}

type poolInitFlags struct {
	dir, pool, period, members, leader, helper, collector, policy string
	partitions, subject, by, noise                                string
	publicKeys                                                    []string
	count                                                         bool
	sums, means                                                   []string
	l0, linf, maxRows, maxMembers                                 int64
	epsilon, delta, confidence, budget, budgetDelta               float64
	resolution, quorum                                            int
}

func newPoolInitCmd() *cobra.Command {
	var f poolInitFlags
	c := &cobra.Command{
		Use:   "init --dir DIR --pool NAME --period P --members a,b,c --leader ID --helper ID --collector ID --budget E (--policy P | --partitions CSV ...)",
		Short: "Write a pool configuration, its partition list and (for a trial) every party's keys",
		Long: `init writes DIR/pool.yaml (public keys only), DIR/partitions.csv and, for every
party whose public keys --public-keys does not give, DIR/keys/<id>.key (mode 0600).
In a real pool each party runs 'pool keygen' and sends only its public keys.

The release comes from a policy's release block (--policy: its by, bounds, public
partitions and aggregates; count, sum and mean are supported) or from flags
(--partitions, --subject, --by, --count, --sum, --mean, --max-partitions,
--max-per-partition). --epsilon is per release (default: the policy's), --budget
per period.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPoolInit(cmd, &f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.dir, "dir", "", "directory to write the pool into (required)")
	fl.StringVar(&f.pool, "pool", "", "pool name (required)")
	fl.StringVar(&f.period, "period", "", "budget period, e.g. 2026-03 (required)")
	fl.StringVar(&f.members, "members", "", "member ids, comma-separated (required)")
	fl.StringVar(&f.leader, "leader", "", "leader aggregator id (required)")
	fl.StringVar(&f.helper, "helper", "", "helper aggregator id (required)")
	fl.StringVar(&f.collector, "collector", "", "collector id (required)")
	fl.StringVar(&f.policy, "policy", "", "take the release from this policy's release block")
	fl.StringVar(&f.partitions, "partitions", "", "public partition list (CSV with a header naming --by)")
	fl.StringVar(&f.subject, "subject", "", "subject column (without --policy)")
	fl.StringVar(&f.by, "by", "", "partition key columns, comma-separated (without --policy)")
	fl.BoolVar(&f.count, "count", false, "release the bounded row count")
	fl.StringArrayVar(&f.sums, "sum", nil, "release a clamped sum, col:lo:hi (repeatable)")
	fl.StringArrayVar(&f.means, "mean", nil, "release a clamped mean, col:lo:hi (repeatable; needs --count)")
	fl.Int64Var(&f.l0, "max-partitions", 0, "L0: partitions per subject per member")
	fl.Int64Var(&f.linf, "max-per-partition", 0, "L∞: rows per subject and partition per member")
	fl.Int64Var(&f.maxRows, "max-rows", 1<<20, "most bounded rows one member may give one partition (sets the encoding's width)")
	fl.Int64Var(&f.maxMembers, "max-members-per-subject", 1, "at how many members one subject may appear (sensitivities scale by it)")
	fl.Float64Var(&f.epsilon, "epsilon", 0, "ε per release (default: the policy's)")
	fl.Float64Var(&f.delta, "delta", 0, "δ per release (Gaussian noise only)")
	fl.StringVar(&f.noise, "noise", "laplace", "laplace or gaussian")
	fl.Float64Var(&f.confidence, "confidence", 0.95, "confidence of the released intervals")
	fl.Float64Var(&f.budget, "budget", 0, "ε per period (required)")
	fl.Float64Var(&f.budgetDelta, "budget-delta", 0, "δ per period")
	fl.IntVar(&f.resolution, "resolution-bits", 10, "fixed-point units between a value's bounds, as a power of two")
	fl.IntVar(&f.quorum, "quorum", 0, "members a round must count (default: all)")
	fl.StringArrayVar(&f.publicKeys, "public-keys", nil, "YAML of parties' public keys from 'pool keygen' (repeatable; no keys are generated for them)")
	return c
}

func runPoolInit(cmd *cobra.Command, f *poolInitFlags) error {
	if f.dir == "" || f.pool == "" || f.period == "" || f.members == "" || f.leader == "" || f.helper == "" || f.collector == "" || f.budget == 0 {
		return usageError(errors.New("pool init: --dir, --pool, --period, --members, --leader, --helper, --collector and --budget are required"), "see 'tarnkappe pool init --help'")
	}
	o := pool.InitOptions{Pool: f.pool, Members: splitList(f.members), Leader: f.leader, Helper: f.helper, Collector: f.collector,
		Budget: pool.BudgetSpec{Period: f.period, Epsilon: f.budget, Delta: f.budgetDelta}, Quorum: f.quorum}
	rel := pool.ReleaseSpec{MaxRows: f.maxRows, MaxMembersPerSubject: f.maxMembers, ResolutionBits: f.resolution,
		Epsilon: f.epsilon, Delta: f.delta, Noise: f.noise, Confidence: f.confidence}
	if f.policy != "" {
		if f.partitions != "" || f.subject != "" || f.by != "" || f.count || len(f.sums)+len(f.means) > 0 || f.l0 != 0 || f.linf != 0 {
			return usageError(errors.New("pool init: --policy takes the release from the policy; do not combine it with release flags"), "")
		}
		p, err := anonymize.LoadPolicy(f.policy)
		if err != nil {
			return usageError(err, "fix the policy file")
		}
		if p.Release == nil {
			return usageError(fmt.Errorf("pool init: policy %s has no release block", f.policy), "")
		}
		r := p.Release
		rel.Subject, rel.By, rel.MaxPartitions, rel.MaxPerPartition = p.Subject, r.By, int64(r.MaxPartitions), int64(r.MaxPerPartition)
		if rel.Epsilon == 0 {
			rel.Epsilon = r.Epsilon
		}
		if r.Count {
			rel.Aggregates = append(rel.Aggregates, pool.AggregateSpec{Kind: "count"})
		}
		for _, a := range r.Aggregates {
			if a.Kind != "sum" && a.Kind != "mean" {
				return usageError(fmt.Errorf("pool init: the policy's %s of %q: a pool releases count, sum and mean", a.Kind, a.Column), "")
			}
			rel.Aggregates = append(rel.Aggregates, pool.AggregateSpec{Kind: a.Kind, Column: a.Column, Lower: a.Lower, Upper: a.Upper})
		}
		if o.Partitions, err = anonymize.PublicPartitionRows(p); err != nil {
			return usageError(err, "a pool needs public partitions: add release.public to the policy")
		}
	} else {
		if f.partitions == "" || f.subject == "" || f.by == "" {
			return usageError(errors.New("pool init: without --policy, --partitions, --subject and --by are required"), "")
		}
		rel.Subject, rel.By, rel.MaxPartitions, rel.MaxPerPartition = f.subject, splitList(f.by), f.l0, f.linf
		if f.count {
			rel.Aggregates = append(rel.Aggregates, pool.AggregateSpec{Kind: "count"})
		}
		for _, kv := range []struct {
			kind  string
			specs []string
		}{{"sum", f.sums}, {"mean", f.means}} {
			for _, s := range kv.specs {
				col, lo, hi, err := parseBounded(kv.kind, s)
				if err != nil {
					return usageError(err, "")
				}
				rel.Aggregates = append(rel.Aggregates, pool.AggregateSpec{Kind: kv.kind, Column: col, Lower: lo, Upper: hi})
			}
		}
		rows, err := readPartitionRows(f.partitions, rel.By)
		if err != nil {
			return usageError(err, "the partition list is a CSV whose header names the --by columns")
		}
		o.Partitions = rows
	}
	o.Release = rel
	for _, path := range f.publicKeys {
		b, err := os.ReadFile(path)
		if err != nil {
			return usageError(err, "")
		}
		var pub map[string]pool.PublicKeys
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&pub); err != nil {
			return usageError(fmt.Errorf("pool init: %s: %v", path, err), "give the outputs of 'tarnkappe pool keygen' (one file each, or concatenated)")
		}
		if o.Public == nil {
			o.Public = map[string]pool.PublicKeys{}
		}
		for id, k := range pub {
			if _, dup := o.Public[id]; dup {
				return usageError(fmt.Errorf("pool init: public keys for %q given twice", id), "")
			}
			o.Public[id] = k
		}
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return usageError(err, "")
	}
	cfg, keys, err := pool.Init(f.dir, o)
	if err != nil {
		return usageError(err, "")
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: pool init: wrote %s (config sha256 %s): %d members, %d partitions, ε=%g per release, %g per period %s; %d key files in %s\n",
		cfg.File(), cfg.HashHex()[:16], len(cfg.Members), cfg.Partitions(), cfg.Release.Epsilon, cfg.Budget.Epsilon, cfg.Budget.Period, len(keys), filepath.Join(f.dir, "keys"))
	return nil
}

// readPartitionRows reads a partition list (CSV, header naming by).
func readPartitionRows(path string, by []string) ([][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return pool.ParsePartitions(b, by)
}

func newPoolContributeCmd() *cobra.Command {
	var cfgPath, keyPath, policy, in, keys, out string
	c := &cobra.Command{
		Use:   "contribute --config pool.yaml --key M.key --in IN [--policy P [--keys K]] --out DIR",
		Short: "A member's upload: its data bounded per subject, secret-shared to the two aggregators",
		Long: `contribute runs the member's policy (--policy: opt-out, trips and cells, column
actions, contribution bounding per subject) over IN as far as its DP release, or
bounds IN directly with the pool's release (without --policy: IN must have the
subject, partition and value columns), and writes into DIR one upload per
aggregator (the Prio3 input share, HPKE-encrypted to it) and a manifest signed
with the member's key. No number leaves the member in clear.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" || out == "" {
				return usageError(errors.New("pool contribute: --in and --out are required"), "")
			}
			cfg, key, err := loadPoolParty(cfgPath, keyPath)
			if err != nil {
				return err
			}
			defer key.Destroy()
			ctx := cmd.Context()
			mem := memory.DefaultAllocator
			src, err := arrowio.Open(ctx, in, arrowio.OpenOptions{Mem: mem, Stdin: cmd.InOrStdin()})
			if err != nil {
				return usageError(err, "the input must be a readable .parquet, .arrow/.ipc or .csv file, or - for Arrow IPC on stdin")
			}
			defer src.Close()
			var part *dp.Partial
			var stats pool.MemberStats
			if policy != "" {
				p, err := anonymize.LoadPolicy(policy)
				if err != nil {
					return usageError(err, "fix the policy file")
				}
				var kr *pseudonym.Keyring
				if keys != "" || p.Keyring != "" {
					path := keys
					if path == "" {
						path = p.Resolve(p.Keyring)
					}
					if kr, err = pseudonym.LoadKeyring(path); err != nil {
						return keyringLoadError(err, path)
					}
					defer kr.Destroy()
				}
				// The Runner is used for its steps only (PolicyPartial): it
				// writes no rows and no noisy release.
				r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Mem: mem,
					Release: func(*arrow.Schema) (anonymize.Sink, error) { return discardSink{}, nil }})
				if err != nil {
					return usageError(err, "check the keyring, the opt-out list and hierarchy files the policy names")
				}
				defer r.Close()
				if part, stats, err = pool.PolicyPartial(ctx, r, src); err != nil {
					return usageError(err, "")
				}
			} else {
				if part, err = cfg.ReaderPartial(ctx, src, mem); err != nil {
					return usageError(err, "without --policy the input needs the pool's subject, partition and value columns")
				}
				stats = pool.MemberStats{RowsIn: part.Stats.RowsIn, Release: part.Stats}
			}
			con, err := pool.Contribute(cfg, key, part)
			if err != nil {
				return usageError(err, "the member's release must use the pool's bounds and public partitions")
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return usageError(err, "")
			}
			if err := con.WriteFiles(out); err != nil {
				return usageError(err, "")
			}
			s := stats.Release
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: pool contribute: %s: %d rows in (%d opted out, %d trimmed; %d used, %d outside the partitions, %d over L0, %d over L∞); upload %d + %d bytes, manifest %d bytes in %s\n",
				key.ID(), stats.RowsIn, stats.OptedOut, stats.Trimmed, s.RowsUsed, s.RowsNotPublic, s.RowsDroppedL0, s.RowsDroppedLInf,
				len(con.Uploads[0]), len(con.Uploads[1]), len(con.Manifest), out)
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "pool configuration")
	c.Flags().StringVar(&keyPath, "key", "", "the member's private key file")
	c.Flags().StringVar(&in, "in", "", "the member's data")
	c.Flags().StringVar(&policy, "policy", "", "the member's anonymisation policy (its release block must match the pool's)")
	c.Flags().StringVar(&keys, "keys", "", "keyring for the policy (overrides the policy's keyring)")
	c.Flags().StringVar(&out, "out", "", "the round's upload directory")
	return c
}

func newPoolPrepareCmd() *cobra.Command {
	var cfgPath, keyPath, uploads, state, prep string
	c := &cobra.Command{
		Use:   "prepare --config pool.yaml --key A.key --uploads DIR --state DIR --prep DIR",
		Short: "An aggregator's first step: check and decrypt the uploads, Prio3 preparation",
		Long: `prepare checks every upload in --uploads (signature by a listed member, the
configuration's hash, one upload per member, a nonce the ledger has not seen, the
file's hash), decrypts this aggregator's input shares and writes its prep file to
--prep (<role>.prep.json, for the other aggregator) and its private state to
--state (0600; the ledger lives there too). The leader runs first; the helper
reads the leader's prep file from --prep.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if uploads == "" || state == "" || prep == "" {
				return usageError(errors.New("pool prepare: --uploads, --state and --prep are required"), "")
			}
			cfg, key, role, err := loadAggregator(cfgPath, keyPath)
			if err != nil {
				return err
			}
			defer key.Destroy()
			ups, err := pool.ReadUploads(cfg, key, uploads)
			if err != nil {
				return usageError(err, "")
			}
			l, err := pool.OpenLedger(state)
			if err != nil {
				return usageError(err, "")
			}
			defer l.Close()
			opts := pool.PrepareOptions{Ledger: l}
			if role == "helper" {
				if opts.Peer, err = pool.ReadSigned(filepath.Join(prep, pool.PrepFileName("leader"))); err != nil {
					return usageError(err, "the helper prepares after the leader: run the leader's 'pool prepare' first")
				}
			}
			p, err := pool.Prepare(cfg, key, ups, opts)
			if err != nil {
				return poolError(err)
			}
			if err := os.MkdirAll(prep, 0o755); err != nil {
				return usageError(err, "")
			}
			statePath := filepath.Join(state, "prep.state")
			if err := pool.WriteFile(statePath, p.State, 0o600); err != nil {
				return usageError(err, "a previous round's state is still there: finish it with 'pool aggregate' or remove "+statePath)
			}
			if err := pool.WriteFile(filepath.Join(prep, pool.PrepFileName(role)), p.File, 0o644); err != nil {
				os.Remove(statePath)
				return usageError(err, "")
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: pool prepare: %s %s: %d uploads accepted, %d rejected, %d members missing\n", role, key.ID(), len(p.Accepted), len(p.Rejected), len(p.Missing))
			for _, r := range p.Rejected {
				fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: pool prepare: rejected %s\n", r)
			}
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "pool configuration")
	c.Flags().StringVar(&keyPath, "key", "", "the aggregator's private key file")
	c.Flags().StringVar(&uploads, "uploads", "", "the round's upload directory")
	c.Flags().StringVar(&state, "state", "", "the aggregator's private state directory (ledger, round state)")
	c.Flags().StringVar(&prep, "prep", "", "the directory the aggregators exchange prep files through")
	return c
}

func newPoolAggregateCmd() *cobra.Command {
	var cfgPath, keyPath, state, prep, out string
	c := &cobra.Command{
		Use:   "aggregate --config pool.yaml --key A.key --state DIR --prep DIR --out DIR",
		Short: "An aggregator's second step: check the proofs, spend the budget, add noise",
		Long: `aggregate reads both prep files from --prep and this aggregator's state from
--state, checks every report's proof, the quorum and the period's budget (the
ledger in --state records the spend before anything is written), sums the valid
shares, adds noise calibrated to the full ε, and writes <role>.share.json to --out,
encrypted to the collector. Nothing is written when any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" || prep == "" || out == "" {
				return usageError(errors.New("pool aggregate: --state, --prep and --out are required"), "")
			}
			cfg, key, role, err := loadAggregator(cfgPath, keyPath)
			if err != nil {
				return err
			}
			defer key.Destroy()
			var files [2][]byte
			for i, r := range []string{"leader", "helper"} {
				if files[i], err = pool.ReadSigned(filepath.Join(prep, pool.PrepFileName(r))); err != nil {
					return usageError(err, "both aggregators must have run 'pool prepare'")
				}
			}
			statePath := filepath.Join(state, "prep.state")
			st, err := os.ReadFile(statePath)
			if err != nil {
				return usageError(err, "run 'pool prepare' with the same --state first")
			}
			l, err := pool.OpenLedger(state)
			if err != nil {
				return usageError(err, "")
			}
			defer l.Close()
			target := filepath.Join(out, pool.ShareFileName(role))
			if _, err := os.Lstat(target); err == nil {
				return usageError(fmt.Errorf("pool aggregate: %s exists", target), "a share is written once per round")
			} else if !errors.Is(err, fs.ErrNotExist) {
				return usageError(err, "")
			}
			s, err := pool.Aggregate(cfg, key, pool.AggregateOptions{Leader: files[0], Helper: files[1], State: st, Ledger: l})
			if err != nil {
				return poolError(err)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return usageError(err, "")
			}
			if err := pool.WriteFile(target, s.File, 0o644); err != nil {
				return usageError(fmt.Errorf("pool aggregate: the budget was spent but the share could not be written: %w", err), "the release is lost; its budget stays spent")
			}
			os.Remove(statePath) // the shares of the members' data are no longer needed
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: pool aggregate: %s %s: %d members counted; spent ε=%g of %g in period %s\n",
				role, key.ID(), len(s.Counted), s.Budget.EpsilonSpent, s.Budget.EpsilonTotal, s.Budget.Period)
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "pool configuration")
	c.Flags().StringVar(&keyPath, "key", "", "the aggregator's private key file")
	c.Flags().StringVar(&state, "state", "", "the aggregator's private state directory (as for prepare)")
	c.Flags().StringVar(&prep, "prep", "", "the directory holding both prep files")
	c.Flags().StringVar(&out, "out", "", "the directory for the share files")
	return c
}

func newPoolCollectCmd() *cobra.Command {
	var cfgPath, keyPath, shares, out, report, html string
	c := &cobra.Command{
		Use:   "collect --config pool.yaml --key C.key --shares DIR --out RELEASE [--report R.json] [--html R.html]",
		Short: "The collector: unshard the two noisy shares into the release",
		Long: `collect verifies and decrypts both aggregators' shares from --shares, adds them
(only noisy totals ever exist in clear) and writes the release to --out (.parquet,
.arrow/.ipc, .csv): per partition the noisy count, sums and means with intervals
that cover both aggregators' noise, and ε, δ. --report and --html say who was
counted, who was rejected and why, and the budget left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if shares == "" || out == "" {
				return usageError(errors.New("pool collect: --shares and --out are required"), "")
			}
			cfg, key, err := loadPoolParty(cfgPath, keyPath)
			if err != nil {
				return err
			}
			defer key.Destroy()
			var files [2][]byte
			for i, r := range []string{"leader", "helper"} {
				if files[i], err = pool.ReadSigned(filepath.Join(shares, pool.ShareFileName(r))); err != nil {
					return usageError(err, "both aggregators must have run 'pool aggregate'")
				}
			}
			for _, p := range []string{out, report, html} {
				if _, err := os.Lstat(p); p != "" && err == nil {
					return usageError(fmt.Errorf("pool collect: %s exists", p), "choose a new output name")
				}
			}
			mem := memory.DefaultAllocator
			res, err := pool.Collect(cfg, key, files[0], files[1], pool.CollectOptions{Mem: mem})
			if err != nil {
				return usageError(err, "")
			}
			defer res.Release()
			res.Report.Output = out
			sink, err := arrowio.Create(out, res.Record.Schema(), arrowio.CreateOptions{Mem: mem, Stdout: cmd.OutOrStdout()})
			if err != nil {
				return usageError(err, "")
			}
			if err := sink.Write(res.Record); err != nil {
				sink.Abort()
				return err
			}
			var written []string
			for _, w := range []struct {
				path   string
				render func() ([]byte, error)
			}{{report, res.Report.JSON}, {html, res.Report.HTML}} {
				if w.path == "" {
					continue
				}
				b, err := w.render()
				if err == nil {
					err = pool.WriteFile(w.path, b, 0o644)
				}
				if err != nil {
					sink.Abort()
					for _, p := range written {
						os.Remove(p)
					}
					return err
				}
				written = append(written, w.path)
			}
			if err := sink.Commit(); err != nil {
				for _, p := range written {
					os.Remove(p)
				}
				return err
			}
			r := res.Report
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: pool collect: released %d partitions from %d members (%d rejected, %d missing); ε=%g δ=%g; ε left in period: %g\n",
				r.Release.Partitions, len(r.Members.Counted), len(r.Members.Rejected), len(r.Members.Missing), r.Release.Epsilon, r.Release.Delta, r.EpsilonLeft)
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "pool configuration")
	c.Flags().StringVar(&keyPath, "key", "", "the collector's private key file")
	c.Flags().StringVar(&shares, "shares", "", "the directory holding both share files")
	c.Flags().StringVar(&out, "out", "", "release file (.parquet, .arrow/.ipc, .csv, or - for Arrow IPC on stdout)")
	c.Flags().StringVar(&report, "report", "", "write the JSON report here")
	c.Flags().StringVar(&html, "html", "", "write the HTML report here")
	return c
}
