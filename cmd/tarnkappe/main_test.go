package main

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tarnkappe/tarnkappe/arrowio"
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
			"paused":  cmdPaused,
			"signal":  cmdSignal,
			"only":    cmdOnly,
			"shuffle": cmdShuffle,
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

// cmdShuffle is "shuffle IN OUT": OUT holds IN's rows in a fixed random
// order (input any order must handle); OUT ending in .arrows is an Arrow
// IPC stream (stdin's format), else any format arrowio writes.
func cmdShuffle(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: shuffle IN OUT")
	}
	ctx := context.Background()
	src, err := arrowio.Open(ctx, ts.MkAbs(args[0]), arrowio.OpenOptions{})
	ts.Check(err)
	defer src.Close()
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for src.Next() {
		rec := src.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	ts.Check(src.Err())
	tab := array.NewTableFromRecords(src.Schema(), recs)
	defer tab.Release()
	perm := shufflePerm(tab.NumRows())
	defer perm.Release()
	all, err := compute.Take(ctx, *compute.DefaultTakeOptions(), compute.NewDatumWithoutOwning(tab), compute.NewDatumWithoutOwning(perm))
	ts.Check(err)
	defer all.Release()
	out := all.(*compute.TableDatum).Value
	rd := array.NewTableReader(out, 4096)
	defer rd.Release()
	if strings.HasSuffix(args[1], ".arrows") {
		// An Arrow IPC stream, what the CLI reads on stdin.
		f, err := os.Create(ts.MkAbs(args[1]))
		ts.Check(err)
		defer f.Close()
		w := ipc.NewWriter(f, ipc.WithSchema(out.Schema()))
		for rd.Next() {
			ts.Check(w.Write(rd.RecordBatch()))
		}
		ts.Check(w.Close())
		return
	}
	sink, err := arrowio.Create(ts.MkAbs(args[1]), out.Schema(), arrowio.CreateOptions{})
	ts.Check(err)
	for rd.Next() {
		if err := sink.Write(rd.RecordBatch()); err != nil {
			sink.Abort()
			ts.Fatalf("shuffle: %v", err)
		}
	}
	ts.Check(sink.Commit())
}

func shufflePerm(n int64) arrow.Array {
	perm := make([]int64, n)
	for i := range perm {
		perm[i] = int64(i)
	}
	rng := rand.New(rand.NewPCG(12, 7))
	rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(perm, nil)
	return b.NewArray()
}
