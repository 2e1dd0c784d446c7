package anonymize

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
)

// This file extends the Steps seam with l-diversity and t-closeness
// (diversity.go): an engine gathers, with every combination KAnonSearch
// counts, its sensitive value, and, for the written rows, the members per
// (class, sensitive value); the decisions and the check of the output are
// Run's own (divAcc, kanon.Verify).

// KAnonSensitive is the policy's sensitive column (kanon.l, kanon.t), or ""
// without an l or t block.
func (s *Steps) KAnonSensitive() string {
	k := s.r.p.KAnon
	switch {
	case k == nil:
		return ""
	case k.L != nil:
		return k.L.Sensitive
	case k.T != nil:
		return k.T.Sensitive
	}
	return ""
}

// SensitiveTexts returns the sensitive column of a Trans batch as text (as
// the models see it), failing on a null as Run does, naming the column and
// row (base as for Transform).
func (s *Steps) SensitiveTexts(rec arrow.RecordBatch, base int64) ([]string, error) {
	name := s.KAnonSensitive()
	idx := rec.Schema().FieldIndices(name)
	if name == "" || len(idx) != 1 {
		return nil, fmt.Errorf("kanon: sensitive column %q is not in the transformed data", name)
	}
	col := rec.Column(idx[0])
	if err := sensitiveNulls(name, col, base); err != nil {
		return nil, err
	}
	in := newInterner()
	ids := make([]uint32, col.Len())
	if err := in.column(name, col, base, ids); err != nil {
		return nil, fmt.Errorf("kanon: %w", err)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = in.vals[id]
	}
	return out, nil
}

// addCombos records the sensitive values of gathered combinations, as add
// does for Run's batches: per subject in input order (File, Row), so that
// the first subject seen with a second value fails at the row Run names;
// otherwise rows per (combination, value).
func (d *divAcc) addCombos(a *kanonAcc, combos []KAnonCombo) error {
	if d == nil {
		return nil
	}
	if d.perSubject {
		order := make([]int, len(combos))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(i, j int) bool {
			x, y := combos[order[i]], combos[order[j]]
			if x.File != y.File {
				return x.File < y.File
			}
			return x.Row < y.Row
		})
		for _, i := range order {
			c := combos[i]
			if err := d.recordSubject(a.subj.id(c.Subject), d.vals.id(c.Sensitive), c.Row); err != nil {
				if c.Origin != "" {
					return fmt.Errorf("%s: %w", c.Origin, err)
				}
				return err
			}
		}
		return nil
	}
	comp := make([]uint32, len(a.qi)+1)
	var key []byte
	for _, c := range combos {
		if len(c.Values) != len(a.qi) {
			return fmt.Errorf("anonymize: kanon: a combination has %d values, want %d", len(c.Values), len(a.qi))
		}
		for j, v := range c.Values {
			comp[j] = a.in[j].id(v)
		}
		comp[len(a.qi)] = d.vals.id(c.Sensitive)
		key = packKey(key[:0], comp...)
		d.rows[string(key)] += c.N
	}
	return nil
}

// KAnonMember is a count of members for KAnonDiversityFails and
// KAnonFigures: N members of generalised class Class (values each
// followed by \x00, as KAnonDecision's keys) with sensitive value
// Sensitive; per subject distinct subjects, otherwise rows.
type KAnonMember struct {
	Class     string
	Sensitive string
	N         int64
}

// KAnonDiversityFails returns the classes among members (a settle round's
// survivors: members of the classes not suppressed so far, after every
// suppression so far) that fail k, l-diversity or t-closeness against the
// decision's distribution: the decision a Runner's settle round makes
// (divCollector.decide). Nil without an l or t block.
func (s *Steps) KAnonDiversityFails(d *KAnonDecision, members []KAnonMember) ([]string, error) {
	div, err := newDivAcc(s.r.p.KAnon, s.pl)
	if err != nil || div == nil {
		return nil, err
	}
	div.ref = d.Reference
	bad, _, err := div.table(members).verify(div, s.r.mem)
	return bad, err
}

// table is the divTable of gathered members, filled in a fixed order.
func (d *divAcc) table(members []KAnonMember) *divTable {
	members = append([]KAnonMember(nil), members...)
	sort.Slice(members, func(i, j int) bool {
		if members[i].Class != members[j].Class {
			return members[i].Class < members[j].Class
		}
		return members[i].Sensitive < members[j].Sensitive
	})
	tab := newDivTable(d.vals)
	for _, m := range members {
		tab.add(tab.class(m.Class), d.vals.id(m.Sensitive), m.N)
	}
	return tab
}
