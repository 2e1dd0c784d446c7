package arrowio

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// csvType returns the Arrow type a ParseCSVTypes type name stands for.
// Timestamps are UTC; a CSV value that carries a zone is converted to it.
func csvType(name string) (arrow.DataType, bool) {
	switch name {
	case "string":
		return arrow.BinaryTypes.String, true
	case "int64":
		return arrow.PrimitiveTypes.Int64, true
	case "int32":
		return arrow.PrimitiveTypes.Int32, true
	case "float64":
		return arrow.PrimitiveTypes.Float64, true
	case "float32":
		return arrow.PrimitiveTypes.Float32, true
	case "bool":
		return arrow.FixedWidthTypes.Boolean, true
	case "date":
		return arrow.FixedWidthTypes.Date32, true
	case "timestamp", "timestamp_ms":
		return &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, true
	case "timestamp_s":
		return &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}, true
	case "timestamp_us":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, true
	case "timestamp_ns":
		return &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, true
	}
	return nil, false
}

// CSVTypeNames lists the type names ParseCSVTypes accepts, for help texts.
const CSVTypeNames = "string, int64, int32, float64, float32, bool, date, timestamp (ms), timestamp_s, timestamp_ms, timestamp_us, timestamp_ns"

// ParseCSVTypes parses column type declarations for CSVOptions.Types in the
// form the CLI's --csv-types flag takes: comma-separated name=type entries,
// for example "postcode=string,ts=timestamp". Parsing is strict: an empty
// entry, a name given twice, an unknown type (see CSVTypeNames), spaces
// around a name or type, and a missing '=' are errors. A column name cannot
// contain ',' or '='.
func ParseCSVTypes(spec string) (map[string]arrow.DataType, error) {
	if spec == "" {
		return nil, fmt.Errorf("CSV types: empty declaration (want name=type[,name=type...])")
	}
	out := make(map[string]arrow.DataType)
	for i, entry := range strings.Split(spec, ",") {
		name, typ, ok := strings.Cut(entry, "=")
		switch {
		case entry == "":
			return nil, fmt.Errorf("CSV types: entry %d is empty", i+1)
		case !ok:
			return nil, fmt.Errorf("CSV types: entry %q: want name=type", entry)
		case name == "":
			return nil, fmt.Errorf("CSV types: entry %q: no column name", entry)
		case strings.TrimSpace(name) != name || strings.TrimSpace(typ) != typ:
			return nil, fmt.Errorf("CSV types: entry %q: spaces around the name or type", entry)
		case strings.Contains(typ, "="):
			return nil, fmt.Errorf("CSV types: entry %q: more than one '='", entry)
		}
		dt, known := csvType(typ)
		if !known {
			return nil, fmt.Errorf("CSV types: column %q: unknown type %q (want one of %s)", name, typ, CSVTypeNames)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("CSV types: column %q declared twice", name)
		}
		out[name] = dt
	}
	return out, nil
}
