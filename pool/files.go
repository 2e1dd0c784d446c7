package pool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxUploadFile bounds what is read of one upload file: a leader's input
// share is 16 bytes per measurement bit (2^26 entries at most).
const maxUploadFile = 1 << 31

// ReadUploads reads a round's upload directory as aggregator key sees it:
// every <name>.manifest.json with the <name>.<leader|helper>.upload file
// beside it (nil when missing: Prepare rejects it with a reason).
func ReadUploads(cfg *Config, key *Key, dir string) ([]Upload, error) {
	agg, err := cfg.aggregator(key)
	if err != nil {
		return nil, fmt.Errorf("pool.ReadUploads: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pool.ReadUploads: %w", err)
	}
	var out []Upload
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".manifest.json")
		if !ok || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		man, err := readBounded(filepath.Join(dir, e.Name()), maxSignedFile)
		if err != nil {
			return nil, fmt.Errorf("pool.ReadUploads: %w", err)
		}
		u := Upload{Name: e.Name(), Manifest: man}
		u.Share, err = readBounded(filepath.Join(dir, uploadName(name, agg)), maxUploadFile)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pool.ReadUploads: %w", err)
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than any pool file may have", path, st.Size())
	}
	return os.ReadFile(path)
}

// ReadSigned reads a prep or share file (size-bounded).
func ReadSigned(path string) ([]byte, error) { return readBounded(path, maxSignedFile) }

// PrepFileName and ShareFileName are the names the CLI gives an
// aggregator's files in a round directory.
func PrepFileName(role string) string  { return role + ".prep.json" }
func ShareFileName(role string) string { return role + ".share.json" }

// Role is the role ("leader" or "helper") of an aggregator key in cfg.
func (c *Config) Role(key *Key) (string, error) {
	agg, err := c.aggregator(key)
	if err != nil {
		return "", err
	}
	return roleNames[agg], nil
}

// WriteFile writes one pool file (a prep file, a state, a share) that must
// not exist yet, atomically: on error nothing is left behind.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFiles([]string{path}, [][]byte{data}, perm)
}
