package anonymize

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func laneBatch(mem memory.Allocator, v int64) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Append(v)
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 1)
}

// TestBatchLane: the lane does its work in order; after an error it drops
// what it is still sent, send and finish report the error, and every batch
// is released (the checked allocator ends at zero).
func TestBatchLane(t *testing.T) {
	for _, tc := range []struct {
		name   string
		failAt int64 // 0: never
	}{{"all", 0}, {"fails at 3", 3}, {"fails at 1", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			boom := errors.New("boom")
			var seen []int64
			l := startBatchLane(func(rec arrow.RecordBatch) error {
				v := rec.Column(0).(*array.Int64).Value(0)
				seen = append(seen, v)
				if v == tc.failAt {
					return boom
				}
				return nil
			})
			var sendErr error
			for v := int64(1); v <= 10; v++ {
				rec := laneBatch(mem, v)
				err := l.send(context.Background(), rec)
				rec.Release()
				if err != nil && sendErr == nil {
					sendErr = err
				}
			}
			err := l.finish()
			if again := l.finish(); again != err {
				t.Errorf("second finish = %v, first %v", again, err)
			}
			if tc.failAt == 0 {
				if err != nil || sendErr != nil {
					t.Fatalf("finish %v, send %v", err, sendErr)
				}
				if len(seen) != 10 {
					t.Fatalf("worked on %v", seen)
				}
				for i, v := range seen {
					if v != int64(i+1) {
						t.Fatalf("out of order: %v", seen)
					}
				}
				return
			}
			if !errors.Is(err, boom) {
				t.Fatalf("finish = %v, want boom", err)
			}
			if sendErr != nil && !errors.Is(sendErr, boom) {
				t.Fatalf("send = %v, want boom", sendErr)
			}
			if seen[len(seen)-1] != tc.failAt {
				t.Errorf("worked on %v after failing at %d", seen, tc.failAt)
			}
		})
	}
}

// TestBatchLaneCancelled: a send blocked on a busy lane returns the
// context's cause.
func TestBatchLaneCancelled(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	release := make(chan struct{})
	l := startBatchLane(func(arrow.RecordBatch) error { <-release; return nil })
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := errors.New("stopped")
	var err error
	for v := int64(1); v <= 3 && err == nil; v++ { // the lane holds one, the channel one
		if v == 3 {
			cancel(stop)
		}
		rec := laneBatch(mem, v)
		err = l.send(ctx, rec)
		rec.Release()
	}
	if !errors.Is(err, stop) {
		t.Errorf("send = %v, want the cause", err)
	}
	close(release)
	if err := l.finish(); err != nil {
		t.Errorf("finish = %v", err)
	}
}
