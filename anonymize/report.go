package anonymize

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/tarnkappe/tarnkappe/dp"
	"github.com/tarnkappe/tarnkappe/linkage"
	"github.com/tarnkappe/tarnkappe/mobility"
)

// Report is the audit record of one run: what came in, what went out, what
// was done to every column, under which key ids, with which privacy
// guarantees and at which residual risk. It never contains key material and
// never lists opted-out subjects. Stages that did not run leave their block
// nil, and the JSON omits it.
type Report struct {
	// NotPrivate and Audience mark the report itself: every figure in it
	// is exact, computed from the raw data, for the data owner only; no
	// privacy guarantee covers it — not k-anonymity, not the DP release's
	// ε. The CLI writes it mode 0600. Outputs says what covers the files
	// that may be shared.
	NotPrivate bool   `json:"not_private"`
	Audience   string `json:"audience"`
	// Outputs says, for each file the run wrote, whether it may be
	// published and which guarantee covers it.
	Outputs []OutputGuarantee `json:"outputs"`

	Tool string `json:"tool"`
	// Version is the build of Tarnkappe that made the report (Version).
	Version string `json:"version"`
	Policy  string `json:"policy"`
	// PolicySHA256 is the SHA-256 of the policy file's bytes, as
	// `sha256sum` prints it.
	PolicySHA256 string    `json:"policy_sha256"`
	Input        string    `json:"input,omitempty"`
	Output       string    `json:"output,omitempty"`
	Started      time.Time `json:"started"`
	Duration     float64   `json:"duration_seconds"`

	// InputDetails describe the input (InputReport).
	InputDetails *InputReport `json:"input_details,omitempty"`

	Rows RowCounts `json:"rows"`
	// Columns maps every input column (and every added column) to its action.
	Columns map[string]string `json:"columns"`
	// ColumnDetails says how each column was transformed, in output order.
	ColumnDetails []ColumnDetail `json:"column_details,omitempty"`
	// Keys maps keyring domain to key id. Never keys.
	Keys map[string]string `json:"keys"`

	// MaskedWhole maps every mask column to the rows whose value was no
	// longer than keep_prefix + keep_suffix and was therefore masked whole.
	MaskedWhole map[string]int64 `json:"masked_whole,omitempty"`

	OptOut   *OptOutReport   `json:"opt_out,omitempty"`
	Mobility *MobilityReport `json:"mobility,omitempty"`
	KAnon    *KAnonReport    `json:"kanon,omitempty"`
	Risk     *RiskReport     `json:"risk,omitempty"`
	DP       *DPReport       `json:"dp,omitempty"`
}

// OutputGuarantee says what covers one output of a run.
type OutputGuarantee struct {
	// Kind is "data" (the anonymised rows), "release" (the DP release) or
	// "report" (this report).
	Kind string `json:"kind"`
	File string `json:"file,omitempty"`
	// Published says whether the file may leave the data owner under the
	// guarantees listed.
	Published bool `json:"published"`
	// Guarantees are what the policy enforces on the file and the run
	// verified; Measured are figures measured on it (not guarantees:
	// estimates with their intervals, against the adversary named in
	// risk.method); Excluded what no guarantee of the file covers.
	Guarantees []string `json:"guarantees"`
	Measured   []string `json:"measured,omitempty"`
	Excluded   string   `json:"excluded,omitempty"`
}

// reportAudience is the Audience of every report.
const reportAudience = "data owner only: exact figures computed from the raw data (rows, counts, classes, risks, utility); no privacy guarantee covers them, not even the DP release's ε; do not publish this report"

// Warnings are findings about the input a person should act on although
// the run succeeded; the CLI prints them on stderr and the HTML report
// shows them. They never name a subject.
func (r *Report) Warnings() []string {
	var w []string
	if o := r.OptOut; o != nil && o.RowsNotNormalized > 0 {
		how := "the opt-out list matched them after normalisation, but"
		if o.Normalize == "exact" {
			how = "the opt-out list matched them as written (normalize exact), and"
		}
		w = append(w, fmt.Sprintf("%d rows have a subject value not in normal form (stray spaces, quotes, invisible characters, case or width variants; opt_out.normalize %s): %s later per-subject steps (k-anonymity, DP bounds, date shift, pseudonyms) count each spelling as a subject of its own; clean the subject column",
			o.RowsNotNormalized, o.Normalize, how))
	}
	for _, c := range sortedKeys(r.MaskedWhole) {
		if n := r.MaskedWhole[c]; n > 0 {
			w = append(w, fmt.Sprintf("column %q: %d rows had a value no longer than the mask's kept prefix and suffix; they were masked whole", c, n))
		}
	}
	return w
}

// InputReport describes the input a run read.
type InputReport struct {
	// Order says how the rows were read: "time" (in time order, as
	// ingestion produces them), "subject" (grouped by subject, each
	// subject's rows in time order), "sorted" (in neither: sorted by subject
	// and time first, in SortRuns runs spilled to encrypted scratch files,
	// 0 when it fitted in memory), or "as is" (the policy has no mobility
	// block, and no step depends on order).
	Order    string `json:"order"`
	SortRuns int    `json:"sort_runs,omitempty"`
	// SchemaSHA256 is the SHA-256 of the input's column names and types
	// (one line per column: quoted name, Arrow type, "nullable"): it says
	// which table layout the run read, and nothing of its values.
	SchemaSHA256 string `json:"schema_sha256"`
	// Bytes is the input file's size; 0 (absent) when the input was no
	// file (stdin, a reader). The row count is rows.in.
	Bytes int64 `json:"bytes,omitempty"`
	// Fingerprint is a keyed fingerprint of the input file's bytes (hex
	// HMAC-SHA256 of their SHA-256 under the keyring's key for
	// FingerprintDomain; key FingerprintKeyID), present when the run had a
	// file and a keyring. Keyed because a plain hash would let anyone with
	// a guess of the data confirm the guess (see FingerprintFiles); the
	// data owner recomputes it with `tarnkappe fingerprint`.
	Fingerprint      string `json:"fingerprint,omitempty"`
	FingerprintKeyID string `json:"fingerprint_key_id,omitempty"`
}

// RowCounts accounts for every input row: In = Out + Suppressed + Filtered.
type RowCounts struct {
	In         int64 `json:"in"`
	Out        int64 `json:"out"`
	Suppressed int64 `json:"suppressed"` // removed by k-anonymity
	Filtered   int64 `json:"filtered"`   // removed by opt-out and trip trimming
	// FilteredBy splits Filtered by reason ("opt_out", "trip_trim").
	FilteredBy map[string]int64 `json:"filtered_by,omitempty"`
}

// Check reports whether the accounting identity holds.
func (r RowCounts) Check() error {
	if r.In < 0 || r.Out < 0 || r.Suppressed < 0 || r.Filtered < 0 {
		return fmt.Errorf("row accounting: negative count in %+v", r)
	}
	if r.In != r.Out+r.Suppressed+r.Filtered {
		return fmt.Errorf("row accounting broken: in %d != out %d + suppressed %d + filtered %d", r.In, r.Out, r.Suppressed, r.Filtered)
	}
	var by int64
	for _, n := range r.FilteredBy {
		by += n
	}
	if len(r.FilteredBy) > 0 && by != r.Filtered {
		return fmt.Errorf("row accounting broken: filtered %d but reasons sum to %d", r.Filtered, by)
	}
	return nil
}

// ColumnDetail describes the transformation of one output or input column.
type ColumnDetail struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	Detail string `json:"detail,omitempty"`
}

// OptOutReport counts opt-outs. It never names a subject.
type OptOutReport struct {
	Listed    int    `json:"listed"`    // distinct subjects in the opt-out file, after normalisation
	Subjects  int    `json:"subjects"`  // distinct listed subjects seen in the input
	Rows      int64  `json:"rows"`      // rows removed
	Normalize string `json:"normalize"` // opt_out.normalize: text, vin or exact
	// RowsNotNormalized counts input rows whose subject value differs from
	// its normal form (under exact, the text form). Matching sees through
	// the difference; later per-subject steps do not (see Warnings).
	RowsNotNormalized int64 `json:"rows_not_normalized"`
}

// MobilityReport summarises trip processing.
type MobilityReport struct {
	// Trips is the number of trips the segmenter cut the readings into;
	// TrimmedRows the readings it dropped at trip ends (mobility.endpoints
	// drop; counted in rows.filtered).
	Trips          int64   `json:"trips"`
	TrimmedRows    int64   `json:"trimmed_rows"`
	TrimMetres     float64 `json:"trim_metres"`
	TrimSeconds    float64 `json:"trim_seconds"`
	CellColumn     string  `json:"cell_column,omitempty"`
	CellResolution int     `json:"cell_resolution,omitempty"`
	UnicityPoints  int     `json:"unicity_points,omitempty"`
	// K is the minimum of distinct subjects per (cell, time bucket);
	// SuppressedRows the rows removed for falling below it (counted in
	// rows.suppressed).
	K              int   `json:"k"`
	SuppressedRows int64 `json:"suppressed_rows"`
	// OutputGroups and OutputGroupsBelowK are the independent check over
	// the written rows: (cell, bucket) groups, and those with fewer than K
	// distinct subjects (the run fails unless 0).
	OutputGroups       int `json:"output_groups"`
	OutputGroupsBelowK int `json:"output_groups_below_k"`
	// SettleRounds, SettleCellGroups and SettleClasses describe the fixed
	// point of cell-hour k and k-anonymity: spill reads, and the cell-hours
	// and classes suppressed in addition because the other suppression
	// thinned them out.
	SettleRounds     int    `json:"settle_rounds,omitempty"`
	SettleCellGroups int    `json:"settle_cell_groups,omitempty"`
	SettleClasses    int    `json:"settle_classes,omitempty"`
	Scope            string `json:"scope"`
	// TraceK is trace-level k-anonymity (scope trip): a trip keeps its id
	// only when TraceK vehicles made a trip with the same cell-hour trace.
	TraceK int `json:"trace_k,omitempty"`
	// Scope trip, all counted on the written rows (what the output file
	// holds): TripsPublished is the number of distinct trip ids,
	// RowsWithTripID and RowsWithoutTripID the rows with and without one
	// (they add up to rows.out). A row without one is either a trip end the
	// segmenter detached (RowsDetachedEnds, mobility.endpoints detach) or a
	// row of a trip the trace gate did not publish (RowsDetached). Rows
	// suppressed or trimmed are counted there only. Zero counts are
	// omitted.
	TripsPublished    int   `json:"trips_published,omitempty"`
	RowsWithTripID    int64 `json:"rows_with_trip_id,omitempty"`
	RowsWithoutTripID int64 `json:"rows_without_trip_id,omitempty"`
	RowsDetachedEnds  int64 `json:"rows_detached_ends,omitempty"`
	RowsDetached      int64 `json:"rows_detached,omitempty"`
	// Utility compares the per-(cell, bucket) mean of a column in the
	// output with the raw data (mobility.utility in the policy).
	Utility *UtilityReport `json:"utility,omitempty"`
}

// UtilityReport is the utility figure of the movement output: how many raw
// (cell, bucket) groups with at least MinSubjects vehicles keep their mean
// within Tolerance relative error in the output.
type UtilityReport struct {
	Column        string  `json:"column"`
	BucketSeconds float64 `json:"bucket_seconds"`
	mobility.MeanComparison
	// WithinFraction is Within / Groups (0 when there are no groups).
	WithinFraction float64 `json:"within_fraction"`
	// WindowDays is the time window the figure covers (from the earliest
	// bucket of the first batch: memory bound); Windowed says whether the
	// data extended beyond it.
	WindowDays float64 `json:"window_days"`
	Windowed   bool    `json:"windowed"`
}

// KAnonReport records the k-anonymity stage.
type KAnonReport struct {
	K                int      `json:"k"`
	QuasiIdentifiers []string `json:"quasi_identifiers"`
	// PerSubject is true when classes count distinct subjects, not rows.
	PerSubject bool `json:"per_subject"`
	// Subject is the column whose distinct values the classes count, when
	// PerSubject.
	Subject string `json:"subject,omitempty"`
	// OutputCheck says what the written file alone can confirm of K:
	// "rows" (the run counted rows), "subject" (the subject column is
	// written: verify --subject counts as the run did) or
	// "subject_not_written" (it is not: the file confirms only that no
	// class has fewer than K rows; K in subjects rests on Verified).
	OutputCheck string `json:"output_check"`
	// VerifyCommand is the tarnkappe verify command that checks the
	// written file as far as OutputCheck allows.
	VerifyCommand string `json:"verify_command"`
	// Transformation maps each quasi-identifier to its chosen hierarchy level.
	Transformation map[string]int `json:"transformation"`
	// InformationLoss maps metric name to value (lower is better).
	InformationLoss map[string]float64 `json:"information_loss"`
	// ColumnLoss maps each quasi-identifier to its own loss in [0,1].
	ColumnLoss map[string]float64 `json:"column_loss,omitempty"`
	Classes    int                `json:"classes"`
	// SmallestClass is the size of the smallest written class: in
	// subjects when PerSubject (the figure to hold against K), else in
	// rows.
	SmallestClass int64 `json:"smallest_class"`
	// ClassSizes is a histogram of equivalence-class sizes after
	// generalisation and suppression, in bins that double from K.
	ClassSizes        []SizeBin `json:"class_sizes,omitempty"`
	SuppressedClasses int       `json:"suppressed_classes"`
	Verified          bool      `json:"verified"` // independent verifier agreed (k, and l/t when set)
	// LDiversity and TCloseness are the models of the sensitive column
	// (kanon.l, kanon.t), when the policy sets them; Verified covers them.
	LDiversity *LDiversityReport `json:"l,omitempty"`
	TCloseness *TClosenessReport `json:"t,omitempty"`
	// SensitiveCounted says what a class's sensitive distribution counts:
	// "subjects" (each subject once, with its one value) or "rows".
	SensitiveCounted string `json:"sensitive_counted,omitempty"`
	// DiversitySuppressedClasses counts the classes suppressed because they
	// failed l or t while they had k members (included in SuppressedClasses).
	DiversitySuppressedClasses int `json:"diversity_suppressed_classes,omitempty"`
}

// LDiversityReport is the l-diversity requirement the output was checked for.
type LDiversityReport struct {
	Sensitive string  `json:"sensitive"`
	L         float64 `json:"l"`
	Variant   string  `json:"variant"`
	C         float64 `json:"c,omitempty"`
}

// TClosenessReport is the t-closeness requirement the output was checked
// for; distances are to the sensitive distribution of the members the
// search counted (before suppression).
type TClosenessReport struct {
	Sensitive string  `json:"sensitive"`
	T         float64 `json:"t"`
	Distance  string  `json:"distance"`
}

// SizeBin is one bar of a class-size histogram: classes with Min..Max members.
type SizeBin struct {
	Min     int64 `json:"min"`
	Max     int64 `json:"max"`
	Classes int64 `json:"classes"`
}

// RiskReport gives re-identification risk before and after the policy.
type RiskReport struct {
	Before RiskMeasures `json:"before"`
	After  RiskMeasures `json:"after"`
	// UnicityNote says how unicity and linkage were measured, in words.
	UnicityNote string `json:"unicity_note,omitempty"`
	// Method says how the unicity and linkage figures were measured (with
	// a mobility block): who the adversary is, the precision of a point,
	// the samples.
	Method *RiskMethod `json:"method,omitempty"`
	// NotComputed says why this engine did not measure unicity and
	// linkage (the fields above are then absent).
	NotComputed string `json:"not_computed,omitempty"`
}

// RiskMeasures are re-identification risks in [0,1]. Nil means not computed.
type RiskMeasures struct {
	Prosecutor *float64 `json:"prosecutor,omitempty"`
	Journalist *float64 `json:"journalist,omitempty"`
	Marketer   *float64 `json:"marketer,omitempty"`
	// Unicity is the share of traces that Method.Points points drawn at
	// random from them single out, at the published precision (every
	// published column, Method.Precision), before the policy (raw subjects'
	// readings projected to that precision) and after it (published
	// traces): the two are comparable.
	Unicity *float64 `json:"unicity,omitempty"`
	// UnicityCI is the 95% confidence interval of Unicity.
	UnicityCI []float64 `json:"unicity_ci,omitempty"`
	// UnicityRawGPS (before only) is the unicity of the raw subjects at the
	// input's own precision (lat, lon, ts as given): what the raw data
	// reveals, not comparable with the figures at published precision.
	UnicityRawGPS   *float64  `json:"unicity_raw_gps,omitempty"`
	UnicityRawGPSCI []float64 `json:"unicity_raw_gps_ci,omitempty"`
	// Linkage (after only) is the share of published traces whose
	// published points are contained in the raw readings of exactly one
	// subject: an adversary who holds the raw readings and knows the
	// policy names the trace's subject. LinkageCorrect is the share linked
	// to the right subject (the run knows the truth).
	Linkage          *float64  `json:"linkage,omitempty"`
	LinkageCI        []float64 `json:"linkage_ci,omitempty"`
	LinkageCorrect   *float64  `json:"linkage_correct,omitempty"`
	LinkageCorrectCI []float64 `json:"linkage_correct_ci,omitempty"`
}

// RiskMethod describes the unicity and linkage measurement.
type RiskMethod struct {
	// Adversary says whom the figures are about.
	Adversary string `json:"adversary"`
	// Points is p: the points of a trace the unicity adversary knows.
	Points int `json:"points"`
	// Precision are the columns of a point: every published column but
	// the trace's unit, each at its published precision; RawGPSPrecision
	// those of risk.before.unicity_raw_gps.
	Precision       []string `json:"precision"`
	RawGPSPrecision []string `json:"raw_gps_precision"`
	// SubjectsSampled is the keyed uniform sample of raw subjects the
	// unicity before is measured on (SubjectsCensus: all of them); the
	// point shares are 1, or the keyed share of distinct points eligible
	// when there were more than memory holds.
	SubjectsSampled  int     `json:"subjects_sampled"`
	SubjectsCensus   bool    `json:"subjects_census"`
	PointShare       float64 `json:"point_share"`
	RawGPSSubjects   int     `json:"raw_gps_subjects_sampled"`
	RawGPSPointShare float64 `json:"raw_gps_point_share"`
	// TracesSampled is the keyed uniform sample of published traces the
	// unicity after and the linkage are measured on (TracesCensus: all of
	// them); TracesEvicted the traces left out to stay within memory.
	TracesSampled int  `json:"traces_sampled"`
	TracesCensus  bool `json:"traces_census"`
	TracesEvicted int  `json:"traces_evicted,omitempty"`
	// MaxLinkage is the policy's limit (mobility.max_linkage), if any:
	// the run fails when the linkage may exceed it (the upper end of its
	// interval on a sample, the figure itself on a census).
	MaxLinkage float64 `json:"max_linkage,omitempty"`
	// LinkageWithout is the linkage of the first LinkageDiagnosed sampled
	// traces with each column left out of the points in turn;
	// LinkageDrivers the columns left out one after the other, each the one
	// that lowered it most, with the linkage after: what drives it.
	LinkageDiagnosed int                `json:"linkage_diagnosed,omitempty"`
	LinkageWithout   map[string]float64 `json:"linkage_without,omitempty"`
	LinkageDrivers   []ColumnLinkage    `json:"linkage_drivers,omitempty"`
}

// ColumnLinkage is the linkage measured with a column (and the ones named
// before it in LinkageDrivers) left out of the points.
type ColumnLinkage = linkage.ColumnLinkage

// DPReport records the differentially private release.
type DPReport struct {
	EpsilonSpent float64  `json:"epsilon_spent"`
	DeltaSpent   float64  `json:"delta_spent"`
	By           []string `json:"by"`
	// Partitions is the number of partitions released.
	Partitions int      `json:"partitions"`
	Aggregates []string `json:"aggregates"`
	Output     string   `json:"output,omitempty"`
	// Selection says how the partitions were chosen: "public" (a list fixed
	// without looking at the data, PublicPartitions long; every one is
	// released, with noise over zero where the data has none) or "private"
	// (differentially private partition selection, which spends budget and
	// drops partitions with few subjects).
	Selection        string `json:"selection"`
	PublicPartitions int    `json:"public_partitions,omitempty"`
	// HourOfDay is the timestamp column whose UTC hour forms the
	// hour_of_day key, if any.
	HourOfDay string `json:"hour_of_day,omitempty"`
	// CellResolution is the H3 resolution of the released cell key when
	// coarser than the output's cells.
	CellResolution int `json:"cell_resolution,omitempty"`
	// The policy's budget and contribution bounds per subject.
	EpsilonBudget   float64 `json:"epsilon_budget"`
	DeltaBudget     float64 `json:"delta_budget"`
	MaxPartitions   int     `json:"max_partitions"`
	MaxPerPartition int     `json:"max_per_partition"`
	// Verdict says in a sentence how much the release says, from the share
	// of its intervals that are narrow (dp.Result.Verdict: a mean's
	// interval narrower than half its clamp range, a count's or sum's
	// error at most half its value), per aggregate.
	Verdict *dp.Verdict `json:"verdict,omitempty"`
	// PartitionValues are the released partitions as the release file
	// holds them: key, and each aggregate's value and 95 % interval.
	PartitionValues []DPPartitionValues `json:"partition_values,omitempty"`
}

// DPPartitionValues are one released partition: its key (column → value as
// text) and the published value and interval of every aggregate that has
// one (count, sum, mean).
type DPPartitionValues struct {
	Key    map[string]string     `json:"key"`
	Values map[string]DPInterval `json:"values"`
}

// DPInterval is a published value and its confidence interval.
type DPInterval struct {
	Value float64 `json:"value"`
	Low   float64 `json:"ci_low"`
	High  float64 `json:"ci_high"`
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("anonymize.Report.WriteJSON: %w", err)
	}
	return nil
}

func ptr(f float64) *float64 { return &f }
