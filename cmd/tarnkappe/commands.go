package main

import "github.com/spf13/cobra"

// subcommands lists every subcommand. Each lives in its own cmd_<name>.go.
func subcommands() []*cobra.Command {
	return []*cobra.Command{
		newVersionCmd(),
		newGenCmd(),
		newKeygenCmd(),
		newRevealCmd(),
		newRunCmd(),
		newDemoCmd(),
		newAggregateCmd(),
		newKanonCmd(),
		newVerifyCmd(),
		newRiskCmd(),
		newFingerprintCmd(),
		newPoolCmd(),
	}
}
