package beam

import (
	"fmt"

	"github.com/tarnkappe/tarnkappe/anonymize"
	"github.com/tarnkappe/tarnkappe/arrowio"
)

// checkPaths refuses outputs that cannot be written (a missing folder, a
// folder or device in the way, an unknown format) or that are an input or
// one another, before the pipeline starts. Nothing is claimed here: the
// commit step writes the outputs on a worker, which claims them then.
func checkPaths(c Config, p *anonymize.Policy) error {
	inputs := []arrowio.Named{{Name: "PolicyFile", Path: c.PolicyFile}, {Name: "Keys", Path: c.Keys}}
	for _, in := range c.Inputs {
		inputs = append(inputs, arrowio.Named{Name: "Inputs", Path: in})
	}
	for _, f := range p.Files() {
		inputs = append(inputs, arrowio.Named{Name: "the policy's " + f.Key, Path: f.Path})
	}
	outputs := []arrowio.Named{{Name: "Output", Path: c.Output}, {Name: "Report", Path: c.Report}}
	if p.Release != nil {
		outputs = append(outputs, arrowio.Named{Name: "ReleaseOutput", Path: c.ReleaseOutput})
	}
	if err := arrowio.CheckPaths(inputs, outputs); err != nil {
		return err
	}
	for _, o := range outputs {
		if o.Path == "" {
			continue
		}
		if o.Name != "Report" && arrowio.FormatOf(o.Path) == arrowio.FormatUnknown {
			return fmt.Errorf("%s %s: %w", o.Name, o.Path, arrowio.ErrUnknownFormat)
		}
		if err := arrowio.CheckOutput(o.Path); err != nil {
			return fmt.Errorf("%s %w", o.Name, err)
		}
	}
	return nil
}
