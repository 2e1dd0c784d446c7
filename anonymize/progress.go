package anonymize

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a progress bar on Options.Progress for one phase of a run
// (sorting, pass 1, pass 2), or nil without one: its methods are no-ops
// then.
type progress struct{ bar *progressbar.ProgressBar }

// progress starts a bar that counts rows up to total (a spinner when the
// total is unknown, <= 0).
func (r *Runner) progress(desc string, total int64) *progress {
	if r.opts.Progress == nil {
		return nil
	}
	if total <= 0 {
		total = -1
	}
	return &progress{bar: progressbar.NewOptions64(total, progressbar.OptionSetWriter(r.opts.Progress),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(), progressbar.OptionSetItsString("rows"),
		progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())}
}

func (p *progress) add(n int64) {
	if p != nil {
		p.bar.Add64(n)
	}
}

func (p *progress) done() {
	if p != nil {
		p.bar.Finish()
	}
}
