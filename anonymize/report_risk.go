package anonymize

import (
	"fmt"
	"strings"

	"github.com/tarnkappe/tarnkappe/linkage"
)

// linkageAdversary is who the linkage and unicity figures are about.
const linkageAdversary = "someone who holds the raw readings (a consortium member, a leak of its raw data, a vehicle's own app) and knows the policy, so can project them to the published precision"

// riskReport fills the unicity and linkage figures of a mobility policy and
// enforces mobility.max_linkage: the run fails — no output — when the
// linkage of published traces may exceed it, naming the columns that
// drive it.
func riskReport(rep *Report, m *MobilityPolicy, f *Figures) error {
	if rep.Risk == nil {
		rep.Risk = &RiskReport{}
	}
	rf := f.Risk
	if rf == nil {
		rep.Risk.NotComputed = f.RiskNotComputed
		if m.MaxLinkage > 0 {
			return fmt.Errorf("linkage: the policy sets mobility.max_linkage %g, but this engine did not measure linkage (%s): refusing to publish what cannot be checked", m.MaxLinkage, f.RiskNotComputed)
		}
		return nil
	}
	r := rep.Risk
	tr := rf.Traces
	r.Before.Unicity = ptr(rf.Before.Unicity.Share)
	r.Before.UnicityCI = []float64{rf.Before.Unicity.Lower, rf.Before.Unicity.Upper}
	r.Before.UnicityRawGPS = ptr(rf.RawGPS.Unicity.Share)
	r.Before.UnicityRawGPSCI = []float64{rf.RawGPS.Unicity.Lower, rf.RawGPS.Unicity.Upper}
	r.After.Unicity = ptr(tr.Unicity.Share)
	r.After.UnicityCI = []float64{tr.Unicity.Lower, tr.Unicity.Upper}
	r.After.Linkage = ptr(tr.Linkage.Share)
	r.After.LinkageCI = []float64{tr.Linkage.Lower, tr.Linkage.Upper}
	if c := tr.Correct; c != nil {
		r.After.LinkageCorrect = ptr(c.Share)
		r.After.LinkageCorrectCI = []float64{c.Lower, c.Upper}
	}
	meth := &RiskMethod{Adversary: linkageAdversary, Points: tr.P, Precision: rf.Columns,
		RawGPSPrecision: []string{m.Lat, m.Lon, m.Time},
		SubjectsSampled: rf.Before.Unicity.Of, SubjectsCensus: rf.Before.Census, PointShare: rf.Before.PointShare,
		RawGPSSubjects: rf.RawGPS.Unicity.Of, RawGPSPointShare: rf.RawGPS.PointShare,
		TracesSampled: tr.Traces, TracesCensus: tr.Census, TracesEvicted: tr.Evicted, MaxLinkage: m.MaxLinkage,
		LinkageDiagnosed: tr.Diagnosed, LinkageDrivers: tr.Drivers}
	if len(tr.Without) > 0 {
		meth.LinkageWithout = map[string]float64{}
		for _, w := range tr.Without {
			meth.LinkageWithout[w.Column] = w.Linkage
		}
	}
	r.Method = meth
	r.UnicityNote = fmt.Sprintf("unicity at %d points and linkage at published precision (%s) on keyed uniform samples of the whole input: %s raw subjects before, %s published traces after",
		tr.P, strings.Join(rf.Columns, ", "), sampleSize(rf.Before.Unicity.Of, rf.Before.Census), sampleSize(tr.Traces, tr.Census))
	if m.MaxLinkage > 0 {
		if bound, over := linkageOver(tr, m.MaxLinkage); over {
			return fmt.Errorf("linkage: %.1f%% of published traces (95%% interval %.1f–%.1f%%, %s) are linked to exactly one subject by %s; the policy allows at most %g (mobility.max_linkage, checked against %.1f%%)%s",
				100*tr.Linkage.Share, 100*tr.Linkage.Lower, 100*tr.Linkage.Upper, sampleSize(tr.Traces, tr.Census), linkageAdversary, m.MaxLinkage, 100*bound, drivers(tr.Drivers, tr.Without))
		}
	}
	return nil
}

// linkageOver reports whether the linkage may exceed limit: its value on a
// census, the upper end of its interval on a sample. No published trace
// links nothing.
func linkageOver(tr linkage.TraceResult, limit float64) (float64, bool) {
	if tr.Traces == 0 {
		return 0, false
	}
	bound := tr.Linkage.Upper
	if tr.Census {
		bound = tr.Linkage.Share
	}
	return bound, bound > limit
}

func sampleSize(n int, census bool) string {
	if census {
		return fmt.Sprintf("all %d", n)
	}
	return fmt.Sprintf("%d sampled", n)
}

// drivers names the columns that drive the linkage, for the error.
func drivers(ds, without []ColumnLinkage) string {
	if len(ds) == 0 {
		return "; leaving out any one published column does not bring it down (the cell-hour trace alone links the traces: raise mobility.trace_k or coarsen cells and hours)"
	}
	var b strings.Builder
	b.WriteString("; columns that drive it (linkage with each left out in turn, cumulatively): ")
	for i, d := range ds {
		if i > 0 {
			b.WriteString(", then ")
		}
		fmt.Fprintf(&b, "%s %.1f%%", d.Column, 100*d.Linkage)
	}
	b.WriteString("; each alone left out: ")
	for i, w := range without {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.1f%%", w.Column, 100*w.Linkage)
	}
	b.WriteString(". Drop those columns from the movement output, microaggregate per-reading values, or coarsen them")
	return b.String()
}
