package h3_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBuildWithoutCgo builds the CLI with cgo off, as on a machine without
// a C compiler: the build must fail with the sentence in nocgo.go, not with
// h3-go's "build constraints exclude all Go files". It also fails if any
// package other than this one imports h3-go (the go command would stop at
// h3-go first).
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a go build")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", os.DevNull, "github.com/tarnkappe/tarnkappe/cmd/tarnkappe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the CLI built with CGO_ENABLED=0; H3 needs cgo")
	}
	msg := string(out)
	if strings.Contains(msg, "build constraints exclude") || !strings.Contains(msg, "tarnkappe needs cgo and a C compiler") {
		t.Fatalf("go build with CGO_ENABLED=0 said:\n%s\nwant the message of internal/h3/nocgo.go", msg)
	}
}
