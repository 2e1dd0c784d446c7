package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

func newRevealCmd() *cobra.Command {
	var keys, domain, method, keyID string
	var noCheckDigit bool
	cmd := &cobra.Command{
		Use:   "reveal --keys K --domain D [--method siv|ff1] VALUE... (or - to read values from stdin)",
		Short: "Trustee only: reverse reversible pseudonyms (AES-SIV or FF1)",
		Long: `reveal turns reversible pseudonyms back into the original values, one per line
on stdout, in the order given. It needs the keyring and the domain the
pseudonyms were made with.

--method siv (the default) reverses "reversible" pseudonyms ("<key id>-<base32>"):
the key id in front selects the key, so pseudonyms made before a key rotation
still reveal. A pseudonym that does not authenticate (wrong domain, wrong
keyring, altered) is an error.

--method ff1 decrypts FF1 VIN pseudonyms. FF1 output carries no key id: give
--key-id when the pseudonyms were made before the last rotation (the report of
the run that made them lists it).

WARNING: FF1 does not authenticate. With a wrong --keys, --domain or --key-id
it prints a plausible but wrong VIN instead of failing. reveal therefore checks
the check digit (position 9) of every revealed 17-character VIN: FF1 encrypts
all 17 characters, so the right key returns the original check digit, while a
wrong key passes the check only once in 33 times. VINs that never had a valid
check digit (many European VINs carry a filler such as 'Z' there) fail it even
with the right key: pass --no-check-digit for them, and nothing checks the key
or domain at all. Values of other lengths cannot be checked.

All values are checked before anything is printed: on any error stdout stays
empty. Use - as the only VALUE to read one pseudonym per line from stdin.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keys == "" || domain == "" {
				return usageError(errors.New("reveal: --keys and --domain are required"), "tarnkappe reveal --keys keys.json --domain brakedisc-pool/vin PSEUDONYM...")
			}
			if len(args) == 1 && args[0] == "-" {
				args = nil
				sc := bufio.NewScanner(cmd.InOrStdin())
				sc.Buffer(make([]byte, 64<<10), 1<<20)
				for sc.Scan() {
					if line := strings.TrimSpace(sc.Text()); line != "" {
						args = append(args, line)
					}
				}
				if err := sc.Err(); err != nil {
					return usageError(fmt.Errorf("reveal: reading stdin: %w", err), "")
				}
			}
			if len(args) == 0 {
				return usageError(errors.New("reveal: no values given"), "pass pseudonyms as arguments, or - to read them from stdin")
			}
			kr, err := pseudonym.LoadKeyring(keys)
			if err != nil {
				return keyringLoadError(err, keys)
			}
			defer kr.Destroy()
			var reveal func(string) (string, error)
			switch method {
			case "siv":
				if keyID != "" {
					return usageError(errors.New("reveal: --key-id is for --method ff1"), "AES-SIV pseudonyms carry their key id")
				}
				r, err := pseudonym.NewReversible(kr, pseudonym.ReversibleOptions{Domain: domain})
				if err != nil {
					return usageError(err, "")
				}
				defer r.Destroy()
				reveal = func(p string) (string, error) {
					v, err := r.Reveal(p)
					return string(v), err
				}
			case "ff1":
				f, err := pseudonym.NewFF1(kr, pseudonym.FF1Options{Domain: domain, KeyID: keyID})
				if err != nil {
					return usageError(err, "the key ids in the keyring: "+strings.Join(kr.KeyIDs(), ", "))
				}
				defer f.Destroy()
				reveal = f.Decrypt
			default:
				return usageError(fmt.Errorf("reveal: --method %q: want siv or ff1", method), "")
			}
			if noCheckDigit && method != "ff1" {
				return usageError(errors.New("reveal: --no-check-digit is for --method ff1"), "AES-SIV pseudonyms authenticate themselves")
			}
			out := make([]string, len(args))
			for i, p := range args {
				v, err := reveal(p)
				if err != nil {
					return usageError(fmt.Errorf("reveal: value %d: %w", i+1, err),
						"check --domain and --keys; pseudonyms reveal only with the keyring and domain they were made with")
				}
				// One value per line: a value with a line break would
				// break that contract, so it is refused rather than printed.
				if strings.ContainsAny(v, "\n\r") {
					return usageError(fmt.Errorf("reveal: value %d: the revealed value contains a line break", i+1), "")
				}
				out[i] = v
			}
			if method == "ff1" {
				if err := checkFF1Reveal(cmd.ErrOrStderr(), out, noCheckDigit); err != nil {
					return err
				}
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			for _, v := range out {
				w.WriteString(v)
				w.WriteByte('\n')
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keys, "keys", "", "keyring file (required)")
	fl.StringVar(&domain, "domain", "", "domain the pseudonyms were made for (required)")
	fl.StringVar(&method, "method", "siv", "siv (reversible pseudonyms) or ff1 (format-preserving VINs)")
	fl.StringVar(&keyID, "key-id", "", "for ff1: key id the values were encrypted with (default: the active key)")
	fl.BoolVar(&noCheckDigit, "no-check-digit", false, "for ff1: do not check revealed VINs' check digits (for VINs without valid ones; then nothing detects a wrong key or domain)")
	return cmd
}

// checkFF1Reveal checks FF1 reveals, which cannot authenticate, by the VIN
// check digit, and says on stderr what was and was not checked. A revealed
// 17-character VIN with a wrong check digit is an error: the keyring,
// domain or key id is almost certainly not the one the value was made
// with (see pseudonym.ValidVINCheckDigit).
func checkFF1Reveal(stderr io.Writer, revealed []string, skip bool) error {
	if skip {
		fmt.Fprintln(stderr, "tarnkappe: warning: --no-check-digit: nothing checked that --keys, --domain and --key-id are the ones these values were made with; FF1 reveals plausible wrong VINs with a wrong one")
		return nil
	}
	unchecked := 0
	for i, v := range revealed {
		if len(v) != 17 {
			unchecked++
			continue
		}
		if !pseudonym.ValidVINCheckDigit(v) {
			return usageError(fmt.Errorf("reveal: value %d: the revealed VIN has a wrong check digit: --keys, --domain or --key-id is not the one it was made with (FF1 itself cannot tell)", i+1),
				"check the keyring, domain and key id against the report of the run; if the original VINs have no valid check digits (European fillers such as 'Z'), pass --no-check-digit")
		}
	}
	if checked := len(revealed) - unchecked; checked > 0 {
		fmt.Fprintf(stderr, "tarnkappe: warning: FF1 does not authenticate; the check digits of the %d revealed VINs are right, which a wrong keyring, domain or key id gives with probability 1 in 33^%d\n", checked, checked)
	}
	if unchecked > 0 {
		fmt.Fprintf(stderr, "tarnkappe: warning: %d of %d values are not 17-character VINs: nothing checked their key and domain; FF1 reveals plausible wrong values with a wrong one\n", unchecked, len(revealed))
	}
	return nil
}
