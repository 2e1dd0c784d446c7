package anonymize

import (
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// spillFile holds pass-1 output for the second pass, as an uncompressed
// Arrow IPC stream in an encrypted scratch file (internal/scratch: the rows
// still hold raw VINs and quasi-identifiers, and a killed run must not leave
// them on disk in clear) removed at the end of the run (uncompressed: the
// file is read back at once, usually from the page cache, and LZ4 would cost
// more CPU than the disk saves; AES-GCM costs far less). The scratch file
// buffers one 64 KiB chunk, so no bufio sits in front of it.
type spillFile struct {
	f      *scratch.File
	w      *ipc.Writer
	schema *arrow.Schema
	mem    memory.Allocator
	rows   int64
	// Batches are encoded and written on their own goroutine, overlapping
	// with the accumulators of the next batch.
	ch   chan arrow.RecordBatch
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newSpill(dir string, schema *arrow.Schema, mem memory.Allocator) (*spillFile, error) {
	f, err := scratch.Create(dir, "tarnkappe-spill-*.arrows.enc")
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	s := &spillFile{f: f, schema: schema, mem: mem,
		w:  ipc.NewWriter(f, ipc.WithSchema(schema), ipc.WithAllocator(mem)),
		ch: make(chan arrow.RecordBatch, 2), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for rec := range s.ch {
			if s.failed() == nil {
				if err := s.w.Write(rec); err != nil {
					s.mu.Lock()
					s.err = fmt.Errorf("spill %s: %w", s.f.Name(), err)
					s.mu.Unlock()
				}
			}
			rec.Release()
		}
	}()
	return s, nil
}

func (s *spillFile) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// write queues rec (retained) for the spill; it reports an earlier write's
// error, if any.
func (s *spillFile) write(rec arrow.RecordBatch) error {
	if err := s.failed(); err != nil {
		return err
	}
	s.rows += rec.NumRows()
	rec.Retain()
	s.ch <- rec
	return nil
}

// stop waits for the queued batches to be written.
func (s *spillFile) stop() {
	if s.ch != nil {
		close(s.ch)
		<-s.done
		s.ch = nil
	}
}

func (s *spillFile) finish() error {
	s.stop()
	if err := s.failed(); err != nil {
		return err
	}
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("spill %s: %w", s.f.Name(), err)
	}
	if err := s.f.Rewind(); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	return nil
}

func (s *spillFile) remove() {
	s.stop()
	// Close releases the dictionaries the IPC writer holds: a run that
	// fails in pass 1 never reaches finish (a no-op after it).
	s.w.Close()
	s.f.Close()
}
