package brakedisc

import (
	"errors"
	"fmt"
)

// VINAlphabet is the set of characters a VIN may contain (ISO 3779): digits
// and capital letters without I, O and Q, which read like 1 and 0.
const VINAlphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"

// vinValue is the ISO 3779 / FMVSS 115 transliteration of a VIN character,
// or -1 for a character outside the alphabet.
func vinValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'H':
		return int(c-'A') + 1
	case c >= 'J' && c <= 'N':
		return int(c-'J') + 1
	case c == 'P':
		return 7
	case c == 'R':
		return 9
	case c >= 'S' && c <= 'Z':
		return int(c-'S') + 2
	}
	return -1
}

// vinWeights weigh positions 1-17; position 9 (the check digit) weighs 0.
func vinWeight(i int) int {
	return [17]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}[i]
}

// ErrVIN reports a malformed VIN.
var ErrVIN = errors.New("brakedisc: invalid VIN")

// VINCheckDigit returns the check digit (position 9) a 17-character VIN must
// have: the weighted sum of the transliterated characters modulo 11, with 10
// written as 'X'. The character at position 9 itself is ignored.
func VINCheckDigit(vin string) (byte, error) {
	if len(vin) != 17 {
		return 0, fmt.Errorf("%w: %d characters, want 17", ErrVIN, len(vin))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := vinValue(vin[i])
		if v < 0 {
			return 0, fmt.Errorf("%w: character %q at position %d is not in the VIN alphabet", ErrVIN, vin[i], i+1)
		}
		sum += v * vinWeight(i)
	}
	if r := sum % 11; r < 10 {
		return byte('0' + r), nil
	}
	return 'X', nil
}

// ValidVIN reports whether vin has 17 characters from VINAlphabet and a
// correct check digit.
func ValidVIN(vin string) bool {
	d, err := VINCheckDigit(vin)
	return err == nil && vin[8] == d
}

// modelYearCode is the VIN position-10 code for a model year (the 30-year
// cycle: 2001-2009 are digits, 2010 is A, letters skip I, O, Q, U, Z and 0).
func modelYearCode(year int) byte {
	const codes = "ABCDEFGHJKLMNPRSTVWXY123456789"
	return codes[((year-1980)%30+30)%30]
}
