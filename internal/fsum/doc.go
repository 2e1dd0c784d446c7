// Package fsum sums float64 values exactly, so that the result does not
// depend on the order of the additions: the sum of a set of values is the
// same whether one loop added them in input order or workers added parts
// of them and merged their sums (package beam's microaggregation against
// the single-machine Runner's, bit for bit).
//
// A Sum holds the exact sum as a fixed-point integer: a signed 128-bit
// integer times 2^b, b the lowest exponent of the values added (each value
// is its 53-bit significand times a power of two). Values of similar
// magnitude — readings, measurements — stay within 128 bits for any
// realistic count (a reading to 0.1 has its lowest bit near 2^-46; 2^80
// such values up to 10^6 still fit); a sum that does not fit moves to a
// math/big integer, still exact. Value rounds the exact sum once, to the
// nearest float64 (ties to even).
//
// What it promises: Value is the correctly rounded sum of the values
// added, whatever their order and however they were split over Sums and
// merged (Merge, AppendBinary/AddBinary). NaN and ±Inf are counted apart:
// the value is NaN when a NaN or both infinities were added, else the
// infinity. Cost: an Add is a few integer operations (about 7 ns against
// 1 ns for a float64 +=; benchmarks/fsum); Value is a conversion, to be
// called once per sum, not per row.
package fsum
