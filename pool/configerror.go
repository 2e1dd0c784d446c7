package pool

import (
	"errors"
	"fmt"

	"github.com/tarnkappe/tarnkappe/internal/strictyaml"
)

// ConfigError is an error in a pool configuration file, naming the file,
// line and column and the dotted path of the offending key, as policy errors
// do (anonymize.PolicyError).
type ConfigError struct {
	File         string
	Line, Column int
	Path         string // dotted key path, e.g. "release.aggregates[1].lower"
	Msg          string
}

func (e *ConfigError) Error() string {
	loc := e.File
	if loc == "" {
		loc = "pool config"
	}
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", loc, e.Line, e.Column)
	}
	if e.Path == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Path + ": " + e.Msg
}

// parseStrict decodes one YAML document into out (a pointer to a struct)
// strictly (package strictyaml) and returns where each key was.
func parseStrict(file string, src []byte, out any) (strictyaml.Positions, error) {
	d := &strictyaml.Decoder{File: file, Doc: "configuration"}
	pos, err := d.Unmarshal(src, out)
	if se := (*strictyaml.Error)(nil); errors.As(err, &se) {
		return nil, &ConfigError{File: se.File, Line: se.Line, Column: se.Column, Path: se.Path, Msg: se.Msg}
	}
	return pos, err
}
