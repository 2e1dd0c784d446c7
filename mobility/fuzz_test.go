package mobility

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzSegmenter feeds arbitrary readings (any order, any coordinates) to the
// Segmenter: it must either fail with an error or account for every row,
// without panics or leaked buffers.
func FuzzSegmenter(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, uint16(300), uint8(3))
	f.Add([]byte("\x01\x00\x10\x20\x30\x40\x02\x00\x11\x21\x31\x41\x01\x05\x12\x22\x32\x42"), uint16(50), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, trim uint16, batch uint8) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		var rs []reading
		for len(data) >= 6 {
			subj := string(rune('A' + data[0]%4))
			ts := testT0.Add(time.Duration(binary.LittleEndian.Uint16(data[1:3])) * 10 * time.Second)
			lat := 48 + float64(int8(data[3]))*0.001
			lon := 11 + float64(int8(data[4]))*0.001
			if data[5] == 0xff {
				lat = 95 // out of range: must be an error
			}
			rs = append(rs, reading{subj: subj, ts: ts, lat: lat, lon: lon})
			data = data[6:]
		}
		if len(rs) == 0 {
			return
		}
		opts := tripOpts(mem)
		opts.TrimMetres = float64(trim)
		opts.Lateness = time.Hour
		rd := makeReader(t, mem, rs, 1+int(batch%8))
		defer rd.Release()
		var out int64
		st, err := SegmentAll(context.Background(), rd, opts, func(rec arrow.RecordBatch) error {
			got, _ := rowsOf(t, rec)
			out += int64(len(got))
			return nil
		})
		if err != nil {
			return // rejected input is fine; a panic or a leak is not
		}
		if st.RowsIn != int64(len(rs)) || st.RowsIn != st.RowsOut+st.RowsTrimmed || out != st.RowsOut {
			t.Fatalf("accounting: %+v, emitted %d, input %d", st, out, len(rs))
		}
	})
}
