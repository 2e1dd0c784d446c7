package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunBadInput checks that bad input fails with exit code 2, a message
// naming the problem, and no output file left behind. (Truncating a file is
// not expressible in a testscript, hence a Go test.)
func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	policy := write("policy.yaml", `version: 1
subject: vin
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  speed: keep
`, 0o600)
	keys := write("keys.json", `{"format": "tarnkappe-keyring", "version": 1, "active": "155cc1d4",
  "keys": [{"id": "155cc1d4", "created": "2026-11-23T11:36:56Z", "key": "l+NrQVl7AgpAba99W7kT1Gtl4FT7ie5DpqbgIPdBss4="}]}`, 0o600)
	csv := write("in.csv", "vin,speed\nA,1\nB,2\nC,3\n", 0o600)
	good := filepath.Join(dir, "good.arrow")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "--policy", policy, "--keys", keys, "--in", csv, "--out", good}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("good run: exit %d: %s", code, stderr.String())
	}
	ipc, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := write("truncated.arrow", string(ipc[:len(ipc)*2/3]), 0o600)
	wrongType := write("wrongtype.csv", "vin,speed\n1.5,1\n2.5,2\n", 0o600)
	empty := write("empty.csv", "vin,speed\n", 0o600)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"truncated IPC", []string{"--in", truncated}, "truncated.arrow"},
		{"wrong type", []string{"--in", wrongType}, `column "vin" has type float64; action pseudonymize needs a string, binary or int64`},
		{"empty input", []string{"--in", empty}, "no rows"},
		{"missing input", []string{"--in", filepath.Join(dir, "nope.parquet")}, "nope.parquet"},
		{"missing keys", []string{"--in", csv, "--keys", filepath.Join(dir, "nokeys.json")}, "nokeys.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(tt.name, " ", "_")+".parquet")
			args := append([]string{"run", "--policy", policy, "--out", out}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--keys") {
				args = append(args, "--keys", keys)
			}
			var stdout, stderr bytes.Buffer
			code := run(args, nil, &stdout, &stderr)
			if code != exitBadInput {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitBadInput, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output %s exists after a failed run", out)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp") || strings.HasPrefix(e.Name(), ".out-") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
			if strings.Contains(stderr.String(), "l+NrQVl7") {
				t.Error("key material in the error output")
			}
		})
	}
}

// TestReportFilesPrivate: the JSON and HTML reports hold exact figures of
// the raw data, for the data owner only: mode 0600, and marked so.
func TestReportFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: 1\nsubject: vin\ncolumns:\n  vin: drop\n  speed: keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("vin,speed\nA,1\nB,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "--policy", policy, "--in", in, "--out", filepath.Join(dir, "out.csv"), "--report", report, "--html", html}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{report, html} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v: want 0600", f, err, st.Mode())
		}
	}
	b, _ := os.ReadFile(report)
	if !bytes.Contains(b, []byte(`"not_private": true`)) || !bytes.Contains(b, []byte("data owner only")) {
		t.Errorf("the report is not marked for the data owner:\n%s", b)
	}
	h, _ := os.ReadFile(html)
	if !bytes.Contains(h, []byte("For the data owner only")) {
		t.Error("the HTML report is not marked for the data owner")
	}
}
