package beam

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// iter returns a side-input iterator over vals.
func iter[T any](vals ...T) func(*T) bool {
	i := 0
	return func(v *T) bool {
		if i == len(vals) {
			return false
		}
		*v = vals[i]
		i++
		return true
	}
}

// TestSettleDecide: a round adds its thin groups (observed below k, and
// those left empty by class suppression) as one more cell suppression only
// when some group was observed thin, adds the classes that fell below k,
// and the state is final once a round adds nothing; a final state passes
// through later rounds unchanged.
func TestSettleDecide(t *testing.T) {
	start, _ := json.Marshal(SettleState{Suppressed: []string{"c0"}})
	round := func(state []byte, groups []Below, classes []Below) SettleState {
		t.Helper()
		var out []byte
		err := (&settleDecideFn{}).ProcessElement(context.Background(), nil, iter[[]byte](), iter(state), iter(groups...), iter(classes...), iter[HistEntry](), func(b []byte) { out = b })
		if err != nil {
			t.Fatal(err)
		}
		var s SettleState
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1 := round(start, []Below{{Key: "g1", N: 3}, {Key: "g2", N: 0}}, []Below{{Key: "c1", N: 4}, {Key: "c0", N: 2}})
	want := SettleState{Drop: [][]string{{"g1", "g2"}}, Suppressed: []string{"c0", "c1"}, Rounds: 1, Cells: 1, Classes: 1}
	if !reflect.DeepEqual(s1, want) {
		t.Fatalf("round 1: %+v, want %+v", s1, want)
	}
	b1, _ := json.Marshal(s1)
	// Only an empty group (all its rows in suppressed classes): no new
	// suppressor, as on one machine; a new class keeps the rounds going.
	s2 := round(b1, []Below{{Key: "g3", N: 0}}, []Below{{Key: "c2", N: 1}})
	if len(s2.Drop) != 1 || s2.Classes != 2 || s2.Done || s2.Rounds != 2 {
		t.Fatalf("round 2: %+v", s2)
	}
	b2, _ := json.Marshal(s2)
	s3 := round(b2, nil, nil)
	if !s3.Done || s3.Rounds != 3 {
		t.Fatalf("round 3: %+v", s3)
	}
	b3, _ := json.Marshal(s3)
	if s4 := round(b3, []Below{{Key: "x", N: 1}}, nil); !reflect.DeepEqual(s4, s3) {
		t.Fatalf("a final state changed: %+v", s4)
	}
}

// TestCheckSettled: an unsettled state and a suppression above the limit
// fail the job, as on one machine.
func TestCheckSettled(t *testing.T) {
	p, err := anonymize.ParsePolicy("policy.yaml", brakedisc.AttributesPolicy())
	if err != nil {
		t.Fatal(err)
	}
	d := &anonymize.KAnonDecision{Classes: map[string]int64{"a": 3, "b": 40}, HistRows: 100}
	for _, tc := range []struct {
		st   SettleState
		want string
	}{
		{SettleState{Done: false}, "did not settle"},
		{SettleState{Done: true, Classes: 1, Suppressed: []string{"a", "b"}}, "above the limit 5"},
		{SettleState{Done: true, Classes: 1, Suppressed: []string{"a"}}, ""},
	} {
		err := checkSettled(p, d, &tc.st)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.st, err, tc.want)
		}
	}
}

// TestCapSet: the capped union decides "fewer than K" whatever the order.
func TestCapSet(t *testing.T) {
	f := capSetFn{K: 3}
	a := f.merge(CapSet{S: []string{"x", "y"}, N: 2}, CapSet{S: []string{"y"}, N: 5})
	if !reflect.DeepEqual(a, CapSet{S: []string{"x", "y"}, N: 7}) {
		t.Fatalf("merge: %+v", a)
	}
	b := f.merge(a, CapSet{S: []string{"a", "z"}, N: 1})
	if len(b.S) != 3 || b.N != 8 {
		t.Fatalf("capped merge: %+v", b)
	}
	if c := f.merge(b, CapSet{S: []string{"q"}}); len(c.S) != 3 {
		t.Fatalf("a full set stays full: %+v", c)
	}
}

// TestSettleDecideDiversity: with an l block a round also suppresses the
// classes whose surviving members fail l-diversity (the Runner's decision,
// anonymize.Steps.KAnonDiversityFails), counts them apart, and never adds a
// class twice; classes below k are added by the k check first.
func TestSettleDecideDiversity(t *testing.T) {
	f := newDemoFixture(t, 20, 500, 256)
	f.withPolicyEdits(t, [2]string{"  k: 10\n", "  k: 10\n  l: {sensitive: make, l: 3, variant: distinct}\n"})
	dec, _ := json.Marshal(anonymize.KAnonDecision{})
	start, _ := json.Marshal(SettleState{Suppressed: []string{"c0\x00"}})
	member := func(class, make string, n int64) HistEntry {
		return HistEntry{Key: string(appendField(appendField(nil, class), make)), N: n}
	}
	members := []HistEntry{
		member("a\x00", "BMW", 12),                                                      // one make: fails l
		member("b\x00", "BMW", 4), member("b\x00", "VW", 3), member("b\x00", "Audi", 3), // three makes: passes
		member("c\x00", "BMW", 2), member("c\x00", "VW", 2), member("c\x00", "Audi", 1), // below k: the k check's
		member("c0\x00", "BMW", 20), // already suppressed
	}
	var out []byte
	err := (&settleDecideFn{Cfg: f.cfg}).ProcessElement(context.Background(), nil, iter(dec), iter(start), iter[Below](),
		iter(Below{Key: "c\x00", N: 5}), iter(members...), func(b []byte) { out = b })
	if err != nil {
		t.Fatal(err)
	}
	var s SettleState
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	want := SettleState{Suppressed: []string{"a\x00", "c\x00", "c0\x00"}, Rounds: 1, Classes: 2, DivClasses: 1}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("round: %+v, want %+v", s, want)
	}
}
