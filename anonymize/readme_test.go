package anonymize

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeBlock is a fenced code block of README.md and the file its marker
// line (`<!-- quoted from PATH ... -->`, the line before the fence) names.
type readmeBlock struct {
	lang, from, text string
	line             int
	abridged         bool // `<!-- abridged from PATH ... -->`: its lines are in PATH
}

// readmeBlocks returns the fenced blocks of a Markdown file.
func readmeBlocks(t *testing.T, md []byte) []readmeBlock {
	t.Helper()
	var out []readmeBlock
	var cur *readmeBlock
	var prev string
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.TrimPrefix(line, "```"), line: n}
			if rest, ok := strings.CutPrefix(prev, "<!-- quoted from "); ok {
				cur.from = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(prev, "<!-- abridged from "); ok {
				cur.from, cur.abridged = strings.TrimSuffix(strings.Fields(rest)[0], ":"), true
			}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
		prev = line
	}
	if cur != nil {
		t.Fatalf("README.md: the block from line %d is not closed", cur.line)
	}
	return out
}

// TestREADMEQuotesRunnableCode keeps the README from rotting again: every Go
// block in README.md must be marked with the file it is quoted from and
// appear there verbatim (a runnable Example calls it, so `go test ./...`
// compiles and runs it), and every marked block of another language (the
// policy) must be that whole file (the README's policy is
// testdata/readme/policy.yaml, which ExampleRunner_Run_file runs). Edit the
// file and the README together.
func TestREADMEQuotesRunnableCode(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var goBlocks, policies int
	for _, b := range readmeBlocks(t, md) {
		if b.lang == "go" {
			goBlocks++
			if b.from == "" {
				t.Errorf("README.md:%d: a Go block without a `<!-- quoted from PATH -->` line before it; quote runnable code only", b.line)
				continue
			}
		}
		if b.from == "" {
			continue
		}
		src, err := os.ReadFile(filepath.Join("..", b.from))
		if err != nil {
			t.Errorf("README.md:%d: %v", b.line, err)
			continue
		}
		if b.abridged {
			// An excerpt: each line, its comment aside, must be a line of
			// the file (a "# ..." line stands for what is left out).
			for i, l := range strings.Split(strings.TrimSuffix(b.text, "\n"), "\n") {
				code, _, _ := strings.Cut(l, "#")
				if code = strings.TrimRight(code, " "); strings.TrimSpace(code) == "" {
					continue
				}
				if !containsLineStart(string(src), code) {
					t.Errorf("README.md:%d: %q is not in %s; edit both together", b.line+1+i, code, b.from)
				}
			}
			continue
		}
		if b.lang == "go" {
			if !strings.Contains(string(src), b.text) {
				t.Errorf("README.md:%d: the Go block is not in %s verbatim; edit both together", b.line, b.from)
			}
			if !strings.HasSuffix(b.from, "_test.go") {
				t.Errorf("README.md:%d: quote an example test file, not %s", b.line, b.from)
			}
			continue
		}
		if string(src) != b.text {
			t.Errorf("README.md:%d: the %s block differs from %s; edit both together", b.line, b.lang, b.from)
		}
		if b.lang == "yaml" {
			policies++
			if _, err := LoadPolicy(filepath.Join("..", b.from)); err != nil {
				t.Errorf("README.md:%d: the policy does not load: %v", b.line, err)
			}
		}
	}
	if goBlocks < 2 || policies < 1 {
		t.Errorf("README.md has %d Go blocks and %d policies; want the library section's two and its policy", goBlocks, policies)
	}
}

// containsLineStart reports whether a line of text begins with prefix
// (followed by nothing, white space or a comment).
func containsLineStart(text, prefix string) bool {
	for _, l := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(l, prefix)
		if ok && (rest == "" || strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
			return true
		}
	}
	return false
}
