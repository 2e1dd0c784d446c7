package main

import (
	"math"
	"strings"
	"testing"
)

func TestParseBounded(t *testing.T) {
	for _, c := range []struct {
		in     string
		col    string
		lo, hi float64
		ok     bool
	}{
		{"temp:0:100", "temp", 0, 100, true},
		{"a:b:-1.5:2e3", "a:b", -1.5, 2000, true},
		{"temp:0", "", 0, 0, false},
		{":0:1", "", 0, 0, false},
		{"temp:x:1", "", 0, 0, false},
	} {
		col, lo, hi, err := parseBounded("mean", c.in)
		if (err == nil) != c.ok || c.ok && (col != c.col || lo != c.lo || hi != c.hi) {
			t.Errorf("parseBounded(%q) = %q %v %v %v", c.in, col, lo, hi, err)
		}
	}
}

// FuzzParseBounded: any flag value parses or fails with an error naming
// the flag; never a panic. NaN/Inf bounds that parse are rejected later by
// dp's checks.
func FuzzParseBounded(f *testing.F) {
	for _, s := range []string{"temp:0:100", "a:b:c", "x:NaN:Inf", ":::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		col, lo, hi, err := parseBounded("sum", s)
		if err != nil {
			if !strings.Contains(err.Error(), "--sum") {
				t.Errorf("error %q does not name the flag", err)
			}
			return
		}
		if col == "" || (math.IsNaN(lo) && !strings.Contains(strings.ToLower(s), "nan")) {
			t.Errorf("parseBounded(%q) = %q %v %v", s, col, lo, hi)
		}
	})
}
