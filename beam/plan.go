package beam

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// stringDict is the output type of generalised, masked and (for dictionary
// input) pseudonymised columns, as in package anonymize.
var stringDict = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// colFn transforms one column of a batch; the result is released by the caller.
type colFn func(ctx context.Context, mem memory.Allocator, col arrow.Array, rec arrow.RecordBatch, base int64) (arrow.Array, error)

// worker is what every worker derives from the job's Config in Setup: the
// policy, the keys (read from the keyring reference, never from the graph),
// the column functions and the schemas of each step.
type worker struct {
	p       *anonymize.Policy
	kr      *pseudonym.Keyring
	closers []func()
	keys    map[string]string // domain → key id
	hier    map[string]kanon.Hierarchy
	optout  *optOutSet
	// per input schema
	in        *arrow.Schema
	fns       []colFn
	actions   []anonymize.Action
	trans     *arrow.Schema // after the column actions
	out       *arrow.Schema // written: dropped columns removed, QIs generalised
	keep      []int
	subject   int   // in the input
	subjTrans int   // in trans
	qiIdx     []int // in trans
}

// newWorker parses the policy and, when it needs keys, loads the keyring from
// cfg.Keys. The caller closes the worker.
func newWorker(cfg Config) (w *worker, err error) {
	p, err := anonymize.ParsePolicy(cfg.PolicyFile, cfg.Policy)
	if err != nil {
		return nil, err
	}
	if err := supported(p); err != nil {
		return nil, err
	}
	w = &worker{p: p, keys: map[string]string{}, hier: map[string]kanon.Hierarchy{}}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	needKeys := p.OptOut != nil
	for _, c := range p.Columns {
		if c.Action == anonymize.ActionPseudonymize || c.Action == anonymize.ActionDateShift {
			needKeys = true
		}
	}
	if needKeys {
		if cfg.Keys == "" {
			return nil, fmt.Errorf("the policy %s needs keys (pseudonyms, date shift or opt-out) but no keyring was given", p.File())
		}
		if w.kr, err = pseudonym.LoadKeyring(cfg.Keys); err != nil {
			return nil, err
		}
		w.closers = append(w.closers, w.kr.Destroy)
	}
	for _, c := range p.Columns {
		if c.Action == anonymize.ActionGeneralize && c.Generalize != nil {
			h, err := hierarchy(p, c.Generalize.Hierarchy)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", c.Name, err)
			}
			if c.Generalize.Level >= h.Levels() {
				return nil, fmt.Errorf("column %q: level %d is above the hierarchy's top level %d", c.Name, c.Generalize.Level, h.Levels()-1)
			}
			w.hier[c.Name] = h
		}
	}
	if k := p.KAnon; k != nil {
		for _, q := range k.QuasiIdentifiers {
			h, err := hierarchy(p, k.Hierarchies[q])
			if err != nil {
				return nil, fmt.Errorf("kanon.hierarchies.%s: %w", q, err)
			}
			w.hier[q] = h
		}
	}
	if o := p.OptOut; o != nil {
		mac, err := pseudonym.NewHMAC(w.kr, pseudonym.HMACOptions{Domain: o.Domain, Bits: 256})
		if err != nil {
			return nil, fmt.Errorf("opt_out: %w", err)
		}
		w.closers = append(w.closers, mac.Destroy)
		w.keys[o.Domain] = mac.KeyID()
		toForm := func(v string) (string, error) { return v, nil }
		if o.Form == "pseudonym" {
			rule, _ := p.Columns.Lookup(p.Subject)
			if rule.Action != anonymize.ActionPseudonymize {
				return nil, fmt.Errorf("opt_out: form pseudonym needs the subject column %q to be pseudonymised", p.Subject)
			}
			_, one, _, err := w.pseudonymFn(p.Subject, rule.Pseudonymize)
			if err != nil {
				return nil, err
			}
			toForm = one
		}
		if w.optout, err = loadOptOut(p.Resolve(o.File), mac, toForm); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// supported rejects the policy blocks the Beam pipeline does not run yet,
// rather than silently skipping a protection.
func supported(p *anonymize.Policy) error {
	if p.Mobility != nil {
		return errors.New("tarnkappe/beam: the mobility block (trip segmentation, trimming, cells) is not supported on Beam yet; run it with `tarnkappe run`")
	}
	// Fields this package implements; a policy field added to package
	// anonymize later is rejected when set, until Beam implements it too.
	if f := unknownSet(*p, "Version", "Subject", "Keyring", "OptOut", "Columns", "KAnon", "Mobility", "Release"); f != "" {
		return fmt.Errorf("tarnkappe/beam: policy field %s is not supported on Beam yet", f)
	}
	if p.OptOut != nil {
		if f := unknownSet(*p.OptOut, "File", "Form", "Domain"); f != "" {
			return fmt.Errorf("tarnkappe/beam: opt_out field %s is not supported on Beam yet", f)
		}
	}
	if p.KAnon != nil {
		if f := unknownSet(*p.KAnon, "QuasiIdentifiers", "K", "L", "T", "Suppression", "Metric", "Hierarchies", "PerSubject"); f != "" {
			return fmt.Errorf("tarnkappe/beam: kanon field %s is not supported on Beam yet", f)
		}
	}
	if r := p.Release; r != nil {
		if f := unknownSet(*r, "By", "Epsilon", "Delta", "MaxPartitions", "MaxPerPartition", "Count", "Aggregates", "PublicPartitions"); f != "" {
			return fmt.Errorf("tarnkappe/beam: release field %s is not supported on Beam yet", f)
		}
		for _, a := range r.Aggregates {
			if f := unknownSet(a, "Column", "Kind", "Lower", "Upper", "Quantiles"); f != "" {
				return fmt.Errorf("tarnkappe/beam: release aggregate field %s is not supported on Beam yet", f)
			}
		}
	}
	if k := p.KAnon; k != nil && (k.L != nil || k.T != nil) {
		return errors.New("tarnkappe/beam: l-diversity and t-closeness are not supported on Beam yet")
	}
	if r := p.Release; r != nil && r.PublicPartitions != "" {
		return errors.New("tarnkappe/beam: release.public_partitions is not supported on Beam yet; use private partition selection (delta > 0)")
	}
	return nil
}

// unknownSet returns the name of the first exported field of struct v that
// is not in known and not zero.
func unknownSet(v any, known ...string) string {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() || slices.Contains(known, f.Name) {
			continue
		}
		if !rv.Field(i).IsZero() {
			return f.Name
		}
	}
	return ""
}

func (w *worker) close() {
	if w == nil {
		return
	}
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
}

// hierarchy builds a kanon hierarchy from its policy description, as the
// single-machine Runner does.
func hierarchy(p *anonymize.Policy, h anonymize.HierarchySpec) (kanon.Hierarchy, error) {
	switch h.Type {
	case "interval":
		return kanon.NewIntervalHierarchy(kanon.IntervalHierarchy{Origin: h.Origin, Width: h.Width, FanOut: h.FanOut, Height: h.Height, Min: h.Min, Max: h.Max})
	case "mask":
		return kanon.MaskHierarchy{MaxMasked: h.MaxMasked}, nil
	case "date":
		return kanon.DateHierarchy{}, nil
	case "table":
		sep := ';'
		if h.Separator != "" {
			sep, _ = utf8.DecodeRuneInString(h.Separator)
		}
		f, err := os.Open(p.Resolve(h.File))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return kanon.ParseHierarchy(f, sep)
	}
	return nil, fmt.Errorf("unknown hierarchy type %q", h.Type)
}

// pseudonymFn returns the column and single-value functions of a
// pseudonymize action, and its key id.
func (w *worker) pseudonymFn(name string, s *anonymize.PseudonymizeSpec) (colFn, func(string) (string, error), string, error) {
	type columnFunc func(ctx context.Context, arr arrow.Array, opts pseudonym.ColumnOptions) (arrow.Array, error)
	var fn columnFunc
	var one func(string) (string, error)
	var id string
	switch s.Method {
	case "hmac":
		h, err := pseudonym.NewHMAC(w.kr, pseudonym.HMACOptions{Domain: s.Domain})
		if err != nil {
			return nil, nil, "", fmt.Errorf("column %q: %w", name, err)
		}
		w.closers = append(w.closers, h.Destroy)
		fn, id = h.Column, h.KeyID()
		one = func(v string) (string, error) { return h.Pseudonym([]byte(v)), nil }
	case "siv":
		r, err := pseudonym.NewReversible(w.kr, pseudonym.ReversibleOptions{Domain: s.Domain})
		if err != nil {
			return nil, nil, "", fmt.Errorf("column %q: %w", name, err)
		}
		fn, id = r.Column, r.KeyID()
		one = func(v string) (string, error) { return r.Seal([]byte(v)) }
	case "ff1":
		f, err := pseudonym.NewFF1(w.kr, pseudonym.FF1Options{Domain: s.Domain})
		if err != nil {
			return nil, nil, "", fmt.Errorf("column %q: %w", name, err)
		}
		w.closers = append(w.closers, f.Destroy)
		fn, id, one = f.Column, f.KeyID(), f.Encrypt
	default:
		return nil, nil, "", fmt.Errorf("column %q: unknown pseudonym method %q", name, s.Method)
	}
	cf := func(ctx context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, base int64) (arrow.Array, error) {
		out, err := fn(ctx, col, pseudonym.ColumnOptions{Mem: mem, Name: name, Workers: 1})
		if err != nil {
			return nil, fmt.Errorf("batch starting at row %d: %w", base, err)
		}
		return out, nil
	}
	return cf, one, id, nil
}

// plan derives the column functions and schemas for an input schema, with
// the checks of the single-machine Runner (deny by default, types).
func (w *worker) plan(in *arrow.Schema) error {
	if w.in != nil {
		if !w.in.Equal(in) {
			return errors.New("an input batch has a different schema from the first")
		}
		return nil
	}
	p := w.p
	for _, f := range in.Fields() {
		if _, ok := p.Columns.Lookup(f.Name); !ok {
			return fmt.Errorf("input column %q is not named by the policy %s (deny by default: give it an action, e.g. drop)", f.Name, p.File())
		}
		if len(in.FieldIndices(f.Name)) > 1 {
			return fmt.Errorf("input column %q appears twice", f.Name)
		}
	}
	for _, c := range p.Columns {
		if len(in.FieldIndices(c.Name)) == 0 {
			return fmt.Errorf("column %q named by the policy %s (line %d) is missing from the input", c.Name, p.File(), c.Pos.Line)
		}
	}
	qi := map[string]bool{}
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			qi[q] = true
		}
	}
	subject := in.FieldIndices(p.Subject)[0]
	var tf, of []arrow.Field
	var fns []colFn
	var actions []anonymize.Action
	var keep []int
	for i, f := range in.Fields() {
		rule, _ := p.Columns.Lookup(f.Name)
		t := f.Type
		bad := func(want string) error {
			return fmt.Errorf("column %q has type %s; action %s needs %s", f.Name, t, rule.Action, want)
		}
		var fn colFn
		outT := t
		switch rule.Action {
		case anonymize.ActionKeep, anonymize.ActionDrop:
			fn = keepFn
		case anonymize.ActionPseudonymize:
			if !isStringLike(t) && t.ID() != arrow.INT64 && t.ID() != arrow.BINARY {
				return bad("a string, binary or int64")
			}
			cf, _, id, err := w.pseudonymFn(f.Name, rule.Pseudonymize)
			if err != nil {
				return err
			}
			w.keys[rule.Pseudonymize.Domain] = id
			fn = cf
			outT = arrow.BinaryTypes.String
			if _, ok := t.(*arrow.DictionaryType); ok {
				outT = stringDict
			}
		case anonymize.ActionDateShift:
			if t.ID() != arrow.TIMESTAMP {
				return bad("a timestamp")
			}
			ds, err := pseudonym.NewDateShift(w.kr, pseudonym.DateShiftOptions{Domain: rule.DateShift.Domain, MaxDays: rule.DateShift.MaxDays})
			if err != nil {
				return fmt.Errorf("column %q: %w", f.Name, err)
			}
			w.closers = append(w.closers, ds.Destroy)
			w.keys[rule.DateShift.Domain] = ds.KeyID()
			name := f.Name
			fn = func(ctx context.Context, mem memory.Allocator, col arrow.Array, rec arrow.RecordBatch, base int64) (arrow.Array, error) {
				out, err := ds.Column(ctx, col, rec.Column(subject), pseudonym.ColumnOptions{Mem: mem, Name: name, Workers: 1})
				if err != nil {
					return nil, fmt.Errorf("batch starting at row %d: %w", base, err)
				}
				return out, nil
			}
		case anonymize.ActionCoarsen:
			if rule.Coarsen.Time > 0 {
				if t.ID() != arrow.TIMESTAMP {
					return bad("a timestamp")
				}
				fn = coarsenTime(f.Name, rule.Coarsen.Time.D())
			} else {
				if t.ID() != arrow.FLOAT64 {
					return bad("float64")
				}
				fn = coarsenGrid(f.Name, rule.Coarsen.Degrees)
			}
		case anonymize.ActionMask:
			if !isStringLike(t) {
				return bad("a string")
			}
			fn, outT = mapStrings(f.Name, maskFn(*rule.Mask)), stringDict
		case anonymize.ActionGeneralize:
			if !isStringLike(t) && !isNumeric(t) && t.ID() != arrow.TIMESTAMP && t.ID() != arrow.DATE32 {
				return bad("a string, number, timestamp or date")
			}
			if qi[f.Name] {
				fn = keepFn // generalised by Generalize at the level the search picks
			} else {
				h, lvl := w.hier[f.Name], rule.Generalize.Level
				fn, outT = mapStrings(f.Name, func(s string) (string, error) { return h.Generalize(s, lvl) }), stringDict
			}
		default:
			return fmt.Errorf("column %q: action %q is not supported", f.Name, rule.Action)
		}
		fns = append(fns, fn)
		actions = append(actions, rule.Action)
		tf = append(tf, arrow.Field{Name: f.Name, Type: outT, Nullable: f.Nullable})
		if rule.Action != anonymize.ActionDrop {
			keep = append(keep, i)
			of = append(of, arrow.Field{Name: f.Name, Type: outT, Nullable: f.Nullable})
			if qi[f.Name] {
				of[len(of)-1].Type = stringDict
			}
		}
	}
	if st := in.Field(subject).Type; !isStringLike(st) && st.ID() != arrow.INT64 {
		return fmt.Errorf("subject column %q has type %s; want a string or int64", p.Subject, st)
	}
	if rel := p.Release; rel != nil {
		for _, a := range rel.Aggregates {
			if t := in.Field(in.FieldIndices(a.Column)[0]).Type; !isNumeric(t) {
				return fmt.Errorf("release column %q has type %s; want a number", a.Column, t)
			}
		}
	}
	if len(of) == 0 {
		return errors.New("the policy drops every column: nothing to write")
	}
	w.in, w.fns, w.actions, w.keep = in, fns, actions, keep
	w.trans, w.out = arrow.NewSchema(tf, nil), arrow.NewSchema(of, nil)
	w.subject, w.subjTrans = subject, subject
	w.qiIdx = nil
	if p.KAnon != nil {
		for _, q := range p.KAnon.QuasiIdentifiers {
			w.qiIdx = append(w.qiIdx, w.trans.FieldIndices(q)[0])
		}
	}
	return nil
}

// transform filters opted-out subjects and applies the column actions.
// It returns the transformed batch and the rows the opt-out removed.
func (w *worker) transform(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, base int64) (arrow.RecordBatch, int64, error) {
	if err := w.plan(rec.Schema()); err != nil {
		return nil, 0, err
	}
	rec.Retain()
	var dropped int64
	if w.optout != nil {
		mask, n, err := w.optout.filterMask(mem, w.p.Subject, rec.Column(w.subject), base)
		if err != nil {
			rec.Release()
			return nil, 0, err
		}
		dropped = n
		if n > 0 {
			f, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
			mask.Release()
			rec.Release()
			if err != nil {
				return nil, 0, fmt.Errorf("opt-out filter, batch starting at row %d: %w", base, err)
			}
			rec = f
		} else {
			mask.Release()
		}
	}
	defer rec.Release()
	cols := make([]arrow.Array, len(w.fns))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, fn := range w.fns {
		c, err := fn(ctx, mem, rec.Column(i), rec, base)
		if err != nil {
			return nil, 0, err
		}
		cols[i] = c
	}
	return array.NewRecordBatch(w.trans, cols, rec.NumRows()), dropped, nil
}

func keepFn(_ context.Context, _ memory.Allocator, col arrow.Array, _ arrow.RecordBatch, _ int64) (arrow.Array, error) {
	col.Retain()
	return col, nil
}

func isStringLike(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.StringType, *arrow.LargeStringType:
		return true
	case *arrow.DictionaryType:
		return isStringLike(t.ValueType)
	}
	return false
}

func isNumeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.FLOAT32, arrow.FLOAT64:
		return true
	}
	return false
}

// coarsenTime floors timestamps to a bucket aligned to the Unix epoch.
func coarsenTime(name string, bucket time.Duration) colFn {
	return func(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, _ int64) (arrow.Array, error) {
		ts := col.(*array.Timestamp)
		tt := ts.DataType().(*arrow.TimestampType)
		ticks := int64(bucket / tt.Unit.Multiplier())
		if ticks <= 0 {
			return nil, fmt.Errorf("column %q: time bucket %v is finer than the column's unit", name, bucket)
		}
		b := array.NewTimestampBuilder(mem, tt)
		defer b.Release()
		b.Reserve(ts.Len())
		for i, v := range ts.TimestampValues() {
			if ts.IsNull(i) {
				b.AppendNull()
				continue
			}
			q := int64(v) / ticks
			if int64(v)%ticks < 0 {
				q--
			}
			b.UnsafeAppend(arrow.Timestamp(q * ticks))
		}
		return b.NewArray(), nil
	}
}

// coarsenGrid snaps float64 values to the centre of grid cells.
func coarsenGrid(name string, degrees float64) colFn {
	return func(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, base int64) (arrow.Array, error) {
		f := col.(*array.Float64)
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.Reserve(f.Len())
		for i, v := range f.Float64Values() {
			if f.IsNull(i) {
				b.AppendNull()
				continue
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("column %q, row %d: %v cannot be coarsened", name, base+int64(i), v)
			}
			b.UnsafeAppend(math.Floor(v/degrees)*degrees + degrees/2)
		}
		return b.NewArray(), nil
	}
}

func mapStrings(name string, fn func(string) (string, error)) colFn {
	return func(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, base int64) (arrow.Array, error) {
		return mapValues(mem, name, col, base, fn)
	}
}

// mapValues maps every distinct value of col (as text) through fn into a
// dictionary<int32, utf8> array; a dictionary column is mapped through its
// dictionary only.
func mapValues(mem memory.Allocator, name string, col arrow.Array, base int64, fn func(string) (string, error)) (arrow.Array, error) {
	if d, ok := col.(*array.Dictionary); ok && d.Indices().DataType().ID() == arrow.INT32 {
		dict := d.Dictionary()
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for i := range dict.Len() {
			if dict.IsNull(i) {
				b.AppendNull()
				continue
			}
			s, err := valueText(dict, i)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", name, err)
			}
			out, err := fn(s)
			if err != nil {
				return nil, fmt.Errorf("column %q, value %d of the dictionary: %w", name, i, err)
			}
			b.Append(out)
		}
		nd := b.NewArray()
		defer nd.Release()
		return array.NewDictionaryArray(stringDict, d.Indices(), nd), nil
	}
	bld := array.NewDictionaryBuilder(mem, stringDict).(*array.BinaryDictionaryBuilder)
	defer bld.Release()
	cache := map[string]string{}
	for i := range col.Len() {
		if col.IsNull(i) {
			bld.AppendNull()
			continue
		}
		s, err := valueText(col, i)
		if err != nil {
			return nil, fmt.Errorf("column %q, row %d: %w", name, base+int64(i), err)
		}
		out, ok := cache[s]
		if !ok {
			if out, err = fn(s); err != nil {
				return nil, fmt.Errorf("column %q, row %d: %w", name, base+int64(i), err)
			}
			cache[s] = out
		}
		if err := bld.AppendString(out); err != nil {
			return nil, err
		}
	}
	return bld.NewArray(), nil
}

// valueText is the text form of a value that hierarchies and masks see
// (the single-machine Runner's).
func valueText(a arrow.Array, i int) (string, error) {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.Dictionary:
		return valueText(a.Dictionary(), a.GetValueIndex(i))
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10), nil
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64), nil
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32), nil
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i)), nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano), nil
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02"), nil
	}
	return "", fmt.Errorf("type %s is not supported here", a.DataType())
}

// maskFn replaces all but the first KeepPrefix and last KeepSuffix
// characters by the mask character.
func maskFn(spec anonymize.MaskSpec) func(string) (string, error) {
	ch := '*'
	if spec.Char != "" {
		ch, _ = utf8.DecodeRuneInString(spec.Char)
	}
	return func(s string) (string, error) {
		r := []rune(s)
		for i := spec.KeepPrefix; i < len(r)-spec.KeepSuffix; i++ {
			r[i] = ch
		}
		return string(r), nil
	}
}

// optOutSet holds an opt-out list keyed (HMACs under the opt-out domain),
// never the subjects in clear.
type optOutSet struct {
	mac    *pseudonym.HMAC
	keys   map[string]struct{}
	listed int
	toForm func(string) (string, error)
	// seen holds the keyed form of listed subjects met since the last
	// drain (never the subjects in clear).
	seen map[string]struct{}
}

func loadOptOut(path string, mac *pseudonym.HMAC, toForm func(string) (string, error)) (*optOutSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opt-out list: %w", err)
	}
	defer f.Close()
	s := &optOutSet{mac: mac, keys: map[string]struct{}{}, toForm: toForm, seen: map[string]struct{}{}}
	h := mac.NewHasher()
	defer h.Destroy()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	line := 0
	var buf []byte
	for sc.Scan() {
		line++
		v := strings.TrimSpace(sc.Text())
		if v == "" || strings.HasPrefix(v, "#") {
			continue
		}
		if len(v) > 1024 {
			return nil, fmt.Errorf("opt-out list %s, line %d: entry longer than 1024 bytes", path, line)
		}
		buf = h.Append(buf[:0], []byte(v))
		s.keys[string(buf)] = struct{}{}
		s.listed++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("opt-out list %s, line %d: %w", path, line+1, err)
	}
	return s, nil
}

// filterMask returns true for rows to keep and the number of rows dropped.
// It records the keyed form of every listed subject it meets in s.seen.
func (s *optOutSet) filterMask(mem memory.Allocator, subject string, col arrow.Array, base int64) (arrow.Array, int64, error) {
	h := s.mac.NewHasher()
	defer h.Destroy()
	var buf []byte
	test := func(v string) (bool, error) {
		f, err := s.toForm(v)
		if err != nil {
			return false, err
		}
		buf = h.Append(buf[:0], []byte(f))
		_, hit := s.keys[string(buf)]
		if hit {
			s.seen[string(buf)] = struct{}{}
		}
		return hit, nil
	}
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.Reserve(col.Len())
	var dropped int64
	var hits []bool
	d, isDict := col.(*array.Dictionary)
	if isDict {
		dict := d.Dictionary()
		hits = make([]bool, dict.Len())
		for i := range hits {
			if dict.IsNull(i) {
				continue
			}
			v, err := valueText(dict, i)
			if err != nil {
				return nil, 0, fmt.Errorf("column %q: %w", subject, err)
			}
			if hits[i], err = test(v); err != nil {
				return nil, 0, fmt.Errorf("column %q: %w", subject, err)
			}
		}
	}
	for i := range col.Len() {
		if col.IsNull(i) {
			return nil, 0, fmt.Errorf("column %q, row %d: null subject", subject, base+int64(i))
		}
		var hit bool
		if isDict {
			hit = hits[d.GetValueIndex(i)]
		} else {
			v, err := valueText(col, i)
			if err != nil {
				return nil, 0, fmt.Errorf("column %q, row %d: %w", subject, base+int64(i), err)
			}
			if hit, err = test(v); err != nil {
				return nil, 0, fmt.Errorf("column %q, row %d: %w", subject, base+int64(i), err)
			}
		}
		b.UnsafeAppend(!hit)
		if hit {
			dropped++
		}
	}
	return b.NewArray(), dropped, nil
}
