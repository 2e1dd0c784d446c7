//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package flock

import "os"

// Supported reports whether this system has the locks (see the package doc).
const Supported = false

// TryLock reports false: without locks no file can be shown to be free.
func TryLock(f *os.File) (bool, error) { return false, nil }
