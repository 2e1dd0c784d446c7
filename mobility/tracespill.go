package mobility

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// traceSpillAt is the number of trips a traceGate holds in memory before it
// writes them to its partition files (about 100 bytes a trip in memory). A
// variable so that tests can make it small.
var traceSpillAt = 1 << 18

// tracePartitions is the number of partition files: Seal holds about
// 1/tracePartitions of all trips (or trace signatures) at a time.
const tracePartitions = 32

// partFiles is a set of temporary files written sequentially and read
// back one at a time. They hold trip traces (movement profiles): encrypted
// scratch files, each buffering one 64 KiB chunk (as the bufio writers did).
type partFiles struct {
	files []*scratch.File
}

func newPartFiles(dir, pattern string, n int) (*partFiles, error) {
	p := &partFiles{}
	for range n {
		f, err := scratch.Create(dir, pattern)
		if err != nil {
			p.remove()
			return nil, err
		}
		p.files = append(p.files, f)
	}
	return p, nil
}

// flush seals every file and rewinds it for reading.
func (p *partFiles) flush() error {
	for _, f := range p.files {
		if err := f.Rewind(); err != nil {
			return err
		}
	}
	return nil
}

func (p *partFiles) remove() {
	for _, f := range p.files {
		f.Close()
	}
	p.files = nil
}

// cleanup removes the partition files, if any (after an error; decide
// removes them itself).
func (g *traceGate) cleanup() {
	if g.parts != nil {
		g.parts.remove()
	}
}

// spillTrips writes every trip held in memory to its partition (by trip id)
// and empties the map. A trip that gets more points later is written again;
// decideSpilled merges the pieces.
func (g *traceGate) spillTrips() error {
	if g.parts == nil {
		p, err := newPartFiles(g.tempDir, "tarnkappe-traces-*.bin.enc", tracePartitions)
		if err != nil {
			return fmt.Errorf("mobility: trace spill: %w", err)
		}
		g.parts = p
	}
	var buf []byte
	for id, t := range g.trips {
		buf = binary.LittleEndian.AppendUint64(buf[:0], uint64(id))
		buf = binary.LittleEndian.AppendUint32(buf, t.subj)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(t.pts)))
		for _, pt := range t.pts {
			buf = binary.LittleEndian.AppendUint32(buf, pt.cell)
			buf = binary.LittleEndian.AppendUint64(buf, uint64(pt.ts))
		}
		if _, err := g.parts.files[mix64(uint64(id))%tracePartitions].Write(buf); err != nil {
			return fmt.Errorf("mobility: trace spill: %w", err)
		}
	}
	g.trips = make(map[int64]*tripTrace)
	return nil
}

// decideSpilled is decide over the partition files: per trip partition,
// merge the trips' pieces and write (signature, subject, trip) to a
// partition by signature; per signature partition, count the distinct
// subjects of every signature, then publish the trips of signatures with
// at least k.
func (g *traceGate) decideSpilled(sup *CellSuppressor) (err error) {
	defer g.parts.remove()
	if err := g.spillTrips(); err != nil {
		return err
	}
	g.trips = nil
	if err := g.parts.flush(); err != nil {
		return fmt.Errorf("mobility: trace spill: %w", err)
	}
	sigs, err := newPartFiles(g.tempDir, "tarnkappe-tracesigs-*.bin.enc", tracePartitions)
	if err != nil {
		return fmt.Errorf("mobility: trace spill: %w", err)
	}
	defer sigs.remove()
	var hdr [16]byte
	var rec [20]byte
	for _, f := range g.parts.files {
		trips := map[int64]*tripTrace{}
		br := f // the scratch file buffers a chunk
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("mobility: trace spill: %w", err)
			}
			id := int64(binary.LittleEndian.Uint64(hdr[:]))
			subj := binary.LittleEndian.Uint32(hdr[8:])
			n := int(binary.LittleEndian.Uint32(hdr[12:]))
			t := trips[id]
			if t == nil {
				t = &tripTrace{subj: subj}
				trips[id] = t
			}
			t.pts = slices.Grow(t.pts, n)
			for range n {
				if _, err := io.ReadFull(br, rec[:12]); err != nil {
					return fmt.Errorf("mobility: trace spill: %w", err)
				}
				t.pts = append(t.pts, tracePoint{cell: binary.LittleEndian.Uint32(rec[:]), ts: int64(binary.LittleEndian.Uint64(rec[4:]))})
			}
		}
		for id, t := range trips {
			h, ok := g.signature(t, sup)
			if !ok {
				continue
			}
			g.stats.Trips++
			binary.LittleEndian.PutUint64(rec[:], h)
			binary.LittleEndian.PutUint32(rec[8:], t.subj)
			binary.LittleEndian.PutUint64(rec[12:], uint64(id))
			if _, err := sigs.files[mix64(h)%tracePartitions].Write(rec[:]); err != nil {
				return fmt.Errorf("mobility: trace spill: %w", err)
			}
		}
	}
	if err := sigs.flush(); err != nil {
		return fmt.Errorf("mobility: trace spill: %w", err)
	}
	g.published = map[int64]bool{}
	for _, f := range sigs.files {
		subs := map[uint64][]uint32{}
		read := func(fn func(h uint64, subj uint32, id int64)) error {
			br := f // the scratch file buffers a chunk
			for {
				if _, err := io.ReadFull(br, rec[:]); err != nil {
					if errors.Is(err, io.EOF) {
						break
					}
					return fmt.Errorf("mobility: trace spill: %w", err)
				}
				fn(binary.LittleEndian.Uint64(rec[:]), binary.LittleEndian.Uint32(rec[8:]), int64(binary.LittleEndian.Uint64(rec[12:])))
			}
			return f.Rewind()
		}
		err := read(func(h uint64, subj uint32, _ int64) {
			if s := subs[h]; len(s) < g.k && !slices.Contains(s, subj) {
				subs[h] = append(s, subj)
			}
		})
		if err == nil {
			err = read(func(h uint64, _ uint32, id int64) {
				if len(subs[h]) >= g.k {
					g.published[id] = true
					g.stats.Published++
				}
			})
		}
		if err != nil {
			return fmt.Errorf("mobility: trace spill: %w", err)
		}
	}
	return nil
}
