// Package wilson computes the Wilson score interval of a proportion: the
// confidence interval the risk measures (mobility's unicity, linkage's
// attack shares) report for a share measured on a sample of units.
//
// It stays inside [0, 1] and behaves at shares of 0 and 1, where the plain
// normal approximation collapses to a point. It does not correct for
// finite populations or for clustering of the sampled units.
package wilson
