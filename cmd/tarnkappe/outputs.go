package main

import (
	"errors"
	"fmt"

	"github.com/tarnkappe/tarnkappe/arrowio"
)

// checkPaths refuses outputs that are one of a command's inputs or one
// another (arrowio.CheckPaths), as a usage error: every command that writes
// files checks this before it reads anything.
func checkPaths(inputs, outputs []arrowio.Named) error {
	if err := arrowio.CheckPaths(inputs, outputs); err != nil {
		return usageError(err, "give every output a path of its own, apart from the files the command reads")
	}
	return nil
}

// claimOutput checks and claims the output flag name at path before any
// work (arrowio.CreateFile: its folder exists, it is no folder, and no other
// process writes it; the claim is a locked temporary file beside it).
// format requires a data format known by extension. It returns nil for
// "-" (standard output, written by a Sink without a File).
func claimOutput(name, path string, format bool) (*arrowio.File, error) {
	if format && path != "-" && arrowio.FormatOf(path) == arrowio.FormatUnknown {
		return nil, usageError(fmt.Errorf("%s %s: %w", name, path, arrowio.ErrUnknownFormat), "")
	}
	if path == "-" {
		return nil, nil
	}
	file, err := arrowio.CreateFile(path)
	if err != nil {
		hint := "the folder must exist and be writable"
		if errors.Is(err, arrowio.ErrOutputBusy) {
			hint = "another tarnkappe run writes the same output; wait for it or choose another path"
		}
		return nil, usageError(fmt.Errorf("%s %w", name, err), hint)
	}
	return file, nil
}
