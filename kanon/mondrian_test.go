package kanon

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestMondrianAdult(t *testing.T) {
	dir := adultDir(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tbl := readAdult(t, mem, dir)
	defer tbl.Release()
	ctx := context.Background()
	// age is numeric in Adult; education-num is not in this extract, so
	// partition on age alone and with k large enough to force ranges.
	for _, k := range []int{5, 100, 1000} {
		rdr := array.NewTableReader(tbl, 7000)
		m, err := Mondrian(ctx, rdr, MondrianOptions{QuasiIdentifiers: []string{"age"}, K: k})
		rdr.Release()
		if err != nil {
			t.Fatal(err)
		}
		if m.MinPartitionSize() < int64(k) {
			t.Fatalf("k=%d: smallest partition %d", k, m.MinPartitionSize())
		}
		// Apply and verify independently.
		rdr = array.NewTableReader(tbl, 7000)
		var outs []arrow.RecordBatch
		for rdr.Next() {
			out, err := m.Apply(ctx, rdr.RecordBatch(), mem)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, out)
		}
		rdr.Release()
		vr, _ := array.NewRecordReader(outs[0].Schema(), outs)
		rep, err := Verify(ctx, vr, VerifyOptions{QuasiIdentifiers: []string{"age"}, K: k})
		vr.Release()
		for _, o := range outs {
			o.Release()
		}
		if err != nil || !rep.OK() || rep.Classes != m.Partitions() || rep.Rows != 30162 {
			t.Fatalf("k=%d: verify %+v, %v; partitions %d", k, rep, err, m.Partitions())
		}
		t.Logf("k=%d: %d partitions", k, m.Partitions())
	}
}

func TestMondrianSmall(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := batchOf(t, mem, map[string][]string{"x": {"1", "2", "3", "4", "10", "11", "12", "13"}, "y": {"5", "5", "6", "6", "1", "1", "2", "2"}}, []string{"x", "y"}, nil)
	defer b.Release()
	rdr, _ := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
	m, err := Mondrian(context.Background(), rdr, MondrianOptions{QuasiIdentifiers: []string{"x", "y"}, K: 2})
	rdr.Release()
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Apply(context.Background(), b, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	var got []string
	for i := range int(out.NumRows()) {
		got = append(got, out.Column(0).ValueStr(i)+"/"+out.Column(1).ValueStr(i))
	}
	want := "1-2/5 1-2/5 3-4/6 3-4/6 10-11/1 10-11/1 12-13/2 12-13/2"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	rdr, _ = array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
	defer rdr.Release()
	if _, err := Mondrian(context.Background(), rdr, MondrianOptions{QuasiIdentifiers: []string{"x"}, K: 9}); err == nil {
		t.Error("k > rows accepted")
	}
}
