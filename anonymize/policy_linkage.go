package anonymize

import (
	"fmt"
	"math"
	"slices"
)

// validateLinkage checks the mobility block's linkage keys and the static
// part of the re-linking lint (issue #12 item 7): under scope trip the
// output must hold nothing that names the subject of a trip. The subject
// column itself must be dropped (validateMobility); a dateshift column is
// refused here, because its keyed offset is the same for every row of a
// subject, so the shifted time minus the published time bucket is a
// pseudonym of the subject. The data part (a column whose values map one
// to one to subjects) is a measure of pass 1 (lint.go).
func (p *Policy) validateLinkage() error {
	m := p.Mobility
	if l := m.MaxLinkage; l != 0 && (!(l > 0 && l < 1) || math.IsNaN(l)) {
		return p.errf("mobility.max_linkage", "max_linkage must be in (0, 1) (a share of published traces), got %g", l)
	}
	seen := map[string]bool{}
	for i, c := range m.SubjectColumns {
		path := fmt.Sprintf("mobility.subject_columns[%d]", i)
		if m.Scope != "trip" {
			return p.errf(path, "subject_columns only applies to scope trip (under scope subject every row names its subject anyway)")
		}
		r, ok := p.Columns.Lookup(c)
		switch {
		case !ok:
			return p.errf(path, "column %q is not named under columns", c)
		case seen[c]:
			return p.errf(path, "%q listed twice", c)
		case c == p.Subject:
			return p.errf(path, "the subject column %q cannot be published under scope trip", c)
		case r.Action == ActionDrop:
			return p.errf(path, "column %q is dropped: list only published columns", c)
		}
		seen[c] = true
	}
	for _, r := range p.Columns {
		if r.Action == ActionMicroaggregate {
			switch r.Name {
			case p.Subject, m.Time, m.Lat, m.Lon:
				return p.errf("columns."+r.Name, "%q is the subject or a mobility column; microaggregate is for per-reading values", r.Name)
			}
		}
		if m.Scope == "trip" && r.Action == ActionDateShift && !slices.Contains(m.SubjectColumns, r.Name) {
			return p.errf("columns."+r.Name, "under mobility scope trip a dateshift column re-links trips: its keyed offset is one per subject, so the shifted time minus the published time bucket names the vehicle; drop it or coarsen it (or list it under mobility.subject_columns if the output may link trips to vehicles)")
		}
	}
	return nil
}

// validateMicroaggregate: microaggregate needs the mobility block's cells
// and time buckets.
func (p *Policy) validateMicroaggregate() error {
	if p.Mobility != nil {
		return nil
	}
	for _, r := range p.Columns {
		if r.Action == ActionMicroaggregate {
			return p.errf("columns."+r.Name, "microaggregate replaces a value by the mean of its (cell, time bucket) group: it needs a mobility block")
		}
	}
	return nil
}

// ForAttack returns a copy of the policy for the linkage attack on files
// (Runner.Attack): without its opt-out block — the adversary's raw
// readings include the subjects who opted out, and no list is needed — and
// without its release block, which the attack does not draw.
func (p *Policy) ForAttack() *Policy {
	c := *p
	c.OptOut, c.Release = nil, nil
	return &c
}
