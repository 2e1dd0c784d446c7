package arrowio

import "github.com/apache/arrow-go/v18/parquet/file"

// TotalRows returns the number of rows the input holds when its format
// records it before the data (a Parquet file's footer), or -1 when only
// reading to the end would tell (Arrow IPC, CSV, stdin). A progress bar
// shows it as its total.
func (s *Source) TotalRows() int64 {
	if pf, ok := s.closer.(*file.Reader); ok {
		return pf.NumRows()
	}
	return -1
}
