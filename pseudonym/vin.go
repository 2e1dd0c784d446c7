package pseudonym

// FF1 does not authenticate: decrypting with a wrong key or domain gives a
// plausible wrong value, not an error. For VINs the check digit (ISO 3779,
// position 9, mandatory in North America under 49 CFR 565) is a check on
// the decryption: FF1 encrypts all 17 characters, so the right key returns
// the original check digit, and a wrong one puts a character uniform over
// the 33 of VINAlphabet there, which is the one character the other 16
// require only once in 33 times. VINs made without a valid check digit
// (many European ones carry a filler such as 'Z') cannot be checked this
// way.

// vinValue is the ISO 3779 transliteration of a VIN character, or -1 for a
// character outside VINAlphabet.
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

// vinWeight weighs position i+1; position 9 (the check digit) weighs 0.
func vinWeight(i int) int {
	return [17]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}[i]
}

// VINCheckDigit returns the check digit (position 9) a 17-character VIN
// must have: the weighted sum of its transliterated characters modulo 11,
// 10 written as 'X'. ok is false when vin is not 17 characters of
// VINAlphabet. The character at position 9 itself is ignored.
func VINCheckDigit(vin string) (digit byte, ok bool) {
	if len(vin) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := vinValue(vin[i])
		if v < 0 {
			return 0, false
		}
		sum += v * vinWeight(i)
	}
	if r := sum % 11; r < 10 {
		return byte('0' + r), true
	}
	return 'X', true
}

// ValidVINCheckDigit reports whether vin has 17 characters of VINAlphabet
// and the check digit they require. After FF1.Decrypt of VINs that had
// valid check digits, false means a wrong key, key id or domain (a wrong
// one passes 1 in 33 times).
func ValidVINCheckDigit(vin string) bool {
	d, ok := VINCheckDigit(vin)
	return ok && vin[8] == d
}
