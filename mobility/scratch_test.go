package mobility

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// lateErrReader yields src's batches, then calls at (the run's temporary
// files are all written by then) and fails, as a source that breaks late or
// a run killed at that point would.
type lateErrReader struct {
	array.RecordReader
	at  func()
	err error
}

var errLate = errors.New("source failed late")

func (r *lateErrReader) Next() bool {
	if r.RecordReader.Next() {
		return true
	}
	if r.err == nil {
		r.at()
		r.err = errLate
	}
	return false
}

func (r *lateErrReader) Err() error { return r.err }

// markers are raw values of the fleet: subject ids and the 8 bytes of raw
// latitudes.
func markers(rs []reading) [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	for i, r := range rs {
		if !seen[r.subj] {
			seen[r.subj] = true
			out = append(out, []byte(r.subj))
		}
		if i%50 == 0 {
			out = append(out, binary.LittleEndian.AppendUint64(nil, math.Float64bits(r.lat)))
		}
	}
	return out
}

// checkTempDir fails the test if a file in dir holds a marker or compresses
// (data in clear, however encoded, compresses; ciphertext does not). It
// returns the names of the files it saw.
func checkTempDir(t *testing.T, dir string, ms [][]byte) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if bytes.Contains(b, m) {
				t.Errorf("%s holds the raw value %q in clear", e.Name(), m)
				break
			}
		}
		if len(b) >= 4096 {
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, flate.BestSpeed)
			w.Write(b)
			w.Close()
			if z.Len() < len(b)*98/100 {
				t.Errorf("%s (%d bytes) compresses to %d: not encrypted", e.Name(), len(b), z.Len())
			}
		}
	}
	return names
}

// TestProtectTempFilesEncrypted: mid-run, Protect's spool and the trace
// gate's partition files hold no raw subject id or position, and a run that
// fails leaves no file behind. (At this fleet size the partitions are still
// within their 64 KiB chunk buffers; that they are scratch files, read back
// through authentication, TestTraceGateSpillSame shows.)
func TestProtectTempFilesEncrypted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	defer func(n int) { traceSpillAt = n }(traceSpillAt)
	traceSpillAt = 5
	rs := synthFleet(12, 80, 3)
	opts := protectOpts(mem, t)
	opts.Resolution, opts.K, opts.TraceK, opts.Endpoints = 5, 3, 3, EndpointsDetach
	inner := makeReader(t, mem, rs, 700)
	defer inner.Release()
	var names []string
	src := &lateErrReader{RecordReader: inner, at: func() { names = checkTempDir(t, opts.TempDir, markers(rs)) }}
	_, err := Protect(context.Background(), src, opts, func(arrow.RecordBatch) error { return nil })
	if !errors.Is(err, errLate) {
		t.Fatalf("Protect: %v, want the late source error", err)
	}
	var spool, traces int
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "tarnkappe-mobility-"):
			spool++
		case strings.HasPrefix(n, "tarnkappe-traces-"):
			traces++
		}
	}
	if spool != 1 || traces != tracePartitions {
		t.Fatalf("saw %d spool and %d trace partition files (%v), want 1 and %d", spool, traces, names, tracePartitions)
	}
	if e, _ := os.ReadDir(opts.TempDir); len(e) != 0 {
		t.Errorf("%d temporary files left after the failed run", len(e))
	}
}

// TestSortRunsEncrypted: the external sort's runs hold no raw subject id or
// position in clear.
func TestSortRunsEncrypted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rs := synthFleet(9, 40, 2)
	src := makeReader(t, mem, rs, 500)
	defer src.Release()
	dir := t.TempDir()
	sorted, err := SortBySubjectTime(context.Background(), src, SortOptions{Subject: "vin", Time: "ts", MaxRowsInMemory: 1000, TempDir: dir, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	if !sorted.Next() {
		t.Fatalf("no output: %v", sorted.Err())
	}
	if sorted.Runs() < 2 {
		t.Fatalf("%d runs, want spilled runs", sorted.Runs())
	}
	if names := checkTempDir(t, dir, markers(rs)); len(names) != sorted.Runs() {
		t.Errorf("%d files for %d runs", len(names), sorted.Runs())
	}
	sorted.Release()
	if e, _ := os.ReadDir(dir); len(e) != 0 {
		t.Errorf("%d run files left after Close", len(e))
	}
}
