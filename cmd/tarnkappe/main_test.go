package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run the CLI in-process as the "tarnkappe" command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"tarnkappe": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
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
	})
}
