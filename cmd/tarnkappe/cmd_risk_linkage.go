package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// linkageFlags are risk --linkage's.
type linkageFlags struct {
	raw, published, policy, report, keys string
	traces, subjects                     int
}

const linkageHint = "tarnkappe risk --linkage --raw RAW --published OUT --policy POLICY [--report REPORT.json] [--keys KEYS] [--subject vin]"

// linkageRisk runs the linkage attack of a run's own measure on files:
// RAW (the raw readings an adversary holds) against OUT (the policy's
// output). The raw rows are projected to the published precision by the
// policy's own steps (anonymize.Runner.Attack): the policy is required,
// the run's report when it has a kanon block (the chosen levels), the
// keyring when a published column is keyed.
func linkageRisk(cmd *cobra.Command, f *riskFlags) (*anonymize.AttackReport, error) {
	l := &f.link
	if l.raw == "" || l.published == "" || l.policy == "" {
		return nil, usageError(errors.New("--linkage needs --raw, --published and --policy"), linkageHint)
	}
	ctx := cmd.Context()
	p, err := anonymize.LoadPolicy(l.policy)
	if err != nil {
		return nil, usageError(err, "the policy the published file was made with")
	}
	if f.subject != "" && f.subject != p.Subject {
		return nil, usageError(fmt.Errorf("--subject %q is not the policy's subject %q", f.subject, p.Subject), "leave --subject out: the policy names it")
	}
	opts := anonymize.AttackOptions{Measure: anonymize.MeasureOptions{Traces: l.traces, Subjects: l.subjects}}
	if cmd.Flags().Changed("seed") {
		// A fixed key for a reproducible sample (the default is a fresh
		// random key: a sample nobody can shape the data around).
		k := sha256.Sum256([]byte("tarnkappe risk --linkage seed " + strconv.FormatUint(f.seed, 10)))
		opts.Measure.Key = k[:]
	}
	if p.KAnon != nil {
		if l.report == "" {
			return nil, usageError(errors.New("the policy has a kanon block: give the run's report (--report) for the generalisation levels it chose"), linkageHint)
		}
		src, err := os.ReadFile(l.report)
		if err != nil {
			return nil, usageError(err, "")
		}
		var rep struct {
			KAnon *struct {
				Transformation map[string]int `json:"transformation"`
			} `json:"kanon"`
		}
		if err := json.Unmarshal(src, &rep); err != nil || rep.KAnon == nil {
			return nil, usageError(fmt.Errorf("report %s: no kanon.transformation (%v)", l.report, err), "give the JSON report of the run that wrote --published")
		}
		opts.Levels = rep.KAnon.Transformation
	}
	var kr *pseudonym.Keyring
	if l.keys != "" {
		if kr, err = pseudonym.LoadKeyring(l.keys); err != nil {
			return nil, usageError(err, "")
		}
		defer kr.Destroy()
	}
	mem := memory.DefaultAllocator
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p.ForAttack(), Keyring: kr, Mem: mem, MemoryLimit: -1})
	if err != nil {
		return nil, usageError(err, "a published column is keyed: give the keyring the run used (--keys)")
	}
	defer r.Close()
	// The input flags (--csv-types, --allow-missing-end-of-stream) describe
	// the raw file, the member's own data; the published file is the
	// policy's output, read with the defaults.
	rawOpts, err := inputOptions(cmd, l.raw)
	if err != nil {
		return nil, err
	}
	rawOpts.Mem = mem
	raw, err := arrowio.Open(ctx, l.raw, rawOpts)
	if err != nil {
		return nil, usageError(err, "")
	}
	defer raw.Close()
	open := func() (array.RecordReader, error) {
		return arrowio.Open(ctx, l.published, arrowio.OpenOptions{Mem: mem})
	}
	hint := "the published file must be the output of the policy"
	if l.raw != "-" {
		// Raw rows in another order than time are sorted (encrypted
		// temporary files), from a second reading of the file.
		opts.Reopen = func() (array.RecordReader, error) { return arrowio.Open(ctx, l.raw, rawOpts) }
	} else {
		hint += ", and raw rows on stdin in time order (give a file to have them sorted)"
	}
	rep, err := r.Attack(ctx, raw, open, opts)
	if err != nil {
		return nil, usageError(err, hint)
	}
	return rep, nil
}

func addLinkageFlags(cmd *cobra.Command, l *linkageFlags) {
	fl := cmd.Flags()
	fl.StringVar(&l.raw, "raw", "", "linkage: the raw readings the adversary holds (the run's input, or part of it)")
	fl.StringVar(&l.published, "published", "", "linkage: the policy's output to attack (read twice; not stdin)")
	fl.StringVar(&l.policy, "policy", "", "linkage: the policy that wrote --published: it projects the raw rows to the published precision")
	fl.StringVar(&l.report, "report", "", "linkage: the run's JSON report (the generalisation levels, with a kanon block)")
	fl.StringVar(&l.keys, "keys", "", "linkage: the run's keyring, when a published column is keyed")
	fl.IntVar(&l.traces, "traces", 0, "linkage: published traces sampled (0 = 2,000)")
	fl.IntVar(&l.subjects, "subjects", 0, "linkage: raw subjects sampled for the unicity before (0 = 1,000)")
}
