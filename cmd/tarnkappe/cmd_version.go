package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the tarnkappe version (as --version does)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "tarnkappe %s\n", anonymize.Version())
			return nil
		},
	}
}
