package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	exitOK          = 0
	exitCheckFailed = 1 // verify found a violation
	exitBadInput    = 2 // bad usage, bad input, or any other failure
)

// cliError carries an exit code and an optional hint for the user, as age's
// errorWithHint does. Messages must never contain key material.
type cliError struct {
	code int
	err  error
	hint string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// usageError marks err as bad usage or bad input (exit 2), with a hint.
func usageError(err error, hint string) error {
	return &cliError{code: exitBadInput, err: err, hint: hint}
}

// checkFailed marks err as a failed check (exit 1), e.g. verify found classes
// smaller than k.
func checkFailed(err error) error {
	return &cliError{code: exitCheckFailed, err: err}
}

// reportError prints err as "tarnkappe: error: ..." (plus a hint line) and
// returns the exit code it maps to. Unclassified errors are bad input (2).
func reportError(w io.Writer, err error) int {
	code, hint := exitBadInput, ""
	var ce *cliError
	if errors.As(err, &ce) {
		code, hint = ce.code, ce.hint
	}
	msg := err.Error()
	if code == exitCheckFailed {
		fmt.Fprintf(w, "tarnkappe: check failed: %s\n", msg)
	} else {
		fmt.Fprintf(w, "tarnkappe: error: %s\n", msg)
	}
	if hint != "" {
		fmt.Fprintf(w, "tarnkappe: hint: %s\n", strings.TrimSpace(hint))
	}
	return code
}
