// Package rowerr is the one format in which Tarnkappe's packages locate an
// error in the data: "row N, column "x": what went wrong".
//
// Rows count data rows from 1 in the order the input delivers them: a CSV
// header is not a row, and row 1 is the first record of the first batch.
// Packages that see a stream batch by batch turn a batch offset and an index
// into that number with [Row]. Each layer adds what it was doing, never the
// name of the layer below again, and keeps the chain: [Error] implements
// Unwrap, so errors.Is and errors.As reach the cause (a sentinel such as
// kanon.ErrBadHierarchy) through any number of wrappers.
//
// It plays the role encoding/csv's ParseError plays for one file, for every
// stage of a run.
package rowerr
