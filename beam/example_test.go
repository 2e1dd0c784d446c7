package beam_test

import (
	"bytes"
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

// Policy blocks the Beam pipeline does not run are errors, never skipped.
func ExampleConfig_Validate() {
	policy := bytes.Replace(brakedisc.DemoPolicy(), []byte("  k: 10\n"), []byte("  k: 10\n  l: {sensitive: make, l: 2, variant: distinct}\n"), 1)
	err := tkbeam.Config{Policy: policy, PolicyFile: "policy.yaml", Keys: "keys.json", Inputs: []string{"fleet.parquet"},
		Output: "out.parquet", TempDir: "shards"}.Validate()
	fmt.Println(err)
	// Output:
	// beam.Config: tarnkappe/beam: l-diversity and t-closeness (kanon.l, kanon.t) with a mobility block are not supported on Beam yet (without one they are)
}
