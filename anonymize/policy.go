package anonymize

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/tarnkappe/tarnkappe/internal/strictyaml"
	"go.yaml.in/yaml/v3"
)

// PolicyVersion is the only policy format version this package reads.
const PolicyVersion = 1

// Action is what a policy does to one column.
type Action string

// The column actions. Every input column must have exactly one.
const (
	ActionKeep         Action = "keep"         // copy unchanged
	ActionDrop         Action = "drop"         // remove from the output
	ActionPseudonymize Action = "pseudonymize" // keyed pseudonym (hmac, siv, ff1)
	ActionDateShift    Action = "dateshift"    // keyed per-subject date shift
	ActionGeneralize   Action = "generalize"   // hierarchy level (chosen by kanon for quasi-identifiers)
	ActionCoarsen      Action = "coarsen"      // time bucket or spatial grid
	ActionMask         Action = "mask"         // replace characters by a mask character
	// ActionMicroaggregate replaces a number by the mean of its (cell, time
	// bucket) group (mobility policies; see MobilityPolicy).
	ActionMicroaggregate Action = "microaggregate"
)

var allActions = []Action{ActionKeep, ActionDrop, ActionPseudonymize, ActionDateShift, ActionGeneralize, ActionCoarsen, ActionMask, ActionMicroaggregate}

// Policy is a validated anonymisation policy. Obtain one with ParsePolicy or
// LoadPolicy; a Policy is immutable afterwards and safe to share.
type Policy struct {
	// Version must be 1. Required.
	Version int `yaml:"version"`
	// Subject names the column identifying the data subject (the vehicle, the
	// person). Opt-out, date shift and DP contribution bounding are per subject.
	// Required.
	Subject string `yaml:"subject"`
	// Keyring is the path of the keyring file (relative to the policy file).
	// Required when any action needs keys; the CLI's --keys overrides it.
	Keyring string `yaml:"keyring"`
	// OptOut lists subjects whose rows are all removed before any other step.
	OptOut *OptOutPolicy `yaml:"opt_out"`
	// Columns names the action for every input column, in output order.
	// Required: an input column the policy does not name is an error.
	Columns ColumnRules `yaml:"columns"`
	// KAnon, when present, generalises the quasi-identifiers to k-anonymity.
	KAnon *KAnonPolicy `yaml:"kanon"`
	// Mobility, when present, segments trips, trims their ends and coarsens
	// positions and time.
	Mobility *MobilityPolicy `yaml:"mobility"`
	// Release, when present, computes differentially private aggregates.
	Release *ReleasePolicy `yaml:"release"`

	file   string
	pos    strictyaml.Positions
	sha256 [sha256.Size]byte // of the source parsed
}

// OptOutPolicy names the opt-out list and how its entries are matched.
type OptOutPolicy struct {
	// File holds one subject per line, relative to the policy file.
	// Required. UTF-8 (a byte order mark is skipped; UTF-16 with one is
	// read too); lines end in \n, \r\n or \r; blank lines and lines
	// starting with # are skipped; # after white space starts a comment;
	// an entry may be quoted ("A #1"), and then only a comment may follow
	// it. Duplicates and variant spellings count once.
	File string `yaml:"file"`
	// Form says what the lines are: "clear" (the subject column's raw value,
	// e.g. a VIN) or "pseudonym" (the output of the subject column's
	// pseudonymize action). Required.
	Form string `yaml:"form"`
	// Domain is the keyring domain under which the list is held keyed in
	// memory. Required.
	Domain string `yaml:"domain"`
	// Normalize is how list entries and subject values are brought to one
	// spelling before they are compared; the same function runs on both
	// sides, and with form pseudonym the subject is normalised before its
	// pseudonym is computed:
	//   - "text" (the default): invisible characters (BOM, zero-width
	//     spaces, soft hyphens, control characters) removed, Unicode NFKC
	//     (full-width letters and digits become plain ones), every kind of
	//     white space one space, white space and quotation marks trimmed
	//     at both ends; compared with Unicode case folding.
	//   - "vin": as text, then spaces, dashes and quotes removed, upper
	//     case, and I, O, Q read as 1, 0, 0 (ISO 3779 leaves them out of
	//     VINs because they are mistaken for digits); every clear list
	//     entry must then be a 17-character VIN.
	//   - "exact": values compared as they are; only the list file's
	//     syntax above is read. For identifiers where case or white space
	//     tell subjects apart.
	// An int64 subject column is matched by value in every mode ("00123"
	// and "123.0" name 123), and then every entry must be an integer. The
	// report counts the rows whose subject value is not in normal form
	// (opt_out.rows_not_normalized): matching already sees through them,
	// but later per-subject steps (k-anonymity per subject, DP bounds,
	// date shift, pseudonyms) see two subjects in "WVW…" and "wvw… ".
	Normalize string `yaml:"normalize"`
}

// NormalizeMode is Normalize with its default ("text") filled in.
func (o *OptOutPolicy) NormalizeMode() string {
	if o.Normalize == "" {
		return "text"
	}
	return o.Normalize
}

// ColumnRule is the action for one column.
type ColumnRule struct {
	Name         string
	Action       Action
	Pseudonymize *PseudonymizeSpec `yaml:"pseudonymize"`
	DateShift    *DateShiftSpec    `yaml:"dateshift"`
	Generalize   *GeneralizeSpec   `yaml:"generalize"`
	Coarsen      *CoarsenSpec      `yaml:"coarsen"`
	Mask         *MaskSpec         `yaml:"mask"`
	Pos          Position
}

// PseudonymizeSpec configures a pseudonymize action.
type PseudonymizeSpec struct {
	// Method is hmac (one-way), siv (reversible by the key holder) or ff1
	// (format-preserving, reversible). Required.
	Method string `yaml:"method"`
	// Domain is the keyring domain: the same value in two domains gives
	// unlinkable pseudonyms. Required.
	Domain string `yaml:"domain"`
}

// DateShiftSpec configures a dateshift action: every timestamp of one subject
// moves by the same keyed offset within ±MaxDays.
type DateShiftSpec struct {
	Domain  string `yaml:"domain"`   // Required.
	MaxDays int    `yaml:"max_days"` // Required, >= 1.
}

// GeneralizeSpec configures a generalize action outside k-anonymity (a fixed
// level). Quasi-identifiers take their hierarchy from the kanon block and
// their level from the search, and must write just "generalize".
type GeneralizeSpec struct {
	Hierarchy HierarchySpec `yaml:"hierarchy"`
	Level     int           `yaml:"level"`
}

// CoarsenSpec configures a coarsen action: exactly one of Time (timestamp
// columns: floor to the bucket), Degrees (float columns: snap to the centre
// of a grid cell of that many degrees) or Step (number columns: the centre
// of the interval of width Step holding the value, as float64: 47 km/h
// with step 5 becomes 47.5, the centre of [45, 50)).
type CoarsenSpec struct {
	Time    Duration `yaml:"time"`
	Degrees float64  `yaml:"degrees"`
	Step    float64  `yaml:"step"`
}

// MaskSpec configures a mask action on a string column: all characters but
// the first KeepPrefix and last KeepSuffix become Char (default "*").
// Characters are Unicode code points of the value's NFC form, never bytes.
//
// A value no longer than KeepPrefix + KeepSuffix characters is masked
// whole: keeping its prefix and suffix would publish it unchanged (a
// 5-digit postcode under a 3+3 mask). The report counts such rows per
// column (masked_whole) and the CLI warns about them. An empty value stays
// empty unless Width is set.
//
// Without Width the output has the input's length, so the length is
// published: harmless for fixed-length codes (VINs, postcodes, card
// numbers), not for names or e-mail addresses, where Width should be set.
type MaskSpec struct {
	KeepPrefix int    `yaml:"keep_prefix"`
	KeepSuffix int    `yaml:"keep_suffix"`
	Char       string `yaml:"char"`
	// Width, when > 0, writes every value as exactly Width characters (its
	// kept prefix and suffix with mask characters between, or Width mask
	// characters when masked whole), so the output does not reveal the
	// input's length. Must exceed KeepPrefix + KeepSuffix.
	Width int `yaml:"width"`
}

// HierarchySpec describes a generalisation hierarchy (see package kanon).
type HierarchySpec struct {
	// Type is interval (numbers), mask (strings, masked from the right),
	// table (ARX-style CSV in File) or date (timestamps: minute, hour, day,
	// ISO week, month, year, *). Every hierarchy's top level is "*". Required.
	Type string `yaml:"type"`
	// Interval: level 1 groups values into intervals of Width from Origin;
	// each level above merges FanOut intervals; Height interval levels;
	// values outside [Min, Max] are errors.
	Width  float64 `yaml:"width"`
	FanOut int     `yaml:"fan_out"`
	Height int     `yaml:"height"`
	Origin float64 `yaml:"origin"`
	Min    float64 `yaml:"min"`
	Max    float64 `yaml:"max"`
	// Mask: level i masks the last i characters, up to MaxMasked.
	MaxMasked int `yaml:"max_masked"`
	// Table: the CSV file (relative to the policy) and its separator
	// (default ";", as ARX writes them).
	File      string `yaml:"file"`
	Separator string `yaml:"separator"`
}

// KAnonPolicy configures k-anonymity over the quasi-identifiers.
type KAnonPolicy struct {
	QuasiIdentifiers []string                 `yaml:"quasi_identifiers"` // Required.
	K                int                      `yaml:"k"`                 // Required, >= 2.
	L                *LDiversityPolicy        `yaml:"l"`
	T                *TClosenessPolicy        `yaml:"t"`
	Suppression      float64                  `yaml:"suppression"` // max fraction of rows suppressed, [0,1)
	Metric           string                   `yaml:"metric"`      // loss | discernibility | entropy | precision
	Hierarchies      map[string]HierarchySpec `yaml:"hierarchies"` // one per quasi-identifier. Required.
	// PerSubject counts distinct subjects, not rows, in every equivalence
	// class: with many rows per subject, counting rows would overstate k.
	// Default true; set false only when every subject has one row.
	PerSubject *bool `yaml:"per_subject"`
}

// LDiversityPolicy adds l-diversity of a sensitive column: every written
// class holds at least l distinct values (distinct), values of entropy at
// least log l (entropy), or r1 < c·(r_l + r_l+1 + …) (recursive). With
// per_subject each subject counts once with its value, so the column must
// hold one value per subject (see the package documentation).
type LDiversityPolicy struct {
	Sensitive string  `yaml:"sensitive"`
	L         float64 `yaml:"l"`
	Variant   string  `yaml:"variant"` // distinct | entropy | recursive
	C         float64 `yaml:"c"`
}

// TClosenessPolicy adds t-closeness of a sensitive column: the earth
// mover's distance between every written class's distribution of the
// column and that of all members searched is at most t. Counted as
// LDiversityPolicy counts.
type TClosenessPolicy struct {
	Sensitive string  `yaml:"sensitive"`
	T         float64 `yaml:"t"`
	Distance  string  `yaml:"distance"` // equal | ordered
}

// MobilityPolicy configures movement-profile protection.
type MobilityPolicy struct {
	Time string `yaml:"time"` // timestamp column. Required.
	Lat  string `yaml:"lat"`  // Required.
	Lon  string `yaml:"lon"`  // Required.
	// TripGap splits a subject's readings into trips where consecutive
	// readings are further apart in time. Required.
	TripGap Duration `yaml:"trip_gap"`
	// TrimMetres and TrimTime drop the start and end of every trip (homes and
	// workplaces). At least one is required.
	TrimMetres float64  `yaml:"trim_metres"`
	TrimTime   Duration `yaml:"trim_time"`
	// CellResolution is the H3 resolution of the output cell column (0..15).
	CellResolution int `yaml:"cell_resolution"`
	// CellColumn names the added cell column. Required when CellResolution is set.
	CellColumn string `yaml:"cell_column"`
	// K suppresses rows in (cell, time bucket) groups with fewer than K
	// distinct subjects. The time column must be coarsened to a bucket by its
	// column action. Required, >= 2.
	K int `yaml:"k"`
	// Scope is the linkable unit of the output: "subject" (rows of one
	// subject stay linkable through the subject column's action) or "trip"
	// (a random id per trip, in TripIDColumn, is the only link; the subject
	// column must be dropped). Required.
	Scope        string `yaml:"scope"`
	TripIDColumn string `yaml:"trip_id_column"`
	// Endpoints says what happens to trimmed readings: "drop" (the default)
	// or "detach" (kept for per-cell figures with a null trip id; scope trip
	// only).
	Endpoints string `yaml:"endpoints"`
	// TraceK keeps a trip's id only when at least TraceK vehicles made a
	// trip with the same released (cell, bucket) trace; other trips' rows
	// are detached. 0 disables it; scope trip only, >= 2.
	TraceK int `yaml:"trace_k"`
	// UnicityPoints is p for the unicity measure before and after (default 4).
	UnicityPoints int `yaml:"unicity_points"`
	// MaxLinkage, when set (in (0, 1)), makes the run fail closed — no
	// output at all — when the measured linkage of published traces
	// (risk.after.linkage: the share linked to exactly one subject by an
	// adversary holding the raw readings) may exceed it: the upper end of
	// its 95% interval on a sample, the figure itself on a census. The
	// error names the columns that drive the linkage.
	MaxLinkage float64 `yaml:"max_linkage"`
	// SubjectColumns lists published columns that identify the subject
	// and are published anyway, under scope trip (say, a fleet operator's
	// vehicle number for an internal output). Any other published column
	// whose values map one-to-one to subjects on the data (a second copy
	// of the VIN, a licence plate) fails the run, as does a dateshift
	// column (its keyed per-subject offset is a pseudonym of the subject).
	SubjectColumns []string `yaml:"subject_columns"`
	// Utility, when set, measures what the movement output is kept for: the
	// mean of a column per (cell, time bucket), released against raw (raw
	// positions mapped to the same cells, after the opt-out only), over the
	// raw groups with at least MinSubjects distinct subjects.
	Utility *UtilityPolicy `yaml:"utility"`
}

// UtilityPolicy configures the utility figure of the mobility block.
type UtilityPolicy struct {
	// Column is the float64 column averaged; it must be kept. Required.
	Column string `yaml:"column"`
	// MinSubjects: groups of the raw data with fewer distinct subjects are
	// not compared (their means are noise either way). 0 means 20.
	MinSubjects int `yaml:"min_subjects"`
	// Tolerance is the relative error a group's mean may have and still
	// count as within. 0 means 0.1.
	Tolerance float64 `yaml:"tolerance"`
}

// ReleasePolicy configures a differentially private release of per-group
// aggregates, bounded per subject.
type ReleasePolicy struct {
	By              []string        `yaml:"by"`      // grouping columns. Required.
	Epsilon         float64         `yaml:"epsilon"` // Required, > 0.
	Delta           float64         `yaml:"delta"`   // Required for private partition selection, in (0,1).
	MaxPartitions   int             `yaml:"max_partitions"`
	MaxPerPartition int             `yaml:"max_per_partition"`
	Count           bool            `yaml:"count"`
	Aggregates      []AggregateSpec `yaml:"aggregates"`
	// PublicPartitions is a CSV file with the columns of By listing the
	// partitions to release; without it (or Public) partitions are selected
	// privately. Shorthand for public: {file: ...}.
	PublicPartitions string `yaml:"public_partitions"`
	// HourOfDay names a timestamp column; the release then groups by an
	// added int64 key column "hour_of_day" (its UTC hour, 0..23), which By
	// must list. Only the release sees that column.
	HourOfDay string `yaml:"hour_of_day"`
	// CellResolution, when set, releases the mobility cell column at this
	// coarser H3 resolution (each cell replaced by its parent): fewer,
	// larger partitions, each with more vehicles, so less relative noise.
	// 0 means the mobility block's resolution.
	CellResolution int `yaml:"cell_resolution"`
	// Public lists the partitions to release without looking at the data:
	// no budget is spent choosing them, every listed partition is released
	// (noise over zero where the data has none), rows in other partitions
	// are not counted.
	Public *PublicPartitionsPolicy `yaml:"public"`
}

// HourOfDayColumn is the key column a release with hour_of_day adds.
const HourOfDayColumn = "hour_of_day"

// PublicPartitionsPolicy declares public partitions: a file, or the product
// of partition values generated from public parameters only.
type PublicPartitionsPolicy struct {
	// File is a CSV file whose header names the By columns; every further
	// line is one partition. Exclusive with BBox.
	File string `yaml:"file"`
	// BBox [south, west, north, east] in degrees: the mobility cell column
	// takes every H3 cell (at the mobility cell resolution) that covers the
	// box, hour_of_day takes 0..23, and the partitions are their product.
	// Every By column must be one of those two.
	BBox []float64 `yaml:"bbox"`
}

// maxPublicPartitions bounds a generated partition list (its memory and the
// release's size).
const maxPublicPartitions = 1_000_000

// AggregateSpec is one DP aggregate of a numeric column, clamped to bounds.
type AggregateSpec struct {
	Column    string    `yaml:"column"`
	Kind      string    `yaml:"kind"` // sum | mean | variance | quantiles
	Lower     float64   `yaml:"lower"`
	Upper     float64   `yaml:"upper"`
	Quantiles []float64 `yaml:"quantiles"`
}

// ColumnRules is the ordered column → action mapping of a policy.
type ColumnRules []ColumnRule

// Lookup returns the rule for a column.
func (cr ColumnRules) Lookup(name string) (ColumnRule, bool) {
	for _, r := range cr {
		if r.Name == name {
			return r, true
		}
	}
	return ColumnRule{}, false
}

func (cr *ColumnRules) decodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, path, "want a mapping of column name to action, got %s", strictyaml.KindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return d.Errorf(k, path, "column names must be plain non-empty strings")
		}
		kp := strictyaml.JoinPath(path, k.Value)
		if seen[k.Value] {
			return d.Errorf(k, kp, "column %q named twice", k.Value)
		}
		seen[k.Value] = true
		d.Record(kp, k)
		r := ColumnRule{Name: k.Value, Pos: Position{File: d.File, Line: k.Line, Column: k.Column}}
		switch v.Kind {
		case yaml.ScalarNode:
			// Shorthand for actions without options: "keep", "drop",
			// "generalize", "microaggregate".
			a := Action(v.Value)
			switch a {
			case ActionKeep, ActionDrop, ActionGeneralize, ActionMicroaggregate:
				r.Action = a
			case ActionPseudonymize, ActionDateShift, ActionCoarsen, ActionMask:
				return d.Errorf(v, kp, "action %q needs options, e.g. {%s: {...}}", a, a)
			default:
				return d.Errorf(v, kp, "unknown action %q (want one of %s)", v.Value, actionList())
			}
		case yaml.MappingNode:
			if len(v.Content) != 2 {
				return d.Errorf(v, kp, "want exactly one action per column (one of %s)", actionList())
			}
			ak, av := v.Content[0], v.Content[1]
			ap := strictyaml.JoinPath(kp, ak.Value)
			d.Record(ap, ak)
			var err error
			switch Action(ak.Value) {
			case ActionPseudonymize:
				r.Pseudonymize = new(PseudonymizeSpec)
				err = d.Decode(av, reflectElem(r.Pseudonymize), ap)
			case ActionDateShift:
				r.DateShift = new(DateShiftSpec)
				err = d.Decode(av, reflectElem(r.DateShift), ap)
			case ActionGeneralize:
				r.Generalize = new(GeneralizeSpec)
				err = d.Decode(av, reflectElem(r.Generalize), ap)
			case ActionCoarsen:
				r.Coarsen = new(CoarsenSpec)
				err = d.Decode(av, reflectElem(r.Coarsen), ap)
			case ActionMask:
				r.Mask = new(MaskSpec)
				err = d.Decode(av, reflectElem(r.Mask), ap)
			case ActionKeep, ActionDrop, ActionMicroaggregate:
				if !strictyaml.IsNull(av) {
					return d.Errorf(av, ap, "action %q takes no options", ak.Value)
				}
			default:
				return d.Errorf(ak, ap, "unknown action %q (want one of %s)", ak.Value, actionList())
			}
			if err != nil {
				return err
			}
			r.Action = Action(ak.Value)
		default:
			return d.Errorf(v, kp, "want an action, got %s", strictyaml.KindName(v))
		}
		*cr = append(*cr, r)
	}
	return nil
}

func actionList() string {
	s := make([]string, len(allActions))
	for i, a := range allActions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// LoadPolicy reads and validates a policy file.
func LoadPolicy(path string) (*Policy, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("anonymize.LoadPolicy: %w", err)
	}
	return ParsePolicy(path, src)
}

// ParsePolicy parses and validates a policy. file names the source in errors
// and is the base for relative paths in the policy. Errors are *PolicyError
// giving file, line and column.
func ParsePolicy(file string, src []byte) (*Policy, error) {
	p := &Policy{file: file, sha256: sha256.Sum256(src)}
	pos, err := parseYAML(file, src, p)
	if err != nil {
		return nil, err
	}
	p.pos = pos
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// File returns the path the policy was read from.
func (p *Policy) File() string { return p.file }

// SHA256 is the hex SHA-256 of the policy's bytes as parsed: the report
// carries it, so that a reader can check which policy file made it
// (sha256sum policy.yaml).
func (p *Policy) SHA256() string { return hex.EncodeToString(p.sha256[:]) }

// Resolve returns a path named in the policy relative to the policy's
// directory (absolute paths unchanged).
func (p *Policy) Resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || p.file == "" {
		return path
	}
	return filepath.Join(filepath.Dir(p.file), path)
}

func (p *Policy) errf(path, format string, args ...any) error {
	// The nearest recorded parent, else the document, so the user still gets a line.
	at, ok := p.pos.Near(path)
	if !ok {
		at = p.pos[""]
	}
	pos := Position{File: p.file, Line: at.Line, Column: at.Column}
	err := fmt.Errorf(format, args...)
	return &PolicyError{Pos: pos, Path: path, Msg: err.Error(), Err: errors.Unwrap(err)}
}

var (
	pseudonymMethods = []string{"hmac", "siv", "ff1"}
	hierarchyTypes   = []string{"interval", "mask", "table", "date"}
	kanonMetrics     = []string{"loss", "discernibility", "entropy", "precision"}
	aggregateKinds   = []string{"sum", "mean", "variance", "quantiles"}
)

func (p *Policy) validate() error {
	if p.Version != PolicyVersion {
		if _, ok := p.pos["version"]; !ok {
			return p.errf("version", "missing version (want version: %d)", PolicyVersion)
		}
		return p.errf("version", "unsupported version %d (want %d)", p.Version, PolicyVersion)
	}
	if p.Subject == "" {
		return p.errf("subject", "missing subject column")
	}
	if len(p.Columns) == 0 {
		return p.errf("columns", "missing columns: the policy must name every input column")
	}
	subj, ok := p.Columns.Lookup(p.Subject)
	if !ok {
		return p.errf("subject", "subject column %q is not named under columns", p.Subject)
	}
	if subj.Action == ActionKeep {
		return p.errf("columns."+p.Subject, "the subject column must not be kept in clear: pseudonymize or drop it")
	}
	for _, r := range p.Columns {
		cp := "columns." + r.Name
		switch r.Action {
		case ActionPseudonymize:
			s := r.Pseudonymize
			ap := cp + ".pseudonymize"
			if !slices.Contains(pseudonymMethods, s.Method) {
				return p.errf(ap+".method", "method %q: want one of %s", s.Method, strings.Join(pseudonymMethods, ", "))
			}
			if s.Domain == "" {
				return p.errf(ap+".domain", "missing domain")
			}
		case ActionDateShift:
			s := r.DateShift
			ap := cp + ".dateshift"
			if s.Domain == "" {
				return p.errf(ap+".domain", "missing domain")
			}
			if s.MaxDays < 1 || s.MaxDays > 3650 {
				return p.errf(ap+".max_days", "max_days must be in 1..3650, got %d", s.MaxDays)
			}
		case ActionGeneralize:
			isQI := p.KAnon != nil && slices.Contains(p.KAnon.QuasiIdentifiers, r.Name)
			if isQI && r.Generalize != nil {
				return p.errf(cp+".generalize", "%q is a quasi-identifier: its hierarchy goes under kanon.hierarchies and its level is chosen by the search; write just \"generalize\"", r.Name)
			}
			if !isQI {
				if r.Generalize == nil {
					return p.errf(cp, "%q is not a kanon quasi-identifier: give {generalize: {hierarchy: ..., level: N}}", r.Name)
				}
				if err := p.validateHierarchy(cp+".generalize.hierarchy", r.Generalize.Hierarchy); err != nil {
					return err
				}
				if r.Generalize.Level < 1 {
					return p.errf(cp+".generalize.level", "level must be >= 1, got %d", r.Generalize.Level)
				}
			}
		case ActionCoarsen:
			s := r.Coarsen
			ap := cp + ".coarsen"
			given := 0
			for _, set := range []bool{s.Time != 0, s.Degrees != 0, s.Step != 0} {
				if set {
					given++
				}
			}
			if given != 1 || s.Time < 0 {
				return p.errf(ap, "give exactly one of time (a duration), degrees (a grid size) or step (an interval width)")
			}
			if s.Degrees < 0 || s.Degrees > 90 {
				return p.errf(ap+".degrees", "degrees must be in (0, 90], got %g", s.Degrees)
			}
			if s.Step < 0 || math.IsNaN(s.Step) || math.IsInf(s.Step, 0) {
				return p.errf(ap+".step", "step must be a positive number, got %g", s.Step)
			}
		case ActionMask:
			s := r.Mask
			ap := cp + ".mask"
			if s.KeepPrefix < 0 || s.KeepSuffix < 0 {
				return p.errf(ap, "keep_prefix and keep_suffix must be >= 0")
			}
			if s.Char != "" && len([]rune(s.Char)) != 1 {
				return p.errf(ap+".char", "char must be one character, got %q", s.Char)
			}
			if s.Width < 0 || s.Width > 0 && s.Width <= s.KeepPrefix+s.KeepSuffix {
				return p.errf(ap+".width", "width must be greater than keep_prefix + keep_suffix (%d), got %d", s.KeepPrefix+s.KeepSuffix, s.Width)
			}
		}
	}
	if p.OptOut != nil {
		o := p.OptOut
		if o.File == "" {
			return p.errf("opt_out.file", "missing file")
		}
		if o.Form != "clear" && o.Form != "pseudonym" {
			return p.errf("opt_out.form", "form must be clear or pseudonym, got %q", o.Form)
		}
		if o.Form == "pseudonym" && subj.Action != ActionPseudonymize {
			return p.errf("opt_out.form", "form pseudonym needs the subject column %q to be pseudonymized", p.Subject)
		}
		if o.Domain == "" {
			return p.errf("opt_out.domain", "missing domain (the list is held keyed under it)")
		}
		if _, ok := parseNormMode(o.Normalize); !ok {
			return p.errf("opt_out.normalize", "normalize must be text, vin or exact, got %q", o.Normalize)
		}
	}
	if err := p.validateKAnon(); err != nil {
		return err
	}
	if err := p.validateMobility(); err != nil {
		return err
	}
	if err := p.validateMicroaggregate(); err != nil {
		return err
	}
	return p.validateRelease()
}

func (p *Policy) validateHierarchy(path string, h HierarchySpec) error {
	if !slices.Contains(hierarchyTypes, h.Type) {
		return p.errf(path+".type", "type %q: want one of %s", h.Type, strings.Join(hierarchyTypes, ", "))
	}
	switch h.Type {
	case "interval":
		if !(h.Width > 0) {
			return p.errf(path+".width", "interval hierarchy needs width > 0")
		}
		if h.FanOut < 2 {
			return p.errf(path+".fan_out", "interval hierarchy needs fan_out >= 2")
		}
		if h.Height < 1 || h.Height > 32 {
			return p.errf(path+".height", "interval hierarchy needs height in 1..32")
		}
		if !(h.Min < h.Max) {
			return p.errf(path+".max", "interval hierarchy needs min < max (the range of valid values)")
		}
	case "mask":
		if h.MaxMasked < 1 {
			return p.errf(path+".max_masked", "mask hierarchy needs max_masked >= 1")
		}
	case "table":
		if h.File == "" {
			return p.errf(path+".file", "table hierarchy needs a file")
		}
		if len([]rune(h.Separator)) > 1 {
			return p.errf(path+".separator", "separator must be one character")
		}
	}
	if h.Type != "interval" && (h.Width != 0 || h.FanOut != 0 || h.Height != 0 || h.Origin != 0 || h.Min != 0 || h.Max != 0) {
		return p.errf(path, "width, fan_out, height, origin, min and max only apply to type interval")
	}
	if h.Type != "mask" && h.MaxMasked != 0 {
		return p.errf(path+".max_masked", "max_masked only applies to type mask")
	}
	if h.Type != "table" && (h.File != "" || h.Separator != "") {
		return p.errf(path, "file and separator only apply to type table")
	}
	return nil
}

func (p *Policy) validateKAnon() error {
	k := p.KAnon
	if k == nil {
		for _, r := range p.Columns {
			if r.Action == ActionGeneralize && r.Generalize == nil {
				return p.errf("columns."+r.Name, "generalize without options needs a kanon block listing %q", r.Name)
			}
		}
		return nil
	}
	if len(k.QuasiIdentifiers) == 0 {
		return p.errf("kanon.quasi_identifiers", "missing quasi_identifiers")
	}
	if k.K < 2 {
		return p.errf("kanon.k", "k must be >= 2, got %d", k.K)
	}
	if k.Suppression < 0 || k.Suppression >= 1 {
		return p.errf("kanon.suppression", "suppression must be in [0, 1), got %g", k.Suppression)
	}
	if k.Metric == "" {
		return p.errf("kanon.metric", "missing metric (one of %s)", strings.Join(kanonMetrics, ", "))
	}
	if !slices.Contains(kanonMetrics, k.Metric) {
		return p.errf("kanon.metric", "metric %q: want one of %s", k.Metric, strings.Join(kanonMetrics, ", "))
	}
	seen := map[string]bool{}
	for i, q := range k.QuasiIdentifiers {
		qp := fmt.Sprintf("kanon.quasi_identifiers[%d]", i)
		if seen[q] {
			return p.errf(qp, "%q listed twice", q)
		}
		seen[q] = true
		r, ok := p.Columns.Lookup(q)
		if !ok {
			return p.errf(qp, "quasi-identifier %q is not named under columns", q)
		}
		if r.Action != ActionGeneralize {
			return p.errf(qp, "quasi-identifier %q must have action generalize, has %s", q, r.Action)
		}
		h, ok := k.Hierarchies[q]
		if !ok {
			return p.errf("kanon.hierarchies", "missing hierarchy for quasi-identifier %q", q)
		}
		if err := p.validateHierarchy("kanon.hierarchies."+q, h); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(k.Hierarchies) {
		if !seen[name] {
			return p.errf("kanon.hierarchies."+name, "hierarchy for %q, which is not a quasi-identifier", name)
		}
	}
	if l := k.L; l != nil {
		if l.Sensitive == "" {
			return p.errf("kanon.l.sensitive", "missing sensitive column")
		}
		if _, ok := p.Columns.Lookup(l.Sensitive); !ok || seen[l.Sensitive] {
			return p.errf("kanon.l.sensitive", "sensitive column %q must be named under columns and not be a quasi-identifier", l.Sensitive)
		}
		if l.L < 2 {
			return p.errf("kanon.l.l", "l must be >= 2, got %g", l.L)
		}
		switch l.Variant {
		case "distinct", "entropy":
		case "recursive":
			if l.C <= 0 {
				return p.errf("kanon.l.c", "recursive l-diversity needs c > 0")
			}
		default:
			return p.errf("kanon.l.variant", "variant %q: want distinct, entropy or recursive", l.Variant)
		}
	}
	if t := k.T; t != nil {
		if t.Sensitive == "" {
			return p.errf("kanon.t.sensitive", "missing sensitive column")
		}
		if _, ok := p.Columns.Lookup(t.Sensitive); !ok || seen[t.Sensitive] {
			return p.errf("kanon.t.sensitive", "sensitive column %q must be named under columns and not be a quasi-identifier", t.Sensitive)
		}
		if t.T <= 0 || t.T >= 1 {
			return p.errf("kanon.t.t", "t must be in (0, 1), got %g", t.T)
		}
		if t.Distance != "equal" && t.Distance != "ordered" {
			return p.errf("kanon.t.distance", "distance %q: want equal or ordered", t.Distance)
		}
	}
	return p.validateSensitive()
}

func (p *Policy) validateMobility() error {
	m := p.Mobility
	if m == nil {
		return nil
	}
	for _, c := range []struct{ key, col string }{{"time", m.Time}, {"lat", m.Lat}, {"lon", m.Lon}} {
		if c.col == "" {
			return p.errf("mobility."+c.key, "missing %s column", c.key)
		}
		if _, ok := p.Columns.Lookup(c.col); !ok {
			return p.errf("mobility."+c.key, "column %q is not named under columns", c.col)
		}
	}
	for _, c := range []struct{ key, col string }{{"lat", m.Lat}, {"lon", m.Lon}} {
		if r, _ := p.Columns.Lookup(c.col); r.Action != ActionDrop {
			return p.errf("columns."+c.col, "%q is the mobility %s column: it is replaced by the cell column, so its action must be drop", c.col, c.key)
		}
	}
	if m.TripGap <= 0 {
		return p.errf("mobility.trip_gap", "missing trip_gap")
	}
	if m.TrimMetres < 0 {
		return p.errf("mobility.trim_metres", "trim_metres must be >= 0")
	}
	if m.TrimMetres == 0 && m.TrimTime == 0 {
		return p.errf("mobility", "give trim_metres or trim_time: untrimmed trip ends reveal homes and workplaces")
	}
	if m.CellResolution < 0 || m.CellResolution > 15 {
		return p.errf("mobility.cell_resolution", "cell_resolution must be in 0..15, got %d", m.CellResolution)
	}
	if m.CellColumn == "" {
		return p.errf("mobility.cell_column", "missing cell_column (the name of the added cell column)")
	}
	if _, ok := p.Columns.Lookup(m.CellColumn); ok {
		return p.errf("mobility.cell_column", "cell column %q clashes with an input column", m.CellColumn)
	}
	if m.K < 2 {
		return p.errf("mobility.k", "k (distinct subjects per cell and time bucket) must be >= 2, got %d", m.K)
	}
	if r, _ := p.Columns.Lookup(m.Time); r.Action != ActionCoarsen || r.Coarsen.Time <= 0 {
		return p.errf("columns."+m.Time, "%q is the mobility time column: its action must be {coarsen: {time: BUCKET}} so that cells are counted per time bucket", m.Time)
	}
	switch m.Scope {
	case "subject":
		if m.TripIDColumn != "" {
			return p.errf("mobility.trip_id_column", "trip_id_column only applies to scope trip")
		}
	case "trip":
		if m.TripIDColumn == "" {
			return p.errf("mobility.trip_id_column", "scope trip needs trip_id_column (the name of the added trip id column)")
		}
		if p.knownInput(m.TripIDColumn) || m.TripIDColumn == m.CellColumn {
			return p.errf("mobility.trip_id_column", "trip id column %q clashes with another column", m.TripIDColumn)
		}
		if r, _ := p.Columns.Lookup(p.Subject); r.Action != ActionDrop {
			return p.errf("columns."+p.Subject, "with mobility scope trip the subject column must be dropped: a pseudonym would link the trips again")
		}
	default:
		return p.errf("mobility.scope", "scope must be subject or trip, got %q", m.Scope)
	}
	switch m.Endpoints {
	case "", "drop":
	case "detach":
		if m.Scope != "trip" {
			return p.errf("mobility.endpoints", "endpoints detach needs scope trip: a detached reading that keeps the subject points at its home again")
		}
	default:
		return p.errf("mobility.endpoints", "endpoints must be drop or detach, got %q", m.Endpoints)
	}
	if m.TraceK != 0 {
		if m.Scope != "trip" {
			return p.errf("mobility.trace_k", "trace_k needs scope trip")
		}
		if m.TraceK < 2 {
			return p.errf("mobility.trace_k", "trace_k must be >= 2 (or absent), got %d", m.TraceK)
		}
	}
	if m.UnicityPoints < 0 {
		return p.errf("mobility.unicity_points", "unicity_points must be >= 1")
	}
	if err := p.validateLinkage(); err != nil {
		return err
	}
	if u := m.Utility; u != nil {
		r, ok := p.Columns.Lookup(u.Column)
		if u.Column == "" || !ok {
			return p.errf("mobility.utility.column", "utility column %q is not a policy column", u.Column)
		}
		if r.Action != ActionKeep && r.Action != ActionMicroaggregate && (r.Action != ActionCoarsen || r.Coarsen.Step == 0) {
			return p.errf("mobility.utility.column", "utility column %q must be published as a number: keep, microaggregate or coarsen step (its action is %s)", u.Column, r.Action)
		}
		if u.MinSubjects < 0 {
			return p.errf("mobility.utility.min_subjects", "min_subjects must be >= 1 (or absent), got %d", u.MinSubjects)
		}
		if u.Tolerance < 0 || u.Tolerance >= 1 || math.IsNaN(u.Tolerance) {
			return p.errf("mobility.utility.tolerance", "tolerance must be in [0, 1), got %g", u.Tolerance)
		}
	}
	return nil
}

func (p *Policy) validateRelease() error {
	r := p.Release
	if r == nil {
		return nil
	}
	if len(r.By) == 0 {
		return p.errf("release.by", "missing by (grouping columns)")
	}
	if r.HourOfDay != "" && !p.knownInput(r.HourOfDay) {
		return p.errf("release.hour_of_day", "column %q is not named under columns", r.HourOfDay)
	}
	if (r.HourOfDay != "") != slices.Contains(r.By, HourOfDayColumn) {
		return p.errf("release.hour_of_day", "hour_of_day and by: [..., %s] go together", HourOfDayColumn)
	}
	if r.CellResolution != 0 {
		if p.Mobility == nil || !slices.Contains(r.By, p.Mobility.CellColumn) {
			return p.errf("release.cell_resolution", "cell_resolution needs the mobility cell column in by")
		}
		if r.CellResolution < 0 || r.CellResolution > p.Mobility.CellResolution {
			return p.errf("release.cell_resolution", "cell_resolution must be in 0..%d (the mobility cell resolution), got %d", p.Mobility.CellResolution, r.CellResolution)
		}
	}
	if r.PublicPartitions != "" && r.Public != nil {
		return p.errf("release.public_partitions", "give public_partitions or public, not both")
	}
	if r.PublicPartitions != "" {
		r.Public = &PublicPartitionsPolicy{File: r.PublicPartitions}
	}
	if pp := r.Public; pp != nil {
		if (pp.File == "") == (len(pp.BBox) == 0) {
			return p.errf("release.public", "give exactly one of file and bbox")
		}
		if len(pp.BBox) > 0 {
			b := pp.BBox
			if len(b) != 4 {
				return p.errf("release.public.bbox", "bbox is [south, west, north, east], got %d numbers", len(b))
			}
			for _, v := range b {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return p.errf("release.public.bbox", "bbox values must be finite")
				}
			}
			if !(-90 <= b[0] && b[0] < b[2] && b[2] <= 90 && -180 <= b[1] && b[1] < b[3] && b[3] <= 180) {
				return p.errf("release.public.bbox", "bbox [%g, %g, %g, %g] is not [south, west, north, east] with south < north, west < east", b[0], b[1], b[2], b[3])
			}
			for i, c := range r.By {
				if c != HourOfDayColumn && (p.Mobility == nil || c != p.Mobility.CellColumn) {
					return p.errf(fmt.Sprintf("release.by[%d]", i), "a bbox generates only the mobility cell column and hour_of_day, not %q (use a partitions file)", c)
				}
			}
			if !slices.ContainsFunc(r.By, func(c string) bool { return c != HourOfDayColumn }) {
				return p.errf("release.public.bbox", "bbox needs the mobility cell column in by")
			}
		}
	}
	for i, b := range r.By {
		if b == HourOfDayColumn && r.HourOfDay != "" {
			continue
		}
		if !p.knownColumn(b) {
			return p.errf(fmt.Sprintf("release.by[%d]", i), "column %q is neither named under columns nor added by mobility", b)
		}
	}
	if !(r.Epsilon > 0) {
		return p.errf("release.epsilon", "epsilon must be > 0")
	}
	if r.Delta < 0 || r.Delta >= 1 {
		return p.errf("release.delta", "delta must be in [0, 1), got %g", r.Delta)
	}
	if r.Public == nil && r.Delta == 0 {
		return p.errf("release.delta", "private partition selection needs delta > 0 (or give public_partitions)")
	}
	if r.MaxPartitions < 1 {
		return p.errf("release.max_partitions", "max_partitions must be >= 1")
	}
	if r.MaxPerPartition < 1 {
		return p.errf("release.max_per_partition", "max_per_partition must be >= 1")
	}
	if !r.Count && len(r.Aggregates) == 0 {
		return p.errf("release", "nothing to release: set count: true or give aggregates")
	}
	for i, a := range r.Aggregates {
		ap := fmt.Sprintf("release.aggregates[%d]", i)
		if _, ok := p.Columns.Lookup(a.Column); !ok {
			return p.errf(ap+".column", "column %q is not named under columns", a.Column)
		}
		if !slices.Contains(aggregateKinds, a.Kind) {
			return p.errf(ap+".kind", "kind %q: want one of %s", a.Kind, strings.Join(aggregateKinds, ", "))
		}
		if !(a.Lower < a.Upper) {
			return p.errf(ap, "need lower < upper, got [%g, %g]", a.Lower, a.Upper)
		}
		if a.Kind == "quantiles" {
			if len(a.Quantiles) == 0 {
				return p.errf(ap+".quantiles", "missing quantiles")
			}
			for _, q := range a.Quantiles {
				if q < 0 || q > 1 {
					return p.errf(ap+".quantiles", "quantiles must be in [0, 1], got %g", q)
				}
			}
		} else if len(a.Quantiles) > 0 {
			return p.errf(ap+".quantiles", "quantiles only apply to kind quantiles")
		}
	}
	return nil
}

func (p *Policy) knownColumn(name string) bool {
	if p.knownInput(name) {
		return true
	}
	return p.Mobility != nil && (p.Mobility.CellColumn == name || (p.Mobility.TripIDColumn != "" && p.Mobility.TripIDColumn == name))
}

func (p *Policy) knownInput(name string) bool {
	_, ok := p.Columns.Lookup(name)
	return ok
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
