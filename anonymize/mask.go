package anonymize

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/text/unicode/norm"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

// masker is a MaskSpec ready to apply.
type masker struct {
	prefix, suffix int
	width          int // 0: the output has the input's length
	ch             string
}

func newMasker(spec MaskSpec) masker {
	ch := "*"
	if spec.Char != "" {
		ch = spec.Char
	}
	return masker{prefix: spec.KeepPrefix, suffix: spec.KeepSuffix, width: spec.Width, ch: ch}
}

// mask masks s by characters (code points of its NFC form, so that "é"
// counts once however it was typed). A value no longer than prefix +
// suffix is masked whole (whole is then true): keeping its prefix and
// suffix would publish it unchanged. The output has width characters when
// width is set, otherwise as many as s.
func (m masker) mask(s string) (out string, whole bool) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = norm.NFC.String(s)
	n := utf8.RuneCountInString(s)
	keep := m.prefix + m.suffix
	if n <= keep {
		w := n
		if m.width > 0 {
			w = m.width
		}
		return strings.Repeat(m.ch, w), n > 0
	}
	masked := n - keep
	if m.width > 0 {
		masked = m.width - keep
	}
	var b strings.Builder
	b.Grow(len(s) + masked*len(m.ch))
	i, r := 0, 0
	for r < m.prefix {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		r++
	}
	b.WriteString(s[:i])
	for range masked {
		b.WriteString(m.ch)
	}
	j, r := len(s), 0
	for r < m.suffix {
		_, size := utf8.DecodeLastRuneInString(s[:j])
		j -= size
		r++
	}
	b.WriteString(s[j:])
	return b.String(), false
}

// maskOp is the mask action. It counts the rows whose value it masked whole
// (too short to keep prefix and suffix), for the report. Safe for
// concurrent use: the Runner transforms batches in parallel.
type maskOp struct {
	name  string
	m     masker
	whole atomic.Int64

	// The output for the last string dictionary (see dictKey): Parquet hands
	// every batch of a row group the same dictionary.
	mu        sync.Mutex
	lastDict  dictKey
	lastOut   []string
	lastWhole []bool
}

func newMaskOp(name string, spec MaskSpec) *maskOp { return &maskOp{name: name, m: newMasker(spec)} }

func (*maskOp) outType(arrow.DataType) arrow.DataType { return stringDict }

func (o *maskOp) apply(_ context.Context, mem memory.Allocator, col arrow.Array, _ arrow.RecordBatch, rowBase int64) (arrow.Array, error) {
	if d, ok := col.(*array.Dictionary); ok && d.Indices().DataType().ID() == arrow.INT32 {
		if sd, ok := d.Dictionary().(*array.String); ok {
			return o.applyDict(mem, d, sd), nil
		}
	}
	b := array.NewDictionaryBuilder(mem, stringDict).(*array.BinaryDictionaryBuilder)
	defer b.Release()
	type result struct {
		out   string
		whole bool
	}
	seen := map[string]result{}
	var whole int64
	for i := range col.Len() {
		if col.IsNull(i) {
			b.AppendNull()
			continue
		}
		s, err := valueText(col, i)
		if err != nil {
			return nil, rowerr.At(rowerr.Row(rowBase, i), o.name, err)
		}
		res, ok := seen[s]
		if !ok {
			res.out, res.whole = o.m.mask(s)
			seen[s] = res
		}
		if res.whole {
			whole++
		}
		if err := b.AppendString(res.out); err != nil {
			return nil, rowerr.At(rowerr.Row(rowBase, i), o.name, err)
		}
	}
	o.whole.Add(whole)
	return b.NewArray(), nil
}

// applyDict masks a dictionary column through its dictionary: the output
// keeps the input's indices.
func (o *maskOp) applyDict(mem memory.Allocator, d *array.Dictionary, sd *array.String) arrow.Array {
	out, wholeAt := o.dictOutput(sd)
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(len(out))
	for i, v := range out {
		if sd.IsNull(i) {
			b.AppendNull()
		} else {
			b.Append(v)
		}
	}
	nd := b.NewArray()
	defer nd.Release()
	var whole int64
	for i := range d.Len() {
		if d.IsValid(i) && wholeAt[d.GetValueIndex(i)] {
			whole++
		}
	}
	o.whole.Add(whole)
	return array.NewDictionaryArray(stringDict, d.Indices(), nd)
}

// dictOutput returns the masked dictionary entries and which were masked
// whole, reusing the last result for an identical dictionary. The slices
// are shared and never written after they are returned.
func (o *maskOp) dictOutput(sd *array.String) ([]string, []bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lastOut != nil && o.lastDict.matches(sd) {
		return o.lastOut, o.lastWhole
	}
	out, whole := make([]string, sd.Len()), make([]bool, sd.Len())
	for i := range out {
		if sd.IsValid(i) {
			out[i], whole[i] = o.m.mask(sd.Value(i))
		}
	}
	o.lastDict.set(sd)
	o.lastOut, o.lastWhole = out, whole
	return out, whole
}

// maskedWhole maps every mask column of ops to the rows it masked whole
// since the last call (the report's mask_masked_whole); nil without mask
// columns.
func maskedWhole(ops []colOp, schema *arrow.Schema) map[string]int64 {
	var out map[string]int64
	for i, op := range ops {
		if o, ok := op.(*maskOp); ok {
			if out == nil {
				out = map[string]int64{}
			}
			out[schema.Field(i).Name] += o.whole.Swap(0)
		}
	}
	return out
}

// describeMask is the mask's column detail in the report.
func describeMask(s MaskSpec) string {
	d := fmt.Sprintf("all but %d leading and %d trailing characters masked; values of at most %d characters masked whole", s.KeepPrefix, s.KeepSuffix, s.KeepPrefix+s.KeepSuffix)
	if s.Width > 0 {
		return d + fmt.Sprintf("; every value written as %d characters", s.Width)
	}
	return d + "; the output has the input's length"
}
