package scratch

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tarnkappe/tarnkappe/internal/flock"
)

// TestSweepKilledRun: a run killed with SIGKILL (no cleanup of its own)
// leaves its folder and files; the next Sweep removes them, and leaves a
// live run's folder alone.
func TestSweepKilledRun(t *testing.T) {
	if !flock.Supported {
		t.Skip("no locks on this system: Sweep removes nothing (documented)")
	}
	if os.Getenv("SCRATCH_TEST_CHILD") != "" {
		return // runs as the child in TestSweepChild
	}
	parent := t.TempDir()
	live, err := NewDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()

	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepChild$")
	cmd.Env = append(os.Environ(), "SCRATCH_TEST_CHILD="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints its folder once its file is written, then waits.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	childDir := strings.TrimSpace(line)
	if s, err := Sweep(parent); err != nil || s.Folders != 0 {
		t.Fatalf("sweep while the child lives: %+v %v, want nothing removed", s, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(childDir); err != nil {
		t.Fatalf("the killed child's folder should still be there before the sweep: %v", err)
	}
	s, err := Sweep(parent)
	if err != nil {
		t.Fatal(err)
	}
	if s.Folders != 1 || s.Bytes != 1000 {
		t.Fatalf("swept %+v, want the child's folder with its 1000 bytes", s)
	}
	if _, err := os.Stat(childDir); !os.IsNotExist(err) {
		t.Fatalf("the dead run's folder remains: %v", err)
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Fatalf("the live run's folder was removed: %v", err)
	}
}

// TestSweepChild is the child of TestSweepKilledRun: a run that makes its
// folder and a scratch file, then waits to be killed.
func TestSweepChild(t *testing.T) {
	parent := os.Getenv("SCRATCH_TEST_CHILD")
	if parent == "" {
		t.Skip("child of TestSweepKilledRun only")
	}
	d, err := NewDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Create(d.Path(), "spill-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 1000-tagSize))
	f.Rewind() // seals the one chunk: 1000 bytes on disk
	os.Stdout.WriteString(d.Path() + "\n")
	select {} // until killed
}

// TestSweepLockDecides: the PID in a name decides nothing. A folder named
// after this live process but unlocked is removed; a locked folder named
// after a PID that cannot be alive is kept.
func TestSweepLockDecides(t *testing.T) {
	if !flock.Supported {
		t.Skip("no locks on this system")
	}
	parent := t.TempDir()
	stale := filepath.Join(parent, dirPrefix+strconv.Itoa(os.Getpid())+"-aaaaaaaaaaaa")
	if err := os.Mkdir(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	live, err := NewDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	renamed := filepath.Join(parent, dirPrefix+"999999999-bbbbbbbbbbbb")
	if err := os.Rename(live.Path(), renamed); err != nil {
		t.Fatal(err)
	}
	live.path = renamed
	// A folder being made (not yet renamed) and a file with the prefix are
	// not run folders.
	if err := os.Mkdir(filepath.Join(parent, newDirPrefix+"x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, dirPrefix+"file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Sweep(parent)
	if err != nil || s.Folders != 1 {
		t.Fatalf("Sweep: %+v %v, want 1 folder", s, err)
	}
	for _, p := range []string{renamed, filepath.Join(parent, newDirPrefix+"x"), filepath.Join(parent, dirPrefix+"file")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the unlocked folder named after a live PID remains")
	}
}

// TestDirRemove: Remove takes the folder and its files and is idempotent.
func TestDirRemove(t *testing.T) {
	parent := t.TempDir()
	d, err := NewDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.Path()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("folder: %v %v, want mode 0700", fi, err)
	}
	f, err := Create(d.Path(), "x-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("abc"))
	f.Close()
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}
