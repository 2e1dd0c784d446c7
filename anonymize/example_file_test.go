package anonymize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// anonymizeFile applies the policy in policyFile to the file in and writes
// the result to out (formats follow the extensions: .parquet, .arrow, .csv),
// with the keys in keysFile. README.md quotes it.
func anonymizeFile(ctx context.Context, policyFile, keysFile, in, out string) (*anonymize.Report, error) {
	p, err := anonymize.LoadPolicy(policyFile)
	if err != nil {
		return nil, err // names the file, line and column
	}
	kr, err := pseudonym.LoadKeyring(keysFile) // a 0600 file from `tarnkappe keygen`
	if err != nil {
		return nil, err
	}
	defer kr.Destroy() // zeroes the key bytes
	src, err := arrowio.Open(ctx, in, arrowio.OpenOptions{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Input: in, Output: out,
		// Rows may come in any order; some orders need a second reading.
		Reopen: func() (array.RecordReader, error) { return arrowio.Open(ctx, in, arrowio.OpenOptions{}) },
	})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The output goes to a temporary file, renamed to out only on success.
	return r.Run(ctx, src, func(schema *arrow.Schema) (anonymize.Sink, error) {
		return arrowio.Create(out, schema, arrowio.CreateOptions{})
	})
}

// Anonymise a CSV file with the README's policy (testdata/readme): eight
// vehicles, one of which opted out, k = 3 vehicles per class.
func ExampleRunner_Run_file() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		fmt.Println(err)
		return
	}
	keys := filepath.Join(dir, "keys.json")
	err = kr.WriteFile(keys, false)
	kr.Destroy()
	if err != nil {
		fmt.Println(err)
		return
	}
	out := filepath.Join(dir, "anonymized.csv")
	rep, err := anonymizeFile(context.Background(), "testdata/readme/policy.yaml", keys, "testdata/readme/fleet.csv", out)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rows: %d in = %d out + %d suppressed + %d filtered\n", rep.Rows.In, rep.Rows.Out, rep.Rows.Suppressed, rep.Rows.Filtered)
	fmt.Printf("k=%d, levels postcode %d, owner_birth_year %d, verified %v\n", rep.KAnon.K,
		rep.KAnon.Transformation["postcode"], rep.KAnon.Transformation["owner_birth_year"], rep.KAnon.Verified)
	data, err := os.ReadFile(out)
	if err != nil {
		fmt.Println(err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	fmt.Println(lines[0])
	// Rows come by published hour, in a random order within it (the output
	// order): the smallest row, not the first, is the same in every run.
	rows := make([]string, 0, len(lines)-1)
	for _, l := range lines[1:] {
		_, row, _ := strings.Cut(l, ",") // the VIN pseudonym depends on the key
		rows = append(rows, row)
	}
	slices.Sort(rows)
	fmt.Println("<pseudonym>," + rows[0])
	// Output:
	// rows: 24 in = 18 out + 3 suppressed + 3 filtered
	// k=3, levels postcode 1, owner_birth_year 1, verified true
	// vin,ts,speed_kmh,postcode,owner_birth_year
	// <pseudonym>,2026-03-02 07:00:00Z,30.5,8033*,1960-1964
}
