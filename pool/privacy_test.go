package pool

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ks2 is the two-sample Kolmogorov–Smirnov distance.
func ks2(a, b []float64) float64 {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	var d float64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] == x {
			i++
		}
		for j < len(b) && b[j] == x {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

// ksUniform is the one-sample KS distance from U(0, 1).
func ksUniform(a []float64) float64 {
	a = slices.Clone(a)
	slices.Sort(a)
	n := float64(len(a))
	var d float64
	for i, x := range a {
		d = max(d, math.Abs(float64(i+1)/n-x), math.Abs(x-float64(i)/n))
	}
	return d
}

// ksAlpha is the significance of every KS test below: 10⁻⁴ each, so the
// eight tests together reject falsely with probability < 0.1%.
const ksAlpha = 1e-4

func ksC() float64 { return math.Sqrt(-math.Log(ksAlpha/2) / 2) }

// unitOf maps a field element's encoding (16 bytes, little-endian) to
// [0, 1) by its high 64 bits: uniform elements give uniform values.
func unitOf(b []byte) float64 {
	return float64(binary.LittleEndian.Uint64(b[8:16])) / math.Exp2(64)
}

// TestSharesIndependentOfValues: what one aggregator holds about a member —
// its share of the member's data (the prep state's output share) and the
// prep share it sends the other aggregator — has the same distribution
// whether the member's values are all zero or all at the maximum, and is
// uniform. 200 reports per input; two-sample and uniformity KS tests at
// α = 10⁻⁴ each. The same test on the plaintext tells the inputs apart (the
// test has power).
func TestSharesIndependentOfValues(t *testing.T) {
	tp := newTestPool(t, 1, testRelease(), testSegs(4), nil)
	p := tp.cfg.plan
	high := make([]uint64, p.length)
	for i := range high {
		high[i] = 1<<p.bits - 1
	}
	inputs := [][]uint64{make([]uint64, p.length), high}
	const reports = 200
	type view struct{ outShare, prepShare [2][]float64 } // per aggregator
	var views [2]view
	var plain [2][]float64
	for in, meas := range inputs {
		for range reports {
			c, err := contribute(tp.cfg, tp.members[0], tp.members[0].ID(), meas, nil)
			if err != nil {
				t.Fatal(err)
			}
			var preps [2]*Prepared
			for agg := range 2 {
				var peer []byte
				if agg == helper {
					peer = preps[leader].File
				}
				up := []Upload{{Name: "m", Manifest: c.Manifest, Share: c.Uploads[agg]}}
				if preps[agg], err = Prepare(tp.cfg, tp.aggs[agg], up, PrepareOptions{Peer: peer, Ledger: tp.ledgers[agg]}); err != nil {
					t.Fatal(err)
				}
				var st prepState
				if err := json.Unmarshal(preps[agg].State, &st); err != nil {
					t.Fatal(err)
				}
				f, _, err := parseSigned(preps[agg].File, kindPrep)
				if err != nil {
					t.Fatal(err)
				}
				var pb prepBody
				if err := decodeBody(f.Body, &pb); err != nil {
					t.Fatal(err)
				}
				views[in].outShare[agg] = append(views[in].outShare[agg], unitOf(st.Entries[0].State))
				views[in].prepShare[agg] = append(views[in].prepShare[agg], unitOf(pb.Accepted[0].PrepShare))
			}
			plain[in] = append(plain[in], float64(meas[0])/math.Exp2(float64(p.bits)))
		}
	}
	two := ksC() * math.Sqrt(2.0/reports)
	one := ksC() / math.Sqrt(reports)
	for agg := range 2 {
		for _, v := range []struct {
			name string
			a, b []float64
		}{
			{"output share", views[0].outShare[agg], views[1].outShare[agg]},
			{"prep share", views[0].prepShare[agg], views[1].prepShare[agg]},
		} {
			if d := ks2(v.a, v.b); d > two {
				t.Errorf("the %s's %s depends on the member's values: KS %.3f > %.3f", roleNames[agg], v.name, d, two)
			}
			if d := ksUniform(v.b); d > one {
				t.Errorf("the %s's %s is not uniform: KS %.3f > %.3f", roleNames[agg], v.name, d, one)
			}
		}
	}
	if d := ks2(plain[0], plain[1]); d <= two {
		t.Errorf("the test cannot tell the plaintexts apart (KS %.3f): it has no power", d)
	}
}

// TestNoFileHoldsATotal: after a round through files — without noise, the
// strictest case — no member file (manifest, uploads) and no aggregator file
// (prep files, private states, ledgers, shares) holds a member's
// per-partition value or a pooled total: not as 64-bit or field-element
// bytes (raw or inside base64), not as decimal text.
func TestNoFileHoldsATotal(t *testing.T) {
	mem := memory.NewGoAllocator()
	tp := newTestPool(t, 3, testRelease(), testSegs(6), nil)
	p := tp.cfg.plan
	contribs, meas := tp.contributeFleets(t, mem, 60, 6, 40)
	res, round, err := tp.runFiles(t, contribs, [2]noiseSource{zeroNoise{}, zeroNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	// Every number worth hiding: members' entries and the pooled totals,
	// as integers and (sums, means) as the released decimal text.
	var ints []int64
	for _, m := range meas {
		for _, v := range m {
			ints = append(ints, int64(v))
		}
	}
	ints = append(ints, res.totals...)
	var needles [][]byte
	for _, v := range ints {
		if v == 0 {
			continue // an empty partition is no secret
		}
		needles = append(needles, binary.LittleEndian.AppendUint64(nil, uint64(v)))
		f := fieldFromInt(v)
		fb, _ := f.MarshalBinary()
		needles = append(needles, fb)
	}
	na := len(p.aggs)
	for i := range p.rows {
		for j, a := range p.aggs {
			if a.kind != "count" && res.totals[i*na+j] != 0 {
				s := strconv.FormatFloat(float64(res.totals[i*na+j])*a.unit, 'f', -1, 64)
				if bytes.ContainsRune([]byte(s), '.') {
					needles = append(needles, []byte(s))
				}
			}
		}
	}
	files := 0
	for _, dir := range []string{filepath.Join(round, "uploads"), filepath.Join(round, "prep"), filepath.Join(round, "shares"), filepath.Join(tp.dir, "state")} {
		filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files++
			hay := append([][]byte{b}, base64Blobs(b)...)
			for _, h := range hay {
				for _, n := range needles {
					if bytes.Contains(h, n) {
						t.Errorf("%s holds a plaintext value (%x)", path, n)
					}
				}
			}
			return nil
		})
	}
	if files < 3*3+2+2+2+2 {
		t.Errorf("searched only %d files", files)
	}
	// The search has power: a file holding a member's entries in clear, or
	// the release's text, would be caught.
	var clear []byte
	for _, v := range meas[0] {
		clear = binary.LittleEndian.AppendUint64(clear, v)
	}
	found := 0
	for _, n := range needles {
		if bytes.Contains(clear, n) {
			found++
		}
	}
	if found == 0 {
		t.Error("the search would not find a member's entries in clear")
	}
}

// base64Blobs decodes every JSON string in b that is valid base64 of at
// least 16 bytes (the blobs inside signed files and states).
func base64Blobs(b []byte) [][]byte {
	var out [][]byte
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if d, err := base64.StdEncoding.DecodeString(x); err == nil && len(d) >= 16 {
				out = append(out, d)
				out = append(out, base64Blobs(d)...)
			} else if len(x) > 0 && (x[0] == '{' || x[0] == '[') {
				out = append(out, base64Blobs([]byte(x))...)
			}
		}
	}
	var v any
	if json.Unmarshal(b, &v) == nil {
		walk(v)
	}
	return out
}
