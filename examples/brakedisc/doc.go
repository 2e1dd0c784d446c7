// Package brakedisc generates synthetic brake-disc telemetry for a fleet of
// cars around Munich: the data of the demo, the tests and the benchmarks.
//
// # What it produces
//
// NewReader returns an array.RecordReader with the columns of Schema: the
// vehicle's VIN, a UTC timestamp, position, speed, brake line pressure, front
// disc temperature and pad thickness, plus the vehicle and owner attributes
// a data pool would hold (make, model, model year, the owner's postcode,
// birth year and sex). String columns are dictionary arrays with a fixed
// dictionary per reader. No value is null.
//
// The rows are a simulation, not noise:
//
//   - Each vehicle has a home in a Munich district or a surrounding town (its
//     postcode is that area's real PLZ), most have a workplace at one of the
//     region's employment hubs, and each has a few regular other places. Its
//     days follow a plan: commutes on weekdays, errands in the evenings and
//     at weekends, a few vehicles (taxis, trades) roaming all day. Activity
//     is lognormal, so a few vehicles produce many more rows than most.
//   - Trips follow a path (out of the street, along a wandering road, into
//     the destination's street) in legs with speed limits from 30 km/h in
//     residential streets to 130 km/h on motorways, stopping at junctions
//     and traffic lights. Speed is integrated once a second with the
//     driver's acceleration and braking; traffic slowdowns and occasional
//     emergency stops happen.
//   - Braking puts the front disc's share of the kinetic energy the engine
//     does not absorb into the disc (9 kg of cast iron), which cools
//     exponentially towards the ambient temperature of early-spring Munich,
//     faster when moving. The pad wears in proportion to braking energy.
//   - The telematics unit reports about every 30 s while driving (shorter when
//     Config.Rows needs more rows than Config.Days holds), with a few metres
//     of GPS noise and sensor resolution.
//   - VINs have a real WMI of their make (WBA BMW, WVW Volkswagen, WDD
//     Mercedes-Benz, WAU Audi, VF1 Renault, ...), the model-year code, and a
//     valid ISO 3779 check digit in position 9.
//
// Rows arrive interleaved across vehicles in time order, as a data pool
// ingests them, not grouped by vehicle.
//
// # Promises
//
// The same Config gives the same rows, and written with arrowio the same
// Parquet bytes, on the same architecture (the Go compiler may fuse
// floating-point multiply-adds on some, e.g. arm64, which changes the last
// bits of simulated values). Config.Rows is exact. Memory is O(Config.Vehicles): the
// vehicles are simulated as rows are read, so 100M rows stream through a
// constant footprint. Randomness is math/rand/v2 PCG, seeded from
// Config.Seed: this is simulation, never privacy randomness.
//
// # What it does not do
//
// It does not model real roads (paths are plausible, not map-matched), and
// it describes no real person or vehicle. Its privacy-relevant structure
// (home/work anchors, unique movement profiles, rare vehicle/owner
// combinations) is deliberate: it is what the anonymisation must defeat.
package brakedisc
