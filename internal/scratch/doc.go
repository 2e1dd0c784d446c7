// Package scratch holds temporary files whose contents are encrypted with a
// key that exists only in process memory.
//
// The pipeline spills personal data to disk during a run: transformed rows
// with raw VINs and quasi-identifiers (the k-anonymity spill), raw GPS traces
// (the external sort's runs, the mobility spool) and trip traces (the trace
// gate's partitions). The files are removed at the end of a run, but a run
// that crashes or is killed, or a disk image or backup taken meanwhile,
// would otherwise leave movement profiles and VINs at rest in clear. A
// scratch file is unreadable once the process is gone: its key is drawn from
// crypto/rand when the file is created and never written anywhere.
//
// The construction is the STREAM online authenticated encryption used by age
// (filippo.io/age, internal/stream), composed only of standard library
// primitives: AES-256-GCM (crypto/aes, crypto/cipher) over 64 KiB chunks,
// each sealed separately with the nonce 11-byte big-endian chunk counter ||
// 1-byte last-chunk flag. Because every chunk's position is bound into its
// nonce and the final chunk is marked, reading detects a flipped byte,
// reordered or swapped chunks, a truncated file and a dropped final chunk,
// and reports ErrCorrupt instead of returning altered data (as with any
// streaming AEAD, the chunks before a bad one have been returned by then:
// callers treat the error as fatal for the whole run, which every caller in
// this module does). Each file has its
// own fresh key, so counters never repeat under one key, and a file is
// written once (Rewind ends writing) so no chunk is ever sealed twice.
//
// A File is written sequentially, then Rewind positions it at the start for
// reading, as many times as needed; Close removes it. It is not safe for
// concurrent use.
//
// Removal on Close does not happen when a process is killed (SIGKILL, a
// crash, a power cut): its files are unreadable but fill the disk. A run
// therefore makes its files in a Dir of its own, which it locks for as long
// as it lives (package flock), and Sweep, called as a later run starts,
// removes the folders whose lock is free. The owner's PID is in the folder's
// name for people; the lock decides, so a reused PID keeps no dead run's
// files and a live run's files are never removed.
package scratch
