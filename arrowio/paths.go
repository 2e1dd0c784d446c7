package arrowio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Named is a file a job reads or writes, with the name a person knows it by
// in messages (a flag such as "--out", or "the policy's keyring").
type Named struct {
	Name string
	Path string
}

// CheckPaths refuses outputs that are one of the inputs or one another:
// writing there would destroy an input (an --out equal to --in, a report
// over the keyring) or let one output silently replace another. Paths are
// compared as cleaned absolute paths with symbolic links resolved (as far as
// they exist: an output's folder, an existing file), and existing files
// also by identity (os.SameFile: hard links, bind mounts). "-" (standard
// input or output) and empty paths are skipped, except that two outputs
// both "-" are refused. The check is made before anything is read or
// written; it does not replace the lock a File holds (two runs).
func CheckPaths(inputs, outputs []Named) error {
	type seen struct {
		Named
		key  string
		info fs.FileInfo // nil when the file does not exist
	}
	var ins, outs []seen
	stdout := ""
	for _, o := range outputs {
		if o.Path == "-" {
			if stdout != "" {
				return fmt.Errorf("%s and %s both write to standard output", stdout, o.Name)
			}
			stdout = o.Name
		}
	}
	resolve := func(n Named) (seen, bool) {
		if n.Path == "" || n.Path == "-" {
			return seen{}, false
		}
		key, info := pathKey(n.Path)
		return seen{Named: n, key: key, info: info}, true
	}
	for _, n := range inputs {
		if s, ok := resolve(n); ok {
			ins = append(ins, s)
		}
	}
	for _, n := range outputs {
		if s, ok := resolve(n); ok {
			outs = append(outs, s)
		}
	}
	same := func(a, b seen) bool {
		if a.key == b.key {
			return true
		}
		return a.info != nil && b.info != nil && os.SameFile(a.info, b.info)
	}
	var errs []error
	for i, o := range outs {
		for _, in := range ins {
			if same(o, in) {
				errs = append(errs, fmt.Errorf("%s %s is the same file as %s %s: writing it would destroy an input", o.Name, o.Path, in.Name, in.Path))
			}
		}
		for _, p := range outs[:i] {
			if same(o, p) {
				errs = append(errs, fmt.Errorf("%s %s is the same file as %s %s: one output would replace the other", o.Name, o.Path, p.Name, p.Path))
			}
		}
	}
	return errors.Join(errs...)
}

// pathKey is path made absolute and clean with every symbolic link that
// exists resolved, and the file's info when it exists.
func pathKey(path string) (string, fs.FileInfo) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		info, _ := os.Stat(real)
		return real, info
	}
	// The file does not exist (or is a link to nothing): resolve its folder.
	dir, base := filepath.Split(abs)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(real, base), nil
	}
	return abs, nil
}
