package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
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

// TestPolicyOptionsMatchRunner: the options --plan and the verdict derive
// from a policy's release block are the Runner's own (anonymize.Steps), on
// the example policy, so the plan predicts the release the run makes.
func TestPolicyOptionsMatchRunner(t *testing.T) {
	p, err := anonymize.LoadPolicy(filepath.Join("..", "..", "examples", "brakedisc", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := policyOptions(p)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := pseudonym.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Destroy()
	p.OptOut = nil // the demo writes its opt-out list at run time
	r, err := anonymize.NewRunner(anonymize.Options{Policy: p, Keyring: kr, Release: func(*arrow.Schema) (anonymize.Sink, error) { return discardSink{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	steps, err := r.Steps(brakedisc.Schema())
	if err != nil {
		t.Fatal(err)
	}
	defer steps.Close()
	want, err := steps.DPOptions()
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != want.Subject || !slices.Equal(got.GroupBy, want.GroupBy) || got.MaxPartitions != want.MaxPartitions ||
		got.MaxPerPartition != want.MaxPerPartition || got.Noise != want.Noise || got.Confidence != want.Confidence ||
		!reflect.DeepEqual(got.Aggregates, want.Aggregates) || (got.Public == nil) != (want.Public == nil) || got.Selection != want.Selection {
		t.Errorf("plan options %+v\nRunner's %+v", got, want)
	}
}

// TestExactCountsStayPrivate: exact counts of the input (rows, subjects,
// drops) differ between neighbouring inputs, so they must not reach
// stdout, stderr or the --report file, which may be published with the
// release; they go only to --exact-report, mode 0600, marked not private.
// The input is built so that every exact figure is a distinctive number
// (>= 100) that cannot occur in the published output by chance; the
// report's fields are checked against the publishable set, so a new field
// has to be judged before it ships.
func TestExactCountsStayPrivate(t *testing.T) {
	dir := t.TempDir()
	var data strings.Builder
	data.WriteString("vin,seg,temp\n")
	for v := range 347 {
		for r := range 1 + v%4 { // 1-4 rows in a: some over L∞ = 2
			fmt.Fprintf(&data, "V%04d,a,%d\n", v, 20+(v+r)%60)
		}
		fmt.Fprintf(&data, "V%04d,b,%d\n", v, 30+v%50)
		if v%3 == 0 { // a third part: over L0 = 2
			fmt.Fprintf(&data, "V%04d,c,%d\n", v, 40+v%30)
		}
		if v%2 == 0 { // not in the public list
			fmt.Fprintf(&data, "V%04d,z,%d\n", v, 50)
		}
	}
	in, segs := filepath.Join(dir, "in.csv"), filepath.Join(dir, "segs.csv")
	os.WriteFile(in, []byte(data.String()), 0o600)
	os.WriteFile(segs, []byte("seg\na\nb\nc\nempty\n"), 0o600)
	report, exact := filepath.Join(dir, "report.json"), filepath.Join(dir, "exact.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"aggregate", "--in", in, "--out", filepath.Join(dir, "out.csv"), "--subject", "vin", "--by", "seg",
		"--count", "--sum", "temp:0:100", "--mean", "temp:0:100", "--epsilon", "1", "--max-partitions", "2", "--max-per-partition", "2",
		"--public-partitions", segs, "--report", report, "--exact-report", exact}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	st, err := os.Stat(exact)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("exact report %v, mode %v: want 0600", err, st.Mode())
	}
	var ex struct {
		NotPrivate bool     `json:"not_private"`
		Rows       dp.Stats `json:"rows"`
	}
	b, _ := os.ReadFile(exact)
	if err := json.Unmarshal(b, &ex); err != nil || !ex.NotPrivate {
		t.Fatalf("exact report not marked not private: %v %s", err, b)
	}
	s := ex.Rows
	figures := map[string]int64{"rows_in": s.RowsIn, "rows_used": s.RowsUsed, "rows_not_public": s.RowsNotPublic,
		"rows_dropped_l0": s.RowsDroppedL0, "rows_dropped_linf": s.RowsDroppedLInf, "subjects": s.Subjects, "pairs_dropped_l0": s.PairsDroppedL0}
	pub, _ := os.ReadFile(report)
	for name, v := range figures {
		if v < 100 {
			t.Fatalf("test input: exact %s = %d is not distinctive", name, v)
		}
		token := regexp.MustCompile(`(^|[^0-9.])` + strconv.FormatInt(v, 10) + `([^0-9.]|$)`)
		for where, text := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "report": string(pub)} {
			if token.MatchString(text) {
				t.Errorf("exact %s (%d) appears in %s:\n%s", name, v, where, text)
			}
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(pub, &fields); err != nil {
		t.Fatal(err)
	}
	publishable := map[string]bool{"release": true, "guarantee": true, "subject": true, "by": true, "partitions_released": true, "selection": true,
		"budget": true, "noise": true, "confidence": true, "aggregates": true, "divided_by_count": true, "verdict": true}
	for k := range fields {
		if !publishable[k] {
			t.Errorf("report field %q is not in the publishable set: is it derived from the release alone?", k)
		}
	}
	// Without --exact-report, no exact counts are written anywhere.
	os.Remove(exact)
	stderr.Reset()
	run([]string{"aggregate", "--in", in, "--out", filepath.Join(dir, "out2.csv"), "--subject", "vin", "--by", "seg", "--count",
		"--epsilon", "1", "--max-partitions", "2", "--max-per-partition", "2", "--public-partitions", segs}, strings.NewReader(""), &stdout, &stderr)
	if _, err := os.Stat(exact); err == nil || strings.Contains(stderr.String(), strconv.FormatInt(s.RowsIn, 10)) {
		t.Errorf("exact counts written without --exact-report: %s", stderr.String())
	}
}

// FuzzParseSubjects: any --subjects value parses to positive counts or
// fails with an error naming the flag; never a panic.
func FuzzParseSubjects(f *testing.F) {
	for _, s := range []string{"10,30,100", "1", "0", "-5", "1,,2", " 7 , 8", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := parseSubjects(s)
		if err != nil {
			if !strings.Contains(err.Error(), "--subjects") {
				t.Errorf("error %q does not name the flag", err)
			}
			return
		}
		if len(ns) == 0 {
			t.Errorf("parseSubjects(%q) returned nothing without an error", s)
		}
		for _, n := range ns {
			if n < 1 {
				t.Errorf("parseSubjects(%q) = %v: not positive", s, ns)
			}
		}
	})
}
