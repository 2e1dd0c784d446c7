package anonymize

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// OutputOrder is the output-order step: it takes the written rows in the
// order a run produces them (input order, or the order trips closed in,
// which tracks the original time of every reading and keeps a trip's rows
// together) and writes them in an order that depends only on published
// values and a secret drawn for the run: by published time bucket (the
// mobility time column, else the first column coarsened in time; rows
// without one first), and within a bucket uniformly at random
// (Fisher–Yates over ChaCha8, seeded from crypto/rand for the run and never
// stored). A row's position within its bucket says nothing but the bucket:
// not its original time, not its trip or vehicle, not its cell (which it
// publishes anyway; grouping by cell within the bucket would make a row's
// position stand for its cell, and cells and minutes within an hour go
// together along trips).
//
// Without a time bucket (no mobility block and no time coarsening, or a
// column with more than maxOrderBuckets distinct buckets) the rows are in
// a random order. A bucket with more rows than the memory budget is split
// at random into 2^s parts, s fixed by the bucket's written row count (a
// published figure) and the budget (a function of the written schema), and
// written part after part: still a uniformly random order of the bucket.
// Batch boundaries fall every outputBatchRows rows, and dictionaries are
// rewritten per written batch so that they too depend on the written rows
// alone (dictCanon, output_order_dict.go).
//
// Memory is bounded: Add writes each row to one of a few encrypted
// partition files (internal/scratch), cut by the bucket counts
// ([OrderCounts]) into ranges of buckets of at most the budget; WriteTo
// reads one partition at a time, shuffles it, and writes it on.
//
// Run uses it between pass 2 and the sink; engines that write the output
// themselves (beam/) feed it every written batch (Steps.NewOutputOrder).
type OutputOrder struct {
	mem       memory.Allocator
	schema    *arrow.Schema
	timeCol   int // published time bucket in schema, -1 none
	plan      orderPlan
	budget    int64 // rows per partition read back
	tempDir   string
	rng       *rand.Rand
	src       *rand.ChaCha8
	files     []*orderFile
	rangeRows []int64 // rows added per range (the buckets' written counts)
	dicts     *dictCanon
	batchRows int
	added     int64
	draining  bool
	// routing scratch
	fileOf []int32
	starts []int
}

// orderFile is one partition: an Arrow IPC stream in a scratch file.
type orderFile struct {
	f    *scratch.File
	w    *ipc.Writer
	rows int64
}

const (
	// orderMemory is what one partition may take in memory, as estimated
	// from the written schema alone (orderBudgetRows). Reading it back
	// holds it about twice (its batches and their concatenation).
	orderMemory = 32 << 20
	// maxOrderFiles bounds the partition files (each buffers a 64 KiB
	// chunk while Add writes); past it partitions grow instead.
	maxOrderFiles = 512
	// outputBatchRows is the length of every written batch but the last.
	outputBatchRows = 1 << 16
)

// orderBudgetRows is the rows one partition may hold: orderMemory over the
// estimated width of a row of schema (a function of the schema only, so
// that how a bucket is split depends on published values alone).
func orderBudgetRows(schema *arrow.Schema) int64 {
	w := 0
	for _, f := range schema.Fields() {
		w++ // validity, rounded up
		switch t := f.Type.(type) {
		case *arrow.DictionaryType:
			w += 1 + bitWidth(t.IndexType)/8 // the index, and a share of the values
		case *arrow.BooleanType:
			w++
		case arrow.FixedWidthDataType:
			w += max(t.BitWidth()/8, 1)
		default:
			w += 32 // strings, binary, nested: a guess
		}
	}
	return min(max(orderMemory/int64(max(w, 1)), 1<<12), 1<<22)
}

func bitWidth(t arrow.DataType) int {
	if fw, ok := t.(arrow.FixedWidthDataType); ok {
		return fw.BitWidth()
	}
	return 64
}

// orderTime names the published time bucket the output is ordered by: the
// mobility time column (which the policy requires to be coarsened), else
// the first written column coarsened in time; "" for none.
func orderTime(p *Policy, out *arrow.Schema) string {
	if m := p.Mobility; m != nil {
		return m.Time
	}
	for _, f := range out.Fields() {
		if r, ok := p.Columns.Lookup(f.Name); ok && r.Action == ActionCoarsen && r.Coarsen.Time > 0 {
			return f.Name
		}
	}
	return ""
}

// newOutputOrder plans the partitions of schema's rows from counts (an
// upper bound of the rows per time bucket); budget 0 means
// orderBudgetRows(schema).
func newOutputOrder(mem memory.Allocator, schema *arrow.Schema, timeName string, counts *OrderCounts, tempDir string, budget int64) (*OutputOrder, error) {
	if budget <= 0 {
		budget = orderBudgetRows(schema)
	}
	o := &OutputOrder{mem: mem, schema: schema, timeCol: -1, budget: budget, tempDir: tempDir,
		dicts: newDictCanon(schema, mem), batchRows: outputBatchRows}
	if timeName != "" && counts.keyed() {
		o.timeCol = schema.FieldIndices(timeName)[0]
	}
	o.plan = planOrder(counts, budget, maxOrderFiles)
	o.files = make([]*orderFile, o.plan.files)
	o.rangeRows = make([]int64, len(o.plan.ranges))
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("output order: %w", err)
	}
	o.src = rand.NewChaCha8(seed)
	clear(seed[:])
	o.rng = rand.New(o.src)
	return o, nil
}

// Add takes one batch of written rows (the written schema; the caller
// keeps its reference) and puts each row into its partition.
func (o *OutputOrder) Add(ctx context.Context, rec arrow.RecordBatch) error {
	if o.draining {
		return errors.New("output order: Add after WriteTo")
	}
	if !rec.Schema().Equal(o.schema) {
		return fmt.Errorf("output order: batch schema %s differs from the written schema %s", rec.Schema(), o.schema)
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	o.added += int64(n)
	if err := o.dicts.observe(rec); err != nil {
		return err
	}
	o.fileOf = slices.Grow(o.fileOf[:0], n)[:n]
	if err := o.route(rec, o.fileOf); err != nil {
		return err
	}
	if !slices.ContainsFunc(o.fileOf, func(f int32) bool { return f != o.fileOf[0] }) {
		return o.write(ctx, int(o.fileOf[0]), rec)
	}
	// Rows for several partitions: gather them by partition (a counting
	// sort), then write each partition's slice.
	o.starts = slices.Grow(o.starts[:0], len(o.files)+1)[:len(o.files)+1]
	clear(o.starts)
	for _, f := range o.fileOf {
		o.starts[f+1]++
	}
	for i := 1; i < len(o.starts); i++ {
		o.starts[i] += o.starts[i-1]
	}
	at := slices.Clone(o.starts[:len(o.files)])
	perm := make([]int32, n)
	for i, f := range o.fileOf {
		perm[at[f]] = int32(i)
		at[f]++
	}
	grouped, err := o.take(ctx, rec, perm)
	if err != nil {
		return err
	}
	defer grouped.Release()
	for f := range o.files {
		lo, hi := o.starts[f], o.starts[f+1]
		if lo == hi {
			continue
		}
		piece := grouped.NewSlice(int64(lo), int64(hi))
		err := o.write(ctx, f, piece)
		piece.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// route sets the partition file of every row of rec and counts the rows
// per range.
func (o *OutputOrder) route(rec arrow.RecordBatch, fileOf []int32) error {
	pl := &o.plan
	file := func(ri int) int32 {
		r := &pl.ranges[ri]
		o.rangeRows[ri]++
		if r.files == 1 {
			return int32(r.first)
		}
		return int32(r.first + int(o.src.Uint64()>>(64-bits.TrailingZeros(uint(r.files)))))
	}
	if o.timeCol < 0 {
		for i := range fileOf {
			fileOf[i] = file(0)
		}
		return nil
	}
	ts, ok := rec.Column(o.timeCol).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("output order: time column %q is %s, not a timestamp", rec.ColumnName(o.timeCol), rec.Column(o.timeCol).DataType())
	}
	vals := ts.TimestampValues()
	last, lastRange := int64(0), -1
	for i := range fileOf {
		if ts.IsNull(i) {
			fileOf[i] = file(pl.rangeOf(true, 0))
			continue
		}
		v := int64(vals[i])
		if lastRange < 0 || v != last {
			last, lastRange = v, pl.rangeOf(false, v)
		}
		fileOf[i] = file(lastRange)
	}
	return nil
}

// write appends rec (its dictionaries compacted when longer than it) to
// partition f, creating the file on first use.
func (o *OutputOrder) write(ctx context.Context, f int, rec arrow.RecordBatch) error {
	pf := o.files[f]
	if pf == nil {
		sf, err := scratch.Create(o.tempDir, "tarnkappe-order-*.arrows.enc")
		if err != nil {
			return fmt.Errorf("output order: %w", err)
		}
		pf = &orderFile{f: sf, w: ipc.NewWriter(sf, ipc.WithSchema(o.schema), ipc.WithAllocator(o.mem))}
		o.files[f] = pf
	}
	piece, err := o.dicts.compact(ctx, rec)
	if err != nil {
		return err
	}
	defer piece.Release()
	pf.rows += piece.NumRows()
	if err := pf.w.Write(piece); err != nil {
		return fmt.Errorf("output order: partition %s: %w", pf.f.Name(), err)
	}
	return nil
}

// take gathers rows perm of rec.
func (o *OutputOrder) take(ctx context.Context, rec arrow.RecordBatch, perm []int32) (arrow.RecordBatch, error) {
	b := array.NewInt32Builder(o.mem)
	b.AppendValues(perm, nil)
	idx := b.NewArray()
	b.Release()
	defer idx.Release()
	d, err := compute.Take(compute.WithAllocator(ctx, o.mem), *compute.DefaultTakeOptions(), compute.NewDatumWithoutOwning(rec), compute.NewDatumWithoutOwning(idx))
	if err != nil {
		return nil, fmt.Errorf("output order: %w", err)
	}
	return d.(*compute.RecordDatum).Value, nil
}

// WriteTo writes every row added, in the output order, to sink (which it
// does not commit) and returns the number of rows written. The sink is fed
// from its own goroutine, so that encoding and compressing one batch
// overlaps with ordering the next.
func (o *OutputOrder) WriteTo(ctx context.Context, sink Sink) (int64, error) {
	if o.draining {
		return 0, errors.New("output order: WriteTo called twice")
	}
	o.draining = true
	if err := o.dicts.seal(); err != nil {
		return 0, err
	}
	for _, pf := range o.files {
		if pf == nil {
			continue
		}
		if err := pf.w.Close(); err != nil {
			return 0, fmt.Errorf("output order: partition %s: %w", pf.f.Name(), err)
		}
		if err := pf.f.Rewind(); err != nil {
			return 0, fmt.Errorf("output order: %w", err)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	outc := make(chan arrow.RecordBatch, 2)
	werr := make(chan error, 1)
	var written int64
	go func() {
		var first error
		for rec := range outc {
			if first == nil {
				written += rec.NumRows()
				if first = sink.Write(rec); first != nil {
					cancel(first)
				}
			}
			rec.Release()
		}
		werr <- first
	}()
	ck := &rechunker{mem: o.mem, rows: o.batchRows, emit: func(rec arrow.RecordBatch) error {
		defer rec.Release()
		out, err := o.dicts.canonical(ctx, rec)
		if err != nil {
			return err
		}
		select {
		case outc <- out:
			return nil
		case <-ctx.Done():
			out.Release()
			return context.Cause(ctx)
		}
	}}
	err := o.drain(ctx, ck)
	if err == nil {
		err = ck.flush()
	}
	ck.release()
	close(outc)
	if we := <-werr; we != nil {
		return 0, we
	}
	if err != nil {
		return 0, err
	}
	if written != o.added {
		return 0, fmt.Errorf("output order: wrote %d rows, %d were added", written, o.added)
	}
	return written, nil
}

// drain reads the partitions back, range by range in bucket order; a range
// split into 2^k files is read in 2^s groups of files, s fixed by its
// written row count.
func (o *OutputOrder) drain(ctx context.Context, ck *rechunker) error {
	for ri, r := range o.plan.ranges {
		groups := 1
		if r.files > 1 {
			groups = min(r.files, splitFiles(o.rangeRows[ri], o.budget))
		}
		per := r.files / groups
		for g := range groups {
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
			first := r.first + g*per
			if err := o.drainGroup(ctx, o.files[first:first+per], ck); err != nil {
				return err
			}
		}
	}
	return nil
}

// drainGroup reads a group of partition files, shuffles its rows within
// their buckets and hands them to ck. The files are removed once read.
func (o *OutputOrder) drainGroup(ctx context.Context, files []*orderFile, ck *rechunker) error {
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for i, pf := range files {
		if pf == nil {
			continue
		}
		rd, err := ipc.NewReader(pf.f, ipc.WithAllocator(o.mem), ipc.WithSchema(o.schema))
		if err != nil {
			return fmt.Errorf("output order: partition %s: %w", pf.f.Name(), err)
		}
		var n int64
		for rd.Next() {
			rec := rd.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
			n += rec.NumRows()
		}
		err = rd.Err()
		rd.Release()
		if err != nil {
			return fmt.Errorf("output order: partition %s: %w", pf.f.Name(), err)
		}
		if n != pf.rows {
			return fmt.Errorf("output order: partition %s: read back %d rows, wrote %d", pf.f.Name(), n, pf.rows)
		}
		pf.f.Close()
		files[i] = nil
	}
	if len(recs) == 0 {
		return nil
	}
	all, err := concatBatches(o.mem, o.schema, recs)
	if err != nil {
		return fmt.Errorf("output order: %w", err)
	}
	defer all.Release()
	for _, r := range recs {
		r.Release()
	}
	recs = nil
	perm, err := o.permutation(all)
	if err != nil {
		return err
	}
	for lo := 0; lo < len(perm); lo += o.batchRows {
		part, err := o.take(ctx, all, perm[lo:min(lo+o.batchRows, len(perm))])
		if err != nil {
			return err
		}
		if err := ck.push(part); err != nil {
			return err
		}
	}
	return nil
}

// permutation orders the rows of one partition: by time bucket, then
// uniformly at random.
func (o *OutputOrder) permutation(rec arrow.RecordBatch) ([]int32, error) {
	n := int(rec.NumRows())
	perm := make([]int32, n)
	var rank []int32 // bucket rank per row; nil: no time bucket
	if o.timeCol >= 0 {
		var nb int
		var err error
		if rank, nb, err = bucketRanks(rec.Column(o.timeCol)); err != nil {
			return nil, err
		}
		// A counting sort by bucket.
		at := make([]int32, nb+1)
		for _, r := range rank {
			at[r+1]++
		}
		for b := 1; b < len(at); b++ {
			at[b] += at[b-1]
		}
		for i, r := range rank {
			perm[at[r]] = int32(i)
			at[r]++
		}
	} else {
		for i := range perm {
			perm[i] = int32(i)
		}
	}
	// Within each bucket: a uniformly random order (Fisher–Yates).
	for lo := 0; lo < n; {
		hi := n
		if rank != nil {
			for hi = lo + 1; hi < n && rank[perm[hi]] == rank[perm[lo]]; hi++ {
			}
		}
		for i := hi - 1; i > lo; i-- {
			j := lo + o.rng.IntN(i-lo+1)
			perm[i], perm[j] = perm[j], perm[i]
		}
		lo = hi
	}
	return perm, nil
}

// bucketRanks is the rank of every row's time bucket among the
// partition's buckets (null first, 0), and the number of ranks.
func bucketRanks(col arrow.Array) ([]int32, int, error) {
	ts, ok := col.(*array.Timestamp)
	if !ok {
		return nil, 0, fmt.Errorf("output order: time column is %s, not a timestamp", col.DataType())
	}
	vals := ts.TimestampValues()
	var distinct []int64
	seen := map[int64]bool{}
	for i, v := range vals {
		if ts.IsValid(i) && !seen[int64(v)] {
			seen[int64(v)] = true
			distinct = append(distinct, int64(v))
		}
	}
	slices.Sort(distinct)
	rank := make([]int32, len(vals))
	last, lastRank := int64(0), int32(-1)
	for i, v := range vals {
		if ts.IsNull(i) {
			continue // rank 0
		}
		if lastRank < 0 || int64(v) != last {
			r, _ := slices.BinarySearch(distinct, int64(v))
			last, lastRank = int64(v), int32(r+1)
		}
		rank[i] = lastRank
	}
	return rank, len(distinct) + 1, nil
}

// Close removes the partition files and drops what the step holds. Safe
// to call more than once.
func (o *OutputOrder) Close() {
	for i, pf := range o.files {
		if pf != nil {
			pf.w.Close()
			pf.f.Close()
			o.files[i] = nil
		}
	}
	o.dicts.release()
	o.src, o.rng = nil, nil
}

// concatBatches concatenates recs column by column (dictionaries are
// unified).
func concatBatches(mem memory.Allocator, schema *arrow.Schema, recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	parts := make([]arrow.Array, len(recs))
	for c := range cols {
		for i, r := range recs {
			parts[i] = r.Column(c)
		}
		a, err := array.Concatenate(parts, mem)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", schema.Field(c).Name, err)
		}
		cols[c] = a
	}
	return array.NewRecordBatch(schema, cols, n), nil
}

// rechunker cuts a stream of batches into batches of exactly rows rows
// (the last may be shorter), so that batch boundaries fall at fixed
// positions of the output whatever the partitions were.
type rechunker struct {
	mem     memory.Allocator
	rows    int
	pending []arrow.RecordBatch
	n       int
	emit    func(arrow.RecordBatch) error // takes ownership
}

// push takes ownership of rec.
func (c *rechunker) push(rec arrow.RecordBatch) error {
	for rec != nil {
		need, have := c.rows-c.n, int(rec.NumRows())
		if have < need {
			c.pending = append(c.pending, rec)
			c.n += have
			return nil
		}
		head := rec.NewSlice(0, int64(need))
		var tail arrow.RecordBatch
		if have > need {
			tail = rec.NewSlice(int64(need), int64(have))
		}
		rec.Release()
		c.pending = append(c.pending, head)
		c.n += need
		if err := c.flush(); err != nil {
			if tail != nil {
				tail.Release()
			}
			return err
		}
		rec = tail
	}
	return nil
}

// flush emits what is pending as one batch.
func (c *rechunker) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	var out arrow.RecordBatch
	if len(c.pending) == 1 {
		out = c.pending[0]
		c.pending = c.pending[:0]
	} else {
		var err error
		out, err = concatBatches(c.mem, c.pending[0].Schema(), c.pending)
		c.release()
		if err != nil {
			return fmt.Errorf("output order: %w", err)
		}
	}
	c.n = 0
	return c.emit(out)
}

func (c *rechunker) release() {
	for _, r := range c.pending {
		r.Release()
	}
	c.pending, c.n = c.pending[:0], 0
}
