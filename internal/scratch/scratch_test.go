package scratch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// payload is n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeFile writes data in pieces of step bytes (0: one Write) and rewinds.
func writeFile(t testing.TB, dir string, data []byte, step int) *File {
	t.Helper()
	s, err := Create(dir, "t-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if step == 0 {
		step = max(len(data), 1)
	}
	for p := data; len(p) > 0; {
		k := min(step, len(p))
		n, err := s.Write(p[:k])
		if err != nil || n != k {
			t.Fatalf("Write: %d, %v", n, err)
		}
		p = p[k:]
	}
	if err := s.Rewind(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	sizes := []struct {
		name string
		n    int
	}{
		{"empty", 0}, {"one", 1}, {"chunk-1", ChunkSize - 1}, {"chunk", ChunkSize},
		{"chunk+1", ChunkSize + 1}, {"two chunks", 2 * ChunkSize}, {"many chunks", 7*ChunkSize + 123},
	}
	for _, sz := range sizes {
		for _, step := range []int{0, 1000, ChunkSize, ChunkSize + 7} {
			if step == 1000 && sz.n > 3*ChunkSize {
				continue
			}
			data := payload(sz.n, uint64(sz.n))
			s := writeFile(t, t.TempDir(), data, step)
			fi, err := os.Stat(s.Name())
			if err != nil {
				t.Fatal(err)
			}
			chunks := max((sz.n+ChunkSize-1)/ChunkSize, 1)
			if want := int64(sz.n + chunks*tagSize); fi.Size() != want {
				t.Errorf("%s/step %d: file size %d, want %d", sz.name, step, fi.Size(), want)
			}
			// Read three times: the spill is rewound and re-read.
			for round := range 3 {
				got, err := io.ReadAll(s)
				if err != nil {
					t.Fatalf("%s/step %d/round %d: %v", sz.name, step, round, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("%s/step %d/round %d: read %d bytes, differ from the %d written", sz.name, step, round, len(got), len(data))
				}
				if err := s.Rewind(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Write([]byte{1}); err == nil {
				t.Errorf("%s: Write after Rewind succeeded", sz.name)
			}
		}
	}
}

// TestTamper: every modification of the bytes on disk makes reading fail
// with ErrCorrupt (never altered or shortened plaintext).
func TestTamper(t *testing.T) {
	const n = 3*ChunkSize + 500 // chunks: full, full, full, short final
	cases := []struct {
		name string
		data int
		mod  func(ct []byte) []byte
	}{
		{"flipped byte in first chunk", n, func(ct []byte) []byte { ct[10] ^= 1; return ct }},
		{"flipped byte in tag", n, func(ct []byte) []byte { ct[encChunk-1] ^= 0x80; return ct }},
		{"flipped byte in final chunk", n, func(ct []byte) []byte { ct[len(ct)-20] ^= 4; return ct }},
		{"truncated mid-chunk", n, func(ct []byte) []byte { return ct[:encChunk+100] }},
		{"truncated by one byte", n, func(ct []byte) []byte { return ct[:len(ct)-1] }},
		{"dropped final chunk", n, func(ct []byte) []byte { return ct[:3*encChunk] }},
		{"dropped full final chunk", 2 * ChunkSize, func(ct []byte) []byte { return ct[:encChunk] }},
		{"empty file", n, func(ct []byte) []byte { return ct[:0] }},
		{"swapped chunks", n, func(ct []byte) []byte {
			a := bytes.Clone(ct[:encChunk])
			copy(ct[:encChunk], ct[encChunk:2*encChunk])
			copy(ct[encChunk:2*encChunk], a)
			return ct
		}},
		{"final chunk moved first", 2 * ChunkSize, func(ct []byte) []byte {
			return append(bytes.Clone(ct[encChunk:]), ct[:encChunk]...)
		}},
		{"trailing byte", n, func(ct []byte) []byte { return append(ct, 0) }},
		{"chunk duplicated", n, func(ct []byte) []byte {
			return append(append(bytes.Clone(ct[:2*encChunk]), ct[encChunk:2*encChunk]...), ct[2*encChunk:]...)
		}},
		{"empty payload, tag flipped", 0, func(ct []byte) []byte { ct[0] ^= 1; return ct }},
		{"empty payload, tag dropped", 0, func(ct []byte) []byte { return ct[:0] }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := writeFile(t, t.TempDir(), payload(c.data, 7), 0)
			ct, err := os.ReadFile(s.Name())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Name(), c.mod(ct), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.Rewind(); err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(s)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestNoPlaintextOnDisk writes a VIN-like marker many times, through small
// and large writes, and greps the file for it (and a part of it).
func TestNoPlaintextOnDisk(t *testing.T) {
	marker := []byte("WVWZZZ1JZXW000001")
	var data []byte
	for range 20000 {
		data = append(data, marker...)
		data = append(data, ',')
	}
	for _, step := range []int{0, 18, 4096} {
		s := writeFile(t, t.TempDir(), data, step)
		ct, err := os.ReadFile(s.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range [][]byte{marker, marker[:8], marker[9:]} {
			if bytes.Contains(ct, m) {
				t.Fatalf("step %d: %q found in clear on disk", step, m)
			}
		}
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("step %d: round trip failed: %v", step, err)
		}
	}
}

// TestKeyCleared: the raw key is cleared once the cipher is built, and Close
// drops the cipher, clears the buffer and removes the file.
func TestKeyCleared(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, "t-*")
	if err != nil {
		t.Fatal(err)
	}
	if s.key != [keySize]byte{} {
		t.Fatal("raw key still in memory after Create")
	}
	if _, err := s.Write(bytes.Repeat([]byte("secret"), 1000)); err != nil {
		t.Fatal(err)
	}
	buf := s.buf[:cap(s.buf)]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.key != [keySize]byte{} || s.aead != nil {
		t.Fatal("key or cipher still held after Close")
	}
	if bytes.Contains(buf, []byte("secret")) {
		t.Fatal("plaintext buffer not cleared by Close")
	}
	if _, err := os.Stat(s.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file not removed: %v", err)
	}
	if _, err := s.Write([]byte{1}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if err := s.Rewind(); err == nil {
		t.Fatal("Rewind after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestFreshKeys: the same plaintext gives different ciphertexts in two files.
func TestFreshKeys(t *testing.T) {
	data := payload(1000, 3)
	a := writeFile(t, t.TempDir(), data, 0)
	b := writeFile(t, t.TempDir(), data, 0)
	ca, _ := os.ReadFile(a.Name())
	cb, _ := os.ReadFile(b.Name())
	if bytes.Equal(ca, cb) {
		t.Fatal("two files share a key")
	}
}

func TestReadBeforeRewind(t *testing.T) {
	s, err := Create(t.TempDir(), "t-*")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read before Rewind succeeded")
	}
}

// FuzzRead: the reader parses bytes from disk. Whatever is done to the
// file, it must not panic, and a read that succeeds returns exactly the
// plaintext written (so it succeeds only for the unmodified file).
func FuzzRead(f *testing.F) {
	f.Add([]byte("hello"), uint32(0), uint32(1<<31), byte(0))
	f.Add([]byte("hello"), uint32(3), uint32(1<<31), byte(1))
	f.Add(bytes.Repeat([]byte{7}, ChunkSize+1), uint32(ChunkSize), uint32(encChunk), byte(0))
	f.Add([]byte{}, uint32(0), uint32(0), byte(0))
	f.Fuzz(func(t *testing.T, data []byte, at, cut uint32, xor byte) {
		dir := t.TempDir()
		s := writeFile(t, dir, data, 0)
		ct, err := os.ReadFile(s.Name())
		if err != nil {
			t.Fatal(err)
		}
		mod := bytes.Clone(ct)
		if len(mod) > 0 {
			mod[int(at)%len(mod)] ^= xor
		}
		if int(cut) < len(mod) {
			mod = mod[:cut]
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(s.Name())), mod, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Rewind(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(bufio.NewReader(s))
		switch {
		case bytes.Equal(mod, ct):
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("unmodified file: %v", err)
			}
		case err == nil:
			t.Fatal("modified file read without error")
		case !errors.Is(err, ErrCorrupt):
			t.Fatalf("modified file: %v, want ErrCorrupt", err)
		}
	})
}
