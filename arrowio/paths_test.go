package arrowio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPaths: an output that is an input, or another output, is
// refused however it is spelt; distinct files pass.
func TestCheckPaths(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	mustWrite(t, in, "a\n1\n")
	if err := os.Symlink("in.csv", filepath.Join(dir, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(in, filepath.Join(dir, "hard.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(dir, "self")); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, in)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys.json")
	mustWrite(t, keys, "{}")
	inputs := []Named{{"--in", in}, {"--keys", keys}, {"--policy", ""}, {"stdin", "-"}}
	for _, c := range []struct {
		name    string
		outputs []Named
		want    string // "" passes
	}{
		{"distinct", []Named{{"--out", filepath.Join(dir, "out.csv")}, {"--report", filepath.Join(dir, "r.json")}, {"--html", "-"}}, ""},
		{"out is in", []Named{{"--out", in}}, "--out " + in + " is the same file as --in"},
		{"relative spelling", []Named{{"--out", rel}}, "is the same file as --in"},
		{"dot segments", []Named{{"--out", filepath.Join(dir, "sub", "..", "in.csv")}}, "is the same file as --in"},
		{"symbolic link", []Named{{"--out", filepath.Join(dir, "link.csv")}}, "is the same file as --in"},
		{"link in the folder", []Named{{"--out", filepath.Join(dir, "self", "in.csv")}}, "is the same file as --in"},
		{"hard link", []Named{{"--out", filepath.Join(dir, "hard.csv")}}, "is the same file as --in"},
		{"report over the keyring", []Named{{"--out", filepath.Join(dir, "o.csv")}, {"--report", keys}}, "--report " + keys + " is the same file as --keys"},
		{"two outputs", []Named{{"--out", filepath.Join(dir, "o.csv")}, {"--release", filepath.Join(dir, "self", "o.csv")}}, "--release " + filepath.Join(dir, "self", "o.csv") + " is the same file as --out"},
		{"two to stdout", []Named{{"--out", "-"}, {"--release", "-"}}, "--out and --release both write to standard output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckPaths(inputs, c.outputs)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CheckPaths: %v, want %q", err, c.want)
			}
		})
	}
}
