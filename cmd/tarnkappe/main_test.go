package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run the CLI in-process as the "tarnkappe" command,
// and as "tarnkappe-paused", which stops at the step named by
// $TARNKAPPE_PAUSE_AT (see pauseAt) so that a script can signal a real
// process there.
func TestMain(m *testing.M) {
	if os.Getenv("TARNKAPPE_TEST_MAIN") != "" {
		// The test binary as the CLI, for tests that start it themselves.
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	testscript.Main(m, map[string]func(){
		"tarnkappe": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		"tarnkappe-paused": func() {
			ctx := context.WithValue(context.Background(), stepHookKey{}, pauseAt(os.Getenv("TARNKAPPE_PAUSE_AT")))
			os.Exit(runWith(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// pauseAt is a step hook that, at the step named, writes the process id to
// the file "paused" in the working directory and waits until the run is
// cancelled (a signal), a file "resume" appears, or two minutes pass.
func pauseAt(step string) func(context.Context, string) {
	return func(ctx context.Context, s string) {
		if s != step {
			return
		}
		if err := os.WriteFile("paused.tmp", []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			panic(err)
		}
		if err := os.Rename("paused.tmp", "paused"); err != nil {
			panic(err)
		}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case <-ctx.Done():
				return
			case <-deadline:
				return
			case <-tick.C:
				if _, err := os.Stat("resume"); err == nil {
					return
				}
			}
		}
	}
}

// TestScripts runs the CLI scripts in testdata/script: each file shows
// commands, their output and exit codes, the way a user would see them.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// Tests find shared data (the Adult extract) through this variable.
			if v := os.Getenv("TARNKAPPE_ADULT_DIR"); v != "" {
				env.Setenv("TARNKAPPE_ADULT_DIR", v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"paused": cmdPaused,
			"signal": cmdSignal,
			"only":   cmdOnly,
		},
	})
}

// cmdPaused is "paused": it waits for the file "paused" that a
// tarnkappe-paused process writes at its step, removes it (so that the next
// pause can be waited for) and keeps the process id for signal.
func cmdPaused(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: paused")
	}
	ts.Setenv("PAUSED_PID", waitPaused(ts))
}

func waitPaused(ts *testscript.TestScript) string {
	paused := ts.MkAbs("paused")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, err := os.ReadFile(paused); err == nil {
			os.Remove(paused)
			return string(b)
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no process paused within two minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cmdSignal is "signal TERM|INT|KILL": it waits for a tarnkappe-paused
// process to pause (as paused does) and sends it the signal.
func cmdSignal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: signal TERM|INT|KILL")
	}
	sig := map[string]syscall.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL}[args[0]]
	if sig == 0 {
		ts.Fatalf("unknown signal %s", args[0])
	}
	pid, err := strconv.Atoi(waitPaused(ts))
	if err != nil {
		ts.Fatalf("paused: %v", err)
	}
	p, err := os.FindProcess(pid)
	ts.Check(err)
	ts.Check(p.Signal(sig))
}

// cmdOnly is "only DIR [NAME...]": DIR holds exactly the NAMEs (hidden
// files included: temporary outputs are hidden), or is empty; "! only"
// holds when it does not.
func cmdOnly(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: only DIR [NAME...]")
	}
	ents, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := slices.Clone(args[1:])
	slices.Sort(want)
	if neg {
		if slices.Equal(got, want) {
			ts.Fatalf("%s holds exactly [%s]", filepath.Clean(args[0]), strings.Join(got, " "))
		}
		return
	}
	if !slices.Equal(got, want) {
		ts.Fatalf("%s holds [%s], want [%s]", filepath.Clean(args[0]), strings.Join(got, " "), strings.Join(want, " "))
	}
}
