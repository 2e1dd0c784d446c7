// Package h3 is the one door through which Tarnkappe reaches
// github.com/uber/h3-go, the Go binding of Uber's H3 C library (hexagonal
// cells for positions): it re-exports the few names the other packages use.
//
// H3 is C, so building Tarnkappe needs cgo and a C compiler. Without them
// (CGO_ENABLED=0, or no gcc or clang on PATH, in which case the go command
// turns cgo off by itself) h3-go's only file is excluded and the go command
// would stop with "build constraints exclude all Go files in …h3-go…",
// which does not say what to do. Because no other package imports h3-go,
// the build instead reaches this package, whose file for that case fails
// to compile with a sentence that says it (nocgo.go).
package h3
