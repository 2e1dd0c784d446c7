package anonymize

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// What a report says about its input, so that a privacy officer can check
// which data it belongs to, without it holding any value of the data.
//
// A plain hash of the input file would be a confirmation oracle: whoever
// holds a guess of the data (all rows but one person's, with that person's
// postcode or birth year to be guessed) could hash each candidate file and
// learn which one was the input. The fingerprint is therefore keyed: an
// HMAC-SHA256, under the keyring's key for the domain
// "tarnkappe/input-fingerprint", of the SHA-256 of the file's bytes. The
// data owner, who holds the keyring, recomputes it (FingerprintFiles,
// `tarnkappe fingerprint`); a reader of the report without the keys learns
// nothing from it and cannot test guesses. Without a keyring the report
// gives no fingerprint. The schema hash covers column names and types
// only, and the size is the file's length, as `ls -l` shows it.

// FingerprintDomain is the keyring domain of input fingerprints.
const FingerprintDomain = "tarnkappe/input-fingerprint"

// InputFileFigures describe the input file(s) of a run for its report.
type InputFileFigures struct {
	// Bytes is the files' total size.
	Bytes int64
	// Fingerprint is the keyed fingerprint (hex; see FingerprintFiles) and
	// KeyID the key it was made with; both "" without a keyring.
	Fingerprint, KeyID string
}

// FingerprintFiles reads the files and returns their total size and, when
// kr is not nil, their keyed fingerprint: the hex HMAC-SHA256, under the
// key for FingerprintDomain derived from kr's master key keyID ("" for the
// active one), of the SHA-256 of the file's bytes (of several files: of the
// SHA-256 of the concatenated SHA-256s of each, in order). It is what a
// run's report holds in input_details (made with the active key), for the
// data owner to check which file a report belongs to.
func FingerprintFiles(kr *pseudonym.Keyring, keyID string, paths ...string) (*InputFileFigures, error) {
	const fn = "anonymize.FingerprintFiles"
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no file", fn)
	}
	fig := &InputFileFigures{}
	var sums []byte
	for _, p := range paths {
		sum, n, err := sha256File(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		fig.Bytes += n
		sums = append(sums, sum...)
	}
	if kr == nil {
		return fig, nil
	}
	digest := sums
	if len(paths) > 1 {
		d := sha256.Sum256(sums)
		digest = d[:]
	}
	h, err := pseudonym.NewHMAC(kr, pseudonym.HMACOptions{Domain: FingerprintDomain, KeyID: keyID, Encoding: pseudonym.Hex, Bits: 256})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	defer h.Destroy()
	fig.Fingerprint, fig.KeyID = h.Pseudonym(digest), h.KeyID()
	return fig, nil
}

// sha256File returns the SHA-256 of a file's bytes and its length.
func sha256File(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var h hash.Hash = sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return h.Sum(nil), n, nil
}

// schemaSHA256 is the hex SHA-256 of the schema as text: a line per field,
// in order, with its name (quoted), its Arrow type and whether it is
// nullable — names and types, no value of the data.
func schemaSHA256(s *arrow.Schema) string {
	var b strings.Builder
	for _, f := range s.Fields() {
		b.WriteString(strconv.Quote(f.Name))
		b.WriteByte(' ')
		b.WriteString(f.Type.String())
		if f.Nullable {
			b.WriteString(" nullable")
		}
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}
