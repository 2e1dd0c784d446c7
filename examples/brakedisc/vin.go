package brakedisc

// The fleet's VINs carry valid ISO 3779 check digits, computed with
// pseudonym.VINCheckDigit (the same check reveal uses after FF1), so the
// example exercises that check rather than a second copy of it.

// modelYearCode is the VIN position-10 code for a model year (the 30-year
// cycle: 2001-2009 are digits, 2010 is A, letters skip I, O, Q, U, Z and 0).
func modelYearCode(year int) byte {
	const codes = "ABCDEFGHJKLMNPRSTVWXY123456789"
	return codes[((year-1980)%30+30)%30]
}
