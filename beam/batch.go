package beam

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

// Batch is the element the pipeline moves between workers: one Arrow record
// batch as an Arrow IPC stream, with where its rows came from so that an
// error on any worker can name the input file and row.
type Batch struct {
	// File is the index of the input file in Options.Inputs.
	File int
	// Base is the number of rows of the file before the batch's first
	// input row. Rows removed by an earlier step keep the base of their
	// batch, and Removed lists them.
	Base int64
	// Removed are the positions in the input batch of the rows the opt-out
	// removed (anonymize.Steps.OptOut), ascending: with them an error names
	// the data row Runner.Run names (anonymize.RowSpan).
	Removed []int32
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
		return Batch{}, fmt.Errorf("encoding the batch from row %d on: %w", base+1, err)
	}
	if err := w.Close(); err != nil {
		return Batch{}, fmt.Errorf("encoding the batch from row %d on: %w", base+1, err)
	}
	return Batch{File: file, Base: base, Rows: rec.NumRows(), IPC: buf.Bytes()}, nil
}

// encodeLike serialises rec with b's origin (a batch derived from b).
func (b Batch) encodeLike(rec arrow.RecordBatch, mem memory.Allocator) (Batch, error) {
	out, err := encodeBatch(b.File, b.Base, rec, mem)
	out.Shard, out.Removed = b.Shard, b.Removed
	return out, err
}

// rows is the data rows b holds: an input batch less the rows the opt-out
// removed, or, for trips, rows that are no data rows.
func (b Batch) rows() anonymize.RowSpan {
	if b.Shard > 0 {
		return anonymize.RowSpan{NoRow: "in a trip"}
	}
	return anonymize.RowSpan{Base: b.Base, Removed: b.Removed}
}

// dataRow is the data row of the batch's row i, or 0 for trips (no data
// row).
func (b Batch) dataRow(i int) int64 {
	if b.Shard > 0 {
		return 0
	}
	return b.rows().Row(int64(i))
}

// fail names the batch's origin in err and, when err is located at one of
// the batch's rows (counted from b.Base+1), the data row.
func (b Batch) fail(cfg Config, err error) error {
	return fmt.Errorf("tarnkappe/beam: %s: %w", b.origin(cfg), b.rows().Locate(err, b.Base, b.Rows))
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
		return nil, fmt.Errorf("decoding the batch from row %d on: %w", b.Base+1, err)
	}
	defer r.Release()
	if !r.Next() {
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("decoding the batch from row %d on: %w", b.Base+1, err)
		}
		return nil, fmt.Errorf("decoding the batch from row %d on: no record", b.Base+1)
	}
	rec := r.RecordBatch()
	rec.Retain()
	if rec.NumRows() != b.Rows {
		rec.Release()
		return nil, fmt.Errorf("decoding the batch from row %d on: %d rows, header says %d", b.Base+1, rec.NumRows(), b.Rows)
	}
	return rec, nil
}
