package anonymize

// meanTable returns every group's mean per microaggregated column (NaN
// where the group has no value: apply writes null there), computed once
// after the sums changed: the exact sums round once per group, not per
// row.
func (a *microAgg) meanTable() [][]float64 {
	if a.means != nil {
		return a.means
	}
	a.means = make([][]float64, len(a.cols))
	for c := range a.cols {
		m := make([]float64, len(a.sums[c]))
		for g := range m {
			m[g] = a.sums[c][g].Mean(a.counts[c][g])
		}
		a.means[c] = m
	}
	return a.means
}
