package beam

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/arrowio"
	"github.com/tarnkappe/tarnkappe/kanon"
)

// Decision is the outcome of the k-anonymity search, broadcast to every
// worker of the second pass. It holds generalised class keys, never subjects.
type Decision struct {
	QuasiIdentifiers []string           `json:"quasi_identifiers"`
	Levels           []int              `json:"levels"`
	Transformation   map[string]int     `json:"transformation"`
	InformationLoss  map[string]float64 `json:"information_loss"`
	ColumnLoss       map[string]float64 `json:"column_loss,omitempty"`
	// Suppressed are the generalised classes (values joined by \x00) below k.
	Suppressed []string `json:"suppressed"`
	// SuppressedMembers is the number of members (subjects or rows) in them.
	SuppressedMembers int64 `json:"suppressed_members"`
	// Before are the class sizes at level 0, for the risk before.
	Before     []int64 `json:"before"`
	PerSubject bool    `json:"per_subject"`
}

// search builds kanon's histogram from the gathered combinations and runs
// the optimal search, the same way the single-machine Runner does: each
// combination repeated by its count (rows, or distinct subjects), class
// sizes recounted per subject, classes below k suppressed within the
// suppression limit.
func search(ctx context.Context, w *worker, combos map[string]int64) (*Decision, error) {
	k := w.p.KAnon
	qi := k.QuasiIdentifiers
	per := perSubject(w)
	if len(combos) == 0 {
		return nil, errors.New("kanon: no rows left for k-anonymity")
	}
	// Per subject the gathered keys are (combination, subject) pairs.
	counts := map[string]int64{}
	var pairs [][]string
	for key, n := range combos {
		f, err := splitFields(key)
		if err != nil {
			return nil, fmt.Errorf("kanon: %w", err)
		}
		want := len(qi)
		if per {
			want++
		}
		if len(f) != want {
			return nil, errors.New("kanon: corrupt combination key")
		}
		ck := string(packFields(f[:len(qi)]))
		if per {
			counts[ck]++
			pairs = append(pairs, f)
		} else {
			counts[ck] += n
		}
	}
	hier := make(map[string]kanon.Hierarchy, len(qi))
	for _, q := range qi {
		hier[q] = w.hier[q]
	}
	hb, err := kanon.NewHistogramBuilder(kanon.HistogramOptions{QuasiIdentifiers: qi, Hierarchies: hier})
	if err != nil {
		return nil, fmt.Errorf("kanon: %w", err)
	}
	keys := make([]string, 0, len(counts))
	for key := range counts {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	fields := make([]arrow.Field, len(qi))
	for i, q := range qi {
		fields[i] = arrow.Field{Name: q, Type: arrow.BinaryTypes.String}
	}
	bld := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer bld.Release()
	flush := func() error {
		rec := bld.NewRecordBatch()
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		if err := hb.Add(rec); err != nil {
			return fmt.Errorf("kanon: %w", err)
		}
		return nil
	}
	var before []int64
	for _, key := range keys {
		n := counts[key]
		before = append(before, n)
		vals, _ := splitFields(key)
		for range n {
			for i := range qi {
				bld.Field(i).(*array.StringBuilder).Append(vals[i])
			}
			if bld.Field(0).Len() >= 1<<16 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	h, err := hb.Histogram()
	if err != nil {
		return nil, fmt.Errorf("kanon: %w", err)
	}
	metric, err := kanon.ParseMetric(k.Metric)
	if err != nil {
		return nil, fmt.Errorf("kanon: %w", err)
	}
	res, err := kanon.Search(ctx, h, kanon.Options{K: k.K, SuppressionLimit: k.Suppression, Metric: metric})
	if err != nil {
		return nil, fmt.Errorf("kanon: k=%d over %v: %w", k.K, qi, err)
	}
	gen := func(vals []string) (string, error) {
		var g []byte
		for i := range qi {
			v, err := w.hier[qi[i]].Generalize(vals[i], res.Levels[i])
			if err != nil {
				return "", fmt.Errorf("kanon: column %q: %w", qi[i], err)
			}
			g = append(g, v...)
			g = append(g, 0)
		}
		return string(g), nil
	}
	classes := map[string]int64{}
	subjects := map[string]struct{}{}
	if per {
		seen := map[string]struct{}{}
		for _, f := range pairs {
			c, err := gen(f)
			if err != nil {
				return nil, err
			}
			subjects[f[len(qi)]] = struct{}{}
			mk := string(appendField([]byte(c), f[len(qi)]))
			if _, ok := seen[mk]; ok {
				continue
			}
			seen[mk] = struct{}{}
			classes[c]++
		}
	} else {
		for _, key := range keys {
			vals, _ := splitFields(key)
			c, err := gen(vals)
			if err != nil {
				return nil, err
			}
			classes[c] += counts[key]
		}
	}
	d := &Decision{QuasiIdentifiers: qi, Levels: res.Levels, Transformation: res.Transformation,
		InformationLoss: res.InformationLoss, ColumnLoss: res.PerColumnLoss, Before: before, PerSubject: per}
	for c, n := range classes {
		if n < int64(k.K) {
			d.Suppressed = append(d.Suppressed, c)
			d.SuppressedMembers += n
		}
	}
	sort.Strings(d.Suppressed)
	if per && len(pairs) == len(subjects) && d.SuppressedMembers != res.SuppressedRows {
		return nil, fmt.Errorf("kanon: internal check failed: search suppresses %d members, recount %d", res.SuppressedRows, d.SuppressedMembers)
	}
	if limit := int64(math.Floor(k.Suppression * float64(h.Rows()))); d.SuppressedMembers > limit {
		return nil, fmt.Errorf("kanon: %d members would be suppressed, above the limit %d", d.SuppressedMembers, limit)
	}
	return d, nil
}

func packFields(vals []string) []byte {
	var b []byte
	for _, v := range vals {
		b = appendField(b, v)
	}
	return b
}

// planTrans prepares the worker for batches that are already transformed
// (the input of Generalize): it derives the plan from the schema of the
// original input, which the transformed schema does not determine.
func (w *worker) planTrans(trans *arrow.Schema) error {
	if w.trans != nil {
		if !w.trans.Equal(trans) {
			return errors.New("a transformed batch has a different schema from the first")
		}
		return nil
	}
	return errors.New("internal: the worker has no plan (planInput not called)")
}

// planInput plans for the schema of the first input file (its footer or
// header only): steps after the column actions see transformed batches,
// whose schema does not determine the plan.
func (w *worker) planInput(ctx context.Context, path string) error {
	src, err := arrowio.Open(ctx, path, arrowio.OpenOptions{BatchSize: 1})
	if err != nil {
		return err
	}
	defer src.Close()
	return w.plan(src.Schema())
}

// apply generalises the quasi-identifiers, removes suppressed classes and
// projects the written columns. members receives each (class, subject)
// membership of the written rows once per batch, for verification.
func (f *classFn) apply(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, base int64, members func(string, int64)) (arrow.RecordBatch, int64, error) {
	w := f.w
	n := int(rec.NumRows())
	cols := make([]arrow.Array, len(rec.Columns()))
	copy(cols, rec.Columns())
	var owned []arrow.Array
	defer func() {
		for _, c := range owned {
			c.Release()
		}
	}()
	var suppressed int64
	var mask arrow.Array
	if d := f.d; d != nil {
		qi := d.QuasiIdentifiers
		texts := make([][]string, len(qi))
		for j, q := range qi {
			c := w.trans.FieldIndices(q)[0]
			h, lvl := w.hier[q], d.Levels[j]
			g, err := mapValues(mem, q, rec.Column(c), base, func(s string) (string, error) { return h.Generalize(s, lvl) })
			if err != nil {
				return nil, 0, fmt.Errorf("kanon: %w", err)
			}
			owned = append(owned, g)
			cols[c] = g
			if texts[j], err = rowTexts(q, g, base); err != nil {
				return nil, 0, fmt.Errorf("kanon: %w", err)
			}
		}
		var subj []string
		if d.PerSubject {
			var err error
			if subj, err = rowTexts(w.p.Subject, rec.Column(w.subjTrans), base); err != nil {
				return nil, 0, fmt.Errorf("kanon: %w", err)
			}
		}
		mb := array.NewBooleanBuilder(mem)
		defer mb.Release()
		mb.Reserve(n)
		seen := map[string]int64{}
		var key []byte
		for i := range n {
			key = key[:0]
			for j := range qi {
				key = append(key, texts[j][i]...)
				key = append(key, 0)
			}
			if f.sup[string(key)] {
				mb.UnsafeAppend(false)
				suppressed++
				continue
			}
			mb.UnsafeAppend(true)
			m := appendField(nil, string(key))
			if d.PerSubject {
				m = appendField(m, subj[i])
				seen[string(m)] = 1
			} else {
				m = appendField(appendField(m, ""), "rows")
				seen[string(m)]++
			}
		}
		for m, c := range seen {
			members(m, c)
		}
		mask = mb.NewArray()
		defer mask.Release()
	}
	outCols := make([]arrow.Array, len(w.keep))
	for i, k := range w.keep {
		outCols[i] = cols[k]
	}
	full := array.NewRecordBatch(w.out, outCols, int64(n))
	if suppressed == 0 {
		return full, 0, nil
	}
	defer full.Release()
	out, err := compute.FilterRecordBatch(ctx, full, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, 0, fmt.Errorf("kanon: suppressing rows of batch at row %d: %w", base, err)
	}
	return out, suppressed, nil
}
