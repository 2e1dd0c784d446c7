package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

func newKeygenCmd() *cobra.Command {
	var out string
	var force, rotate bool
	cmd := &cobra.Command{
		Use:   "keygen --out FILE [--force | --rotate]",
		Short: "Create a keyring file (0600) for pseudonyms, or rotate its key",
		Long: `keygen writes a new keyring: a random 256-bit master key from the operating
system's generator, named by a public key id, in a JSON file with mode 0600.
Per-domain keys for HMAC, AES-SIV, FF1 and date shifts are derived from it.

It never replaces an existing file unless --force is given (the old keys, and
with them the ability to reveal old pseudonyms, are then lost). --rotate instead
adds a new active key to an existing keyring and keeps the old ones, so that
pseudonyms made before the rotation can still be revealed.

The key id goes to stderr; the key itself is only ever in the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError(errors.New("keygen: --out is required"), "tarnkappe keygen --out keys.json")
			}
			if out == "-" {
				return usageError(errors.New("keygen: --out must be a file, not stdout"), "keys never go to stdout; name a file")
			}
			if force && rotate {
				return usageError(errors.New("keygen: --force and --rotate exclude each other"), "")
			}
			stderr := cmd.ErrOrStderr()
			if rotate {
				kr, err := pseudonym.LoadKeyring(out)
				if err != nil {
					return keyringLoadError(err, out)
				}
				defer kr.Destroy()
				old := kr.ActiveKeyID()
				id, err := kr.Rotate()
				if err != nil {
					return err
				}
				if err := kr.WriteFile(out, true); err != nil {
					return err
				}
				fmt.Fprintf(stderr, "tarnkappe: rotated keyring %s: active key id %s (previous %s kept, %d keys)\n", out, id, old, len(kr.KeyIDs()))
				return nil
			}
			kr, err := pseudonym.NewKeyring()
			if err != nil {
				return err
			}
			defer kr.Destroy()
			if err := kr.WriteFile(out, force); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return usageError(err, "use --rotate to add a key to it, or --force to replace it (its keys are then lost)")
				}
				return usageError(err, "")
			}
			fmt.Fprintf(stderr, "tarnkappe: wrote keyring %s (mode 0600): key id %s\n", out, kr.ActiveKeyID())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "keyring file to write (required)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing keyring (its keys are lost)")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "add a new active key to an existing keyring, keeping the old keys")
	return cmd
}

// keyringLoadError turns a keyring load failure into a usage error with a hint.
func keyringLoadError(err error, path string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageError(err, "create one with 'tarnkappe keygen --out "+path+"'")
	case errors.Is(err, pseudonym.ErrInsecureKeyring):
		return usageError(err, "chmod 600 "+path)
	case errors.Is(err, pseudonym.ErrCorruptKeyring):
		return usageError(err, "the keyring file is damaged; restore it from a backup")
	}
	return usageError(err, "")
}
