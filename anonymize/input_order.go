package anonymize

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// inputOrder is Run's input step: it hands pass 1 the input in an order the
// trip segmenter streams, whatever order the rows come in, without the
// caller declaring it and without a pass over the input to find out.
//
// Only the segmenter cares about order (every other stage counts or maps
// rows), so a policy without a mobility block reads the input as it comes.
// With one, Run tries in turn, each attempt a fresh start and pass 1:
//
//  1. the input as it comes, segmented in time order (mobility.OrderTime,
//     within the segmenter's Lateness): the order ingestion produces, and
//     what Run always did;
//  2. when the segmenter reports the order broken (mobility.ErrOrder) and
//     the rows so far came grouped by subject (Segmenter.Grouped): the
//     input as it comes, segmented by subject (mobility.OrderSubject) — a
//     vehicle-by-vehicle export streams without sorting;
//  3. otherwise: the input sorted by subject and time
//     (mobility.SortBySubjectTime: sorted runs in encrypted scratch files,
//     merged; memory bounded by one run), segmented by subject.
//
// An attempt the order breaks is abandoned before anything is committed
// (its outputs aborted, its measures dropped); the next reads the input
// from its first row again. Where from: Options.Reopen, when the caller can
// open the input again (a file), or else a copy this step keeps of every
// batch read, written as it is read to an encrypted scratch file (the
// input may be stdin, which cannot be read twice). The copy costs a write
// of the input to temporary disk when the order is fine; a broken order is
// mostly found in the first batches (a shuffled input at its second row, a
// vehicle-by-vehicle one when the second vehicle continues a trip), so the
// attempts before the one that streams read little.
//
// Rows keep their data rows in errors: a sorted input carries each row's
// data row through the sort as an extra last column, which pass 1 takes off
// into the batch's RowSpan.
type inputOrder struct {
	r      *Runner
	schema *arrow.Schema
	src    array.RecordReader // the caller's: read once, never released here
	fixed  bool               // no mobility block: the input as it comes, no attempts
	// The current attempt: the segmenter's order, whether the input is
	// sorted, and the reader pass 1 reads.
	order  mobility.InputOrder
	sorted bool
	cur    array.RecordReader
	runs   int // the sort's runs spilled to encrypted scratch files (0: in memory)
	// tee writes the copy of what src hands out (nil with Reopen, and once
	// sorted: nothing reads the input a fourth time); prefix holds the
	// copies finished by earlier attempts, in input order.
	tee    *teeReader
	prefix []*scratch.File
	owned  []array.RecordReader // readers made here (reopened, replays, the sort), released by close
	// tmp is the step's locked scratch folder (copies and sort runs; a
	// killed run's is swept like a run's), nil without a mobility block.
	tmp *scratch.Dir
	// out holds the outputs of an attempt the order broke until the next
	// attempt's start takes them over; close aborts them if none does.
	out *outputs
	// file delivers the input file's figures (Options.InputFile), hashed on
	// its own goroutine while the passes run; nil without a file.
	file <-chan fileResult
}

type fileResult struct {
	fig *InputFileFigures
	err error
}

// fileFigures waits for the input file's figures (nil without a file).
func (in *inputOrder) fileFigures() (*InputFileFigures, error) {
	if in.file == nil {
		return nil, nil
	}
	r := <-in.file
	in.file = nil
	if r.err != nil {
		return nil, fmt.Errorf("input file: %w", r.err)
	}
	return r.fig, nil
}

// newInputOrder sets up the input step for src.
func (r *Runner) newInputOrder(src array.RecordReader) (*inputOrder, error) {
	in := &inputOrder{r: r, schema: src.Schema(), src: src, cur: src, order: mobility.OrderTime}
	if r.p.Mobility == nil {
		in.fixed = true
	} else {
		var err error
		if in.tmp, err = scratch.NewDir(r.opts.TempDir); err != nil {
			return nil, err
		}
		if r.opts.Reopen == nil {
			t, err := newTee(src, in.tmp.Path(), r.mem)
			if err != nil {
				in.tmp.Remove()
				return nil, err
			}
			in.tee, in.cur = t, t
		}
	}
	if path := r.opts.InputFile; path != "" {
		ch := make(chan fileResult, 1)
		in.file = ch
		go func() {
			fig, err := FingerprintFiles(r.opts.Keyring, "", path)
			ch <- fileResult{fig, err}
		}()
	}
	return in, nil
}

// name says how pass 1 reads the input: "as is" (no mobility block),
// "time", "subject" or "sorted".
func (in *inputOrder) name() string {
	switch {
	case in.fixed:
		return "as is"
	case in.sorted:
		return "sorted"
	case in.order == mobility.OrderSubject:
		return "subject"
	}
	return "time"
}

// retry decides after an attempt's pass 1 failed with err whether another
// order can succeed; grouped is the segmenter's Grouped. It sets up the
// next attempt and returns true, or returns false when err stands (it is
// not about order, or the input is sorted already).
func (in *inputOrder) retry(ctx context.Context, err error, grouped bool) (bool, error) {
	if in.fixed || in.sorted || !errors.Is(err, mobility.ErrOrder) {
		return false, nil
	}
	if e := ctx.Err(); e != nil {
		return false, nil
	}
	if grouped && in.order == mobility.OrderTime {
		in.order = mobility.OrderSubject
		again, ferr := in.again()
		if ferr != nil {
			return false, fmt.Errorf("reading the input again after %w: %w", err, ferr)
		}
		in.cur = again
		return true, nil
	}
	in.order, in.sorted = mobility.OrderSubject, true
	again, ferr := in.again()
	if ferr != nil {
		return false, fmt.Errorf("reading the input again after %w: %w", err, ferr)
	}
	s, serr := in.r.sortBySubjectTime(ctx, again, in.tmp.Path(), in.r.progress("sorting by subject and time", in.r.opts.ProgressTotal))
	if serr != nil {
		return false, fmt.Errorf("sorting the input by subject and time: %w", serr)
	}
	in.owned = append(in.owned, s)
	in.cur, in.runs = s, s.Runs()
	return true, nil
}

// sortBySubjectTime sorts src by the policy's subject and time, each row
// carrying its data row (from 1) as a last column (numbered; splitDataRows
// takes it off), with encrypted runs in dir. bar, if not nil, counts the
// rows read.
func (r *Runner) sortBySubjectTime(ctx context.Context, src array.RecordReader, dir string, bar *progress) (*mobility.SortedReader, error) {
	nb := newNumbered(src, r.mem)
	nb.bar = bar
	s, err := mobility.SortBySubjectTime(ctx, nb, mobility.SortOptions{
		Subject: r.p.Subject, Time: r.p.Mobility.Time, TempDir: dir, Mem: r.mem,
		MaxRowsInMemory: sortRunRows, BatchSize: sortBatchRows})
	nb.bar.done()
	nb.Release() // the sort has read it all
	return s, err
}

// The sort's memory: runs of sortRunRows rows (peak about three times a
// run's bytes while it is sorted: some 400 MB at 1M rows of 130 bytes),
// merged from batches of sortBatchRows rows, one per run at a time (at 100M
// rows, 100 runs hold 100 batches: some 200 MB).
const (
	sortRunRows   = 1 << 20
	sortBatchRows = 1 << 14
)

// again returns a reader over the input from its first row: reopened, or
// the copies of what was read followed by the rest of src (itself copied
// while the next attempt may still fail).
func (in *inputOrder) again() (array.RecordReader, error) {
	if reopen := in.r.opts.Reopen; reopen != nil {
		rd, err := reopen()
		if err != nil {
			return nil, err
		}
		in.owned = append(in.owned, rd)
		if !rd.Schema().Equal(in.schema) {
			return nil, errors.New("Options.Reopen returned a reader with another schema")
		}
		return rd, nil
	}
	t := in.tee
	in.tee = nil
	f, err := t.finish()
	if err != nil {
		t.close()
		return nil, err
	}
	in.prefix = append(in.prefix, f)
	parts := make([]array.RecordReader, 0, len(in.prefix)+1)
	for _, f := range in.prefix {
		if err := f.Rewind(); err != nil {
			return nil, err
		}
		rd, err := ipc.NewReader(f, ipc.WithAllocator(in.r.mem), ipc.WithSchema(in.schema))
		if err != nil {
			return nil, err
		}
		parts = append(parts, rd)
	}
	rest := in.src
	if !in.sorted {
		// Copied in case this attempt breaks too (the sort reads it all).
		t, err := newTee(in.src, in.tmp.Path(), in.r.mem)
		if err != nil {
			return nil, err
		}
		in.tee, rest = t, t
	}
	c := &chainReader{schema: in.schema, parts: append(parts, rest), own: len(parts)}
	c.refs.Store(1)
	in.owned = append(in.owned, c)
	return c, nil
}

// close releases what the step made and removes its scratch files.
func (in *inputOrder) close() {
	if in.out != nil {
		in.out.close()
		in.out = nil
	}
	if in.file != nil {
		<-in.file // the hash goroutine ends with the run
		in.file = nil
	}
	for _, rd := range in.owned {
		rd.Release()
	}
	in.owned = nil
	if in.tee != nil {
		in.tee.close()
		in.tee = nil
	}
	for _, f := range in.prefix {
		f.Close()
	}
	in.prefix = nil
	if in.tmp != nil {
		in.tmp.Remove()
		in.tmp = nil
	}
}

// split takes the data-row column a sorted input carries off rec (which it
// releases) and returns the batch without it and each row's data row.
func (in *inputOrder) split(rec arrow.RecordBatch) (arrow.RecordBatch, []int64, error) {
	defer rec.Release()
	return splitDataRows(in.schema, rec)
}

// splitDataRows takes the data-row column (numbered) off a sorted batch:
// the batch in schema, and the data row of each of its rows. rec stays the
// caller's.
func splitDataRows(schema *arrow.Schema, rec arrow.RecordBatch) (arrow.RecordBatch, []int64, error) {
	n := int(rec.NumCols()) - 1
	rows, ok := rec.Column(n).(*array.Int64)
	if n < 0 || !ok {
		return nil, nil, errors.New("internal error: the sorted input carries no data rows")
	}
	out := array.NewRecordBatch(schema, rec.Columns()[:n], rec.NumRows())
	return out, slices.Clone(rows.Int64Values()), nil
}

// teeReader hands out src's batches and writes a copy of each, as it is
// read, to an encrypted scratch file (Arrow IPC stream), so that the input
// can be read again from its first row.
type teeReader struct {
	src  array.RecordReader
	f    *scratch.File
	w    *ipc.Writer
	err  error
	refs int64
}

func newTee(src array.RecordReader, dir string, mem memory.Allocator) (*teeReader, error) {
	f, err := scratch.Create(dir, "tarnkappe-input-*.arrows.enc")
	if err != nil {
		return nil, fmt.Errorf("copy of the input: %w", err)
	}
	return &teeReader{src: src, f: f, refs: 1,
		w: ipc.NewWriter(f, ipc.WithSchema(src.Schema()), ipc.WithAllocator(mem))}, nil
}

func (t *teeReader) Next() bool {
	if t.err != nil || !t.src.Next() {
		return false
	}
	rec := t.src.RecordBatch()
	if !rec.Schema().Equal(t.src.Schema()) {
		// Pass 1 refuses the batch, naming its row; no copy is needed.
		return true
	}
	if err := t.w.Write(rec); err != nil {
		t.err = fmt.Errorf("copy of the input: %w", err)
		return false
	}
	return true
}

func (t *teeReader) Err() error {
	if t.err != nil {
		return t.err
	}
	return t.src.Err()
}

func (t *teeReader) Schema() *arrow.Schema          { return t.src.Schema() }
func (t *teeReader) RecordBatch() arrow.RecordBatch { return t.src.RecordBatch() }
func (t *teeReader) Record() arrow.RecordBatch      { return t.src.RecordBatch() }
func (t *teeReader) Retain()                        { t.refs++ }

// Release drops a reference; the copy stays until close (finish hands it on).
func (t *teeReader) Release() { t.refs-- }

// finish ends the copy and hands its file on, rewound for reading.
func (t *teeReader) finish() (*scratch.File, error) {
	if t.err != nil {
		return nil, t.err
	}
	err := t.w.Close()
	t.w = nil
	f := t.f
	t.f = nil
	if err == nil {
		err = f.Rewind()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("copy of the input: %w", err)
	}
	return f, nil
}

// close removes a copy that was not handed on.
func (t *teeReader) close() {
	if t.w != nil {
		t.w.Close()
		t.w = nil
	}
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// chainReader reads its parts one after the other; it releases the first
// own of them (the replays it was given) when released.
type chainReader struct {
	schema *arrow.Schema
	parts  []array.RecordReader
	own    int
	i      int
	cur    arrow.RecordBatch
	err    error
	refs   atomic.Int64
	bar    *progress // counts the rows read, or nil
}

func (c *chainReader) Next() bool {
	for c.err == nil && c.i < len(c.parts) {
		p := c.parts[c.i]
		if p.Next() {
			c.cur = p.RecordBatch()
			return true
		}
		if err := p.Err(); err != nil {
			c.err = err
			return false
		}
		c.i++
	}
	c.cur = nil
	return false
}

func (c *chainReader) Err() error                     { return c.err }
func (c *chainReader) Schema() *arrow.Schema          { return c.schema }
func (c *chainReader) RecordBatch() arrow.RecordBatch { return c.cur }
func (c *chainReader) Record() arrow.RecordBatch      { return c.cur }
func (c *chainReader) Retain()                        { c.refs.Add(1) }
func (c *chainReader) Release() {
	if c.refs.Add(-1) == 0 {
		for _, p := range c.parts[:c.own] {
			p.Release()
		}
		c.parts = nil
	}
}

// numbered appends each row's data row (from 1, in input order) to src's
// batches, as a last int64 column, so that the rows keep it through a sort.
type numbered struct {
	src    array.RecordReader
	schema *arrow.Schema
	mem    memory.Allocator
	rows   int64
	cur    arrow.RecordBatch
	err    error
	refs   atomic.Int64
	bar    *progress // counts the rows read, or nil
}

// rowColumn names the data-row column of a sorted input; it is taken off
// before any stage sees the batch, so it cannot clash with a column that
// stage knows.
const rowColumn = "tarnkappe.input_row"

func newNumbered(src array.RecordReader, mem memory.Allocator) *numbered {
	fields := append(slices.Clone(src.Schema().Fields()), arrow.Field{Name: rowColumn, Type: arrow.PrimitiveTypes.Int64})
	n := &numbered{src: src, mem: mem, schema: arrow.NewSchema(fields, nil)}
	n.refs.Store(1)
	return n
}

func (n *numbered) Next() bool {
	if n.cur != nil {
		n.cur.Release()
		n.cur = nil
	}
	if n.err != nil || !n.src.Next() {
		return false
	}
	rec := n.src.RecordBatch()
	if !slices.EqualFunc(rec.Schema().Fields(), n.src.Schema().Fields(), func(a, b arrow.Field) bool { return a.Name == b.Name && arrow.TypeEqual(a.Type, b.Type) }) {
		n.err = fmt.Errorf("the batch from row %d on has a different schema from the first", n.rows+1)
		return false
	}
	b := array.NewInt64Builder(n.mem)
	defer b.Release()
	b.Reserve(int(rec.NumRows()))
	for i := range rec.NumRows() {
		b.UnsafeAppend(n.rows + i + 1)
	}
	n.rows += rec.NumRows()
	n.bar.add(rec.NumRows())
	col := b.NewArray()
	defer col.Release()
	n.cur = array.NewRecordBatch(n.schema, append(slices.Clone(rec.Columns()), col), rec.NumRows())
	return true
}

func (n *numbered) Err() error {
	if n.err != nil {
		return n.err
	}
	return n.src.Err()
}

func (n *numbered) Schema() *arrow.Schema          { return n.schema }
func (n *numbered) RecordBatch() arrow.RecordBatch { return n.cur }
func (n *numbered) Record() arrow.RecordBatch      { return n.cur }
func (n *numbered) Retain()                        { n.refs.Add(1) }
func (n *numbered) Release() {
	if n.refs.Add(-1) == 0 && n.cur != nil {
		n.cur.Release()
		n.cur = nil
	}
}
