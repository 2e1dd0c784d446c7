package brakedisc

// The catalogue is fixed data: the makes and models on German roads with
// their world manufacturer identifiers, the postcode areas of Munich and its
// surrounding towns, and the region's employment hubs. It is returned by
// functions (never package variables) so nothing global can be mutated.

// model is one car model of a make.
type model struct {
	name      string
	firstYear int     // first model year in the catalogue
	massKg    float64 // kerb weight: the braking energy per stop scales with it
	vds       string  // five characters for VIN positions 4-8
}

// carMake is one manufacturer with its share of the Munich fleet.
type carMake struct {
	name   string
	share  float64  // relative registration share (Munich: BMW above average)
	wmis   []string // world manufacturer identifiers (VIN positions 1-3)
	plants string   // plant codes for VIN position 11
	models []model
}

func catalogue() []carMake {
	return []carMake{
		{"BMW", 18, []string{"WBA", "WBS"}, "0AFGNPV", []model{
			{"1er", 2004, 1400, "1S110"}, {"3er", 1990, 1550, "8E710"}, {"5er", 1995, 1750, "JH520"},
			{"X1", 2009, 1600, "VL310"}, {"X3", 2003, 1850, "TX510"}, {"X5", 2000, 2200, "CR610"}, {"i4", 2021, 2100, "71AW4"},
		}},
		{"Volkswagen", 17, []string{"WVW", "WVG"}, "WZDE", []model{
			{"Golf", 1990, 1350, "ZZZAU"}, {"Polo", 1994, 1150, "ZZZAW"}, {"Passat", 1996, 1550, "ZZZ3C"},
			{"Tiguan", 2007, 1650, "ZZZ5N"}, {"T-Roc", 2017, 1400, "ZZZA1"}, {"ID.3", 2020, 1800, "ZZZE1"},
		}},
		{"Mercedes-Benz", 11, []string{"WDD", "W1K"}, "ABFJ", []model{
			{"A-Klasse", 1997, 1400, "17708"}, {"C-Klasse", 1993, 1600, "20500"}, {"E-Klasse", 1995, 1800, "21300"},
			{"GLC", 2015, 1900, "25394"},
		}},
		{"Audi", 9, []string{"WAU", "WUA"}, "ANR", []model{
			{"A3", 1996, 1350, "ZZZ8V"}, {"A4", 1994, 1550, "ZZZF4"}, {"A6", 1994, 1750, "ZZZF2"}, {"Q5", 2008, 1850, "ZZZFY"},
		}},
		{"Opel", 5, []string{"W0L", "W0V"}, "0PE", []model{
			{"Corsa", 1993, 1150, "0XEP6"}, {"Astra", 1991, 1300, "PD6EA"},
		}},
		{"Skoda", 6, []string{"TMB"}, "0MK", []model{
			{"Octavia", 1996, 1350, "JJ9NE"}, {"Fabia", 1999, 1150, "EJ6NJ"}, {"Kodiaq", 2016, 1650, "JJ9NS"},
		}},
		{"Ford", 5, []string{"WF0"}, "KLM", []model{
			{"Fiesta", 1990, 1100, "XXGCJ"}, {"Focus", 1998, 1300, "XXGCH"}, {"Kuga", 2008, 1600, "XXWPG"},
		}},
		{"Seat", 4, []string{"VSS"}, "BRM", []model{
			{"Leon", 1999, 1300, "ZZZKL"}, {"Ibiza", 1993, 1150, "ZZZKJ"},
		}},
		{"Renault", 3, []string{"VF1"}, "VFH", []model{
			{"Clio", 1991, 1150, "RJA00"}, {"Megane", 1996, 1300, "RFB00"}, {"Zoe", 2012, 1500, "AG000"},
		}},
		{"Toyota", 3, []string{"SB1", "JTD"}, "0KT", []model{
			{"Yaris", 1999, 1100, "Z3TB0"}, {"Corolla", 1990, 1350, "ZBE1J"}, {"RAV4", 1994, 1700, "Z3RFV"},
		}},
		{"Hyundai", 3, []string{"KMH", "TMA"}, "UZC", []model{
			{"i30", 2007, 1300, "H81DB"}, {"Tucson", 2004, 1600, "J81CB"},
		}},
		{"Mini", 3, []string{"WMW"}, "T2", []model{
			{"Cooper", 2001, 1250, "XP310"}, {"Countryman", 2010, 1450, "YU710"},
		}},
		{"Fiat", 2, []string{"ZFA"}, "PT", []model{
			{"500", 2007, 950, "31200"}, {"Panda", 2003, 1000, "31900"},
		}},
		{"Tesla", 2, []string{"5YJ", "XP7", "LRW"}, "BF", []model{
			{"Model 3", 2019, 1850, "3E7EB"}, {"Model Y", 2020, 2000, "YGDEE"},
		}},
		{"Porsche", 1, []string{"WP0", "WP1"}, "SL", []model{
			{"911", 1990, 1500, "ZZZ99"}, {"Cayenne", 2002, 2100, "ZZZ9Y"},
		}},
	}
}

// area is a postcode area: its centre, spread and relative number of homes.
type area struct {
	plz      string
	lat, lon float64
	sigmaKm  float64
	weight   float64
}

// areas lists Munich districts (PLZ 80xxx/81xxx) and the towns around it
// inside the simulated box (lat 47.95-48.35, lon 11.25-11.85).
func areas() []area {
	const city, town = 0.9, 1.3
	return []area{
		// Munich
		{"80331", 48.1372, 11.5755, 0.5, 2}, {"80333", 48.1465, 11.5660, city, 4}, {"80335", 48.1440, 11.5520, city, 4},
		{"80336", 48.1320, 11.5560, city, 4}, {"80337", 48.1270, 11.5600, city, 4}, {"80339", 48.1355, 11.5370, city, 4},
		{"80469", 48.1300, 11.5750, city, 5}, {"80538", 48.1410, 11.5880, city, 3}, {"80634", 48.1530, 11.5330, city, 5},
		{"80636", 48.1490, 11.5440, city, 4}, {"80637", 48.1620, 11.5220, city, 5}, {"80638", 48.1610, 11.4960, city, 5},
		{"80686", 48.1370, 11.5090, city, 5}, {"80687", 48.1430, 11.4940, city, 4}, {"80796", 48.1640, 11.5700, city, 4},
		{"80797", 48.1650, 11.5530, city, 4}, {"80801", 48.1580, 11.5830, city, 4}, {"80802", 48.1600, 11.5950, city, 3},
		{"80803", 48.1640, 11.5860, city, 4}, {"80804", 48.1720, 11.5800, city, 4}, {"80807", 48.1840, 11.5810, city, 5},
		{"80809", 48.1800, 11.5550, city, 4}, {"80933", 48.2100, 11.5600, city, 4}, {"80935", 48.2050, 11.5800, city, 4},
		{"80937", 48.1980, 11.5900, city, 4}, {"80939", 48.1990, 11.6150, city, 4}, {"80992", 48.1780, 11.5150, city, 5},
		{"80993", 48.1880, 11.5300, city, 5}, {"80995", 48.2150, 11.5250, city, 5}, {"80997", 48.1800, 11.4700, city, 4},
		{"80999", 48.1950, 11.4600, city, 4}, {"81241", 48.1470, 11.4600, city, 5}, {"81243", 48.1550, 11.4200, city, 5},
		{"81245", 48.1600, 11.4500, city, 4}, {"81247", 48.1650, 11.4150, city, 4}, {"81369", 48.1170, 11.5390, city, 5},
		{"81371", 48.1210, 11.5500, city, 4}, {"81373", 48.1240, 11.5240, city, 4}, {"81375", 48.1180, 11.4800, city, 4},
		{"81377", 48.1130, 11.4950, city, 4}, {"81379", 48.0960, 11.5400, city, 4}, {"81475", 48.0900, 11.4890, city, 4},
		{"81476", 48.0820, 11.5050, city, 3}, {"81477", 48.0770, 11.5180, city, 3}, {"81479", 48.0700, 11.5250, city, 4},
		{"81539", 48.1080, 11.5800, city, 5}, {"81541", 48.1200, 11.5850, city, 5}, {"81543", 48.1110, 11.5700, city, 4},
		{"81545", 48.0930, 11.5680, city, 4}, {"81547", 48.0960, 11.5870, city, 4}, {"81549", 48.0990, 11.6060, city, 5},
		{"81667", 48.1300, 11.5950, city, 4}, {"81669", 48.1230, 11.6040, city, 4}, {"81671", 48.1220, 11.6200, city, 4},
		{"81673", 48.1270, 11.6350, city, 4}, {"81675", 48.1420, 11.6030, city, 4}, {"81677", 48.1500, 11.6150, city, 4},
		{"81679", 48.1530, 11.6000, city, 3}, {"81735", 48.1100, 11.6400, city, 5}, {"81737", 48.1020, 11.6400, city, 5},
		{"81739", 48.0900, 11.6450, city, 5}, {"81825", 48.1200, 11.6700, city, 5}, {"81827", 48.1080, 11.6700, city, 4},
		{"81829", 48.1320, 11.7000, city, 4}, {"81925", 48.1570, 11.6250, city, 4}, {"81927", 48.1650, 11.6350, city, 4},
		{"81929", 48.1500, 11.6500, city, 4},
		// towns around Munich
		{"85221", 48.2600, 11.4340, town, 6}, {"82319", 47.9980, 11.3400, town, 4}, {"82256", 48.1780, 11.2550, town, 5},
		{"85521", 48.0640, 11.6650, town, 4}, {"85716", 48.2800, 11.5760, town, 4}, {"85748", 48.2490, 11.6510, town, 3},
		{"82110", 48.1320, 11.3700, town, 5}, {"82008", 48.0660, 11.6150, town, 4}, {"82031", 48.0420, 11.5260, town, 2},
		{"85737", 48.2290, 11.6750, town, 3}, {"85540", 48.1090, 11.7250, town, 3}, {"85591", 48.1050, 11.7700, town, 3},
		{"82178", 48.1720, 11.3530, town, 3}, {"82166", 48.1180, 11.4300, town, 2}, {"82041", 48.0220, 11.5880, town, 2},
		{"85757", 48.2270, 11.4750, town, 3}, {"82024", 48.0500, 11.6150, town, 3}, {"82152", 48.1030, 11.4300, town, 2},
		{"85579", 48.0770, 11.6630, town, 2}, {"85622", 48.1480, 11.7320, town, 1}, {"85609", 48.1720, 11.7180, town, 1},
		{"85764", 48.2520, 11.5590, town, 2}, {"82131", 48.0680, 11.3790, town, 3}, {"82049", 48.0610, 11.5220, town, 1},
		{"85386", 48.3000, 11.6190, town, 2}, {"85662", 48.0490, 11.7000, town, 1}, {"85640", 48.0780, 11.7230, town, 1},
		{"85774", 48.1850, 11.6600, town, 2}, {"82061", 48.0480, 11.4680, town, 1}, {"85635", 48.0380, 11.7750, town, 1},
	}
}

// hub is a place many people drive to work.
type hub struct {
	lat, lon float64
	sigmaKm  float64
	weight   float64
}

func hubs() []hub {
	return []hub{
		{48.1390, 11.5650, 1.2, 20}, // city centre
		{48.1770, 11.5560, 0.8, 8},  // BMW Forschungszentrum / Milbertshofen
		{48.1620, 11.5870, 1.0, 6},  // Schwabing
		{48.2650, 11.6700, 0.9, 5},  // Garching research campus
		{48.1750, 11.6440, 0.9, 4},  // Unterföhring media
		{48.0550, 11.6450, 0.9, 4},  // Ottobrunn/Taufkirchen aerospace
		{48.1100, 11.4550, 0.7, 4},  // Martinsried/Großhadern
		{48.1900, 11.4600, 0.8, 3},  // Allach industry
		{48.1300, 11.7050, 0.9, 4},  // Messe Riem
		{48.1400, 11.6100, 1.0, 5},  // Bogenhausen offices
		{48.1200, 11.5400, 1.0, 5},  // Sendling/Westend
		{48.1450, 11.4650, 0.8, 3},  // Pasing
		{48.2280, 11.6780, 0.8, 2},  // Ismaning
		{48.2600, 11.4340, 1.0, 2},  // Dachau
		{48.0950, 11.6400, 0.9, 3},  // Perlach
	}
}
