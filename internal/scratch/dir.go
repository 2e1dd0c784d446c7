package scratch

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tarnkappe/tarnkappe/internal/flock"
)

// dirPrefix names the folders of runs. A folder is made under a name
// Sweep ignores and renamed to this prefix only once it is locked, so that
// Sweep never sees a live run's folder unlocked.
const (
	dirPrefix    = "tarnkappe-run-"
	newDirPrefix = ".tarnkappe-new-"
)

// Dir is the folder of one run's scratch files. Its owner holds a lock on it
// (package flock) for as long as the process lives; Sweep, in a later run,
// removes a folder whose lock it can take: the owner is gone, however it
// ended. The name holds the owner's PID for people (ls shows whose it is);
// the lock, not the PID, decides, so a reused PID keeps nobody's files alive
// and a live run's files are never removed.
type Dir struct {
	path string
	lock *os.File // the open folder; closing it drops the lock
}

// NewDir makes a locked folder for a run's scratch files in parent
// (os.TempDir() when empty), mode 0700.
func NewDir(parent string) (*Dir, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	tmp, err := os.MkdirTemp(parent, newDirPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	d := &Dir{path: tmp}
	ok := false
	defer func() {
		if !ok {
			d.Remove()
		}
	}()
	if d.lock, err = os.Open(tmp); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	if flock.Supported {
		if got, err := flock.TryLock(d.lock); err != nil || !got {
			return nil, fmt.Errorf("scratch: lock %s: %v", tmp, err)
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	name := filepath.Join(parent, dirPrefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Rename(tmp, name); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	d.path = name
	ok = true
	return d, nil
}

// Path is the folder, to pass as the dir of Create.
func (d *Dir) Path() string { return d.path }

// Remove removes the folder with whatever is still in it, then drops the
// lock. Call it after every file in it is closed; it is idempotent.
func (d *Dir) Remove() error {
	if d == nil || d.path == "" {
		return nil
	}
	err := os.RemoveAll(d.path)
	d.path = ""
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	return err
}

// Swept is what Sweep removed.
type Swept struct {
	Folders int   // folders of runs that are gone
	Bytes   int64 // their files' sizes
}

// Sweep removes from parent (os.TempDir() when empty) the scratch folders
// of runs whose process is gone: the folders whose lock it can take. It
// skips what it cannot open (another user's folders in a shared /tmp) and
// what is locked (a live run). Without locks (flock.Supported false) it
// removes nothing. The files it removes are encrypted under keys that died
// with their process; removing them only frees the disk.
func Sweep(parent string) (Swept, error) {
	var s Swept
	if !flock.Supported {
		return s, nil
	}
	if parent == "" {
		parent = os.TempDir()
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		return s, fmt.Errorf("scratch: sweep %s: %w", parent, err)
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue // not ours to open, or gone meanwhile
		}
		if got, err := flock.TryLock(f); err != nil || !got {
			f.Close()
			continue
		}
		n := dirBytes(p)
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		} else {
			s.Folders++
			s.Bytes += n
		}
		f.Close()
	}
	return s, errors.Join(errs...)
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
