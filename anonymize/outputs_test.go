package anonymize

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// countingReader counts the batches a run reads.
type countingReader struct {
	array.RecordReader
	batches int
}

func (c *countingReader) Next() bool {
	if c.RecordReader.Next() {
		c.batches++
		return true
	}
	return false
}

// demoRun is the demo policy over a small fleet, with the outputs of a
// test: TempDir and the folder of the outputs are the test's own.
type demoRun struct {
	t        *testing.T
	mem      *memory.CheckedAllocator
	tmp, dir string
	src      *countingReader
}

func newDemoRun(t *testing.T) *demoRun {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows, cfg.BatchSize = 300, 30_000, 8192
	src, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Release)
	return &demoRun{t: t, mem: mem, tmp: t.TempDir(), dir: t.TempDir(), src: &countingReader{RecordReader: src}}
}

// run runs the demo policy with opts (Policy, Keyring, Mem, TempDir set
// here) and create for the data.
func (d *demoRun) run(ctx context.Context, opts Options, create CreateFunc) (*Report, error) {
	t := d.t
	opts.Policy, opts.Keyring, opts.Mem, opts.Workers, opts.TempDir = writePolicy(t, string(brakedisc.DemoPolicy())), newKeyring(t), d.mem, 2, d.tmp
	if opts.Release == nil {
		rel := &memSink{}
		t.Cleanup(rel.release)
		opts.Release = sinkFor(rel)
	}
	r, err := NewRunner(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Run(ctx, d.src, create)
}

// leftover fails the test unless the scratch folder is empty and the output
// folder holds exactly want.
func (d *demoRun) leftover(want ...string) {
	d.t.Helper()
	var got []string
	filepath.WalkDir(d.tmp, func(p string, e os.DirEntry, err error) error {
		if err == nil && p != d.tmp {
			got = append(got, "scratch:"+e.Name())
		}
		return nil
	})
	ents, _ := os.ReadDir(d.dir)
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		d.t.Fatalf("left %v, want %v", got, want)
	}
}

// TestDataOutputCheckedFirst: an output that cannot be created fails the
// run before it reads a row, and a CreateFunc that returns a typed nil
// (a *arrowio.Sink nil converted to Sink) is an error, not a panic that
// skips the cleanup. Before, the data's sink was made after the whole first
// pass (issue #13 item 2).
func TestDataOutputCheckedFirst(t *testing.T) {
	errNo := errors.New("no such folder")
	for _, c := range []struct {
		name   string
		create func(dir string) CreateFunc
		want   string
	}{
		{"missing folder", func(dir string) CreateFunc {
			return func(s *arrow.Schema) (Sink, error) {
				return arrowio.Create(filepath.Join(dir, "nodir", "out.parquet"), s, arrowio.CreateOptions{})
			}
		}, "folder " + "%DIR%" + "/nodir does not exist"},
		{"unknown extension", func(dir string) CreateFunc {
			return func(s *arrow.Schema) (Sink, error) {
				return arrowio.Create(filepath.Join(dir, "out.xlsx"), s, arrowio.CreateOptions{})
			}
		}, "unknown file format"},
		{"typed nil with its error", func(string) CreateFunc {
			return func(*arrow.Schema) (Sink, error) {
				var s *arrowio.Sink
				return s, errNo
			}
		}, "no such folder"},
		{"typed nil without error", func(string) CreateFunc {
			return func(*arrow.Schema) (Sink, error) {
				var s *arrowio.Sink
				return s, nil
			}
		}, "returned no Sink and no error"},
		{"nil without error", func(string) CreateFunc {
			return func(*arrow.Schema) (Sink, error) { return nil, nil }
		}, "returned no Sink and no error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDemoRun(t)
			_, err := d.run(context.Background(), Options{}, c.create(d.dir))
			want := strings.ReplaceAll(c.want, "%DIR%", d.dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Run: %v, want an error saying %q", err, want)
			}
			if d.src.batches != 0 {
				t.Fatalf("the run read %d batches before it failed on its output", d.src.batches)
			}
			d.leftover()
		})
	}
}

// failingRender is a report renderer that fails.
func failingRender(*Report, io.Writer) error { return errors.New("render failed") }

// TestOutputsAllOrNothing: data, release and both reports are committed
// together or not at all. Before, the data and the release were committed
// before the reports were written, and a failed report or release rename
// left them behind (issue #13 item 3). A cancellation at any step leaves no
// output and no scratch file (item 4).
func TestOutputsAllOrNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		// spoil returns what to change before Run: the HTML renderer, a
		// step at which the run is cancelled, or a destination made
		// unwritable after it was claimed.
		html     func(*Report, io.Writer) error
		cancelAt string
		spoil    func(dir string)
		want     string
	}{
		{name: "success"},
		{name: "a report fails to render", html: failingRender, want: "report: render failed"},
		{name: "a rename fails", spoil: func(dir string) {
			// The HTML report's destination became a folder after the run
			// claimed it: its rename fails after the others succeeded.
			os.MkdirAll(filepath.Join(dir, "report.html", "x"), 0o700)
		}, want: "report.html"},
		{name: "cancelled in pass 1", cancelAt: "pass 1", want: "stop"},
		{name: "cancelled between the passes", cancelAt: "decide", want: "stop"},
		{name: "cancelled in pass 2", cancelAt: "pass 2", want: "stop"},
		{name: "cancelled in the write step", cancelAt: "write", want: "stop"},
		{name: "cancelled in finish", cancelAt: "finish", want: "stop"},
		{name: "cancelled at the commit", cancelAt: "commit", want: "stop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDemoRun(t)
			path := func(n string) string { return filepath.Join(d.dir, n) }
			if c.name != "success" {
				// An earlier run's report: a failed run leaves it as it was.
				if err := os.WriteFile(path("report.json"), []byte("earlier"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			js, err := arrowio.CreateFile(path("report.json"))
			if err != nil {
				t.Fatal(err)
			}
			hf, err := arrowio.CreateFile(path("report.html"))
			if err != nil {
				t.Fatal(err)
			}
			relFile, err := arrowio.CreateFile(path("out.release.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			// Claimed here, it is ours to abort if Run never gets to it (a
			// no-op once committed).
			defer relFile.Abort()
			html := (*Report).WriteHTML
			if c.html != nil {
				html = c.html
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var steps []string
			opts := Options{
				Release: func(s *arrow.Schema) (Sink, error) {
					return arrowio.NewSink(relFile, s, arrowio.CreateOptions{Mem: d.mem})
				},
				Reports: []ReportOutput{{File: js, Render: (*Report).WriteJSON}, {File: hf, Render: html}},
				OnStep: func(_ context.Context, step string) {
					steps = append(steps, step)
					if step == c.cancelAt {
						cancel(errors.New("stop"))
					}
				},
			}
			if c.spoil != nil {
				c.spoil(d.dir)
			}
			_, err = d.run(ctx, opts, func(s *arrow.Schema) (Sink, error) {
				return arrowio.Create(path("out.parquet"), s, arrowio.CreateOptions{Mem: d.mem})
			})
			relFile.Abort()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(steps, ","); got != "pass 1,decide,pass 2,write,finish,commit" {
					t.Fatalf("steps %s", got)
				}
				d.leftover("out.parquet", "out.release.parquet", "report.html", "report.json")
				b, err := os.ReadFile(path("report.json"))
				if err != nil {
					t.Fatal(err)
				}
				var doc map[string]any
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run: %v, want an error saying %q", err, c.want)
			}
			if c.name == "a rename fails" {
				d.leftover("report.html", "report.json")
			} else {
				d.leftover("report.json")
			}
			if b, _ := os.ReadFile(path("report.json")); string(b) != "earlier" {
				t.Fatalf("the earlier report was not kept: %q", b)
			}
		})
	}
}
