package arrowio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tarnkappe/tarnkappe/internal/flock"
)

// ErrOutputBusy reports an output another live process is writing: its
// temporary file beside the destination is locked. Two runs to one output
// would otherwise both report success, the later rename silently winning.
var ErrOutputBusy = errors.New("another process is writing this output")

type fileState int

const (
	fileOpen      fileState = iota
	filePrepared            // complete and synced under its temporary name
	fileCommitted           // renamed into place
	fileAborted
)

// File is an output written under a temporary name in its destination's
// folder (".NAME.tmp-*", mode 0600) and renamed into place on Commit: the
// destination only ever holds a complete file. Abort, or a failed Prepare or
// Commit, removes the temporary file.
//
// CreateFile checks the destination before anything is written: its folder
// must exist, the destination must be absent or a regular file, and a
// symbolic link is followed (the file it points to is replaced, as a shell's
// > would; a link to nothing is refused). While the File is open its
// temporary file is locked (package flock): a second CreateFile for the same
// destination, in this process or another, fails with ErrOutputBusy, and
// temporary files of writers that died (SIGKILL, a crash) are removed.
//
// A Sink writes Arrow formats through a File (NewSink); reports and other
// bytes are written to a File directly. Files and Sinks commit together
// with CommitAll. A File is not safe for concurrent use.
type File struct {
	path  string   // as the caller named it (messages)
	dest  string   // where it is renamed to: path with symbolic links resolved
	tmp   string   // the temporary file
	f     *os.File // writes, until Prepare
	lock  *os.File // holds the lock on the temporary file (then the committed file) until done
	state fileState
	// During CommitAll: the destination's earlier file, kept (and locked)
	// under a name of its own until every output is committed, so that a
	// failed commit can put it back.
	old     string
	oldLock *os.File
}

// CreateFile checks path as an output and creates its temporary file.
func CreateFile(path string) (*File, error) {
	dest, err := resolveOutput(path)
	if err != nil {
		return nil, err
	}
	dir, base := filepath.Split(dest)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	o := &File{path: path, dest: dest, tmp: f.Name(), f: f}
	if err := o.claim(dir, base); err != nil {
		o.Abort()
		return nil, err
	}
	return o, nil
}

// CheckOutput checks path as an output as CreateFile does (its folder
// exists; it is absent or a regular file, symbolic links followed) without
// creating or claiming anything: for a job that writes the file later in
// another process (Beam's commit step runs on a worker).
func CheckOutput(path string) error {
	_, err := resolveOutput(path)
	return err
}

// resolveOutput returns where path is written: the folder must exist, and a
// symbolic link is followed to the file it names.
func resolveOutput(path string) (string, error) {
	if path == "" || path == "-" {
		return "", errors.New("output path must name a file")
	}
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	if base == "" || base == "." || base == ".." {
		return "", fmt.Errorf("%s: output path must name a file, not a folder", path)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s: folder %s does not exist", path, dir)
	case err != nil:
		return "", fmt.Errorf("%s: %w", path, err)
	case !fi.IsDir():
		return "", fmt.Errorf("%s: %s is not a folder", path, dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	dest := filepath.Join(real, base)
	li, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return dest, nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if li.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(dest)
		if err != nil {
			return "", fmt.Errorf("%s: a symbolic link to a file that does not exist (write to the target's path instead)", path)
		}
		dest = target
		if li, err = os.Lstat(dest); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	}
	switch {
	case li.IsDir():
		return "", fmt.Errorf("%s: is a folder", path)
	case !li.Mode().IsRegular():
		return "", fmt.Errorf("%s: not a regular file (%v); outputs are replaced by a rename (use - for standard output)", path, li.Mode().Type())
	}
	return dest, nil
}

// claim locks the temporary file, refuses the output when another live
// process holds a lock on a temporary file of the same destination, and
// removes those of dead ones. Without locks (flock.Supported false)
// concurrent writers are not detected and nothing is removed.
func (o *File) claim(dir, base string) error {
	if !flock.Supported {
		return nil
	}
	var err error
	if o.lock, err = os.Open(o.tmp); err != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	if got, err := flock.TryLock(o.lock); err != nil || !got {
		return fmt.Errorf("%s: lock %s: %v", o.path, o.tmp, err)
	}
	var stale []*os.File
	defer func() {
		for _, f := range stale {
			f.Close()
		}
	}()
	for _, pat := range []string{"." + base + ".tmp-*", "." + base + ".old-*"} {
		m, _ := filepath.Glob(filepath.Join(globEscape(dir), globEscape(pat[:len(pat)-1])+"*"))
		for _, p := range m {
			if p == o.tmp {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				continue // gone meanwhile, or not ours to open
			}
			got, err := flock.TryLock(f)
			if err != nil || !got {
				f.Close()
				if err == nil {
					return fmt.Errorf("%s: %w (its temporary file %s is locked by a live process)", o.path, ErrOutputBusy, filepath.Base(p))
				}
				continue
			}
			stale = append(stale, f)
		}
	}
	for _, f := range stale {
		// A writer that died before its rename; its file holds no lock.
		os.Remove(f.Name())
	}
	return nil
}

// globEscape quotes the glob metacharacters of a literal path part.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Path returns the destination as the caller named it.
func (o *File) Path() string { return o.path }

// Write appends p to the temporary file.
func (o *File) Write(p []byte) (int, error) {
	if o.state != fileOpen {
		return 0, fmt.Errorf("arrowio: write %s: file is %s", o.path, o.stateName())
	}
	n, err := o.f.Write(p)
	if err != nil {
		o.Abort()
		return n, fmt.Errorf("arrowio: write %s: %w", o.path, err)
	}
	return n, nil
}

// Chmod sets the permissions the output will have once committed (a new
// File is readable and writable by its owner only, 0600), on the temporary
// file: the output never exists in place with other permissions.
func (o *File) Chmod(mode os.FileMode) error {
	if o.state != fileOpen {
		return fmt.Errorf("arrowio: chmod %s: file is %s", o.path, o.stateName())
	}
	if err := o.f.Chmod(mode); err != nil {
		return fmt.Errorf("arrowio: chmod %s: %w", o.path, err)
	}
	return nil
}

func (o *File) stateName() string {
	switch o.state {
	case filePrepared:
		return "prepared"
	case fileCommitted:
		return "committed"
	case fileAborted:
		return "aborted"
	}
	return "open"
}

// Prepare syncs and closes the temporary file: the output is complete but
// not yet in place. Commit renames it. Prepare after Prepare is a no-op.
func (o *File) Prepare() error {
	switch o.state {
	case filePrepared:
		return nil
	case fileOpen:
	default:
		return fmt.Errorf("arrowio: prepare %s: file is %s", o.path, o.stateName())
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.f = nil
	if err != nil {
		o.Abort()
		return fmt.Errorf("arrowio: prepare %s: %w", o.path, err)
	}
	o.state = filePrepared
	return nil
}

// Commit prepares the file if needed and renames it into place. Commit
// after Commit is a no-op; after Abort it is an error. To commit several
// outputs all or none, use CommitAll.
func (o *File) Commit() error {
	if o.state == fileCommitted {
		return nil
	}
	if err := o.Prepare(); err != nil {
		return err
	}
	if err := o.publish(false); err != nil {
		return err
	}
	o.settle()
	return nil
}

// publish renames the prepared file into place. With keepOld the earlier
// destination file is kept (hard-linked, or renamed when links fail) under
// ".NAME.old-*" and locked, for revert.
func (o *File) publish(keepOld bool) error {
	if keepOld {
		if err := o.keepOld(); err != nil {
			o.Abort()
			return fmt.Errorf("arrowio: commit %s: keep the earlier file: %w", o.path, err)
		}
	}
	if err := os.Rename(o.tmp, o.dest); err != nil {
		o.restoreOld()
		o.Abort()
		return fmt.Errorf("arrowio: commit %s: %w", o.path, err)
	}
	o.tmp = ""
	o.state = fileCommitted
	syncDir(filepath.Dir(o.dest))
	return nil
}

func (o *File) keepOld() error {
	if fi, err := os.Lstat(o.dest); err != nil || !fi.Mode().IsRegular() {
		// Nothing to keep (what is not a regular file is not moved aside:
		// the rename fails on it, or replaces a link).
		return nil
	}
	dir, base := filepath.Split(o.dest)
	f, err := os.CreateTemp(dir, "."+base+".old-*")
	if err != nil {
		return err
	}
	old := f.Name()
	f.Close()
	os.Remove(old)
	if err := os.Link(o.dest, old); err != nil {
		// No hard links here: move it aside (the destination is missing
		// until the rename below).
		if err := os.Rename(o.dest, old); err != nil {
			return err
		}
	}
	o.old = old
	if flock.Supported {
		if o.oldLock, err = os.Open(old); err == nil {
			flock.TryLock(o.oldLock)
		}
	}
	return nil
}

// restoreOld puts the earlier destination file back (after a failed rename
// or on revert).
func (o *File) restoreOld() {
	if o.old == "" {
		return
	}
	os.Rename(o.old, o.dest)
	o.old = ""
	if o.oldLock != nil {
		o.oldLock.Close()
		o.oldLock = nil
	}
}

// revert takes back a commit of CommitAll: the destination gets its
// earlier file back, or is removed when there was none.
func (o *File) revert() {
	if o.state != fileCommitted {
		o.Abort()
		return
	}
	if o.old != "" {
		o.restoreOld()
	} else {
		os.Remove(o.dest)
	}
	syncDir(filepath.Dir(o.dest))
	o.state = fileAborted
	o.unlock()
}

// settle ends a commit: the earlier file is dropped and the lock released.
func (o *File) settle() {
	if o.old != "" {
		os.Remove(o.old)
		o.old = ""
	}
	if o.oldLock != nil {
		o.oldLock.Close()
		o.oldLock = nil
	}
	o.unlock()
}

func (o *File) unlock() {
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}

// Abort removes the temporary file. Abort after Commit is a no-op (the
// file stays); Abort is idempotent.
func (o *File) Abort() error {
	if o.state == fileCommitted || o.state == fileAborted {
		return nil
	}
	o.state = fileAborted
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
	if o.tmp != "" {
		os.Remove(o.tmp)
		o.tmp = ""
	}
	o.unlock()
	return nil
}
