// Package flock takes advisory locks on open files, so that a run can tell
// whether the owner of a file it finds is still alive: a lock is held by an
// open file and dropped by the kernel when its process ends, however it ends
// (SIGKILL, a crash, a power cut), and a new process that happens to get the
// dead one's PID does not inherit it. A PID written into a name cannot tell
// that; the lock can.
//
// Locks are flock(2) locks where the system has them (Linux, the BSDs,
// macOS). Elsewhere Supported is false and TryLock reports every file as
// held by someone else, so that callers never remove what may belong to a
// live process: on such systems nothing is swept and concurrent writers are
// not detected (the documented fallback).
package flock
