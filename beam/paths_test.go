package beam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidatePaths: Config.Validate refuses, before any pipeline runs,
// outputs that would overwrite an input or one another, or that cannot be
// written (issue #13 item 8), as the tarnkappe CLI does.
func TestValidatePaths(t *testing.T) {
	f := newDemoFixture(t, 20, 500, 256)
	if err := os.Symlink("fleet.parquet", filepath.Join(f.dir, "link.parquet")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"output is the input", func(c *Config) { c.Output = c.Inputs[0] }, "Output " + f.input + " is the same file as Inputs"},
		{"output links to the input", func(c *Config) { c.Output = filepath.Join(f.dir, "link.parquet") }, "is the same file as Inputs"},
		{"report over the keyring", func(c *Config) { c.Report = c.Keys }, "Report " + f.keys + " is the same file as Keys"},
		{"report over the opt-out list", func(c *Config) { c.Report = filepath.Join(f.dir, "optout.txt") }, "the policy's opt_out.file"},
		{"release is the output", func(c *Config) { c.ReleaseOutput = c.Output }, "ReleaseOutput " + f.cfg.Output + " is the same file as Output"},
		{"missing folder", func(c *Config) { c.Output = filepath.Join(f.dir, "no", "out.parquet") }, "does not exist"},
		{"unknown format", func(c *Config) { c.ReleaseOutput = filepath.Join(f.dir, "rel.xlsx") }, "unknown file format"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := f.cfg
			cfg.Inputs = []string{f.input}
			c.mod(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate: %v, want %q", err, c.want)
			}
		})
	}
}
