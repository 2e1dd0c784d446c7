package brakedisc

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Config sizes and seeds a synthetic fleet.
type Config struct {
	// Vehicles is the number of vehicles. Required: at least 1.
	Vehicles int
	// Rows is the exact number of rows the reader produces. Zero yields an
	// empty stream; negative is an error.
	Rows int64
	// Seed makes the fleet reproducible: the same Seed, Vehicles, Rows,
	// Start and Days give the same rows, byte for byte.
	Seed int64
	// BatchSize is the number of rows per batch (the last may be shorter).
	// Zero means 65,536; negative is an error.
	BatchSize int
	// Start is when the simulation begins (at midnight UTC of its day, if
	// it is not midnight already). Zero means 2026-03-02 (a Monday).
	Start time.Time
	// Days is the window the readings are spread over. Readings are taken
	// about every 30 s while a vehicle drives; when Rows would not fit into Days
	// at that rate the interval shrinks (down to 1 s), and only beyond that
	// does the simulation run past Start+Days. Fewer Rows than the window
	// holds simply end the stream early. Zero means 14; negative is an
	// error.
	Days int
	// Interval, when set, is the reporting interval while driving (whole
	// seconds, at least 1 s), instead of the 30 s that shrinks to fit Rows
	// into Days. Taxi telematics report about once a minute.
	Interval time.Duration
	// Taxis makes every vehicle a taxi of one city instead of a private
	// car of the region: based near the city centre, fares back to back (a
	// few minutes apart) to random places a few kilometres around it, from
	// the early morning until late.
	// A differently shaped fleet (few vehicles, dense in one city, many
	// short trips) on which a policy can be tried for data like real taxi
	// traces. The same Seed gives other vehicles than without Taxis.
	Taxis bool
}

// DefaultConfig returns the demo fleet: 2,000 vehicles around Munich
// producing 1,000,000 rows over 14 days from Monday 2026-03-02, seed 1.
func DefaultConfig() Config {
	return Config{
		Vehicles:  2000,
		Rows:      1_000_000,
		Seed:      1,
		BatchSize: 64 * 1024,
		Start:     time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Days:      14,
	}
}

// maxVehicles bounds the fleet so per-vehicle state (a few hundred bytes
// each) stays far below a gigabyte.
const maxVehicles = 2_000_000

// normalize validates cfg and fills documented defaults.
func (cfg Config) normalize() (Config, error) {
	def := DefaultConfig()
	switch {
	case cfg.Vehicles < 1:
		return cfg, fmt.Errorf("brakedisc.NewReader: Vehicles must be >= 1, got %d", cfg.Vehicles)
	case cfg.Vehicles > maxVehicles:
		return cfg, fmt.Errorf("brakedisc.NewReader: Vehicles must be <= %d, got %d", maxVehicles, cfg.Vehicles)
	case cfg.Rows < 0:
		return cfg, fmt.Errorf("brakedisc.NewReader: Rows must be >= 0, got %d", cfg.Rows)
	case cfg.BatchSize < 0:
		return cfg, fmt.Errorf("brakedisc.NewReader: BatchSize must be >= 0, got %d", cfg.BatchSize)
	case cfg.Days < 0:
		return cfg, fmt.Errorf("brakedisc.NewReader: Days must be >= 0, got %d", cfg.Days)
	case cfg.Interval < 0 || cfg.Interval > 0 && (cfg.Interval < time.Second || cfg.Interval%time.Second != 0 || cfg.Interval > time.Hour):
		return cfg, fmt.Errorf("brakedisc.NewReader: Interval must be whole seconds in 1s..1h, got %v", cfg.Interval)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = def.BatchSize
	}
	if cfg.Days == 0 {
		cfg.Days = def.Days
	}
	if cfg.Start.IsZero() {
		cfg.Start = def.Start
	}
	y, m, d := cfg.Start.UTC().Date()
	cfg.Start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if y < 1990 || y > 2200 {
		return cfg, fmt.Errorf("brakedisc.NewReader: Start year must be in 1990..2200, got %d", y)
	}
	return cfg, nil
}

// Column names, in schema order.
const (
	ColVIN            = "vin"
	ColTS             = "ts"
	ColLat            = "lat"
	ColLon            = "lon"
	ColSpeed          = "speed_kmh"
	ColBrakePressure  = "brake_pressure_bar"
	ColDiscTemp       = "disc_temp_c"
	ColPadWear        = "pad_wear_mm"
	ColMake           = "make"
	ColModel          = "model"
	ColModelYear      = "model_year"
	ColPostcode       = "postcode"
	ColOwnerBirthYear = "owner_birth_year"
	ColOwnerSex       = "owner_sex"
)

func dictType() *arrow.DictionaryType {
	return &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
}

// Schema returns the fleet's schema. No column has nulls.
func Schema() *arrow.Schema {
	f64 := arrow.PrimitiveTypes.Float64
	return arrow.NewSchema([]arrow.Field{
		{Name: ColVIN, Type: dictType()},
		{Name: ColTS, Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: ColLat, Type: f64},
		{Name: ColLon, Type: f64},
		{Name: ColSpeed, Type: f64},
		{Name: ColBrakePressure, Type: f64},
		{Name: ColDiscTemp, Type: f64},
		{Name: ColPadWear, Type: f64},
		{Name: ColMake, Type: dictType()},
		{Name: ColModel, Type: dictType()},
		{Name: ColModelYear, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColPostcode, Type: dictType()},
		{Name: ColOwnerBirthYear, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColOwnerSex, Type: dictType()},
	}, nil)
}
