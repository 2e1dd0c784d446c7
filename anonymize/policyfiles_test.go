package anonymize

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestPolicyFiles: every file a policy reads is listed, resolved against
// the policy's folder as the Runner opens it (the CLI refuses outputs over
// them).
func TestPolicyFiles(t *testing.T) {
	p := writePolicy(t, `version: 1
subject: vin
keyring: keys.json
opt_out: {file: optout.txt, form: clear, domain: optout}
columns:
  vin: drop
  model_year: {generalize: {hierarchy: {type: table, file: years.csv}, level: 1}}
  postcode: generalize
kanon:
  quasi_identifiers: [postcode]
  k: 2
  suppression: 0.1
  metric: loss
  hierarchies:
    postcode: {type: table, file: /abs/postcodes.csv}
`)
	dir := filepath.Dir(p.File())
	var got []string
	for _, f := range p.Files() {
		got = append(got, f.Key+"="+f.Path)
	}
	want := []string{
		"keyring=" + filepath.Join(dir, "keys.json"),
		"opt_out.file=" + filepath.Join(dir, "optout.txt"),
		"columns.model_year.generalize.hierarchy.file=" + filepath.Join(dir, "years.csv"),
		"kanon.hierarchies.postcode.file=/abs/postcodes.csv",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Files:\n%v\nwant\n%v", got, want)
	}
}
