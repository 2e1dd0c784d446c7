package anonymize

import (
	"runtime/debug"
	"strings"
)

// modulePath is this module's path, looked up in the build information.
const modulePath = "github.com/tarnkappe/tarnkappe"

// Version says which build of Tarnkappe runs: the module version the
// program was built with ("v1.2.0"; "(devel)" when built from a checkout),
// followed, when the go command recorded it, by the commit and "modified"
// for a work tree with changes ("(devel) 8c1186d2a4f0 modified"). The
// report carries it, and `tarnkappe --version` prints it.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := ""
	switch {
	case bi.Main.Path == modulePath:
		v = bi.Main.Version
	default:
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				v = d.Version
				if d.Replace != nil {
					v += " => " + d.Replace.Path
					if d.Replace.Version != "" {
						v += " " + d.Replace.Version
					}
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if bi.Main.Path != modulePath {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "modified"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return strings.Join(strings.Fields(strings.Join([]string{v, rev, modified}, " ")), " ")
}
