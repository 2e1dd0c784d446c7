package anonymize

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// PublicPartitionRows lists the public partitions the policy's release block
// declares — the rows of its partition file, or the product of the H3 cells
// covering its bbox with the 24 hours of the day — each as values in the order
// of Release.By, without a Runner, a keyring or any data. It is for parties
// that hold no data but must agree on the partition domain, as the
// aggregators and the collector of package pool do; the rows are the ones a
// Runner's release uses (dp matches them on the same text).
func PublicPartitionRows(p *Policy) ([][]string, error) {
	const fn = "anonymize.PublicPartitionRows"
	rel := p.Release
	if rel == nil || rel.Public == nil {
		return nil, fmt.Errorf("%s: the policy declares no public partitions (release.public)", fn)
	}
	if f := rel.Public.File; f != "" {
		path := p.Resolve(f)
		fh, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		defer fh.Close()
		rows, err := readPartitionRows(path, fh, rel.By)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		return rows, nil
	}
	b := rel.Public.BBox
	axes := make([][]string, len(rel.By))
	total := 1
	for i, c := range rel.By {
		if c == HourOfDayColumn {
			for h := range 24 {
				axes[i] = append(axes[i], strconv.Itoa(h))
			}
		} else {
			axes[i] = coverBBox(b[0], b[1], b[2], b[3], releaseCellRes(p))
		}
		total *= len(axes[i])
		if total > maxPublicPartitions {
			return nil, fmt.Errorf("%s: the bbox and hours give more than %d partitions", fn, maxPublicPartitions)
		}
	}
	rows := make([][]string, 0, total)
	idx := make([]int, len(axes))
	for {
		row := make([]string, len(axes))
		for i, a := range axes {
			row[i] = a[idx[i]]
		}
		rows = append(rows, row)
		i := len(idx) - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < len(axes[i]) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return rows, nil
		}
	}
}

// readPartitionRows reads a partition CSV as readPartitions does (header
// naming the columns of by in any order, one partition per line) into rows
// in the order of by; duplicate lines are kept once.
func readPartitionRows(name string, rd io.Reader, by []string) ([][]string, error) {
	cr := csv.NewReader(rd)
	cr.Comment = '#'
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("public partitions %s: empty file (want a header naming %v)", name, by)
	}
	if err != nil {
		return nil, fmt.Errorf("public partitions %s: %w", name, err)
	}
	pos := make([]int, len(by))
	for i, c := range by {
		if pos[i] = slices.Index(header, c); pos[i] < 0 {
			return nil, fmt.Errorf("public partitions %s: header %v lacks column %q", name, header, c)
		}
	}
	if len(header) != len(by) {
		return nil, fmt.Errorf("public partitions %s: header %v has columns not in by %v", name, header, by)
	}
	var rows [][]string
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("public partitions %s: %w", name, err)
		}
		row := make([]string, len(by))
		for i, p := range pos {
			row[i] = rec[p]
		}
		k := fmt.Sprintf("%q", row)
		if !seen[k] {
			seen[k] = true
			rows = append(rows, row)
		}
		if len(rows) > maxPublicPartitions {
			return nil, fmt.Errorf("public partitions %s: more than %d partitions", name, maxPublicPartitions)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("public partitions %s: no partitions after the header", name)
	}
	return rows, nil
}
