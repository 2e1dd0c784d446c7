package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

func newFingerprintCmd() *cobra.Command {
	var keys, keyID string
	c := &cobra.Command{
		Use:   "fingerprint --keys K [--key-id ID] FILE...",
		Short: "Recompute the keyed input fingerprint a run report holds",
		Long: `fingerprint prints the keyed fingerprint of FILE (of several files, in order)
as a run's report holds it in input_details.fingerprint, so that whoever holds
the keyring can check which input a report belongs to.

The fingerprint is an HMAC-SHA256 of the file's SHA-256 under a key derived
from the keyring (domain tarnkappe/input-fingerprint), not a plain hash: a plain
hash of the data would let anyone who can guess the data (all rows but one
person's, say) confirm the guess from the report. Use --key-id with the
report's input_details.fingerprint_key_id when the keyring was rotated since.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if keys == "" {
				return usageError(errors.New("fingerprint: --keys is required"), "the fingerprint is keyed; pass the keyring the run used")
			}
			kr, err := pseudonym.LoadKeyring(keys)
			if err != nil {
				return keyringLoadError(err, keys)
			}
			defer kr.Destroy()
			fig, err := anonymize.FingerprintFiles(kr, keyID, files...)
			if err != nil {
				return usageError(err, "")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", fig.Fingerprint)
			fmt.Fprintf(cmd.ErrOrStderr(), "tarnkappe: fingerprint: key %s, %d bytes\n", fig.KeyID, fig.Bytes)
			return nil
		},
	}
	c.Flags().StringVar(&keys, "keys", "", "keyring file the run used")
	c.Flags().StringVar(&keyID, "key-id", "", "master key id (default: the keyring's active key)")
	return c
}
