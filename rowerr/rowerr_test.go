package rowerr_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/tarnkappe/tarnkappe/rowerr"
)

func TestErrorFormat(t *testing.T) {
	cause := errors.New("null value")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"row and column", rowerr.At(12, "vin", cause), `row 12, column "vin": null value`},
		{"row only", rowerr.At(3, "", cause), `row 3: null value`},
		{"column only", rowerr.At(0, "lat", cause), `column "lat": null value`},
		{"neither", rowerr.At(0, "", cause), `null value`},
		{"formatted", rowerr.Atf(1, "speed", "%g is out of range", 1e308), `row 1, column "speed": 1e+308 is out of range`},
		{"quoted column", rowerr.At(2, `a"b`, cause), `row 2, column "a\"b": null value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChainKept(t *testing.T) {
	err := fmt.Errorf("pass 1: %w", rowerr.Atf(7, "ts", "reading: %w", io.ErrUnexpectedEOF))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("errors.Is does not reach the cause through the location")
	}
	var re *rowerr.Error
	if !errors.As(err, &re) || re.Row != 7 || re.Column != "ts" {
		t.Errorf("errors.As = %+v, want row 7, column ts", re)
	}
}

func TestRow(t *testing.T) {
	if got := rowerr.Row(0, 0); got != 1 {
		t.Errorf("Row(0, 0) = %d, want 1", got)
	}
	if got := rowerr.Row(1000, 23); got != 1024 {
		t.Errorf("Row(1000, 23) = %d, want 1024", got)
	}
}

// A stage that reads a batch starting at stream offset base reports the
// value at index i as a data row counted from 1.
func ExampleAt() {
	var base int64 = 4096 // rows before this batch
	i := 9                // index inside the batch
	err := rowerr.At(rowerr.Row(base, i), "vin", errors.New("null subject"))
	fmt.Println(fmt.Errorf("opt-out: %w", err))
	// Output: opt-out: row 4106, column "vin": null subject
}
