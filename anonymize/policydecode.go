package anonymize

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
	decodeNode(d *decoder, n *yaml.Node, path string) error
}

// decoder turns a yaml.Node tree into policy structs, strictly: unknown and
// duplicate keys, aliases, tags and wrong scalar types are errors with their
// position. It records the position of every key so that validation can point
// at the line that is wrong.
type decoder struct {
	file string
	pos  map[string]Position
}

func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) error {
	return &PolicyError{Pos: Position{File: d.file, Line: n.Line, Column: n.Column}, Path: path, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) record(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = Position{File: d.file, Line: n.Line, Column: n.Column}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType    = reflect.TypeFor[Duration]()
	nodeDecoderType = reflect.TypeFor[nodeDecoder]()
)

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		// Aliases make a policy hard to audit and allow exponential expansion.
		return d.errAt(n, path, "YAML anchors and aliases are not allowed in a policy")
	}
	if n.Tag != "" && strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return d.errAt(n, path, "custom YAML tag %q is not allowed", n.Tag)
	}
	d.record(path, n)
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		return v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			return nil
		}
		nv := reflect.New(v.Type().Elem())
		if err := d.decode(n, nv.Elem(), path); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errAt(n, path, "want a list, got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.errAt(n, path, "want a mapping, got %s", kindName(n))
		}
		if v.Type().Key().Kind() != reflect.String {
			return d.errAt(n, path, "internal: map key must be a string")
		}
		m := reflect.MakeMap(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return d.errAt(k, path, "keys must be plain strings")
			}
			if seen[k.Value] {
				return d.errAt(k, joinPath(path, k.Value), "duplicate key %q", k.Value)
			}
			seen[k.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			d.record(joinPath(path, k.Value), k)
			if err := d.decode(val, ev, joinPath(path, k.Value)); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
		return nil
	}
	return d.decodeScalar(n, v, path)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errAt(n, path, "want a mapping, got %s", kindName(n))
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return d.errAt(k, path, "keys must be plain strings")
		}
		kp := joinPath(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			// Deny by default: a key we do not know may be a typo of a
			// protection the author meant to switch on.
			return d.errAt(k, kp, "unknown key %q (known here: %s)", k.Value, strings.Join(names, ", "))
		}
		if seen[k.Value] {
			return d.errAt(k, kp, "duplicate key %q", k.Value)
		}
		seen[k.Value] = true
		d.record(kp, k)
		if err := d.decode(val, v.Field(idx), kp); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return d.errAt(n, path, "want a single value, got %s", kindName(n))
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur <= 0 {
			return d.errAt(n, path, "want a positive duration like \"15m\" or \"1h\", got %q", n.Value)
		}
		v.SetInt(int64(dur))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		if n.ShortTag() != "!!str" {
			return d.errAt(n, path, "want a string, got %s (quote it if you mean the text)", n.Value)
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.ShortTag() != "!!bool" {
			return d.errAt(n, path, "want true or false, got %q", n.Value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.ShortTag() != "!!int" {
			return d.errAt(n, path, "want an integer, got %q", n.Value)
		}
		var i int64
		if err := n.Decode(&i); err != nil {
			return d.errAt(n, path, "want an integer, got %q", n.Value)
		}
		if v.OverflowInt(i) {
			return d.errAt(n, path, "integer %q out of range", n.Value)
		}
		v.SetInt(i)
	case reflect.Float64:
		if t := n.ShortTag(); t != "!!float" && t != "!!int" {
			return d.errAt(n, path, "want a number, got %q", n.Value)
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return d.errAt(n, path, "want a number, got %q", n.Value)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return d.errAt(n, path, "want a finite number, got %q", n.Value)
		}
		v.SetFloat(f)
	default:
		return d.errAt(n, path, "internal: cannot decode into %s", v.Type())
	}
	return nil
}

// parseYAML decodes src into out strictly. file names the source in errors.
func parseYAML(file string, src []byte, out any) (map[string]Position, error) {
	d := &decoder{file: file, pos: map[string]Position{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		// yaml.v3 syntax errors say "yaml: line N: ..."; keep them and add the file.
		return nil, &PolicyError{Pos: Position{File: file}, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &PolicyError{Pos: Position{File: file}, Msg: "empty policy"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &PolicyError{Pos: Position{File: file}, Msg: "want exactly one YAML document"}
	}
	if err := d.decode(doc.Content[0], reflect.ValueOf(out).Elem(), ""); err != nil {
		return nil, err
	}
	return d.pos, nil
}

func reflectElem(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
