package anonymize

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tarnkappe/tarnkappe/internal/strictyaml"
)

// Position is a place in a policy file, for error messages.
type Position struct {
	File   string
	Line   int
	Column int
}

func (p Position) String() string {
	f := p.File
	if f == "" {
		f = "policy"
	}
	if p.Line == 0 {
		return f
	}
	return fmt.Sprintf("%s:%d:%d", f, p.Line, p.Column)
}

// PolicyError is an error in a policy file. It names the file, line and
// column, and the dotted path of the offending key. When a file the policy
// names is at fault (a hierarchy, say), Err is the cause, so errors.Is
// reaches sentinels such as kanon.ErrBadHierarchy.
type PolicyError struct {
	Pos  Position
	Path string // dotted key path, e.g. "columns.vin.method"
	Msg  string
	Err  error // the cause, or nil
}

// Unwrap returns the cause, or nil.
func (e *PolicyError) Unwrap() error { return e.Err }

func (e *PolicyError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Path, e.Msg)
}

// Duration is a time.Duration written in a policy as "15m", "1h", "90s".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as Go duration syntax, for reports.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// nodeDecoder is implemented by policy types whose YAML shape is not a plain
// struct (the ordered column mapping, scalar shorthands).
type nodeDecoder interface {
	decodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) error
}

var (
	durationType    = reflect.TypeFor[Duration]()
	nodeDecoderType = reflect.TypeFor[nodeDecoder]()
)

// decodePolicyTypes is the strict decoder's hook for the policy's own
// shapes: types that decode themselves (nodeDecoder) and durations.
func decodePolicyTypes(d *strictyaml.Decoder, n *yaml.Node, v reflect.Value, path string) (bool, error) {
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		return true, v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
	}
	if v.Type() != durationType {
		return false, nil
	}
	if n.Kind != yaml.ScalarNode {
		return true, d.Errorf(n, path, "want a single value, got %s", strictyaml.KindName(n))
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil || dur <= 0 {
		return true, d.Errorf(n, path, "want a positive duration like \"15m\" or \"1h\", got %q", n.Value)
	}
	v.SetInt(int64(dur))
	return true, nil
}

// parseYAML decodes src into out strictly (package strictyaml). file names
// the source in errors, which are *PolicyError.
func parseYAML(file string, src []byte, out any) (strictyaml.Positions, error) {
	d := &strictyaml.Decoder{File: file, Doc: "policy", Custom: decodePolicyTypes}
	pos, err := d.Unmarshal(src, out)
	if se := (*strictyaml.Error)(nil); errors.As(err, &se) {
		return nil, &PolicyError{Pos: Position{File: se.File, Line: se.Line, Column: se.Column}, Path: se.Path, Msg: se.Msg}
	}
	return pos, err
}

func reflectElem(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
