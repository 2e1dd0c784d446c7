package brakedisc

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/tarnkappe/tarnkappe/pseudonym"
)

// Geometry: positions are kept in metres east (x) and north (y) of
// Marienplatz; the region is small enough for an equirectangular projection.
const (
	refLat      = 48.1372
	refLon      = 11.5755
	mPerDegLat  = 111_320.0
	minLat      = 47.95
	maxLat      = 48.35
	minLon      = 11.25
	maxLon      = 11.85
	streamFleet = 0x6272616b65646973 // "brakedis": the fleet's attribute stream
)

func mPerDegLon() float64 { return mPerDegLat * math.Cos(refLat*math.Pi/180) }

type point struct{ x, y float64 }

func fromLatLon(lat, lon float64) point {
	return point{x: (lon - refLon) * mPerDegLon(), y: (lat - refLat) * mPerDegLat}
}

func (p point) latLon() (lat, lon float64) {
	return refLat + p.y/mPerDegLat, refLon + p.x/mPerDegLon()
}

func dist(a, b point) float64 { return math.Hypot(a.x-b.x, a.y-b.y) }

// clampRegion keeps a point inside the simulated box (with a 300 m margin
// so GPS noise cannot push a reading out).
func clampRegion(p point) point {
	lat, lon := p.latLon()
	lat = min(max(lat, minLat+0.003), maxLat-0.003)
	lon = min(max(lon, minLon+0.004), maxLon-0.004)
	return fromLatLon(lat, lon)
}

// staticVehicle is what does not change while a vehicle drives.
type staticVehicle struct {
	vin               string
	makeIdx, modelIdx int32 // indices into the make and model dictionaries
	modelYear         int64
	postcodeIdx       int32
	birthYear         int64
	sexIdx            int32 // 0 "F", 1 "M"
	massKg            float64
	home, work        point
	others            [3]point
	otherCum          [3]float64 // cumulative choice weights of others
	commuter          bool
	pCommute          float64 // probability of driving to work on a weekday
	departH, returnH  float64 // habitual commute times, hours
	errandRate        float64 // errands per weekday (weekends 1.6x)
	roamer            bool    // taxi/trades: many trips between arbitrary places
	taxi              bool    // Config.Taxis: fares back to back through the day
	speedFactor       float64 // driver style
	accel, decel      float64 // m/s², comfortable
	padStart          float64 // pad thickness at Start, mm
	oneOffSigma       float64
}

// fleetDicts are the fixed dictionaries the columns index into.
type fleetDicts struct {
	makes, models, postcodes []string
	vins                     []string
}

// cumulative returns running sums of w.
func cumulative(w []float64) []float64 {
	c := make([]float64, len(w))
	s := 0.0
	for i, x := range w {
		s += x
		c[i] = s
	}
	return c
}

// pick draws an index with probability proportional to the weights whose
// running sums are cum.
func pick(r *rand.Rand, cum []float64) int {
	u := r.Float64() * cum[len(cum)-1]
	return sort.SearchFloat64s(cum, u)
}

// buildFleet draws every vehicle's static attributes from the fleet stream.
func buildFleet(cfg Config) ([]staticVehicle, fleetDicts) {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), streamFleet))
	cat := catalogue()
	ar := areas()
	hb := hubs()

	var d fleetDicts
	makeW := make([]float64, len(cat))
	modelBase := make([]int32, len(cat))
	for i, m := range cat {
		makeW[i] = m.share
		d.makes = append(d.makes, m.name)
		modelBase[i] = int32(len(d.models))
		for _, mo := range m.models {
			d.models = append(d.models, mo.name)
		}
	}
	makeCum := cumulative(makeW)
	areaW := make([]float64, len(ar))
	for i, a := range ar {
		areaW[i] = a.weight
		d.postcodes = append(d.postcodes, a.plz)
	}
	areaCum := cumulative(areaW)
	hubW := make([]float64, len(hb))
	for i, h := range hb {
		hubW[i] = h.weight
	}
	hubCum := cumulative(hubW)
	startYear := cfg.Start.Year()

	vs := make([]staticVehicle, cfg.Vehicles)
	seen := make(map[string]bool, cfg.Vehicles)
	d.vins = make([]string, cfg.Vehicles)
	for i := range vs {
		v := &vs[i]
		mi := pick(r, makeCum)
		mk := cat[mi]
		moi := r.IntN(len(mk.models))
		mo := mk.models[moi]
		v.makeIdx, v.modelIdx = int32(mi), modelBase[mi]+int32(moi)
		v.massKg = mo.massKg * (0.95 + 0.1*r.Float64())
		// German cars average about ten years; newer models cannot be older
		// than their first year.
		age := int(math.Round(r.ExpFloat64() * 8))
		first := max(mo.firstYear, 1990)
		v.modelYear = int64(max(startYear-min(age, 30), first))
		if v.modelYear > int64(startYear) {
			v.modelYear = int64(startYear)
		}
		v.vin = makeVIN(r, mk, mo, int(v.modelYear), seen)
		d.vins[i] = v.vin

		// Owner: registered keepers are mostly middle-aged; about 62% male.
		ownerAge := int(math.Round(50 + 15*r.NormFloat64()))
		ownerAge = min(max(ownerAge, 18), 92)
		v.birthYear = int64(startYear - ownerAge)
		if r.Float64() < 0.62 {
			v.sexIdx = 1
		}

		ai := pick(r, areaCum)
		a := ar[ai]
		v.postcodeIdx = int32(ai)
		v.home = clampRegion(jitter(r, fromLatLon(a.lat, a.lon), a.sigmaKm*1000/2))
		v.commuter = r.Float64() < 0.68
		v.pCommute = 0.5 + 0.45*r.Float64()
		if v.commuter {
			h := hb[pick(r, hubCum)]
			v.work = clampRegion(jitter(r, fromLatLon(h.lat, h.lon), h.sigmaKm*1000))
			if dist(v.work, v.home) < 1500 {
				// Someone who works round the corner walks.
				v.commuter = false
			}
		}
		v.departH = 7.4 + 0.6*r.NormFloat64()
		v.returnH = v.departH + 9 + 0.7*r.NormFloat64()
		// Activity is lognormal: most vehicles run a few errands a week, a
		// few run many every day.
		activity := math.Exp(1.0 * r.NormFloat64())
		v.errandRate = 0.22 * activity
		v.roamer = r.Float64() < 0.03
		if v.roamer {
			v.errandRate = 5 + 5*r.Float64()
		}
		for k := 0; k < 3; k++ {
			if k < 2 {
				// shops, school, gym: near home
				v.others[k] = clampRegion(polar(r, v.home, 500+3500*r.Float64()))
			} else {
				// family and friends: anywhere in the region
				b := ar[pick(r, areaCum)]
				v.others[k] = clampRegion(jitter(r, fromLatLon(b.lat, b.lon), b.sigmaKm*1000))
			}
		}
		v.otherCum = [3]float64{0.45, 0.8, 1}
		v.oneOffSigma = 4000 + 6000*r.Float64()
		v.speedFactor = 0.93 + 0.14*r.Float64()
		v.accel = 1.4 + 1.2*r.Float64()
		v.decel = 1.6 + 1.4*r.Float64()
		v.padStart = 3 + 9*r.Float64()
		if cfg.Taxis {
			// Drawn after the car's own draws, so that the default
			// fleet's stream is unchanged.
			v.roamer, v.commuter, v.taxi = true, false, true
			v.errandRate = 30 + 15*r.Float64() // fares a day
			v.home = clampRegion(jitter(r, fromLatLon(refLat, refLon), 2500))
			v.oneOffSigma = 2500 + 1500*r.Float64()
		}
	}
	return vs, d
}

func jitter(r *rand.Rand, p point, sigma float64) point {
	return point{p.x + sigma*r.NormFloat64(), p.y + sigma*r.NormFloat64()}
}

func polar(r *rand.Rand, p point, radius float64) point {
	a := 2 * math.Pi * r.Float64()
	return point{p.x + radius*math.Cos(a), p.y + radius*math.Sin(a)}
}

// makeVIN draws a VIN for the model: a real WMI of the make, the model's
// descriptor, a valid check digit, the model-year code, a plant code and a
// serial number unique within the fleet.
func makeVIN(r *rand.Rand, mk carMake, mo model, year int, seen map[string]bool) string {
	for {
		var b [17]byte
		copy(b[0:3], mk.wmis[r.IntN(len(mk.wmis))])
		copy(b[3:8], mo.vds)
		b[9] = modelYearCode(year)
		b[10] = mk.plants[r.IntN(len(mk.plants))]
		serial := r.IntN(1_000_000)
		for k := 16; k >= 11; k-- {
			b[k] = byte('0' + serial%10)
			serial /= 10
		}
		b[8] = '0'
		c, _ := pseudonym.VINCheckDigit(string(b[:])) // the catalogue is VIN-alphabet only (tested)
		b[8] = c
		s := string(b[:])
		if !seen[s] {
			seen[s] = true
			return s
		}
	}
}
