package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/kanon"
	"github.com/tarnkappe/tarnkappe/rowerr"
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
// An error without a hint of its own gets one from its chain (causeHint).
func reportError(w io.Writer, err error) int {
	code, hint := exitBadInput, ""
	var ce *cliError
	if errors.As(err, &ce) {
		code, hint = ce.code, ce.hint
	}
	if hint == "" {
		hint = causeHint(err)
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

// causeHint is a hint for what the error's chain says went wrong, or "":
// the library keeps the chain (rowerr's location, the policy error's cause,
// kanon's sentinels), so the CLI can tell a malformed hierarchy from a
// value outside it and a row number from a line number.
func causeHint(err error) string {
	var pe *anonymize.PolicyError
	var re *rowerr.Error
	switch {
	case errors.Is(err, kanon.ErrBadHierarchy):
		return "the hierarchy file is malformed: every row needs a value for every level, and a value one parent per level"
	case errors.As(err, &pe) && pe.Err != nil:
		return "the file the policy names at " + pe.Path + " could not be used"
	case errors.Is(err, kanon.ErrValueNotInHierarchy):
		return "add the value to the column's hierarchy (or widen an interval hierarchy's min and max)"
	case errors.As(err, &re) && re.Row > 0:
		return "rows count data rows from 1 in input order; a CSV header is not a row"
	}
	return ""
}
