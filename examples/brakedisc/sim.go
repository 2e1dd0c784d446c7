package brakedisc

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Physical constants of the brake model (one front disc).
const (
	discHeatCapJPerK = 460 * 9.0 // cast iron, 9 kg disc
	frontDiscShare   = 0.35      // share of braking energy one front disc takes
	padWearMMPerJ    = 3.3e-9    // ~9 mm of pad per 50,000 km of mixed driving
	padMinMM         = 1.5
	parkedTauS       = 900.0 // cooling time constant of a parked disc
	brakeBarPerMPS2  = 12.0  // line pressure per m/s² of friction braking
	engineBrakeMPS2  = 0.35  // decelerations below this need no brake pressure
	gpsSigmaM        = 2.5
	maxSpeedMPS      = 128 / 3.6 // the fleet keeps to the 130 km/h advisory
	stepS            = 1         // physics step, seconds
	msPerDay         = int64(24 * time.Hour / time.Millisecond)
)

// place identifiers a vehicle can be parked at or drive to.
const (
	placeHome = iota
	placeWork
	placeOther0 // placeOther0+k for k < 3
	placeOneOff = placeOther0 + 3
)

type plannedTrip struct {
	departMS int64 // earliest departure, ms since the epoch
	dest     int8
}

// leg is a stretch of road with one speed limit, ending at the path
// distance end; stop says whether the vehicle stops there (junction,
// traffic light, destination).
type leg struct {
	end   float64 // metres along the path
	vmax  float64 // m/s, before the driver's speed factor
	stop  bool
	urban bool
}

// vehicle is one vehicle's simulation state. Memory per vehicle is bounded
// (its current trip's path and legs), so the fleet is O(vehicles).
type vehicle struct {
	// Hot: touched every simulated second, kept together in a few cache
	// lines (the fleet is too large for cache, so layout is speed).
	pcg                               rand.PCG // rng's source, drawn from directly in the hot loop
	s                                 float64  // metres along the path
	v                                 float64  // m/s
	discC                             float64  // disc temperature, °C
	amb                               float64  // ambient temperature, refreshed every few minutes
	padMM                             float64
	pressure                          float64 // bar, at the last step
	tMS                               int64   // simulation time of the state, ms
	legIdx, stopS, slowS, hardS       int     // current leg; seconds left standing, slowed, braking hard
	ambSteps                          int
	slowF, hardA                      float64
	speedFactor, accel, decel, massKg float64 // the driver and the car (copied from st)
	legs                              []leg

	st  *staticVehicle
	rng *rand.Rand

	at      int8  // where it is parked (placeXxx), while not driving
	pos     point // current true position
	oneOff  point // the current one-off destination
	day     int   // day index of the current plan
	plan    []plannedTrip
	planIdx int

	// the current trip
	path []point
	cum  []float64 // cumulative path length at each waypoint
	seg  int       // path segment the vehicle is on
	dest int8

	// the reading due at nextMS
	nextMS        int64
	lat, lon      float64
	speedKmh      float64
	pressureBar   float64
	discTempC     float64
	padReportedMM float64
	emitEveryS    int
	startMS       int64 // Config.Start: day 0 of the plans
	startWD       time.Weekday
}

// ambientC is the air temperature: early-spring Munich with a daily cycle,
// weather swings over days and a slow seasonal rise.
func ambientC(ms int64) float64 {
	days := float64(ms) / float64(msPerDay)
	hour := math.Mod(days, 1) * 24
	return 4 + 0.12*(days-float64(int64(days/365))*365-60) +
		5.5*math.Sin(2*math.Pi*(hour-9)/24) + 3*math.Sin(2*math.Pi*days/9.3)
}

// init parks the vehicle at home at the start of day 0. v must not move in
// memory afterwards (its rng points at its own PCG).
func (v *vehicle) init(st *staticVehicle, seed int64, idx int, startMS int64, startWD time.Weekday, emitEveryS int) {
	*v = vehicle{
		pcg:         *rand.NewPCG(uint64(seed)^0x5bd1e995, uint64(idx)+1),
		st:          st,
		at:          placeHome,
		pos:         st.home,
		tMS:         startMS,
		padMM:       st.padStart,
		emitEveryS:  emitEveryS,
		startMS:     startMS,
		startWD:     startWD,
		speedFactor: st.speedFactor,
		accel:       st.accel,
		decel:       st.decel,
		massKg:      st.massKg,
	}
	v.rng = rand.New(&v.pcg)
	v.discC = ambientC(startMS)
	v.day = -1
	v.nextTrip(startMS)
}

func (v *vehicle) placePoint(p int8) point {
	switch {
	case p == placeHome:
		return v.st.home
	case p == placeWork:
		return v.st.work
	case p == placeOneOff:
		return v.oneOff
	}
	return v.st.others[p-placeOther0]
}

// planDay fills v.plan with the trips of day v.day.
func (v *vehicle) planDay() {
	r, st := v.rng, v.st
	v.plan, v.planIdx = v.plan[:0], 0
	dayMS := v.startMS + int64(v.day)*msPerDay
	wd := (int(v.startWD) + v.day) % 7
	weekend := wd == int(time.Saturday) || wd == int(time.Sunday)
	at := func(h float64) int64 { return dayMS + int64(h*3600e3) }
	busyUntil := 8.5

	if st.roamer {
		n := int(st.errandRate*(0.6+0.8*r.Float64())) + 1
		if weekend && r.Float64() < 0.5 {
			n /= 3
		}
		h := 6.5 + 1.5*r.Float64()
		for k := 0; k < n; k++ {
			v.plan = append(v.plan, plannedTrip{at(h), v.randomDest()})
			if st.taxi {
				// the next fare a few minutes after the last, until late
				h += 0.15 + 0.35*r.Float64()
				if h > 23 {
					break
				}
				continue
			}
			h += 0.3 + 1.2*r.Float64()
		}
		v.plan = append(v.plan, plannedTrip{at(h), placeHome})
		return
	}
	if !weekend && st.commuter && r.Float64() < st.pCommute {
		dep := st.departH + 0.25*r.NormFloat64()
		ret := max(st.returnH+0.5*r.NormFloat64(), dep+4)
		v.plan = append(v.plan, plannedTrip{at(dep), placeWork})
		if r.Float64() < 0.08 {
			// lunch errand from work
			v.plan = append(v.plan, plannedTrip{at(12 + r.Float64()), v.errandDest()}, plannedTrip{at(13.2 + 0.5*r.Float64()), placeWork})
		}
		v.plan = append(v.plan, plannedTrip{at(ret), placeHome})
		busyUntil = ret + 0.5
	}
	rate := st.errandRate
	if weekend {
		rate *= 1.6
		busyUntil = 9
	}
	n := poisson(r, rate)
	if n == 0 {
		return
	}
	hours := make([]float64, n)
	for k := range hours {
		lo := busyUntil
		if !weekend && !st.commuter {
			lo = 8.5
		}
		hours[k] = lo + (21.5-lo)*r.Float64()
	}
	slices.Sort(hours)
	for _, h := range hours {
		v.plan = append(v.plan, plannedTrip{at(h), v.errandDest()})
		// come home after the errand (the departure is pushed back to
		// arrival + dwell when the errand takes longer)
		v.plan = append(v.plan, plannedTrip{at(h + 0.25 + 1.5*r.Float64()), placeHome})
	}
}

func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l || k > 50 {
			return k
		}
		k++
	}
}

// errandDest picks a regular other place, or now and then a one-off one.
func (v *vehicle) errandDest() int8 {
	if v.rng.Float64() < 0.15 {
		return v.randomDest()
	}
	return placeOther0 + int8(pick(v.rng, v.st.otherCum[:]))
}

func (v *vehicle) randomDest() int8 {
	v.oneOff = clampRegion(jitter(v.rng, v.st.home, v.st.oneOffSigma))
	return placeOneOff
}

// nextTrip starts the next trip at or after fromMS (the vehicle is parked),
// cooling the disc while it stands, and schedules its first reading.
func (v *vehicle) nextTrip(fromMS int64) {
	for {
		for v.planIdx < len(v.plan) {
			p := v.plan[v.planIdx]
			v.planIdx++
			if p.dest == v.at && p.dest != placeOneOff {
				continue
			}
			if v.st.taxi && p.dest == placeOneOff {
				// Every fare goes somewhere new (a plan's one-off
				// destinations share one slot).
				p.dest = v.randomDest()
			}
			// At least a few minutes parked between trips.
			minDwell := int64(3+v.rng.IntN(10)) * 60e3
			dep := max(p.departMS, fromMS+minDwell) + int64(v.rng.IntN(1000))
			v.startTrip(dep, p.dest)
			return
		}
		v.day++
		v.planDay()
		if v.day > 100_000 {
			// unreachable with the activity model; keeps the loop finite
			v.plan = append(v.plan[:0], plannedTrip{fromMS, v.randomDest()})
		}
	}
}

// startTrip builds the path and legs to dest and parks the state at the
// departure, with the disc cooled over the time parked.
func (v *vehicle) startTrip(depMS int64, dest int8) {
	r := v.rng
	parked := float64(depMS-v.tMS) / 1000
	amb := ambientC(depMS)
	v.discC = amb + (v.discC-amb)*math.Exp(-parked/parkedTauS)
	v.tMS = depMS
	v.dest = dest
	from, to := v.pos, v.placePoint(dest)
	d := dist(from, to)

	// Waypoints: out of the local street, along a wandering line, into the
	// destination's street. Roads are longer than the crow flies.
	v.path = v.path[:0]
	v.path = append(v.path, from)
	dx, dy := to.x-from.x, to.y-from.y
	nx, ny := 0.0, 0.0
	if d > 1 {
		nx, ny = -dy/d, dx/d
	}
	side := 1.0
	if r.IntN(2) == 0 {
		side = -1
	}
	local := 80 + 250*r.Float64()
	v.path = append(v.path, clampRegion(point{from.x + side*nx*local, from.y + side*ny*local}))
	n := 1 + int(d/2500)
	n = min(n, 12)
	off := 0.0
	for k := 1; k < n; k++ {
		f := float64(k) / float64(n)
		off += 0.09 * d / math.Sqrt(float64(n)) * r.NormFloat64()
		off *= 0.8
		v.path = append(v.path, clampRegion(point{from.x + f*dx + off*nx, from.y + f*dy + off*ny}))
	}
	local = 80 + 250*r.Float64()
	// Every waypoint stays inside the region (the box is convex, so the
	// path between them does too).
	v.path = append(v.path, clampRegion(point{to.x - side*nx*local, to.y - side*ny*local}), to)
	v.cum = v.cum[:0]
	total := 0.0
	v.cum = append(v.cum, 0)
	for k := 1; k < len(v.path); k++ {
		total += dist(v.path[k-1], v.path[k])
		v.cum = append(v.cum, total)
	}

	// Legs: short urban blocks with frequent stops in the city, longer
	// stretches with higher limits outside, a motorway on long trips.
	v.legs = v.legs[:0]
	v.seg = 0
	s := 0.0
	for s < total {
		mid := v.pointAt(min(s+200, total))
		rc := math.Hypot(mid.x, mid.y)
		var l leg
		switch {
		case s < 150 || total-s < 250:
			l = leg{end: s + 100 + 150*r.Float64(), vmax: 30 / 3.6, stop: r.Float64() < 0.5, urban: true}
		case rc < 7000:
			vmax := 50.0
			if u := r.Float64(); u < 0.15 {
				vmax = 30
			} else if u > 0.7 && rc > 3000 {
				vmax = 60
			}
			l = leg{end: s + 150 + 650*r.Float64(), vmax: vmax / 3.6, stop: r.Float64() < 0.38, urban: true}
		case total > 9000 && total-s > 4000 && r.Float64() < 0.6:
			vmax := []float64{100, 120, 130, 130}[r.IntN(4)]
			l = leg{end: s + 2000 + 6000*r.Float64(), vmax: vmax / 3.6, stop: false}
		default:
			vmax := []float64{50, 70, 70, 100}[r.IntN(4)]
			l = leg{end: s + 500 + 2000*r.Float64(), vmax: vmax / 3.6, stop: r.Float64() < 0.2}
		}
		if l.end >= total-30 {
			l.end = total
		}
		v.legs = append(v.legs, l)
		s = l.end
	}
	if len(v.legs) == 0 {
		v.legs = append(v.legs, leg{end: total, vmax: 30 / 3.6, urban: true})
	}
	v.legs[len(v.legs)-1].stop = true
	v.legIdx, v.seg, v.s, v.v = 0, 0, 0, 0
	v.stopS, v.slowS, v.hardS = 0, 0, 0
	v.pressure = 0
	v.amb, v.ambSteps = amb, 300
	v.nextMS = depMS
	v.record()
}

// pointAt returns the position s metres along the path (moving the segment
// cursor forward only, so a trip costs O(path) in total).
func (v *vehicle) pointAt(s float64) point {
	k := v.seg
	for k < len(v.cum)-2 && s > v.cum[k+1] {
		k++
	}
	v.seg = k
	a, b := v.path[k], v.path[k+1]
	segLen := v.cum[k+1] - v.cum[k]
	if segLen <= 0 {
		return b
	}
	f := min(max((s-v.cum[k])/segLen, 0), 1)
	return point{a.x + f*(b.x-a.x), a.y + f*(b.y-a.y)}
}

// step advances the trip by one second. It returns false when the vehicle
// has arrived (and is then parked at its destination). This is the hot loop
// (one call per simulated second of driving): one PCG draw decides the rare
// events, the position is only interpolated when a reading is recorded.
func (v *vehicle) step() bool {
	v.tMS += stepS * 1000
	if v.ambSteps--; v.ambSteps <= 0 {
		v.amb, v.ambSteps = ambientC(v.tMS), 300
	}
	if v.stopS > 0 {
		v.stopS--
		v.v = 0
		v.pressure = 8 + 6*v.rng.Float64() // holding the car at the light
		v.cool()
		return true
	}
	u := v.pcg.Uint64()
	l := &v.legs[v.legIdx]
	target := min(l.vmax*v.speedFactor, maxSpeedMPS)
	if v.slowS > 0 {
		v.slowS--
		target *= v.slowF
	} else if ev := u & 0xffff; l.urban && ev < 393 || !l.urban && ev < 131 { // p = 0.006 / 0.002
		v.slowS, v.slowF = 8+int(u>>16&31), 0.2+0.5*float64(u>>24&0xff)/255
	}
	vEnd := 0.0
	if !l.stop && v.legIdx+1 < len(v.legs) {
		vEnd = min(v.legs[v.legIdx+1].vmax*v.speedFactor, maxSpeedMPS)
	}
	remaining := l.end - v.s
	var a float64
	switch {
	case v.hardS > 0:
		v.hardS--
		a = -v.hardA
	case v.v > 12 && u>>40&0xffff < 26: // p = 0.0004: something runs onto the road
		v.hardS, v.hardA = int(u>>56&1)+1, 5.5+3.5*float64(u>>32&0xff)/255
		a = -v.hardA
	case v.v > vEnd && (v.v*v.v-vEnd*vEnd)/(2*v.decel) >= remaining-v.v*stepS:
		a = -(v.v*v.v - vEnd*vEnd) / (2 * max(remaining, 1))
		a = max(a, -9)
	case v.v < target:
		q := v.v / target
		a = v.accel * (1 - q*q)
		a = min(max(a, 0.25), target-v.v)
	case v.v > target:
		a = -min(v.decel, v.v-target)
	default:
		a = 0.3 * (float64(u>>48&0xff)/255 - 0.5)
	}
	v0 := v.v
	v1 := max(v0+a*stepS, 0)
	ds := (v0 + v1) / 2 * stepS
	if v1 == 0 && v0 == 0 && remaining > 0 {
		// standing after a slowdown: creep off again
		v1 = min(v.accel, target)
		ds = v1 / 2
	}
	if a < -engineBrakeMPS2 && v0 > v1 {
		v.brake(v0, v1, a)
	} else {
		v.pressure = 0
	}
	v.v = v1
	v.cool()
	if ds < remaining {
		v.s += ds
		return true
	}
	v.s = l.end
	v.legIdx++
	if v.legIdx >= len(v.legs) {
		v.v = 0
		v.pos = v.path[len(v.path)-1]
		v.at = v.dest
		return false
	}
	if l.stop {
		v.v = 0
		if u>>58 < 35 { // p = 0.55: red light
			v.stopS = int(u >> 10 & 31)
		}
	}
	return true
}

// brake applies the brake model for one step of friction braking from v0
// to v1 at deceleration -a: the front disc takes its share of the kinetic
// energy the engine does not absorb, the pad wears with that energy.
func (v *vehicle) brake(v0, v1, a float64) {
	friction := (-a - engineBrakeMPS2*0.5) / -a
	energy := 0.5 * v.massKg * (v0*v0 - v1*v1) * friction * frontDiscShare
	v.discC += energy / discHeatCapJPerK
	v.padMM = max(v.padMM-energy*padWearMMPerJ, padMinMM)
	v.pressure = max(brakeBarPerMPS2*(-a)+1.5*v.rng.NormFloat64(), 2)
}

// cool relaxes the disc towards ambient for one step; moving air cools
// faster. exp(-x) by its Taylor series: x < 0.02, so the error is < 2e-6.
func (v *vehicle) cool() {
	x := stepS * (1 + v.v/6) / 420
	v.discC = v.amb + (v.discC-v.amb)*(1-x+x*x/2-x*x*x/6)
}

// record stores the sensor reading of the current state, as the vehicle's
// telematics unit would report it (GPS noise, sensor resolution).
func (v *vehicle) record() {
	if v.legIdx < len(v.legs) {
		v.pos = v.pointAt(v.s)
	}
	p := point{v.pos.x + gpsSigmaM*v.rng.NormFloat64(), v.pos.y + gpsSigmaM*v.rng.NormFloat64()}
	lat, lon := p.latLon()
	v.lat = math.Round(lat*1e6) / 1e6
	v.lon = math.Round(lon*1e6) / 1e6
	v.speedKmh = math.Round(v.v*3.6*10) / 10
	v.pressureBar = math.Round(v.pressure*10) / 10
	v.discTempC = math.Round(v.discC*10) / 10
	v.padReportedMM = math.Round(v.padMM*1000) / 1000
}

// advance moves the vehicle to its next reading: emitEveryS seconds further
// along the trip, or the first reading of its next trip.
func (v *vehicle) advance() {
	for i := 0; i < v.emitEveryS; i++ {
		if !v.step() {
			v.nextTrip(v.tMS)
			return
		}
	}
	v.nextMS = v.tMS
	v.record()
}
