package anonymize

import (
	"context"
	"fmt"
)

// write is the step after pass 2: it writes the rows pass 2 handed to the
// output-order step (output_order.go) to the data's sink, in an order of
// published values and a secret drawn for the run: by time bucket, cell,
// and at random within them. Every row written is one pass 2 counted.
func (ru *run) write(ctx context.Context, out pass2Counts) error {
	n, err := ru.outOrder.WriteTo(ctx, ru.out.data)
	if err != nil {
		return err
	}
	if n != out.written {
		return fmt.Errorf("output order: wrote %d rows, pass 2 passed on %d", n, out.written)
	}
	return nil
}
