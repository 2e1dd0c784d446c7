package arrowio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/internal/flock"
)

// TestCreateFileChecks: a destination that cannot be written is refused
// when the File is made, before any data, with the reason.
func TestCreateFileChecks(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "target.json"), "old")
	if err := os.Symlink("target.json", filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing.json", filepath.Join(dir, "dangling.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"missing folder", filepath.Join(dir, "nodir", "x.json"), "folder " + filepath.Join(dir, "nodir") + " does not exist"},
		{"folder as a file", filepath.Join(dir, "target.json", "x.json"), "is not a folder"},
		{"destination is a folder", filepath.Join(dir, "sub"), "is a folder"},
		{"trailing slash", filepath.Join(dir, "sub") + "/", "must name a file"},
		{"link to nothing", filepath.Join(dir, "dangling.json"), "symbolic link to a file that does not exist"},
		{"device", "/dev/null", "not a regular file"},
		{"stdout", "-", "must name a file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := CreateFile(c.path)
			if err == nil {
				f.Abort()
				t.Fatalf("accepted %s", c.path)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
	// Nothing was left behind by the refusals.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 4 {
		t.Fatalf("left %v", ents)
	}
}

// TestCreateFileFollowsLink: a symbolic link's target is replaced, the link
// stays a link.
func TestCreateFileFollowsLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.json")
	link := filepath.Join(dir, "link.json")
	mustWrite(t, target, "old")
	if err := os.Symlink("target.json", link); err != nil {
		t.Fatal(err)
	}
	f, err := CreateFile(link)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, target); got != "new" {
		t.Fatalf("target holds %q", got)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v %v", fi, err)
	}
}

// TestCreateFileBusy: a second writer of the same destination (by another
// name for it too) fails while the first is open; after the first ends it
// may write.
func TestCreateFileBusy(t *testing.T) {
	if !flock.Supported {
		t.Skip("no locks on this system: concurrent writers are not detected (documented)")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	if err := os.Symlink("out.json", filepath.Join(dir, "alias.json")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, out, "old")
	first, err := CreateFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out, filepath.Join(dir, "alias.json"), filepath.Join(dir, ".", "out.json")} {
		if f, err := CreateFile(p); !errors.Is(err, ErrOutputBusy) {
			if f != nil {
				f.Abort()
			}
			t.Fatalf("second writer of %s: %v, want ErrOutputBusy", p, err)
		}
	}
	first.Write([]byte("first"))
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	second, err := CreateFile(out)
	if err != nil {
		t.Fatalf("writer after the first committed: %v", err)
	}
	second.Abort()
	if got := mustRead(t, out); got != "first" {
		t.Fatalf("out holds %q", got)
	}
	assertOnly(t, dir, "alias.json", "out.json")
}

// TestCreateFileRemovesStale: the temporary files of a writer that died
// (no lock held) are removed by the next writer of that destination, and
// only those.
func TestCreateFileRemovesStale(t *testing.T) {
	if !flock.Supported {
		t.Skip("no locks on this system: nothing is removed (documented)")
	}
	dir := t.TempDir()
	for _, n := range []string{".out.json.tmp-123", ".out.json.old-9", ".other.json.tmp-5", "out.json.tmp-7"} {
		mustWrite(t, filepath.Join(dir, n), "x")
	}
	f, err := CreateFile(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("y"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, ".other.json.tmp-5", "out.json", "out.json.tmp-7")
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertOnly fails unless dir holds exactly names.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

// TestCreateFileRelative: a path without a folder is written beside it in
// the working directory (its temporary file too, so the rename stays on one
// file system), and is locked as such.
func TestCreateFileRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	f, err := CreateFile("x.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), ".x.json.tmp-") {
		t.Fatalf("working directory holds %v, want the temporary file", ents)
	}
	if flock.Supported {
		if g, err := CreateFile(filepath.Join(dir, "x.json")); !errors.Is(err, ErrOutputBusy) {
			if g != nil {
				g.Abort()
			}
			t.Fatalf("second writer by absolute path: %v", err)
		}
	}
	f.Write([]byte("1"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, "x.json")
}

// TestIPCSpoolBesideTemp: the IPC file sink's dictionary spool is named
// like the output's temporary file, so that a killed run's spool is removed
// with it by the next writer of that output; Abort removes it.
func TestIPCSpoolBesideTemp(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	s, err := Create(filepath.Join(dir, "out.arrow"), testSchema(), CreateOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	for b := range 3 { // batches with other dictionaries start the spool
		rec := testBatch(t, mem, b, 10)
		err := s.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("folder holds %v, want the temporary file and the spool", ents)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".out.arrow.tmp-") {
			t.Errorf("%s is not named after the output's temporary file", e.Name())
		}
	}
	s.Abort()
	assertOnly(t, dir)
}

// A File is 0600 until Chmod; the mode set is the committed file's.
func TestFileChmod(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0, 0o644} {
		path := filepath.Join(dir, fmt.Sprintf("r%o.json", mode))
		f, err := CreateFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if mode != 0 {
			if err := f.Chmod(mode); err != nil {
				t.Fatal(err)
			}
			want = mode
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := f.Chmod(0o600); err == nil {
			t.Error("Chmod after Commit succeeded")
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v, want %v", path, err, fi.Mode().Perm(), want)
		}
	}
}
