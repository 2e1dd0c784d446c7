package kanon

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// Risk is the re-identification risk of a data set under the three attacker
// models ARX reports. An attacker re-identifies a row by matching its
// quasi-identifiers; a row in a class of size f is re-identified with
// probability 1/f.
//
//   - Prosecutor: the attacker knows the target is in the data. Highest
//     risk is 1/(smallest class); average risk is classes/rows.
//   - Journalist: the attacker does not know the target is in the data and
//     matches against a population table. Without a population table we use
//     the data set itself as the population (the sample is the population),
//     which makes journalist risk equal prosecutor risk — an upper bound of
//     the true journalist risk for any population containing the data.
//   - Marketer: the attacker re-identifies as many rows as possible; the
//     expected fraction is classes/rows.
type Risk struct {
	// Rows are the rows measured; with Subject, the members of the classes
	// (each subject once per class it appears in), which the averages
	// divide by.
	Rows int64 `json:"rows"`
	// Subject is the column whose distinct values the classes counted
	// (MeasureSubjectRisk), "" when they counted rows.
	Subject string `json:"subject,omitempty"`
	Classes int    `json:"classes"`
	// Prosecutor is the highest prosecutor risk, 1/min class size.
	Prosecutor float64 `json:"prosecutor"`
	// ProsecutorAverage is the average prosecutor risk, classes/rows.
	ProsecutorAverage float64 `json:"prosecutor_average"`
	// Journalist is the highest journalist risk (population = the data).
	Journalist float64 `json:"journalist"`
	// Marketer is the expected fraction of rows re-identified.
	Marketer float64 `json:"marketer"`
	// Uniques is the fraction of rows that are unique on the quasi-identifiers.
	Uniques      float64 `json:"uniques"`
	MinClassSize int64   `json:"min_class_size"`
}

func riskFromCounts(counts []int64) Risk {
	var r Risk
	for _, n := range counts {
		if n <= 0 {
			continue
		}
		r.Rows += n
		r.Classes++
		if r.MinClassSize == 0 || n < r.MinClassSize {
			r.MinClassSize = n
		}
		if n == 1 {
			r.Uniques++
		}
	}
	if r.Rows == 0 {
		return r
	}
	r.Prosecutor = 1 / float64(r.MinClassSize)
	r.ProsecutorAverage = float64(r.Classes) / float64(r.Rows)
	r.Journalist = r.Prosecutor
	r.Marketer = r.ProsecutorAverage
	r.Uniques /= float64(r.Rows)
	return r
}

// RiskBefore returns the risk of the input the histogram was built from.
func RiskBefore(h *Histogram) (Risk, error) {
	if h == nil || h.rows == 0 {
		return Risk{}, errors.New("kanon.RiskBefore: empty histogram")
	}
	e, err := newEngine(h)
	if err != nil {
		return Risk{}, fmt.Errorf("kanon.RiskBefore: %w", err)
	}
	// The engine's base table holds the bottom node's classes (the
	// sensitive column grouped away).
	return riskFromCounts(e.base.counts), nil
}

// RiskAfter returns the risk of the released rows of a search result: the
// classes of its transformation, suppressed classes removed.
func RiskAfter(h *Histogram, r *Result) (Risk, error) {
	s, err := newSearcherFor(h, r)
	if err != nil {
		return Risk{}, fmt.Errorf("kanon.RiskAfter: %w", err)
	}
	cl, supp, _ := s.classesOf(s.engine.lattice.id(r.Levels))
	var kept []int64
	for i, n := range cl.counts {
		if !supp[i] {
			kept = append(kept, n)
		}
	}
	return riskFromCounts(kept), nil
}

// MeasureRisk computes the risk of any data over the given
// quasi-identifiers, by grouping the text of their values (the same simple
// grouping Verify uses). It does not release rdr.
func MeasureRisk(ctx context.Context, rdr array.RecordReader, qi []string) (Risk, error) {
	return measureRisk(ctx, "kanon.MeasureRisk", rdr, qi, "")
}

// MeasureSubjectRisk is MeasureRisk with classes counted in distinct values
// of the subject column, as the pipeline counts vehicles (nulls as in
// VerifyOptions.Subject): a class of ten readings of one car is one
// member, and singles it out. It does not release rdr.
func MeasureSubjectRisk(ctx context.Context, rdr array.RecordReader, qi []string, subject string) (Risk, error) {
	if subject == "" {
		return Risk{}, errors.New("kanon.MeasureSubjectRisk: no subject column")
	}
	return measureRisk(ctx, "kanon.MeasureSubjectRisk", rdr, qi, subject)
}

func measureRisk(ctx context.Context, fn string, rdr array.RecordReader, qi []string, subject string) (Risk, error) {
	if len(qi) == 0 {
		return Risk{}, errors.New(fn + ": no quasi-identifiers")
	}
	gr, err := groupRows(ctx, rdr, qi, "", subject)
	if err != nil {
		return Risk{}, err
	}
	counts := make([]int64, 0, len(gr.groups))
	for _, g := range gr.groups {
		counts = append(counts, g.n)
	}
	r := riskFromCounts(counts)
	r.Subject = subject
	return r, nil
}
