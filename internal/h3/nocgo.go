//go:build !cgo

package h3

// This build has cgo off: CGO_ENABLED=0, or no C compiler on PATH (the go
// command then turns cgo off by itself). The line below fails to compile
// on purpose, and its message says what to do.
var _ int = "tarnkappe needs cgo and a C compiler (gcc or clang): its H3 cells come from Uber's C library through github.com/uber/h3-go. Install one (Debian/Ubuntu: apt-get install gcc; macOS: xcode-select --install), check that `go env CGO_ENABLED` prints 1, and build again; see README.md, Prerequisites"
