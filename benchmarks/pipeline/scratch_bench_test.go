package pipelinebench

import (
	"bufio"
	"io"
	"os"
	"testing"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// scratchFile is what both variants offer the pipeline: write, rewind, read.
type scratchFile interface {
	io.ReadWriter
	Rewind() error
	Close() error
}

// plainFile is the baseline: an os.File behind a 1 MiB bufio.Writer, as the
// spill was before internal/scratch, read through a 1 MiB bufio.Reader.
type plainFile struct {
	f  *os.File
	bw *bufio.Writer
	br *bufio.Reader
}

func newPlain(dir string) (*plainFile, error) {
	f, err := os.CreateTemp(dir, "plain-*")
	if err != nil {
		return nil, err
	}
	return &plainFile{f: f, bw: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (p *plainFile) Write(b []byte) (int, error) { return p.bw.Write(b) }
func (p *plainFile) Read(b []byte) (int, error)  { return p.br.Read(b) }
func (p *plainFile) Rewind() error {
	if err := p.bw.Flush(); err != nil {
		return err
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	p.br = bufio.NewReaderSize(p.f, 1<<20)
	return nil
}
func (p *plainFile) Close() error { p.f.Close(); return os.Remove(p.f.Name()) }

// BenchmarkScratch compares the encrypted scratch file with a plain
// buffered file: 64 MiB written in 32 KiB pieces (the size of a typical
// IPC body write), then read back in 32 KiB pieces; the files stay in the
// page cache, so this is the CPU cost of the encryption. MB/s is the
// figure to compare.
func BenchmarkScratch(b *testing.B) {
	const total, piece = 64 << 20, 32 << 10
	data := make([]byte, piece)
	for i := range data {
		data[i] = byte(i * 7)
	}
	variants := []struct {
		name string
		open func(dir string) (scratchFile, error)
	}{
		{"plain", func(dir string) (scratchFile, error) { return newPlain(dir) }},
		{"encrypted", func(dir string) (scratchFile, error) { return scratch.Create(dir, "enc-*") }},
	}
	for _, v := range variants {
		b.Run("write/"+v.name, func(b *testing.B) {
			b.SetBytes(total)
			dir := b.TempDir()
			for b.Loop() {
				f, err := v.open(dir)
				if err != nil {
					b.Fatal(err)
				}
				for n := 0; n < total; n += piece {
					if _, err := f.Write(data); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Rewind(); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
		b.Run("read/"+v.name, func(b *testing.B) {
			b.SetBytes(total)
			f, err := v.open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			for n := 0; n < total; n += piece {
				if _, err := f.Write(data); err != nil {
					b.Fatal(err)
				}
			}
			buf := make([]byte, piece)
			for b.Loop() {
				if err := f.Rewind(); err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
				if err != nil || n != total {
					b.Fatal(n, err)
				}
			}
		})
	}
}
