package pool

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
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

// strictDecoder fills structs from a yaml.Node tree strictly: unknown and
// duplicate keys, anchors, aliases, custom tags and wrong scalar types are
// errors with their position. It records where every key is, so validation
// can point at the offending line.
type strictDecoder struct {
	file string
	pos  map[string][2]int
}

func (d *strictDecoder) errAt(n *yaml.Node, path, format string, args ...any) error {
	return &ConfigError{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *strictDecoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return d.errAt(n, path, "YAML anchors and aliases are not allowed")
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return d.errAt(n, path, "custom YAML tag %q is not allowed", n.Tag)
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = [2]int{n.Line, n.Column}
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.errAt(n, path, "want a mapping, got %s", nodeKind(n))
		}
		t := v.Type()
		fields := map[string]int{}
		var names []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = i
				names = append(names, name)
			}
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
				// Deny by default: an unknown key may be a typo of a setting
				// the author meant to make.
				return d.errAt(k, kp, "unknown key %q (known here: %s)", k.Value, strings.Join(names, ", "))
			}
			if seen[k.Value] {
				return d.errAt(k, kp, "duplicate key %q", k.Value)
			}
			seen[k.Value] = true
			d.pos[kp] = [2]int{k.Line, k.Column}
			if err := d.decode(val, v.Field(idx), kp); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errAt(n, path, "want a list, got %s", nodeKind(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errAt(n, path, "want a single value, got %s", nodeKind(n))
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
	case reflect.Int, reflect.Int64:
		var i int64
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			return d.errAt(n, path, "want an integer, got %q", n.Value)
		}
		if v.OverflowInt(i) {
			return d.errAt(n, path, "integer %q out of range", n.Value)
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if t := n.ShortTag(); (t != "!!float" && t != "!!int") || n.Decode(&f) != nil {
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

func nodeKind(n *yaml.Node) string {
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

// parseStrict decodes one YAML document into out (a pointer to a struct)
// and returns where each key was.
func parseStrict(file string, src []byte, out any) (map[string][2]int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, &ConfigError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ConfigError{File: file, Msg: "empty configuration"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &ConfigError{File: file, Msg: "want exactly one YAML document"}
	}
	d := &strictDecoder{file: file, pos: map[string][2]int{}}
	if err := d.decode(doc.Content[0], reflect.ValueOf(out).Elem(), ""); err != nil {
		return nil, err
	}
	return d.pos, nil
}
