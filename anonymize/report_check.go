package anonymize

import (
	"fmt"
	"strconv"
	"strings"
)

// What a written file alone can confirm of the run's k
// (KAnonReport.OutputCheck).
const (
	// OutputCheckRows: the run counted rows; verify without --subject
	// counts the same.
	OutputCheckRows = "rows"
	// OutputCheckSubject: the run counted subjects and the subject column
	// is written, kept or under a pseudonym (one per subject): verify
	// --subject counts the same, on the file alone.
	OutputCheckSubject = "subject"
	// OutputCheckNotWritten: the run counted subjects but the subject
	// column is not written (dropped; under mobility scope trip a random id
	// per trip replaces it). The file shows rows per class, never fewer
	// than subjects: verify confirms only that no class has fewer than k
	// rows, and k in subjects rests on the run's own check (Verified).
	OutputCheckNotWritten = "subject_not_written"
)

// outputCheck tells a checker of the written file what it can confirm and
// how: the report's kanon.subject, kanon.output_check and
// kanon.verify_command. From the policy alone, so both engines agree.
func outputCheck(rep *Report, p *Policy) {
	k := rep.KAnon
	if k == nil || p.KAnon == nil {
		return
	}
	k.OutputCheck = OutputCheckRows
	subjectFlag := ""
	if k.PerSubject {
		k.Subject = p.Subject
		k.OutputCheck = OutputCheckNotWritten
		if subjectWritten(p) {
			k.OutputCheck = OutputCheckSubject
			subjectFlag = " --subject " + shellWord(p.Subject)
		}
	}
	out := rep.Output
	if out == "" || out == "-" {
		out = "OUTPUT"
	}
	cmd := fmt.Sprintf("tarnkappe verify --in %s --qi %s --k %d%s", shellWord(out), shellWord(strings.Join(k.QuasiIdentifiers, ",")), k.K, subjectFlag)
	if l := p.KAnon.L; l != nil {
		cmd += fmt.Sprintf(" --sensitive %s --l %s --l-variant %s", shellWord(l.Sensitive), strconv.FormatFloat(l.L, 'g', -1, 64), shellWord(l.Variant))
		if l.Variant == "recursive" {
			cmd += " --c " + strconv.FormatFloat(l.C, 'g', -1, 64)
		}
	}
	k.VerifyCommand = cmd
}

// subjectWritten reports whether the written file holds the subject column
// with one value per subject: kept, or pseudonymised (HMAC, AES-SIV and FF1
// are deterministic and one-to-one). Masked, generalised or coarsened
// values merge subjects; a dropped column is not there.
func subjectWritten(p *Policy) bool {
	if m := p.Mobility; m != nil && m.Scope == "trip" {
		return false
	}
	for _, c := range p.Columns {
		if c.Name == p.Subject {
			return c.Action == ActionKeep || c.Action == ActionPseudonymize
		}
	}
	return false
}

// shellWord quotes s for a POSIX shell when it needs quoting.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ',' || r == ':' || r == '=' || r == '+' ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
