package strictyaml

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type inner struct {
	Lower float64 `yaml:"lower"`
	Upper float64 `yaml:"upper,omitempty"`
}

type doc struct {
	Version int               `yaml:"version"`
	Name    string            `yaml:"name"`
	On      bool              `yaml:"on"`
	Small   int32             `yaml:"small"`
	Items   []inner           `yaml:"items"`
	Opt     *inner            `yaml:"opt"`
	Tags    map[string]string `yaml:"tags"`
	Skip    string            `yaml:"-"`
	Ch      chan int          `yaml:"ch"`
}

// TestUnmarshal: each mistake is an *Error at the right place and key path;
// a good document fills every kind of field.
func TestUnmarshal(t *testing.T) {
	cases := []struct {
		name, src string
		want      string // the whole error message; "" for success
	}{
		{"all kinds", "version: 1\nname: fleet\non: true\nsmall: 7\nitems:\n  - {lower: 1, upper: 2.5}\nopt: {lower: -1}\ntags: {a: b}\n", ""},
		{"null pointer", "opt: ~\n", ""},
		{"empty", "", "f.yaml: empty thing"},
		{"two documents", "version: 1\n---\nversion: 2\n", "f.yaml:2:1: want exactly one YAML document"},
		{"empty second document", "version: 1\n---\n", "f.yaml:2:1: want exactly one YAML document"},
		{"syntax in second document", "version: 1\n---\nversion: [1\n", "f.yaml: line 2: did not find expected ',' or ']'"},
		{"only a comment", "# nothing\n", "f.yaml: empty thing"},
		{"syntax", "version: [1\n", "f.yaml: line 1: did not find expected ',' or ']'"},
		{"not a mapping", "- a\n", `f.yaml:1:1: want a mapping, got a list`},
		{"unknown key", "colour: red\n", `f.yaml:1:1: colour: unknown key "colour" (known here: version, name, on, small, items, opt, tags, ch)`},
		{"ignored field is unknown", "Skip: x\n", `f.yaml:1:1: Skip: unknown key "Skip" (known here: version, name, on, small, items, opt, tags, ch)`},
		{"duplicate key", "name: a\nname: b\n", `f.yaml:2:1: name: duplicate key "name"`},
		{"duplicate map key", "tags: {a: b, a: c}\n", `f.yaml:1:14: tags.a: duplicate key "a"`},
		{"non-scalar key", "{a: 1}: x\n", `f.yaml:1:1: keys must be plain strings`},
		{"anchor", "name: &n fleet\n", "f.yaml:1:7: name: YAML anchors and aliases are not allowed in a thing"},
		{"alias", "items:\n  - &i {lower: 1}\n  - *i\n", "f.yaml:2:5: items[0]: YAML anchors and aliases are not allowed in a thing"},
		{"custom tag", "name: !secret x\n", `f.yaml:1:7: name: custom YAML tag "!secret" is not allowed`},
		{"number as string", "name: 12\n", "f.yaml:1:7: name: want a string, got 12 (quote it if you mean the text)"},
		{"bool", "on: yes\n", `f.yaml:1:5: on: want true or false, got "yes"`},
		{"float as int", "version: 1.5\n", `f.yaml:1:10: version: want an integer, got "1.5"`},
		{"int32 overflow", "small: 4294967296\n", `f.yaml:1:8: small: integer "4294967296" out of range`},
		{"word as number", "items: [{lower: one}]\n", `f.yaml:1:17: items[0].lower: want a number, got "one"`},
		{"nan", "items: [{lower: .nan}]\n", `f.yaml:1:17: items[0].lower: want a finite number, got ".nan"`},
		{"infinity", "opt: {upper: -.inf}\n", `f.yaml:1:14: opt.upper: want a finite number, got "-.inf"`},
		{"list for scalar", "name: [a]\n", `f.yaml:1:7: name: want a single value, got a list`},
		{"scalar for list", "items: a\n", `f.yaml:1:8: items: want a list, got "a"`},
		{"scalar for map", "tags: a\n", `f.yaml:1:7: tags: want a mapping, got "a"`},
		{"unsupported kind", "ch: 1\n", "f.yaml:1:5: ch: internal: cannot decode into chan int"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out doc
			d := &Decoder{File: "f.yaml", Doc: "thing"}
			pos, err := d.Unmarshal([]byte(c.src), &out)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if pos == nil {
					t.Fatal("no positions")
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			if err.Error() != c.want {
				t.Fatalf("got  %s\nwant %s", err, c.want)
			}
		})
	}
}

func TestUnmarshalFills(t *testing.T) {
	var out doc
	d := &Decoder{File: "f.yaml", Doc: "thing"}
	_, err := d.Unmarshal([]byte("version: 1\nname: fleet\non: true\nsmall: -7\nitems:\n  - {lower: 1, upper: 2.5}\nopt: {lower: -1}\ntags: {a: b}\n"), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := doc{Version: 1, Name: "fleet", On: true, Small: -7, Items: []inner{{1, 2.5}}, Opt: &inner{Lower: -1}, Tags: map[string]string{"a": "b"}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %+v, want %+v", out, want)
	}
}

// TestPositions: keys are recorded where the key stands, list elements
// where the element does; Near falls back to the nearest written parent
// key but never to the document root.
func TestPositions(t *testing.T) {
	var out doc
	d := &Decoder{File: "f.yaml", Doc: "thing"}
	pos, err := d.Unmarshal([]byte("name: x\nitems:\n  - lower: 1\n    upper: 2\n"), &out)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		want Pos
		ok   bool
	}{
		{"name", Pos{1, 1}, true},
		{"items", Pos{2, 1}, true},
		{"items[0]", Pos{3, 5}, true},
		{"items[0].upper", Pos{4, 5}, true},
		{"items[0].upper.x", Pos{4, 5}, true}, // not written: its parent
		{"items[3]", Pos{2, 1}, true},
		{"version", Pos{}, false}, // a missing top-level key has no line
		{"", Pos{}, false},
	}
	for _, c := range cases {
		got, ok := pos.Near(c.path)
		if got != c.want || ok != c.ok {
			t.Errorf("Near(%q) = %v, %v; want %v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
	if root, ok := pos[""]; !ok || root != (Pos{1, 1}) {
		t.Errorf("root recorded at %v, %v", root, ok)
	}
}

// TestCustom: the hook sees every value first and may take it over.
func TestCustom(t *testing.T) {
	var out doc
	d := &Decoder{File: "f.yaml", Doc: "thing", Custom: func(d *Decoder, n *yaml.Node, v reflect.Value, path string) (bool, error) {
		if path != "name" {
			return false, nil
		}
		if n.Value == "bad" {
			return true, d.Errorf(n, path, "not a good name")
		}
		v.SetString(strings.ToUpper(n.Value))
		return true, nil
	}}
	if _, err := d.Unmarshal([]byte("name: fleet\nversion: 1\n"), &out); err != nil || out.Name != "FLEET" || out.Version != 1 {
		t.Fatalf("got %+v, %v", out, err)
	}
	_, err := d.Unmarshal([]byte("name: bad\n"), &out)
	if err == nil || err.Error() != "f.yaml:1:7: name: not a good name" {
		t.Fatalf("got %v", err)
	}
	// The checks every node gets come before the hook.
	if _, err := d.Unmarshal([]byte("name: &a x\n"), &out); err == nil || !strings.Contains(err.Error(), "anchors") {
		t.Fatalf("got %v", err)
	}
}

// FuzzUnmarshal: no input panics; every error is an *Error naming the file;
// an accepted document has no NaN or infinity.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte("version: 1\nname: fleet\non: true\nsmall: 7\nitems:\n  - {lower: 1, upper: 2.5}\nopt: {lower: -1}\ntags: {a: b}\n"))
	f.Add([]byte("items:\n  - &i {lower: 1}\n  - *i\n"))
	f.Add([]byte("name: !secret x\nopt: ~\n"))
	f.Add([]byte("small: 4294967296\nitems: [{lower: .nan}]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		var out doc
		d := &Decoder{File: "fuzz.yaml", Doc: "thing"}
		pos, err := d.Unmarshal(src, &out)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %v (%T) is not an *Error naming the file", err, err)
			}
			if pos != nil {
				t.Fatal("positions returned with an error")
			}
			return
		}
		for _, it := range out.Items {
			if it.Lower != it.Lower || it.Upper != it.Upper {
				t.Fatal("NaN accepted")
			}
		}
		for p, at := range pos {
			if at.Line < 1 || at.Column < 1 {
				t.Fatalf("path %q recorded at %v", p, at)
			}
		}
	})
}
