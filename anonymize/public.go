package anonymize

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/internal/h3"
)

// publicPartitions builds the release's public partition list from the
// policy: read from a file, or generated from the bounding box and the 24
// hours of the day. Neither looks at the data, so no budget is spent on
// partition selection.
func (r *Runner) publicPartitions() (*dp.PartitionList, error) {
	rel := r.p.Release
	pp := rel.Public
	l, err := dp.NewPartitionList(rel.By...)
	if err != nil {
		return nil, err
	}
	if pp.File != "" {
		path := r.p.Resolve(pp.File)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("public partitions: %w", err)
		}
		defer f.Close()
		if err := readPartitions(path, f, rel.By, l); err != nil {
			return nil, err
		}
		return l, nil
	}
	b := pp.BBox
	var axes [][]string
	for _, c := range rel.By {
		if c == HourOfDayColumn {
			var hours []string
			for h := range 24 {
				hours = append(hours, strconv.Itoa(h))
			}
			axes = append(axes, hours)
			continue
		}
		axes = append(axes, coverBBox(b[0], b[1], b[2], b[3], releaseCellRes(r.p)))
	}
	total := 1
	for _, a := range axes {
		total *= len(a)
		if total > maxPublicPartitions {
			return nil, fmt.Errorf("public partitions: the bbox and hours give more than %d partitions; use a smaller box or a coarser cell resolution", maxPublicPartitions)
		}
	}
	idx := make([]int, len(axes))
	vals := make([]string, len(axes))
	for {
		for i, a := range axes {
			vals[i] = a[idx[i]]
		}
		if err := l.Add(vals...); err != nil {
			return nil, fmt.Errorf("public partitions: %w", err)
		}
		i := len(idx) - 1
		for i >= 0 {
			idx[i]++
			if idx[i] < len(axes[i]) {
				break
			}
			idx[i] = 0
			i--
		}
		if i < 0 {
			return l, nil
		}
	}
}

// coverBBox returns the H3 cells at res whose area meets the box: the cells
// whose centres lie inside it, plus their neighbours (a cell can overlap an
// edge with its centre outside).
func coverBBox(south, west, north, east float64, res int) []string {
	loop := h3.GeoLoop{{Lat: south, Lng: west}, {Lat: south, Lng: east}, {Lat: north, Lng: east}, {Lat: north, Lng: west}}
	inner := h3.PolygonToCells(h3.GeoPolygon{GeoLoop: loop}, res)
	if len(inner) == 0 {
		// A box smaller than one cell: the cell of its centre.
		inner = []h3.Cell{h3.LatLngToCell(h3.LatLng{Lat: (south + north) / 2, Lng: (west + east) / 2}, res)}
	}
	seen := map[h3.Cell]struct{}{}
	for _, c := range inner {
		for _, n := range c.GridDisk(1) {
			seen[n] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c.String())
	}
	slices.Sort(out)
	return out
}

// readPartitions reads a CSV partition list: a header naming the columns of
// by (in any order), then one partition per line.
func readPartitions(name string, rd io.Reader, by []string, l *dp.PartitionList) error {
	cr := csv.NewReader(rd)
	cr.Comment = '#'
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("public partitions %s: empty file (want a header naming %v)", name, by)
	}
	if err != nil {
		return fmt.Errorf("public partitions %s: %w", name, err)
	}
	pos := make([]int, len(by))
	for i, c := range by {
		pos[i] = slices.Index(header, c)
		if pos[i] < 0 {
			return fmt.Errorf("public partitions %s: header %v lacks column %q", name, header, c)
		}
	}
	if len(header) != len(by) {
		return fmt.Errorf("public partitions %s: header %v has columns not in by %v", name, header, by)
	}
	vals := make([]string, len(by))
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("public partitions %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		for i, p := range pos {
			vals[i] = rec[p]
		}
		if err := l.Add(vals...); err != nil {
			return fmt.Errorf("public partitions %s, line %d: %w", name, line, err)
		}
		if l.Len() > maxPublicPartitions {
			return fmt.Errorf("public partitions %s: more than %d partitions", name, maxPublicPartitions)
		}
	}
	if l.Len() == 0 {
		return fmt.Errorf("public partitions %s: no partitions after the header", name)
	}
	return nil
}

// releaseCellRes is the H3 resolution of the release's cell key.
func releaseCellRes(p *Policy) int {
	if p.Release.CellResolution > 0 {
		return p.Release.CellResolution
	}
	return p.Mobility.CellResolution
}

// releaseInput derives the columns only the release sees: the cell column
// at the release's resolution (parents of the output cells) and the
// hour_of_day key. The caller releases the result.
type releaseInput struct {
	schema  *arrow.Schema // pl.trans (+ hour_of_day)
	hodIdx  int           // source timestamp column, or -1
	cellIdx int           // cell column to coarsen, or -1
	res     int
	parents map[string]string
}

func (ri *releaseInput) apply(mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := slices.Clone(rec.Columns())
	var owned []arrow.Array
	defer func() {
		for _, c := range owned {
			c.Release()
		}
	}()
	if ri.cellIdx >= 0 {
		c, err := parentCells(mem, rec.Column(ri.cellIdx), ri.res, ri.parents)
		if err != nil {
			return nil, fmt.Errorf("release: column %q: %w", rec.Schema().Field(ri.cellIdx).Name, err)
		}
		owned = append(owned, c)
		cols[ri.cellIdx] = c
	}
	if ri.hodIdx >= 0 {
		h, err := hourOfDay(mem, rec.Column(ri.hodIdx))
		if err != nil {
			return nil, fmt.Errorf("release: hour_of_day column %q: %w", rec.Schema().Field(ri.hodIdx).Name, err)
		}
		owned = append(owned, h)
		cols = append(cols, h)
	}
	return array.NewRecordBatch(ri.schema, cols, rec.NumRows()), nil
}

// parentCells maps a dictionary<int32, utf8> column of H3 cells to their
// parents at res, keeping the indices (only the dictionary changes).
func parentCells(mem memory.Allocator, col arrow.Array, res int, memo map[string]string) (arrow.Array, error) {
	d, ok := col.(*array.Dictionary)
	if !ok {
		return nil, fmt.Errorf("want a dictionary of H3 cells, got %s", col.DataType())
	}
	dict, ok := d.Dictionary().(*array.String)
	if !ok {
		return nil, fmt.Errorf("want a dictionary of H3 cells, got %s", col.DataType())
	}
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for i := range dict.Len() {
		if dict.IsNull(i) {
			b.AppendNull()
			continue
		}
		v := dict.Value(i)
		p, ok := memo[v]
		if !ok {
			c := h3.Cell(h3.IndexFromString(v))
			if !c.IsValid() {
				return nil, fmt.Errorf("%q is not an H3 cell", v)
			}
			if c.Resolution() < res {
				return nil, fmt.Errorf("cell %q has resolution %d < %d", v, c.Resolution(), res)
			}
			p = c.Parent(res).String()
			memo[strings.Clone(v)] = p
		}
		b.Append(p)
	}
	nd := b.NewArray()
	defer nd.Release()
	return array.NewDictionaryArray(d.DataType(), d.Indices(), nd), nil
}

// hourOfDay returns the UTC hour (0..23) of a timestamp column as int64
// (nulls stay null).
func hourOfDay(mem memory.Allocator, col arrow.Array) (arrow.Array, error) {
	ts, ok := col.(*array.Timestamp)
	if !ok {
		return nil, fmt.Errorf("want a timestamp, got %s", col.DataType())
	}
	toTime, err := ts.DataType().(*arrow.TimestampType).GetToTimeFunc()
	if err != nil {
		return nil, err
	}
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(ts.Len())
	for i := range ts.Len() {
		if ts.IsNull(i) {
			b.UnsafeAppendBoolToBitmap(false)
			continue
		}
		b.UnsafeAppend(int64(toTime(ts.Value(i)).In(time.UTC).Hour()))
	}
	return b.NewArray(), nil
}
