package beam

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

// TestMain initialises Beam (flags, worker hooks) before any pipeline runs.
func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}
