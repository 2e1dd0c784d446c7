package anonymize

import (
	"context"
	"slices"
	"testing"
)

// TestRowKeys: ids written batch by batch come back in order through scan
// (in chunks, twice: it rewinds) and through the lockstep reader, with and
// without the sensitive ids.
func TestRowKeys(t *testing.T) {
	for _, withSens := range []bool{false, true} {
		for _, n := range []int{0, 1, rowKeyChunk - 1, rowKeyChunk + 7, 3*rowKeyChunk + 1} {
			k, err := newRowKeys(t.TempDir(), withSens)
			if err != nil {
				t.Fatal(err)
			}
			var subj, group, combo, sens []uint32
			for i := range n {
				subj, group, combo = append(subj, uint32(i)), append(group, uint32(7*i+1)), append(combo, ^uint32(i))
				if withSens {
					sens = append(sens, uint32(3*i+2))
				}
			}
			if withSens {
				if err := k.write(subj, group, combo, nil); err == nil {
					t.Fatal("write without sensitive ids to a file with them succeeded")
				}
			}
			for lo := 0; lo < n; lo += 1000 {
				hi := min(n, lo+1000)
				var sb []uint32
				if withSens {
					sb = sens[lo:hi]
				}
				if err := k.write(subj[lo:hi], group[lo:hi], combo[lo:hi], sb); err != nil {
					t.Fatal(err)
				}
			}
			if err := k.finish(); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				var s, g, c, v []uint32
				if err := k.scan(context.Background(), func(a, b, d, e []uint32) error {
					s, g, c, v = append(s, a...), append(g, b...), append(c, d...), append(v, e...)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(s, subj) || !slices.Equal(g, group) || !slices.Equal(c, combo) || !slices.Equal(v, sens) {
					t.Fatalf("sens=%v n=%d: scan gave back different ids: %v %v %v %v", withSens, n, s, g, c, v)
				}
			}
			rd := k.reader()
			for lo := 0; lo < n; lo += 5000 {
				hi := min(n, lo+5000)
				s, g, c, v, err := rd.next(hi - lo)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(s, subj[lo:hi]) || !slices.Equal(g, group[lo:hi]) || !slices.Equal(c, combo[lo:hi]) || (withSens && !slices.Equal(v, sens[lo:hi])) {
					t.Fatalf("n=%d: reader rows %d-%d differ", n, lo, hi)
				}
			}
			if _, _, _, _, err := rd.next(1); err == nil {
				t.Fatalf("n=%d: reading past the end succeeded", n)
			}
			k.remove()
		}
	}
}
