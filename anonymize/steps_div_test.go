package anonymize

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
)

// TestStepsDiversity: the l/t part of the Steps seam an engine uses. A
// subject with two values fails at the first row (in input order, whatever
// order the combinations arrive in) that has the second; a settle round's
// decision names the classes failing l; the output check fails on a written
// class without diversity and fills the report otherwise (the report
// builder, Steps.Report, runs it).
func TestStepsDiversity(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := writePolicy(t, fmt.Sprintf(divPolicy, "  l: {sensitive: owner_sex, l: 2, variant: distinct}\n"))
	r, err := NewRunner(Options{Policy: p, Keyring: newKeyring(t), Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := brakedisc.DefaultConfig()
	cfg.Vehicles, cfg.Rows = 2, 10
	src, err := brakedisc.NewReader(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	schema := src.Schema()
	src.Release()
	st, err := r.Steps(schema)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s := st.KAnonSensitive(); s != "owner_sex" {
		t.Fatalf("sensitive column %q", s)
	}

	v := func(y string) []string { return []string{y, "80331", "1960"} }
	_, err = st.KAnonSearch([]KAnonCombo{
		{Values: v("2010"), Subject: "a", Sensitive: "F", File: 1, Row: 5, Origin: "input y"},
		{Values: v("2011"), Subject: "a", Sensitive: "M", File: 0, Row: 9, Origin: "input x"},
		{Values: v("2012"), Subject: "a", Sensitive: "F", File: 0, Row: 3, Origin: "input x"},
	})
	if err == nil || !strings.Contains(err.Error(), `input x: kanon: row 9, column "owner_sex": the subject of this row has another value`) {
		t.Fatalf("two values: %v", err)
	}

	d := &KAnonDecision{DiversitySuppressed: 3, Before: []int64{10}}
	bad := []KAnonMember{{Class: "x\x00", Sensitive: "F", N: 5}}
	good := []KAnonMember{{Class: "y\x00", Sensitive: "F", N: 3}, {Class: "y\x00", Sensitive: "M", N: 2}}
	fails, err := st.KAnonDiversityFails(d, append(append([]KAnonMember(nil), good...), bad...))
	if err != nil || !reflect.DeepEqual(fails, []string{"x\x00"}) {
		t.Fatalf("settle decision: %q, %v", fails, err)
	}
	// The output check is the report builder's.
	figures := func(members []KAnonMember, sizes ...int64) *Figures {
		return &Figures{Tool: "test", Started: time.Now(), InputOrder: "as is", Rows: RowFigures{In: 10, Out: 10},
			KAnon: &KAnonFigures{Decision: d, Sizes: sizes, Members: members}}
	}
	if _, err := st.Report(figures(append(bad, good...), 5, 5)); err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Fatalf("a written class without diversity: %v", err)
	}
	rep, err := st.Report(figures(good, 5))
	if err != nil {
		t.Fatal(err)
	}
	if k := rep.KAnon; k.LDiversity == nil || k.LDiversity.L != 2 || k.SensitiveCounted != "subjects" || k.DiversitySuppressedClasses != 3 {
		t.Fatalf("report %+v", *k)
	}
}
