// Package arrowio opens tabular files as streams of Arrow record batches and
// writes record batches back to files, so that a job using Tarnkappe as a
// library reads and writes the same files as the tarnkappe CLI without glue:
// [Open] returns a [Source], an array.RecordReader to hand to
// anonymize.Runner.Run, and [Create] returns a [Sink] that satisfies
// anonymize.Sink. Jobs that already hold Arrow data pass their own
// array.RecordReader and need not use this package.
//
// # Formats
//
// The format is chosen by the file name's extension:
//
//   - .parquet: read with pqarrow, one batch at a time (row groups are
//     streamed, the table is never materialised). Every string column and every
//     column the stored Arrow schema marks as dictionary is read as a
//     dictionary array (ArrowReadProperties.SetReadDict), so dictionary columns
//     stay dictionary-encoded end to end. Written with zstd compression,
//     Parquet dictionary encoding for string and dictionary columns, and the
//     Arrow schema stored in the file metadata.
//   - .arrow, .ipc: the Arrow IPC file format (read sequentially through its
//     stream section). A file without the "ARROW1" magic is read as an IPC
//     stream. The IPC file format allows one dictionary per field; when
//     batches bring different dictionaries the sink unifies them.
//   - .csv: a header row is required. Column types come from CSVOptions.Schema,
//     from CSVOptions.Types for some columns (ParseCSVTypes reads the CLI's
//     "postcode=string,ts=timestamp"), or are inferred from a bounded prefix
//     of rows (CSVOptions.InferRows). Inference takes numbers only in plain
//     decimal form: a digit string with leading zeros (postcode "01067") is
//     text, never the number 1067, and so is a long id beyond int64; a later
//     row that breaks the inferred type is an error. Values that do not parse
//     as the column's type are errors naming the file, row and column; they
//     never become nulls. Source.Warnings says which columns inference read
//     as text although they held numbers, naming the row and value.
//   - "-": an Arrow IPC stream on OpenOptions.Stdin / CreateOptions.Stdout.
//
// An Arrow IPC stream must end with its end-of-stream marker: a stream cut
// between two messages (an interrupted producer) is ErrNoEndOfStream, not
// a shorter input. OpenOptions.AllowMissingEndOfStream accepts such a
// stream with a warning (Source.Warnings). An aborted "-" sink never writes
// the marker.
//
// # Promises
//
// Every error names the file. Corrupt or truncated input (bad Parquet footer,
// truncated IPC, empty file, malformed CSV) yields an error, never a panic
// or a crash: arrow's readers are called behind a guard that turns their
// panics into errors; IPC messages are framed by this package and their
// metadata bounds-checked before arrow decodes them (arrow-go sizes
// allocations by lengths in the metadata, so a few corrupt bytes could
// otherwise exhaust memory: a fatal error no recover catches), as is the
// Arrow schema stored in Parquet metadata. The check follows the flatbuffers
// rules the Go runtime reads by (a field is present when its vtable slot
// is below the vtable length) and the verifier's (even vtable lengths). In
// compressed IPC bodies each buffer's claimed uncompressed length must be
// reachable from its compressed bytes (at most 32768 times, zstd's limit)
// and a message may decode to at most 4 GiB. Batches read from IPC are
// validated (buffer sizes, offsets, dictionary indices) before they are
// handed on; their errors name row and column as package rowerr does.
// A Sink writes to a temporary file in the destination directory and renames
// it into place only on Commit, after an fsync; Abort, or any error, removes
// the temporary file, so a failed run leaves nothing behind. The destination
// is checked when the Sink (or a [File], for bytes such as reports) is
// created: its folder must exist, a folder or device in its place is
// refused, a symbolic link is followed. The temporary file is locked while
// it is open (flock, where the system has it): a second writer of the same
// destination fails with [ErrOutputBusy], and temporary files of writers
// that died are removed. [CommitAll] commits several outputs all or none:
// every one is finished and synced first, then all are renamed, and a
// failure or cancellation takes back the renames already made (restoring
// the files they replaced). [CheckPaths] refuses outputs that are inputs or
// one another.
//
// # What it does not do
//
// It does not convert between schemas, does not infer nested CSV types, and
// does not buffer whole files in memory (except the per-column dictionaries an
// IPC file sink must unify).
package arrowio
