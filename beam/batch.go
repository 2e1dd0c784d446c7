package beam

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Batch is the element the pipeline moves between workers: one Arrow record
// batch as an Arrow IPC stream, with where its rows came from so that an
// error on any worker can name the input file and row.
type Batch struct {
	// File is the index of the input file in Options.Inputs.
	File int
	// Base is the row number (from 0, within the file) of the batch's first
	// input row. Rows removed by an earlier step keep the base of their batch.
	Base int64
	// Shard is 0 for batches of input rows; s+1 for rows the trip step of
	// subject shard s emitted (rows regrouped by subject, in trip order:
	// Base then counts that shard's output rows).
	Shard int
	// Rows is the number of rows in IPC.
	Rows int64
	// IPC is the batch as an Arrow IPC stream (schema + one record batch).
	IPC []byte
}

// encodeBatch serialises rec as an Arrow IPC stream.
func encodeBatch(file int, base int64, rec arrow.RecordBatch, mem memory.Allocator) (Batch, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		w.Close()
		return Batch{}, fmt.Errorf("encoding batch at row %d: %w", base, err)
	}
	if err := w.Close(); err != nil {
		return Batch{}, fmt.Errorf("encoding batch at row %d: %w", base, err)
	}
	return Batch{File: file, Base: base, Rows: rec.NumRows(), IPC: buf.Bytes()}, nil
}

// encodeLike serialises rec with b's origin (a batch derived from b).
func (b Batch) encodeLike(rec arrow.RecordBatch, mem memory.Allocator) (Batch, error) {
	out, err := encodeBatch(b.File, b.Base, rec, mem)
	out.Shard = b.Shard
	return out, err
}

// origin names where b's rows come from, for errors.
func (b Batch) origin(cfg Config) string {
	if b.Shard > 0 {
		return fmt.Sprintf("trips of subject shard %d", b.Shard-1)
	}
	return "input " + inputName(cfg, b.File)
}

// ord numbers the origins of batches: input files first, then the subject
// shards of the trip step (ordOrigin names them).
func (b Batch) ord(cfg Config) int {
	if b.Shard > 0 {
		return len(cfg.Inputs) + b.Shard - 1
	}
	return b.File
}

// ordOrigin is the origin of batches numbered ord (Batch.ord).
func ordOrigin(cfg Config, ord int) string {
	if ord >= len(cfg.Inputs) {
		return Batch{Shard: ord - len(cfg.Inputs) + 1}.origin(cfg)
	}
	return Batch{File: ord}.origin(cfg)
}

// inputName is the name of input file number i.
func inputName(cfg Config, i int) string {
	if i >= 0 && i < len(cfg.Inputs) {
		return cfg.Inputs[i]
	}
	return fmt.Sprintf("#%d", i)
}

// decode returns the record batch in b. The caller releases it.
func (b Batch) decode(mem memory.Allocator) (arrow.RecordBatch, error) {
	r, err := ipc.NewReader(bytes.NewReader(b.IPC), ipc.WithAllocator(mem))
	if err != nil {
		return nil, fmt.Errorf("decoding batch at row %d: %w", b.Base, err)
	}
	defer r.Release()
	if !r.Next() {
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("decoding batch at row %d: %w", b.Base, err)
		}
		return nil, fmt.Errorf("decoding batch at row %d: no record", b.Base)
	}
	rec := r.RecordBatch()
	rec.Retain()
	if rec.NumRows() != b.Rows {
		rec.Release()
		return nil, fmt.Errorf("decoding batch at row %d: %d rows, header says %d", b.Base, rec.NumRows(), b.Rows)
	}
	return rec, nil
}
