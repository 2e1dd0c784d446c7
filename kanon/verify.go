package kanon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// This file is the independent checker. It deliberately shares no code with
// the search: it groups rows by the text of their quasi-identifier values in
// a Go map and checks each group, so a bug in the histogram, the roll-up or
// the models cannot hide itself.

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// QuasiIdentifiers are the columns whose value combinations form the
	// classes. Required.
	QuasiIdentifiers []string
	// K: every class must have at least K rows (K subjects with Subject).
	// Required, >= 2, unless LDiversity or TCloseness is set: then 0
	// checks those models alone.
	K int
	// Subject, when set, is the column whose distinct values a class
	// counts instead of rows, as the pipeline counts vehicles: a class of
	// ten readings of one car is one member. l and t then count each
	// subject of a class once, with the first sensitive value seen for it
	// (the pipeline refuses a subject with two). A null subject is a value
	// of its own: the null rows of a class count as one subject, never as
	// more (a checker must not count more members than there are).
	Subject string
	// LDiversity, when set, is checked per class too.
	LDiversity *LDiversity
	// TCloseness, when set, is checked per class against the distribution
	// of the sensitive column in the checked data itself (the only
	// distribution a file carries).
	TCloseness *TCloseness
	// Reference, when set, is the overall distribution (value → count)
	// t-closeness compares each class with, instead of the checked data's
	// own: a pipeline that suppressed classes checks its output against the
	// distribution its search used. A class value the reference lacks is a
	// violation.
	Reference map[string]int64
	// MaxReported bounds the violating classes listed in the report
	// (all are counted). Zero means 20.
	MaxReported int
}

// Violation is one class that fails a model.
type Violation struct {
	// Class maps each quasi-identifier to the class's value.
	Class map[string]string `json:"class"`
	Rows  int64             `json:"rows"`
	// Subjects is the class's distinct subjects (VerifyOptions.Subject).
	Subjects int64  `json:"subjects,omitempty"`
	Reason   string `json:"reason"`
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Rows int64 `json:"rows"`
	// Subject is VerifyOptions.Subject: when set, class sizes count its
	// distinct values and Subjects sums them over the classes.
	Subject      string      `json:"subject,omitempty"`
	Subjects     int64       `json:"subjects,omitempty"`
	Classes      int         `json:"classes"`
	MinClassSize int64       `json:"min_class_size"`
	Violations   int         `json:"violations"`
	Examples     []Violation `json:"examples,omitempty"`
}

// OK reports whether no class violates the models.
func (r *VerifyReport) OK() bool { return r.Violations == 0 }

// Verify checks that the rows of rdr satisfy k-anonymity (and the l/t models
// of opts) over the quasi-identifiers, and names the violating classes.
// Nulls are a value of their own ("<null>"). An empty input has no
// violations. It does not release rdr.
func Verify(ctx context.Context, rdr array.RecordReader, opts VerifyOptions) (*VerifyReport, error) {
	const fn = "kanon.Verify"
	if len(opts.QuasiIdentifiers) == 0 {
		return nil, fmt.Errorf("%s: QuasiIdentifiers must name at least one column", fn)
	}
	if opts.K < 2 && (opts.K != 0 || opts.LDiversity == nil && opts.TCloseness == nil) {
		return nil, fmt.Errorf("%s: K must be >= 2 (got %d), or 0 with LDiversity or TCloseness", fn, opts.K)
	}
	sens := ""
	if opts.LDiversity != nil {
		if err := opts.LDiversity.validate(fn); err != nil {
			return nil, err
		}
		sens = opts.LDiversity.Sensitive
	}
	if opts.TCloseness != nil {
		if err := opts.TCloseness.validate(fn); err != nil {
			return nil, err
		}
		if sens != "" && sens != opts.TCloseness.Sensitive {
			return nil, fmt.Errorf("%s: LDiversity and TCloseness name different sensitive columns", fn)
		}
		sens = opts.TCloseness.Sensitive
	}
	gr, err := groupRows(ctx, rdr, opts.QuasiIdentifiers, sens, opts.Subject)
	if err != nil {
		// About the data, located by column: no function name to repeat.
		return nil, err
	}
	groups, order := gr.groups, gr.order
	ref, refTotal := gr.global, gr.members
	if opts.Reference != nil {
		ref, refTotal = opts.Reference, 0
		for _, n := range ref {
			if n < 0 {
				return nil, fmt.Errorf("%s: Reference has a negative count", fn)
			}
			refTotal += n
		}
	}
	maxRep := opts.MaxReported
	if maxRep <= 0 {
		maxRep = 20
	}
	rep := &VerifyReport{Rows: gr.rows, Classes: len(groups)}
	unit := "rows"
	if opts.Subject != "" {
		rep.Subject, rep.Subjects, unit = opts.Subject, gr.members, "subjects"
	}
	for _, key := range order {
		g := groups[key]
		if rep.MinClassSize == 0 || g.n < rep.MinClassSize {
			rep.MinClassSize = g.n
		}
		var reasons []string
		if g.n < int64(opts.K) {
			reasons = append(reasons, fmt.Sprintf("%d %s < k=%d", g.n, unit, opts.K))
		}
		if opts.LDiversity != nil {
			if r := simpleL(g, opts.LDiversity); r != "" {
				reasons = append(reasons, r)
			}
		}
		if opts.TCloseness != nil {
			if r := simpleT(g, ref, refTotal, opts.TCloseness); r != "" {
				reasons = append(reasons, r)
			}
		}
		if len(reasons) == 0 {
			continue
		}
		rep.Violations++
		if len(rep.Examples) < maxRep {
			v := Violation{Class: map[string]string{}, Rows: g.rows, Reason: strings.Join(reasons, "; ")}
			if opts.Subject != "" {
				v.Subjects = g.n
			}
			for i, part := range strings.Split(key, "\x1f") {
				v.Class[opts.QuasiIdentifiers[i]] = part
			}
			rep.Examples = append(rep.Examples, v)
		}
	}
	return rep, nil
}

// group is one class: its members (rows, or distinct subjects) and their
// sensitive values.
type group struct {
	n    int64 // members
	rows int64
	sens map[string]int64
	// subjects seen in the class (subject mode): each counts once.
	subjects map[string]struct{}
}

// grouping is what groupRows found.
type grouping struct {
	groups  map[string]*group
	order   []string
	rows    int64
	members int64            // Σ members over the classes (rows without a subject)
	global  map[string]int64 // sensitive value → members
}

// groupRows counts rows, or with subject distinct subjects, per combination
// of the text of the columns' values.
func groupRows(ctx context.Context, rdr array.RecordReader, qi []string, sens, subject string) (*grouping, error) {
	gr := &grouping{groups: map[string]*group{}, global: map[string]int64{}}
	var sb strings.Builder
	column := func(rec arrow.RecordBatch, name, what string) (arrow.Array, error) {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return nil, rowerr.Atf(0, name, "%snot in input (or not unique)", what)
		}
		return rec.Column(idx[0]), nil
	}
	for rdr.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := rdr.RecordBatch()
		cols := make([]arrow.Array, len(qi))
		for i, name := range qi {
			c, err := column(rec, name, "")
			if err != nil {
				return nil, err
			}
			cols[i] = c
		}
		var scol, subj arrow.Array
		if sens != "" {
			c, err := column(rec, sens, "sensitive column ")
			if err != nil {
				return nil, err
			}
			scol = c
		}
		if subject != "" {
			c, err := column(rec, subject, "subject column ")
			if err != nil {
				return nil, err
			}
			subj = c
		}
		for r := range int(rec.NumRows()) {
			sb.Reset()
			for i, c := range cols {
				if i > 0 {
					sb.WriteByte(0x1f)
				}
				sb.WriteString(cellText(c, r))
			}
			key := sb.String()
			g := gr.groups[key]
			if g == nil {
				g = &group{}
				gr.groups[key] = g
				gr.order = append(gr.order, key)
			}
			g.rows++
			gr.rows++
			if subj != nil {
				if g.subjects == nil {
					g.subjects = map[string]struct{}{}
				}
				id := cellText(subj, r)
				if _, seen := g.subjects[id]; seen {
					continue
				}
				g.subjects[id] = struct{}{}
			}
			g.n++
			gr.members++
			if scol != nil {
				if g.sens == nil {
					g.sens = map[string]int64{}
				}
				v := cellText(scol, r)
				g.sens[v]++
				gr.global[v]++
			}
		}
	}
	if err := rdr.Err(); err != nil {
		return nil, err
	}
	return gr, nil
}

func cellText(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "<null>"
	}
	return a.ValueStr(i)
}

func simpleL(g *group, l *LDiversity) string {
	switch l.Variant {
	case LDistinct:
		if len(g.sens) < int(l.L) {
			return fmt.Sprintf("%d distinct sensitive values < l=%g", len(g.sens), l.L)
		}
	case LEntropy:
		var h float64
		for _, n := range g.sens {
			p := float64(n) / float64(g.n)
			h -= p * math.Log(p)
		}
		if h < math.Log(l.L)-1e-12 {
			return fmt.Sprintf("sensitive entropy %.4g < log(l=%g)", h, l.L)
		}
	case LRecursive:
		var f []int64
		for _, n := range g.sens {
			f = append(f, n)
		}
		slices.Sort(f)
		slices.Reverse(f)
		ll := int(l.L)
		if len(f) < ll {
			return fmt.Sprintf("%d distinct sensitive values < l=%d", len(f), ll)
		}
		var tail int64
		for _, n := range f[ll-1:] {
			tail += n
		}
		if !(float64(f[0]) < l.C*float64(tail)) {
			return fmt.Sprintf("most frequent sensitive value %d >= c·tail %g", f[0], l.C*float64(tail))
		}
	}
	return ""
}

func simpleT(g *group, global map[string]int64, total int64, t *TCloseness) string {
	for v := range g.sens {
		if _, ok := global[v]; !ok {
			return "a sensitive value of the class is not in the reference distribution"
		}
	}
	vals := make([]string, 0, len(global))
	for v := range global {
		vals = append(vals, v)
	}
	d := 0.0
	switch t.Distance {
	case TEqual:
		for _, v := range vals {
			d += math.Abs(float64(g.sens[v])/float64(g.n) - float64(global[v])/float64(total))
		}
		d /= 2
	case TOrdered:
		rank := sensitiveRanksSimple(vals)
		var cum float64
		for _, v := range rank {
			cum += float64(g.sens[v])/float64(g.n) - float64(global[v])/float64(total)
			d += math.Abs(cum)
		}
		if len(vals) > 1 {
			d /= float64(len(vals) - 1)
		}
	}
	if d > t.T+1e-12 {
		return fmt.Sprintf("distance %.4g to the overall distribution > t=%g", d, t.T)
	}
	return ""
}

// sensitiveRanksSimple sorts values numerically when all are numbers.
func sensitiveRanksSimple(vals []string) []string {
	out := slices.Clone(vals)
	var nums map[string]float64
	numeric := true
	nums = map[string]float64{}
	for _, v := range out {
		var f float64
		if _, err := fmt.Sscan(v, &f); err != nil {
			numeric = false
			break
		}
		nums[v] = f
	}
	slices.SortFunc(out, func(a, b string) int {
		if numeric && nums[a] != nums[b] {
			if nums[a] < nums[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return out
}

// ErrNotAnonymous is wrapped by errors reporting a failed verification.
var ErrNotAnonymous = errors.New("not anonymous")
