package beam

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

func packFields(vals []string) []byte {
	var b []byte
	for _, v := range vals {
		b = appendField(b, v)
	}
	return b
}

// apply generalises the quasi-identifiers and removes suppressed classes:
// the rows in the Gen layout (the caller projects the written columns,
// after the trace gate and the linkage measure). members receives each (class, subject)
// membership of the written rows once per batch, for verification.
// kept, when not nil, is called with the index of every row written.
func (f *classFn) apply(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, base int64, members func(string, int64), kept func(int)) (arrow.RecordBatch, int64, error) {
	st := f.w.st
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
		keys, gen, err := classKeys(st, d, rec, base)
		owned = append(owned, gen...)
		if err != nil {
			return nil, 0, err
		}
		for j, q := range d.QuasiIdentifiers {
			cols[st.Trans().FieldIndices(q)[0]] = gen[j]
		}
		var subj []string
		if d.PerSubject {
			if subj, err = rowTexts(f.w.p.Subject, rec.Column(st.Trans().FieldIndices(f.w.p.Subject)[0]), base); err != nil {
				return nil, 0, fmt.Errorf("kanon: %w", err)
			}
		}
		// l/t: the sensitive value joins the membership (memberClass).
		var sens []string
		if st.KAnonSensitive() != "" {
			if sens, err = st.SensitiveTexts(rec, base); err != nil {
				return nil, 0, err
			}
		}
		mb := array.NewBooleanBuilder(mem)
		defer mb.Release()
		mb.Reserve(n)
		seen := map[string]int64{}
		for i, key := range keys {
			if f.sup[key] {
				mb.UnsafeAppend(false)
				suppressed++
				continue
			}
			mb.UnsafeAppend(true)
			if kept != nil {
				kept(i)
			}
			var sv string
			if sens != nil {
				sv = sens[i]
			}
			var si string
			if d.PerSubject {
				si = subj[i]
			}
			m := memberKey(key, si, sens != nil, sv, d.PerSubject)
			if d.PerSubject {
				seen[m] = 1
			} else {
				seen[m]++
			}
		}
		for m, c := range seen {
			members(m, c)
		}
		mask = mb.NewArray()
		defer mask.Release()
	} else if kept != nil {
		for i := range n {
			kept(i)
		}
	}
	full := array.NewRecordBatch(st.Gen(), cols, int64(n))
	if suppressed == 0 {
		return full, 0, nil
	}
	defer full.Release()
	out, err := compute.FilterRecordBatch(ctx, full, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, 0, fmt.Errorf("kanon: suppressing rows: %w", err)
	}
	return out, suppressed, nil
}

// memberKey is a written row's membership for the output check
// (memberClass): per subject (class, subject), counted once, otherwise
// (class, "", "rows") with the row count; with l/t (div) the
// sensitive value follows, (class, subject, "subject", value) or (class,
// "", "rows", value).
func memberKey(class, subj string, div bool, sens string, perSubject bool) string {
	m := appendField(nil, class)
	if perSubject {
		m = appendField(m, subj)
	} else {
		m = appendField(appendField(m, ""), "rows")
	}
	if div {
		if perSubject {
			m = appendField(m, "subject")
		}
		m = appendField(m, sens)
	}
	return string(m)
}

// classKeys generalises the quasi-identifiers of a Trans batch at the
// decision's levels and returns every row's class key (generalised values
// joined by \x00, the single-machine Runner's key) and the generalised
// columns, which the caller releases (also on error).
func classKeys(st *anonymize.Steps, d *anonymize.KAnonDecision, rec arrow.RecordBatch, base int64) ([]string, []arrow.Array, error) {
	n := int(rec.NumRows())
	texts := make([][]string, len(d.QuasiIdentifiers))
	var gen []arrow.Array
	for j, q := range d.QuasiIdentifiers {
		g, err := st.Generalize(q, rec.Column(st.Trans().FieldIndices(q)[0]), d.Levels[j], base)
		if err != nil {
			return nil, gen, fmt.Errorf("kanon: %w", err)
		}
		gen = append(gen, g)
		if texts[j], err = rowTexts(q, g, base); err != nil {
			return nil, gen, fmt.Errorf("kanon: %w", err)
		}
	}
	keys := make([]string, n)
	var key []byte
	for i := range n {
		key = key[:0]
		for j := range texts {
			key = append(key, texts[j][i]...)
			key = append(key, 0)
		}
		keys[i] = string(key)
	}
	return keys, gen, nil
}
