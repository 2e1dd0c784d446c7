package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestSIGTERMMidPass sends SIGTERM to a real tarnkappe process while its
// first pass is writing the spill (no hook: the test watches the scratch
// folder grow), and checks that the process exits 2 saying so, with no
// output file and no scratch file left.
func TestSIGTERMMidPass(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 200,000 rows")
	}
	dir, tmp := t.TempDir(), t.TempDir()
	in := filepath.Join(dir, "fleet.parquet")
	var stderr bytes.Buffer
	if code := run([]string{"gen", "--out", in, "--rows", "200000", "--vehicles", "2000"}, nil, io.Discard, &stderr); code != 0 {
		t.Fatalf("gen: %s", &stderr)
	}
	if code := run([]string{"keygen", "--out", filepath.Join(dir, "keys.json")}, nil, io.Discard, &stderr); code != 0 {
		t.Fatalf("keygen: %s", &stderr)
	}
	for name, data := range map[string][]byte{"policy.yaml": brakedisc.DemoPolicy(), "optout.txt": nil} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "run", "--policy", filepath.Join(dir, "policy.yaml"), "--in", in,
		"--out", filepath.Join(out, "out.parquet"), "--report", filepath.Join(out, "r.json"), "--html", filepath.Join(out, "r.html"))
	cmd.Env = append(os.Environ(), "TARNKAPPE_TEST_MAIN=1", "TMPDIR="+tmp)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Pass 1 is under way once the spill in the run's scratch folder grows.
	deadline := time.Now().Add(2 * time.Minute)
	for spilled(tmp) < 1<<20 {
		select {
		case err := <-exited:
			t.Fatalf("the run ended before its spill grew: %v\n%s", err, &errOut)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no spill within two minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitBadInput {
		t.Fatalf("exit: %v, want status 2\n%s", err, &errOut)
	}
	if !strings.Contains(errOut.String(), "interrupted by SIGTERM: nothing was written") {
		t.Fatalf("stderr does not say so:\n%s", &errOut)
	}
	for _, d := range []string{out, tmp} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("%s holds %v after the signal", d, ents)
		}
	}
}

// spilled is the size of the files in the scratch folders under tmp.
func spilled(tmp string) int64 {
	var n int64
	m, _ := filepath.Glob(filepath.Join(tmp, "tarnkappe-run-*", "*"))
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
