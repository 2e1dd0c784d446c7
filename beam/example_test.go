package beam_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/memory"

	tkbeam "github.com/tarnkappe/tarnkappe/beam"
	"github.com/tarnkappe/tarnkappe/examples/brakedisc"
	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// Run a policy on the in-process prism runner: the keyring stays in its
// file; the pipeline carries only its path.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "tarnkappe-beam-example")
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "fleet.parquet")
	if err := brakedisc.WriteFile(context.Background(), in, brakedisc.Config{Vehicles: 20, Rows: 2000, Seed: 1}, memory.NewGoAllocator()); err != nil {
		fmt.Println(err)
		return
	}
	kr, _ := pseudonym.NewKeyring()
	kr.WriteFile(filepath.Join(dir, "keys.json"), false)
	kr.Destroy()
	policy := []byte(`version: 1
subject: vin
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  ts: {coarsen: {time: 1h}}
  lat: drop
  lon: drop
  speed_kmh: keep
  brake_pressure_bar: keep
  disc_temp_c: keep
  pad_wear_mm: keep
  make: keep
  model: keep
  model_year: drop
  postcode: drop
  owner_birth_year: drop
  owner_sex: drop
`)
	rep, err := tkbeam.Run(context.Background(), "prism", tkbeam.Config{
		Policy: policy, PolicyFile: filepath.Join(dir, "policy.yaml"), Keys: filepath.Join(dir, "keys.json"),
		Inputs: []string{in}, Output: filepath.Join(dir, "out.parquet"), TempDir: filepath.Join(dir, "shards"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rows in %d, out %d; vin pseudonymised under key %v\n", rep.Rows.In, rep.Rows.Out, rep.Keys["vin"] != "")
	// Output:
	// rows in 2000, out 2000; vin pseudonymised under key true
}

// A configuration the pipeline cannot run is an error before any worker
// starts (and policy fields Beam does not implement would be, never skipped).
func ExampleConfig_Validate() {
	err := tkbeam.Config{Policy: brakedisc.DemoPolicy(), PolicyFile: "policy.yaml", Keys: "keys.json",
		Output: "out.parquet", TempDir: "shards"}.Validate()
	fmt.Println(err)
	// Output:
	// beam.Config: Inputs is required
}
