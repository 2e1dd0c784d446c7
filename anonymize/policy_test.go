package anonymize

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalPolicy = `version: 1
subject: vin
columns:
  vin: {pseudonymize: {method: hmac, domain: vin}}
  speed: keep
  secret: drop
`

func TestParsePolicyExample(t *testing.T) {
	path := filepath.Join("..", "examples", "brakedisc", "policy.yaml")
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatalf("example policy: %v", err)
	}
	if p.Subject != "vin" || p.Mobility == nil || p.Release == nil || p.OptOut == nil {
		t.Fatalf("example policy parsed incompletely: %+v", p)
	}
	// Issue #12: the linkage of published trips is limited, per-reading
	// values are microaggregated, and no vehicle or owner column stands
	// beside the trips (no kanon block: it would have nothing to protect).
	if p.Mobility.MaxLinkage != 0.05 || p.KAnon != nil {
		t.Fatalf("max_linkage %v, kanon %+v", p.Mobility.MaxLinkage, p.KAnon)
	}
	for _, c := range []string{"speed_kmh", "brake_pressure_bar", "disc_temp_c"} {
		if r, _ := p.Columns.Lookup(c); r.Action != ActionMicroaggregate {
			t.Errorf("%s action %s, want microaggregate", c, r.Action)
		}
	}
	// The movement output is per trip: no vehicle id, endpoints detached,
	// trace k-anonymity (issue 7: unicity at 4 points <= 5%).
	if r, ok := p.Columns.Lookup("vin"); !ok || r.Action != ActionDrop {
		t.Fatalf("vin rule = %+v, want drop", r)
	}
	if m := p.Mobility; m.Scope != "trip" || m.Endpoints != "detach" || m.TraceK != 5 || m.CellResolution != 6 {
		t.Fatalf("mobility block %+v", m)
	}
	for _, c := range []string{"pad_wear_mm", "model", "make", "model_year", "postcode", "owner_birth_year", "owner_sex"} {
		if r, _ := p.Columns.Lookup(c); r.Action != ActionDrop {
			t.Errorf("%s action %s: it re-links trips, want drop", c, r.Action)
		}
	}
	if got := p.Resolve(p.Keyring); got != filepath.Join("..", "examples", "brakedisc", "keys.json") {
		t.Errorf("Resolve(keyring) = %q", got)
	}
	// Column order is the file's order.
	if p.Columns[0].Name != "vin" || p.Columns[1].Name != "ts" {
		t.Errorf("column order lost: %v, %v", p.Columns[0].Name, p.Columns[1].Name)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantPos string // "line:col"
		wantMsg string
	}{
		{"unknown top key", minimalPolicy + "colums: {}\n", "7:1", `unknown key "colums"`},
		{"unknown nested key", strings.Replace(minimalPolicy, "domain: vin", "domian: vin", 1), "4:38", `unknown key "domian"`},
		{"unknown action", strings.Replace(minimalPolicy, "speed: keep", "speed: kepp", 1), "5:10", `unknown action "kepp"`},
		{"missing version", strings.Replace(minimalPolicy, "version: 1\n", "", 1), "", "missing version"},
		{"bad version", strings.Replace(minimalPolicy, "version: 1", "version: 2", 1), "1:1", "unsupported version 2"},
		{"version not int", strings.Replace(minimalPolicy, "version: 1", "version: one", 1), "1:10", "want an integer"},
		{"missing subject", strings.Replace(minimalPolicy, "subject: vin\n", "", 1), "", "missing subject"},
		{"subject kept in clear", strings.Replace(minimalPolicy, "vin: {pseudonymize: {method: hmac, domain: vin}}", "vin: keep", 1), "4:3", "must not be kept in clear"},
		{"subject not a column", strings.Replace(minimalPolicy, "subject: vin", "subject: owner", 1), "2:1", `subject column "owner" is not named`},
		{"bad method", strings.Replace(minimalPolicy, "method: hmac", "method: md5", 1), "4:24", `method "md5"`},
		{"missing domain", strings.Replace(minimalPolicy, ", domain: vin", "", 1), "4:9", "missing domain"},
		{"duplicate column", minimalPolicy + "  speed: drop\n", "7:3", `column "speed" named twice`},
		{"duplicate key", minimalPolicy + "subject: x\n", "7:1", `duplicate key "subject"`},
		{"two actions", strings.Replace(minimalPolicy, "secret: drop", "secret: {drop: , keep: }", 1), "6:11", "exactly one action"},
		{"action needs options", strings.Replace(minimalPolicy, "secret: drop", "secret: mask", 1), "6:11", "needs options"},
		{"alias", "version: 1\nsubject: &a vin\n", "2:10", "anchors and aliases"},
		{"coarsen both", minimalPolicy + "  ts: {coarsen: {time: 1h, degrees: 0.1}}\n", "7:8", "exactly one of time"},
		{"bad duration", minimalPolicy + "  ts: {coarsen: {time: soon}}\n", "7:24", "positive duration"},
		{"nan", minimalPolicy + "  lat: {coarsen: {degrees: .nan}}\n", "7:28", "finite number"},
		{"k too small", minimalPolicy + "  age: generalize\nkanon: {quasi_identifiers: [age], k: 1, metric: loss, hierarchies: {age: {type: interval, width: 5, fan_out: 2, height: 2, min: 0, max: 120}}}\n", "8:35", "k must be >= 2"},
		{"missing k", minimalPolicy + "  age: generalize\nkanon: {quasi_identifiers: [age], metric: loss, hierarchies: {age: {type: interval, width: 5, fan_out: 2, height: 2, min: 0, max: 120}}}\n", "8:1", "k must be >= 2"},
		{"qi not generalized", minimalPolicy + "kanon: {quasi_identifiers: [speed], k: 5, metric: loss, hierarchies: {speed: {type: interval, width: 5, fan_out: 2, height: 2, min: 0, max: 120}}}\n", "7:29", "must have action generalize"},
		{"missing hierarchy", minimalPolicy + "  age: generalize\nkanon: {quasi_identifiers: [age], k: 5, metric: loss}\n", "8:1", "missing hierarchy"},
		{"generalize without kanon", minimalPolicy + "  age: generalize\n", "7:3", "is not a kanon quasi-identifier"},
		{"release without epsilon", minimalPolicy + "release: {by: [speed], delta: 1e-6, max_partitions: 1, max_per_partition: 1, count: true}\n", "7:1", "epsilon must be > 0"},
		{"release unknown by", minimalPolicy + "release: {by: [nope], epsilon: 1, delta: 1e-6, max_partitions: 1, max_per_partition: 1, count: true}\n", "7:16", `column "nope"`},
		{"release bounds", minimalPolicy + "release: {by: [speed], epsilon: 1, delta: 1e-6, max_partitions: 1, max_per_partition: 1, aggregates: [{column: speed, kind: mean, lower: 5, upper: 1}]}\n", "7:103", "need lower < upper"},
		{"opt-out form", minimalPolicy + "opt_out: {file: x, form: maybe, domain: o}\n", "7:20", "form must be"},
		{"opt-out normalize", minimalPolicy + "opt_out: {file: x, form: clear, domain: o, normalize: upper}\n", "7:44", "normalize must be text, vin or exact"},
		{"mask width too small", minimalPolicy + "  pc: {mask: {keep_prefix: 2, keep_suffix: 2, width: 4}}\n", "7:47", "width must be greater than keep_prefix + keep_suffix (4), got 4"},
		{"mask width negative", minimalPolicy + "  pc: {mask: {keep_prefix: 2, width: -1}}\n", "7:31", "width must be greater"},
		{"empty", "", "", "empty policy"},
		{"not a mapping", "- a\n- b\n", "1:1", "want a mapping"},
		{"syntax", "version: [1\n", "", "line"},
		{"second document", minimalPolicy + "---\nkanon: {k: 1}\n", "", "want exactly one YAML document"},
		{"string for int", strings.Replace(minimalPolicy, "version: 1", `version: "1"`, 1), "1:10", "want an integer"},
		{"mobility trims nothing", minimalPolicy + "  ts: keep\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, cell_column: cell}\n", "10:1", "trim_metres or trim_time"},
		{"mobility lat kept", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: keep\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject}\n", "8:3", "its action must be drop"},
		{"mobility time not coarsened", minimalPolicy + "  ts: keep\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject}\n", "7:3", "coarsen: {time: BUCKET}"},
		{"mobility trip scope keeps pseudonym", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: trip, trip_id_column: trip}\n", "4:3", "link the trips again"},
		{"mobility detach with subject scope", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject, endpoints: detach}\n", "10:116", "endpoints detach needs scope trip"},
		{"mobility trace_k 1", strings.Replace(minimalPolicy, "vin: {pseudonymize: {method: hmac, domain: vin}}", "vin: drop", 1) + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: trip, trip_id_column: trip, trace_k: 1}\n", "10:135", "trace_k must be >= 2"},
		{"utility column unknown", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject, utility: {column: temp}}\n", "", `utility column "temp" is not a policy column`},
		{"utility column dropped", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject, utility: {column: secret}}\n", "", "must be published as a number"},
		{"utility tolerance", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject, utility: {column: speed, tolerance: 2}}\n", "", "tolerance must be in [0, 1)"},
		{"public no delta ok is not an error: both given", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, public_partitions: a.csv, public: {file: b.csv}, by: [cell]}\n", "", "not both"},
		{"public neither", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, public: {}, by: [cell]}\n", "", "exactly one of file and bbox"},
		{"public bbox short", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, public: {bbox: [1, 2, 3]}, by: [cell]}\n", "", "[south, west, north, east]"},
		{"public bbox inverted", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, public: {bbox: [48.3, 11, 48.0, 12]}, by: [cell]}\n", "", "south < north"},
		{"public bbox other column", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, public: {bbox: [48, 11, 48.3, 12]}, by: [cell, speed]}\n", "", "not \"speed\""},
		{"hour_of_day not in by", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, hour_of_day: ts, by: [cell], delta: 1e-6}\n", "", "go together"},
		{"hour_of_day in by only", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, by: [cell, hour_of_day], delta: 1e-6}\n", "", "go together"},
		{"release cell_resolution finer", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, cell_resolution: 7, by: [cell], delta: 1e-6}\n", "", "must be in 0..6"},
		{"private needs delta", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, cell_resolution: 6, k: 5, scope: subject}\nrelease: {epsilon: 1, max_partitions: 1, max_per_partition: 1, count: true, by: [cell]}\n", "", "needs delta > 0"},
		// Issue #12: linkage limit, the static re-linking lint, the new actions.
		{"max_linkage out of range", strings.Replace(minimalPolicy, "vin: {pseudonymize: {method: hmac, domain: vin}}", "vin: drop", 1) + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: trip, trip_id_column: trip, max_linkage: 1.5}\n", "", "max_linkage must be in (0, 1)"},
		{"dateshift under trip scope", strings.Replace(minimalPolicy, "vin: {pseudonymize: {method: hmac, domain: vin}}", "vin: drop", 1) + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\n  born: {dateshift: {domain: d, max_days: 30}}\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: trip, trip_id_column: trip}\n", "10:3", "dateshift column re-links trips"},
		{"subject_columns under subject scope", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject, subject_columns: [speed]}\n", "", "subject_columns only applies to scope trip"},
		{"subject_columns unknown", strings.Replace(minimalPolicy, "vin: {pseudonymize: {method: hmac, domain: vin}}", "vin: drop", 1) + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: trip, trip_id_column: trip, subject_columns: [plate]}\n", "", `column "plate" is not named`},
		{"subject_columns dropped", strings.Replace(minimalPolicy, "vin: {pseudonymize: {method: hmac, domain: vin}}", "vin: drop", 1) + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: trip, trip_id_column: trip, subject_columns: [secret]}\n", "", "list only published columns"},
		{"microaggregate without mobility", minimalPolicy + "  temp: microaggregate\n", "7:3", "needs a mobility block"},
		{"microaggregate options", minimalPolicy + "  temp: {microaggregate: {by: cell}}\n", "7:26", "takes no options"},
		{"microaggregate the subject", strings.Replace(minimalPolicy, "vin: {pseudonymize: {method: hmac, domain: vin}}", "vin: microaggregate", 1) + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, k: 5, scope: subject}\n", "4:3", "microaggregate is for per-reading values"},
		{"coarsen step and time", minimalPolicy + "  ts: {coarsen: {time: 1h, step: 5}}\n", "7:8", "exactly one of time"},
		{"coarsen step negative", minimalPolicy + "  speed2: {coarsen: {step: -5}}\n", "7:22", "step must be a positive number"},
		{"mobility no k", minimalPolicy + "  ts: {coarsen: {time: 1h}}\n  lat: drop\n  lon: drop\nmobility: {time: ts, lat: lat, lon: lon, trip_gap: 10m, trim_metres: 100, cell_column: cell, scope: subject}\n", "10:1", "k (distinct subjects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("ParsePolicy succeeded, want error")
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *PolicyError", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "p.yaml") {
				t.Errorf("error %q does not name the file", msg)
			}
			if tt.wantPos != "" && !strings.HasPrefix(msg, "p.yaml:"+tt.wantPos+":") {
				t.Errorf("error %q: want position %s", msg, tt.wantPos)
			}
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q: want it to contain %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestParsePolicyMinimal(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte(minimalPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Columns) != 3 || p.KAnon != nil || p.Release != nil || p.Mobility != nil || p.OptOut != nil {
		t.Fatalf("unexpected policy %+v", p)
	}
}

// FuzzParsePolicy checks that no input makes the parser panic, and that an
// accepted policy is internally consistent.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(minimalPolicy))
	if src, err := os.ReadFile(filepath.Join("..", "examples", "brakedisc", "policy.yaml")); err == nil {
		f.Add(src)
	}
	f.Add([]byte("version: 1\nsubject: &a vin\ncolumns: *a\n"))
	f.Add([]byte("version: 1\nsubject: vin\ncolumns: {vin: drop}\nkanon: {k: 2}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := ParsePolicy("fuzz.yaml", src)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if p.Version != PolicyVersion || p.Subject == "" {
			t.Fatalf("accepted invalid policy: %+v", p)
		}
		if _, ok := p.Columns.Lookup(p.Subject); !ok {
			t.Fatalf("accepted policy without the subject column")
		}
		for _, r := range p.Columns {
			if r.Action == "" {
				t.Fatalf("column %q without action", r.Name)
			}
		}
	})
}
