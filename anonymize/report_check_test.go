package anonymize

import (
	"strings"
	"testing"
)

// TestOutputCheck: the report tells a checker what the written file can
// confirm, from the policy: the subject column written one-to-one
// (pseudonymised; in clear the policy refuses it) lets verify --subject count as the run did; dropped,
// masked, or replaced per trip it does not.
func TestOutputCheck(t *testing.T) {
	const kanonBlock = `
kanon:
  quasi_identifiers: [model_year]
  k: 3
  suppression: 0.1
  metric: loss
  hierarchies:
    model_year: {type: interval, width: 5, fan_out: 2, height: 2, origin: 2000, min: 1990, max: 2030}
`
	for _, c := range []struct {
		name, vin, extra string // extra: more of the kanon block
		want, cmd        string
	}{
		{"hmac", "{pseudonymize: {method: hmac, domain: vin}}", "", OutputCheckSubject, "tarnkappe verify --in 'my out.csv' --qi model_year --k 3 --subject vin"},
		{"ff1", "{pseudonymize: {method: ff1, domain: vin}}", "", OutputCheckSubject, "--k 3 --subject vin"},
		{"dropped", "drop", "", OutputCheckNotWritten, "tarnkappe verify --in 'my out.csv' --qi model_year --k 3"},
		{"masked", "{mask: {keep_prefix: 3}}", "", OutputCheckNotWritten, "--k 3"},
		{"rows", "{pseudonymize: {method: siv, domain: vin}}", "  per_subject: false\n", OutputCheckRows, "--k 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "version: 1\nsubject: vin\ncolumns:\n  vin: " + c.vin + "\n  model_year: generalize\n" + kanonBlock + c.extra
			p := writePolicy(t, src)
			rep := &Report{Output: "my out.csv", KAnon: &KAnonReport{K: 3, QuasiIdentifiers: []string{"model_year"}, PerSubject: c.extra == ""}}
			outputCheck(rep, p)
			k := rep.KAnon
			if k.OutputCheck != c.want {
				t.Fatalf("output_check %q, want %q", k.OutputCheck, c.want)
			}
			if !strings.Contains(k.VerifyCommand, c.cmd) || (c.want != OutputCheckSubject && strings.Contains(k.VerifyCommand, "--subject")) {
				t.Fatalf("verify_command %q, want %q", k.VerifyCommand, c.cmd)
			}
			if c.want == OutputCheckRows && k.Subject != "" {
				t.Fatalf("subject %q for a run that counted rows", k.Subject)
			}
		})
	}
}
