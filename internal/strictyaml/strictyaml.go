package strictyaml

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a mistake in a document: where it is and what is wrong. Callers
// convert it into their own public error type.
type Error struct {
	File         string
	Line, Column int    // 1-based; 0 when the mistake has no place (an empty file)
	Path         string // dotted key path, e.g. "columns.vin.method"; "" for the document
	Msg          string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", loc, e.Line, e.Column)
	}
	if e.Path == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Path + ": " + e.Msg
}

// Pos is a line and column in a document, 1-based.
type Pos struct{ Line, Column int }

// Positions maps dotted key paths to where they stood: the key for a
// mapping entry, the value for a list element or the document root ("").
type Positions map[string]Pos

// Near returns the position of path or, when path was not written (a
// default, a key the author left out), of its nearest written parent key,
// so an error about it still points at a line. The document root does not
// count as a parent: ok is false when no key on the way was written.
func (p Positions) Near(path string) (pos Pos, ok bool) {
	for q := path; q != ""; {
		if pos, ok := p[q]; ok {
			return pos, true
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	return Pos{}, false
}

// Decoder fills Go values from a yaml.Node tree. Make one per document.
type Decoder struct {
	// File names the document in errors.
	File string
	// Doc says in words what the document is ("policy"), for messages
	// about the whole document ("empty policy").
	Doc string
	// Custom, when not nil, is asked first for every value, after the
	// checks every node gets (anchors, tags) and after its position is
	// recorded. It returns done = true when it decoded v itself (or
	// failed to). Types whose YAML shape is not a plain struct, or
	// scalars with their own syntax (durations), are decoded here.
	Custom func(d *Decoder, n *yaml.Node, v reflect.Value, path string) (done bool, err error)

	pos Positions
}

// Unmarshal decodes the one YAML document in src into out, a pointer, and
// returns where each key stood. Errors are *[Error].
func (d *Decoder) Unmarshal(src []byte, out any) (Positions, error) {
	// yaml.Unmarshal would read the first document and ignore the rest: a
	// second document after "---" must not pass unread.
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc, more yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, syntaxError(d.File, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: d.File, Msg: "empty " + d.Doc}
	}
	if err := dec.Decode(&more); err != io.EOF {
		if err != nil {
			return nil, syntaxError(d.File, err)
		}
		return nil, &Error{File: d.File, Line: more.Line, Column: more.Column, Msg: "want exactly one YAML document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: d.File, Msg: "want exactly one YAML document"}
	}
	d.pos = Positions{}
	if err := d.Decode(doc.Content[0], reflect.ValueOf(out).Elem(), ""); err != nil {
		return nil, err
	}
	return d.pos, nil
}

// syntaxError keeps yaml.v3's "line N: ..." and adds the file.
func syntaxError(file string, err error) error {
	return &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// Errorf returns an *[Error] at n for the key path.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) error {
	return &Error{File: d.File, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Record notes that path stood at n, unless it was recorded already.
func (d *Decoder) Record(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = Pos{n.Line, n.Column}
	}
}

// JoinPath appends a mapping key to a dotted path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// IsNull reports whether n is an explicit null ("~", "null", or nothing).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// KindName describes n for messages: "a mapping", "a list" or the quoted scalar.
func KindName(n *yaml.Node) string {
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

// Decode fills v, which must be settable, from n; path is n's dotted key path.
func (d *Decoder) Decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		// Aliases make a file hard to audit and allow exponential expansion.
		return d.Errorf(n, path, "YAML anchors and aliases are not allowed in a %s", d.Doc)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return d.Errorf(n, path, "custom YAML tag %q is not allowed", n.Tag)
	}
	d.Record(path, n)
	if d.Custom != nil {
		if done, err := d.Custom(d, n, v, path); done {
			return err
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if IsNull(n) {
			return nil
		}
		nv := reflect.New(v.Type().Elem())
		if err := d.Decode(n, nv.Elem(), path); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.Errorf(n, path, "want a list, got %s", KindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.Decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		return d.decodeMap(n, v, path)
	}
	return d.decodeScalar(n, v, path)
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, path, "want a mapping, got %s", KindName(n))
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
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
			return d.Errorf(k, path, "keys must be plain strings")
		}
		kp := JoinPath(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			// Deny by default: a key we do not know may be a typo of a
			// protection the author meant to switch on.
			return d.Errorf(k, kp, "unknown key %q (known here: %s)", k.Value, strings.Join(names, ", "))
		}
		if seen[k.Value] {
			return d.Errorf(k, kp, "duplicate key %q", k.Value)
		}
		seen[k.Value] = true
		d.Record(kp, k)
		if err := d.Decode(val, v.Field(idx), kp); err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, path, "want a mapping, got %s", KindName(n))
	}
	if v.Type().Key().Kind() != reflect.String {
		return d.Errorf(n, path, "internal: map key must be a string")
	}
	m := reflect.MakeMap(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return d.Errorf(k, path, "keys must be plain strings")
		}
		kp := JoinPath(path, k.Value)
		if seen[k.Value] {
			return d.Errorf(k, kp, "duplicate key %q", k.Value)
		}
		seen[k.Value] = true
		ev := reflect.New(v.Type().Elem()).Elem()
		d.Record(kp, k)
		if err := d.Decode(val, ev, kp); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
	}
	v.Set(m)
	return nil
}

func (d *Decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return d.Errorf(n, path, "want a single value, got %s", KindName(n))
	}
	switch v.Kind() {
	case reflect.String:
		if n.ShortTag() != "!!str" {
			return d.Errorf(n, path, "want a string, got %s (quote it if you mean the text)", n.Value)
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.ShortTag() != "!!bool" {
			return d.Errorf(n, path, "want true or false, got %q", n.Value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int64
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			return d.Errorf(n, path, "want an integer, got %q", n.Value)
		}
		if v.OverflowInt(i) {
			return d.Errorf(n, path, "integer %q out of range", n.Value)
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if t := n.ShortTag(); (t != "!!float" && t != "!!int") || n.Decode(&f) != nil {
			return d.Errorf(n, path, "want a number, got %q", n.Value)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return d.Errorf(n, path, "want a finite number, got %q", n.Value)
		}
		v.SetFloat(f)
	default:
		return d.Errorf(n, path, "internal: cannot decode into %s", v.Type())
	}
	return nil
}
