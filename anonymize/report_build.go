package anonymize

import (
	"errors"
	"fmt"
	"time"

	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/linkage"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// Figures are what one run of a policy counted and measured, whichever
// engine ran it: [Runner.Run] fills them as its steps go, the Beam pipeline
// (beam/) from its counters and combiners. Both hand them to the one report
// builder ([Steps.Report]; Run calls it too), which takes everything the
// policy fixes (thresholds, column details, key ids, which blocks a policy
// calls for) from the policy and runs the checks on the written rows'
// counts, so the two engines' reports cannot drift apart.
type Figures struct {
	// Tool names the engine: "tarnkappe", "tarnkappe-beam".
	Tool string
	// Input, Output and ReleaseOutput name the data in the report only.
	Input, Output, ReleaseOutput string
	// InputOrder says how the engine read the rows (InputReport.Order);
	// SortRuns how many sorted runs a sort spilled.
	InputOrder string
	SortRuns   int
	// InputFile describes the input file(s), when the input is one
	// (FingerprintFiles); nil for stdin or a reader.
	InputFile *InputFileFigures
	// Started is when the run started; the report's duration runs from it
	// to the build.
	Started time.Time
	Rows    RowFigures
	// OptOutSubjects is the number of distinct listed subjects the input
	// held (with an opt_out block).
	OptOutSubjects int
	// OptOutNotNormalized counts the rows whose subject value differs from
	// its normal form (opt_out.normalize), for the report's warning.
	OptOutNotNormalized int64
	// MaskedWhole counts, per mask column, the values too short to keep
	// their prefix and suffix, masked entirely.
	MaskedWhole map[string]int64
	Mobility    *MobilityFigures // with a mobility block
	KAnon       *KAnonFigures    // with a kanon block
	// Risk are the linkage and unicity measurements (with a mobility
	// block); an engine that does not make them leaves Risk nil and says
	// why in RiskNotComputed (the report says so, and a policy with
	// mobility.max_linkage then fails: the limit cannot be checked).
	Risk            *RiskFigures
	RiskNotComputed string
	Utility         *UtilityFigures // with mobility.utility
	DP              *DPFigures      // with a release block
}

// RowFigures count the rows of a run: In = Out + Suppressed + OptedOut +
// Trimmed.
type RowFigures struct {
	In  int64
	Out int64
	// Suppressed are the rows cell-hour k and k-anonymity removed.
	Suppressed int64
	// OptedOut are the rows of listed subjects, Trimmed the trip ends
	// dropped (mobility.endpoints drop).
	OptedOut, Trimmed int64
}

// MobilityFigures are the mobility block's counts.
type MobilityFigures struct {
	Trips int64
	// CellSuppressedRows are the rows cell-hour k removed (in
	// RowFigures.Suppressed too).
	CellSuppressedRows int64
	// Scope trip, counted on the written rows: TripsPublished are the
	// distinct trip ids, RowsWithTripID and RowsWithoutTripID the rows with
	// and without one (they add up to Rows.Out). RowsDetached are the rows
	// the trace gate (trace_k) detached from unpublished trips,
	// RowsDetachedEnds the rows that came to it without an id: trip ends
	// detached by the segmenter (mobility.endpoints detach). Without a
	// trace gate every row without an id is such an end, and the builder
	// takes RowsWithoutTripID for it.
	TripsPublished                    int
	RowsWithTripID, RowsWithoutTripID int64
	RowsDetached, RowsDetachedEnds    int64
	// OutputGroups and OutputGroupsBelowK are the recount of cell-hour k on
	// the written rows; the report builder fails unless none is below k.
	OutputGroups, OutputGroupsBelowK int
	// The fixed point of cell-hour k and k-anonymity: rounds, and the
	// groups and classes suppressed in addition.
	SettleRounds, SettleCellGroups, SettleClasses int
}

// KAnonFigures are the k-anonymity search's decision (with every class
// suppressed later, by the settle rounds, in Decision.Suppressed and
// Decision.DiversitySuppressed) and the recount of the written rows: the
// members of every written class and, with an l or t block, the members per
// (class, sensitive value). The builder verifies both.
type KAnonFigures struct {
	Decision *KAnonDecision
	Sizes    []int64
	Members  []KAnonMember
}

// RiskFigures are the linkage and unicity measurements of a mobility
// policy (measure_linkage.go, package linkage), all at the published
// precision of every published column but RawGPS.
type RiskFigures struct {
	// Columns are the columns of a point: every published column but the
	// trace's unit (the trip id, or the subject's pseudonym).
	Columns []string
	// Traces measures a sample of the published traces: linkage to the
	// raw subjects, unicity among the published traces.
	Traces linkage.TraceResult
	// Before is the unicity of the raw subjects' traces at the published
	// precision, RawGPS at the input's (lat, lon, ts).
	Before, RawGPS linkage.SubjectResult
}

// UtilityFigures are the utility comparison; Windowed says that rows fell
// outside UtilityWindow.
type UtilityFigures struct {
	mobility.MeanComparison
	Windowed bool
}

// DPFigures are what the DP release spent, how many partitions it kept,
// their published values and intervals, and dp's verdict on them
// (ReleaseFigures makes them from the release).
type DPFigures struct {
	Spent      dp.Spent
	Kept       int64
	Verdict    *dp.Verdict
	Partitions []DPPartitionValues
}

// Report builds the report of a run of the Steps' policy from the engine's
// figures (see [Figures]). It fails when a check fails (rows not accounted
// for, a written class below k or failing l/t, a written cell-hour below
// k) or when a block the policy calls for has no figures.
func (s *Steps) Report(f *Figures) (*Report, error) {
	return s.r.buildReport(s.pl, f)
}

// buildReport is Steps.Report; Run calls it with its own plan.
func (r *Runner) buildReport(pl *plan, f *Figures) (*Report, error) {
	p := r.p
	if err := r.complete(f); err != nil {
		return nil, err
	}
	rep := &Report{Tool: f.Tool, Version: Version(), Policy: p.File(), PolicySHA256: p.SHA256(), Input: f.Input, Output: f.Output,
		Started: f.Started.UTC().Truncate(time.Second), Keys: r.keys,
		Rows: RowCounts{In: f.Rows.In, Out: f.Rows.Out, Suppressed: f.Rows.Suppressed, FilteredBy: map[string]int64{}}}
	columnReport(rep, p, pl)
	rep.InputDetails = &InputReport{Order: f.InputOrder, SortRuns: f.SortRuns, SchemaSHA256: schemaSHA256(pl.in)}
	if in := f.InputFile; in != nil {
		rep.InputDetails.Bytes, rep.InputDetails.Fingerprint, rep.InputDetails.FingerprintKeyID = in.Bytes, in.Fingerprint, in.KeyID
	}
	if r.optout != nil {
		rep.Rows.FilteredBy["opt_out"] = f.Rows.OptedOut
		rep.OptOut = &OptOutReport{Listed: r.optout.listed(), Subjects: f.OptOutSubjects, Rows: f.Rows.OptedOut,
			Normalize: r.optout.mode.String(), RowsNotNormalized: f.OptOutNotNormalized}
	}
	rep.MaskedWhole = f.MaskedWhole
	if p.Mobility != nil {
		rep.Rows.FilteredBy["trip_trim"] = f.Rows.Trimmed
		if err := mobilityReport(rep, p, f); err != nil {
			return nil, err
		}
	}
	for _, n := range rep.Rows.FilteredBy {
		rep.Rows.Filtered += n
	}
	if err := rep.Rows.Check(); err != nil {
		return nil, err
	}
	if k := f.KAnon; k != nil {
		d := k.Decision
		res := &kanon.Result{Transformation: d.Transformation, InformationLoss: d.InformationLoss, PerColumnLoss: d.ColumnLoss}
		if err := kanonReport(rep, p.KAnon.K, d.QuasiIdentifiers, d.PerSubject, res, len(d.Suppressed), d.Before, k.Sizes); err != nil {
			return nil, err
		}
		outputCheck(rep, p)
		div, err := newDivAcc(p.KAnon, pl)
		if err != nil {
			return nil, err
		}
		if div != nil {
			div.ref, div.extra = d.Reference, d.DiversitySuppressed
			if err := div.finishTable(rep, div.table(k.Members), r.mem); err != nil {
				return nil, err
			}
		}
	}
	if p.Mobility != nil {
		if err := riskReport(rep, p.Mobility, f); err != nil {
			return nil, err
		}
	}
	if u := f.Utility; u != nil {
		ur := &UtilityReport{Column: p.Mobility.Utility.Column, BucketSeconds: p.UtilityBucket().Seconds(), MeanComparison: u.MeanComparison,
			WindowDays: UtilityWindow.Hours() / 24, Windowed: u.Windowed}
		if u.Groups > 0 {
			ur.WithinFraction = float64(u.Within) / float64(u.Groups)
		}
		rep.Mobility.Utility = ur
	}
	if d := f.DP; d != nil {
		rp, err := r.releasePlan(pl)
		if err != nil {
			return nil, err
		}
		rep.DP = dpReport(p, d.Spent, d.Kept, rp.public)
		rep.DP.Output = f.ReleaseOutput
		rep.DP.Verdict, rep.DP.PartitionValues = d.Verdict, d.Partitions
	}
	outputsReport(rep, p, f)
	rep.Duration = time.Since(f.Started).Seconds()
	return rep, nil
}

// complete checks that f holds the figures of every block the policy calls
// for, and none of a block it does not: an engine that forgot one would
// otherwise write a report that is silent about a guarantee.
func (r *Runner) complete(f *Figures) error {
	p := r.p
	m := p.Mobility
	for _, c := range []struct {
		name       string
		want, have bool
	}{
		{"mobility", m != nil, f.Mobility != nil},
		{"kanon", p.KAnon != nil, f.KAnon != nil && f.KAnon.Decision != nil},
		{"risk", m != nil, f.Risk != nil || f.RiskNotComputed != ""},
		{"utility", m != nil && m.Utility != nil, f.Utility != nil},
		{"release", p.Release != nil, f.DP != nil},
	} {
		if c.want != c.have {
			return fmt.Errorf("internal error: the policy calls for %s figures: %v, the run has them: %v", c.name, c.want, c.have)
		}
	}
	if f.Tool == "" || f.Started.IsZero() || f.InputOrder == "" {
		return errors.New("internal error: the run's figures name no tool, start or input order")
	}
	if d := f.DP; d != nil && (d.Verdict == nil || int64(len(d.Partitions)) != d.Kept) {
		return errors.New("internal error: the release's figures lack its verdict or partitions")
	}
	return nil
}

// columnReport lists every column's action and what it does: the input's
// columns in policy order, after the columns mobility adds.
func columnReport(rep *Report, p *Policy, pl *plan) {
	rep.Columns = map[string]string{}
	for _, f := range pl.mid.Fields() {
		if _, ok := p.Columns.Lookup(f.Name); !ok {
			d := fmt.Sprintf("H3 cell (resolution %d) of the trimmed coordinates", p.Mobility.CellResolution)
			if f.Name == p.Mobility.TripIDColumn {
				d = "random per-trip id (mobility scope trip)"
			}
			rep.ColumnDetails = append(rep.ColumnDetails, ColumnDetail{Name: f.Name, Action: "added", Detail: d})
			rep.Columns[f.Name] = "added"
		}
	}
	for _, c := range p.Columns {
		rep.Columns[c.Name] = string(c.Action)
		rep.ColumnDetails = append(rep.ColumnDetails, ColumnDetail{Name: c.Name, Action: string(c.Action), Detail: describeRule(c, p)})
	}
}

// mobilityReport fills the mobility block and checks cell-hour k's recount
// of the written rows.
func mobilityReport(rep *Report, p *Policy, f *Figures) error {
	m, mf := p.Mobility, f.Mobility
	rep.Mobility = &MobilityReport{Trips: mf.Trips, TrimmedRows: f.Rows.Trimmed, TrimMetres: m.TrimMetres,
		TrimSeconds: m.TrimTime.D().Seconds(), CellColumn: m.CellColumn, CellResolution: m.CellResolution,
		UnicityPoints: m.UnicityPoints, K: m.K, SuppressedRows: mf.CellSuppressedRows, Scope: m.Scope,
		OutputGroups: mf.OutputGroups, OutputGroupsBelowK: mf.OutputGroupsBelowK,
		SettleRounds: mf.SettleRounds, SettleCellGroups: mf.SettleCellGroups, SettleClasses: mf.SettleClasses}
	if m.Scope == "trip" {
		if err := tripIDReport(rep, m, f); err != nil {
			return err
		}
	}
	if mf.OutputGroupsBelowK > 0 {
		return fmt.Errorf("mobility: verification failed: %d written (cell, bucket) groups have fewer than k=%d subjects", mf.OutputGroupsBelowK, m.K)
	}
	return nil
}

// tripIDReport fills the trip id accounting (scope trip) and checks that
// it adds up: rows with and without an id are the rows written, and every
// row without one is a detached end or a row the trace gate detached.
func tripIDReport(rep *Report, m *MobilityPolicy, f *Figures) error {
	mf, r := f.Mobility, rep.Mobility
	ends := mf.RowsDetachedEnds
	if m.TraceK == 0 {
		ends = mf.RowsWithoutTripID // nothing else writes a null id
	}
	r.TraceK, r.TripsPublished, r.RowsWithTripID, r.RowsWithoutTripID = m.TraceK, mf.TripsPublished, mf.RowsWithTripID, mf.RowsWithoutTripID
	r.RowsDetachedEnds, r.RowsDetached = ends, mf.RowsDetached
	switch {
	case mf.RowsWithTripID+mf.RowsWithoutTripID != f.Rows.Out:
		return fmt.Errorf("row accounting broken: %d rows with a trip id + %d without != %d written", mf.RowsWithTripID, mf.RowsWithoutTripID, f.Rows.Out)
	case ends+mf.RowsDetached != mf.RowsWithoutTripID:
		return fmt.Errorf("row accounting broken: %d trip ends detached + %d rows of unpublished trips != %d rows without a trip id", ends, mf.RowsDetached, mf.RowsWithoutTripID)
	case m.Endpoints != "detach" && ends != 0:
		return fmt.Errorf("row accounting broken: %d rows without a trip id that are no detached trip ends (endpoints %s)", ends, m.Endpoints)
	case int64(mf.TripsPublished) > mf.RowsWithTripID || (mf.TripsPublished == 0) != (mf.RowsWithTripID == 0):
		return fmt.Errorf("row accounting broken: %d trips published with %d rows", mf.TripsPublished, mf.RowsWithTripID)
	}
	return nil
}

// describeRule says what a column's action does, for the report.
func describeRule(c ColumnRule, p *Policy) string {
	switch c.Action {
	case ActionPseudonymize:
		return fmt.Sprintf("%s, domain %q", c.Pseudonymize.Method, c.Pseudonymize.Domain)
	case ActionDateShift:
		return fmt.Sprintf("keyed per-subject shift within ±%d days, domain %q", c.DateShift.MaxDays, c.DateShift.Domain)
	case ActionCoarsen:
		if c.Coarsen.Time > 0 {
			return "floored to " + c.Coarsen.Time.String()
		}
		return fmt.Sprintf("snapped to a %g° grid", c.Coarsen.Degrees)
	case ActionMask:
		return describeMask(*c.Mask)
	case ActionGeneralize:
		if c.Generalize != nil {
			return fmt.Sprintf("%s hierarchy, level %d", c.Generalize.Hierarchy.Type, c.Generalize.Level)
		}
		return fmt.Sprintf("%s hierarchy, level chosen for k=%d", p.KAnon.Hierarchies[c.Name].Type, p.KAnon.K)
	case ActionDrop:
		if m := p.Mobility; m != nil && (c.Name == m.Lat || c.Name == m.Lon) {
			return "replaced by H3 cell column " + m.CellColumn
		}
	}
	return ""
}
