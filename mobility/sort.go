package mobility

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute/exec"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// SortOptions configures SortBySubjectTime.
type SortOptions struct {
	// Subject and Time are the sort keys: rows come out ordered by subject
	// (byte-wise on its string form), then by time; rows equal on both keep
	// their input order. Required.
	Subject, Time string
	// MaxRowsInMemory bounds the rows held at once: input is cut into runs of
	// this many rows, each sorted in memory and, if more input follows,
	// spilled to an encrypted temporary Arrow IPC stream file (the key is
	// held only in memory: internal/scratch); the runs are then merged.
	// Peak memory is about three times the bytes of one run (the run, its
	// concatenation and its sorted copy). 0 means 1<<20; must be >= 0.
	MaxRowsInMemory int
	// TempDir holds the spilled runs; "" means os.TempDir(). Files are
	// removed by Close.
	TempDir string
	// BatchSize is the number of rows per output batch; 0 means 65536.
	BatchSize int
	// Mem allocates everything; nil means memory.DefaultAllocator.
	Mem memory.Allocator
}

// SortedReader yields the rows of its input ordered by (subject, time). It
// implements array.RecordReader; Close removes the temporary files and must
// be called (Release alone does not close files).
type SortedReader struct {
	refs   int64
	schema *arrow.Schema
	mem    memory.Allocator
	opts   SortOptions
	subj   int
	ts     int
	cur    arrow.RecordBatch
	err    error
	// in-memory mode: one sorted run
	mem0 arrow.RecordBatch
	off  int64
	// merge mode
	files   []*scratch.File
	cursors mergeHeap
	ctx     context.Context
	runs    int
}

var _ array.RecordReader = (*SortedReader)(nil)

// SortBySubjectTime reads all of src and returns a reader over its rows
// sorted by (subject, time) with bounded memory (see SortOptions). It does not
// release src. Null subjects or timestamps are errors naming the row.
func SortBySubjectTime(ctx context.Context, src array.RecordReader, opts SortOptions) (*SortedReader, error) {
	const fn = "mobility.SortBySubjectTime"
	schema := src.Schema()
	r := &SortedReader{refs: 1, schema: schema, mem: opts.Mem, opts: opts, ctx: ctx}
	if r.mem == nil {
		r.mem = memory.DefaultAllocator
	}
	var err error
	if r.subj, err = fieldIndex(fn, "Subject", schema, opts.Subject); err != nil {
		return nil, err
	}
	if r.ts, err = fieldIndex(fn, "Time", schema, opts.Time); err != nil {
		return nil, err
	}
	if err := checkSubjectType(fn, "Subject", opts.Subject, schema.Field(r.subj).Type); err != nil {
		return nil, err
	}
	if err := checkTimeType(fn, "Time", opts.Time, schema.Field(r.ts).Type); err != nil {
		return nil, err
	}
	if opts.MaxRowsInMemory < 0 || opts.BatchSize < 0 {
		return nil, fmt.Errorf("%s: MaxRowsInMemory and BatchSize must be >= 0", fn)
	}
	if r.opts.MaxRowsInMemory == 0 {
		r.opts.MaxRowsInMemory = 1 << 20
	}
	if r.opts.BatchSize == 0 {
		r.opts.BatchSize = 1 << 16
	}
	if err := r.spill(ctx, src); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// spill cuts the input into sorted runs.
func (r *SortedReader) spill(ctx context.Context, src array.RecordReader) error {
	const fn = "mobility.SortBySubjectTime"
	var batch []arrow.RecordBatch
	var rows, base int64
	defer func() {
		for _, b := range batch {
			b.Release()
		}
	}()
	flush := func(last bool) error {
		run, err := r.sortRun(ctx, batch)
		for _, b := range batch {
			b.Release()
		}
		batch, rows = batch[:0], 0
		if err != nil {
			return err
		}
		if last && len(r.files) == 0 {
			r.mem0 = run
			return nil
		}
		defer run.Release()
		return r.writeRun(run)
	}
	for src.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := src.RecordBatch()
		if !rec.Schema().Equal(r.schema) {
			return fmt.Errorf("%s: batch schema changed mid-stream", fn)
		}
		if err := checkNoNulls(fn, r.opts.Subject, rec.Column(r.subj), base); err != nil {
			return err
		}
		if err := checkNoNulls(fn, r.opts.Time, rec.Column(r.ts), base); err != nil {
			return err
		}
		base += rec.NumRows()
		if rec.NumRows() == 0 {
			continue
		}
		rec.Retain()
		batch = append(batch, rec)
		rows += rec.NumRows()
		if rows >= int64(r.opts.MaxRowsInMemory) {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	if err := src.Err(); err != nil {
		return fmt.Errorf("%s: read input: %w", fn, err)
	}
	if len(batch) > 0 || len(r.files) == 0 {
		if err := flush(true); err != nil {
			return err
		}
	}
	if len(r.files) > 0 {
		return r.openRuns()
	}
	return nil
}

// sortRun concatenates the batches and returns them sorted (stable).
func (r *SortedReader) sortRun(ctx context.Context, batches []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(batches) == 0 {
		return emptyBatch(r.mem, r.schema), nil
	}
	cols, err := concatRecords(r.mem, batches)
	if err != nil {
		return nil, fmt.Errorf("mobility.SortBySubjectTime: concatenate run: %w", err)
	}
	var n int64
	for _, b := range batches {
		n += b.NumRows()
	}
	all := array.NewRecordBatch(r.schema, cols, n)
	for _, c := range cols {
		c.Release()
	}
	defer all.Release()
	keys := newStringKeyer(all.Column(r.subj))
	ts := all.Column(r.ts).(*array.Timestamp).TimestampValues()
	// Sort subject keys once, then order rows by key rank: comparing ints in
	// the hot loop rather than strings.
	rank := make([]int32, n)
	if keys.dict != nil {
		ord := make([]int32, len(keys.dvals))
		for i := range ord {
			ord[i] = int32(i)
		}
		slices.SortFunc(ord, func(a, b int32) int { return cmp.Compare(keys.dvals[a], keys.dvals[b]) })
		pos := make([]int32, len(ord))
		for p, d := range ord {
			pos[d] = int32(p)
		}
		for i := range rank {
			rank[i] = pos[keys.dict.GetValueIndex(i)]
		}
	} else {
		idx := map[string]int32{}
		var uniq []string
		for i := range rank {
			k := keys.key(i)
			v, ok := idx[k]
			if !ok {
				v = int32(len(uniq))
				idx[k] = v
				uniq = append(uniq, k)
			}
			rank[i] = v
		}
		ord := make([]int32, len(uniq))
		for i := range ord {
			ord[i] = int32(i)
		}
		slices.SortFunc(ord, func(a, b int32) int { return cmp.Compare(uniq[a], uniq[b]) })
		pos := make([]int32, len(ord))
		for p, d := range ord {
			pos[d] = int32(p)
		}
		for i := range rank {
			rank[i] = pos[rank[i]]
		}
	}
	perm := make([]int64, n)
	for i := range perm {
		perm[i] = int64(i)
	}
	slices.SortStableFunc(perm, func(a, b int64) int {
		if c := cmp.Compare(rank[a], rank[b]); c != 0 {
			return c
		}
		return cmp.Compare(ts[a], ts[b])
	})
	ib := array.NewInt64Builder(r.mem)
	ib.AppendValues(perm, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	return takeRecord(exec.WithAllocator(ctx, r.mem), all, idx)
}

func (r *SortedReader) writeRun(run arrow.RecordBatch) error {
	const fn = "mobility.SortBySubjectTime"
	// Runs hold raw GPS traces: encrypted scratch files, kept open (the
	// key lives only in this process) until the merge has read them.
	f, err := scratch.Create(r.opts.TempDir, "tarnkappe-sortrun-*.arrows.enc")
	if err != nil {
		return fmt.Errorf("%s: create spill file: %w", fn, err)
	}
	r.files = append(r.files, f)
	w := ipc.NewWriter(f, ipc.WithSchema(r.schema), ipc.WithAllocator(r.mem))
	for off := int64(0); off < run.NumRows(); off += int64(r.opts.BatchSize) {
		s := run.NewSlice(off, min(off+int64(r.opts.BatchSize), run.NumRows()))
		err = w.Write(s)
		s.Release()
		if err != nil {
			break
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.Rewind()
	}
	if err != nil {
		return fmt.Errorf("%s: write spill file: %w", fn, err)
	}
	r.runs++
	return nil
}

// cursor walks one spilled run.
type cursor struct {
	run  int
	rd   *ipc.Reader
	rec  arrow.RecordBatch
	keys *stringKeyer
	ts   []arrow.Timestamp
	pos  int
}

func (c *cursor) key() string { return c.keys.view(c.pos) }

// advance moves to the next row, loading the next batch when needed; it
// returns false at the end of the run. The previous batch is handed to keep
// so that rows already picked from it stay valid.
func (c *cursor) advance(keep func(arrow.RecordBatch)) (bool, error) {
	c.pos++
	for c.rec == nil || c.pos >= int(c.rec.NumRows()) {
		if c.rec != nil {
			keep(c.rec)
			c.rec = nil
		}
		if !c.rd.Next() {
			return false, c.rd.Err()
		}
		c.rec = c.rd.RecordBatch()
		c.rec.Retain()
		c.pos = 0
	}
	return true, nil
}

type mergeHeap []*cursor

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if c := cmp.Compare(a.key(), b.key()); c != 0 {
		return c < 0
	}
	if a.ts[a.pos] != b.ts[b.pos] {
		return a.ts[a.pos] < b.ts[b.pos]
	}
	return a.run < b.run
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *mergeHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

func (r *SortedReader) openRuns() error {
	var garbage []arrow.RecordBatch
	defer func() {
		for _, g := range garbage {
			g.Release()
		}
	}()
	for i, f := range r.files {
		rd, err := ipc.NewReader(f, ipc.WithAllocator(r.mem), ipc.WithSchema(r.schema))
		if err != nil {
			return fmt.Errorf("mobility.SortBySubjectTime: read spill file: %w", err)
		}
		c := &cursor{run: i, rd: rd, pos: -1}
		ok, err := c.advanceWith(r, func(b arrow.RecordBatch) { garbage = append(garbage, b) })
		if err != nil {
			c.close()
			return err
		}
		if !ok {
			c.close()
			continue
		}
		heap.Push(&r.cursors, c)
	}
	return nil
}

func (c *cursor) advanceWith(r *SortedReader, keep func(arrow.RecordBatch)) (bool, error) {
	ok, err := c.advance(keep)
	if err != nil {
		return false, fmt.Errorf("mobility.SortBySubjectTime: read spill file: %w", err)
	}
	if ok && c.pos == 0 {
		c.keys = newStringKeyer(c.rec.Column(r.subj))
		c.ts = c.rec.Column(r.ts).(*array.Timestamp).TimestampValues()
	}
	return ok, nil
}

func (c *cursor) close() {
	if c.rec != nil {
		c.rec.Release()
		c.rec = nil
	}
	c.rd.Release()
}

// Schema is the input schema.
func (r *SortedReader) Schema() *arrow.Schema { return r.schema }

// RecordBatch is the current batch, valid until the next call to Next.
func (r *SortedReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch (for array.RecordReader).
//
// Deprecated: use RecordBatch.
func (r *SortedReader) Record() arrow.RecordBatch { return r.cur }

// Err is the error that stopped Next, if any.
func (r *SortedReader) Err() error { return r.err }

// Runs is the number of runs spilled to disk (0: sorted in memory).
func (r *SortedReader) Runs() int { return r.runs }

// Retain adds a reference.
func (r *SortedReader) Retain() { r.refs++ }

// Release drops a reference; the last one closes the reader.
func (r *SortedReader) Release() {
	r.refs--
	if r.refs == 0 {
		r.Close()
	}
}

// Close releases all batches and removes the spill files. Safe to call more
// than once.
func (r *SortedReader) Close() error {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.mem0 != nil {
		r.mem0.Release()
		r.mem0 = nil
	}
	for _, c := range r.cursors {
		c.close()
	}
	r.cursors = nil
	var errs []error
	for _, f := range r.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	r.files = nil
	return errors.Join(errs...)
}

// Next advances to the next sorted batch.
func (r *SortedReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return false
	}
	if r.mem0 != nil {
		if r.off >= r.mem0.NumRows() {
			return false
		}
		end := min(r.off+int64(r.opts.BatchSize), r.mem0.NumRows())
		r.cur = r.mem0.NewSlice(r.off, end)
		r.off = end
		return true
	}
	if len(r.cursors) == 0 {
		return false
	}
	rec, err := r.merge()
	if err != nil {
		r.err = err
		return false
	}
	r.cur = rec
	return true
}

type pick struct {
	rec arrow.RecordBatch
	row int64
}

// merge pops up to BatchSize rows from the run cursors and assembles them.
func (r *SortedReader) merge() (arrow.RecordBatch, error) {
	var used []arrow.RecordBatch
	defer func() {
		for _, u := range used {
			u.Release()
		}
	}()
	keep := func(b arrow.RecordBatch) { used = append(used, b) }
	picks := make([]pick, 0, r.opts.BatchSize)
	for len(picks) < r.opts.BatchSize && len(r.cursors) > 0 {
		c := r.cursors[0]
		picks = append(picks, pick{rec: c.rec, row: int64(c.pos)})
		ok, err := c.advanceWith(r, keep)
		if err != nil {
			return nil, err
		}
		if ok {
			heap.Fix(&r.cursors, 0)
		} else {
			heap.Pop(&r.cursors)
			c.close()
		}
	}
	// Rows of the batches still current in a cursor stay owned by it.
	// Gather per source batch, in first-use order, then interleave.
	order := map[arrow.RecordBatch]int{}
	var srcs []arrow.RecordBatch
	var rows [][]int64
	rank := make([]int64, len(picks))
	for i, p := range picks {
		k, ok := order[p.rec]
		if !ok {
			k = len(srcs)
			order[p.rec] = k
			srcs = append(srcs, p.rec)
			rows = append(rows, nil)
		}
		rank[i] = int64(len(rows[k]))
		rows[k] = append(rows[k], p.row)
	}
	ctx := exec.WithAllocator(r.ctx, r.mem)
	parts := make([]arrow.RecordBatch, 0, len(srcs))
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	offset := make([]int64, len(srcs))
	var total int64
	for k, src := range srcs {
		ib := array.NewInt64Builder(r.mem)
		ib.AppendValues(rows[k], nil)
		idx := ib.NewArray()
		ib.Release()
		part, err := takeRecord(ctx, src, idx)
		idx.Release()
		if err != nil {
			return nil, fmt.Errorf("mobility.SortBySubjectTime: take: %w", err)
		}
		parts = append(parts, part)
		offset[k] = total
		total += part.NumRows()
	}
	cols, err := concatRecords(r.mem, parts)
	if err != nil {
		return nil, fmt.Errorf("mobility.SortBySubjectTime: concatenate: %w", err)
	}
	gathered := array.NewRecordBatch(r.schema, cols, total)
	for _, c := range cols {
		c.Release()
	}
	defer gathered.Release()
	if len(srcs) == 1 {
		gathered.Retain()
		return gathered, nil
	}
	perm := make([]int64, len(picks))
	for i, p := range picks {
		perm[i] = offset[order[p.rec]] + rank[i]
	}
	ib := array.NewInt64Builder(r.mem)
	ib.AppendValues(perm, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	return takeRecord(ctx, gathered, idx)
}
