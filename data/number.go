package data

import (
	"math"
	"strconv"
)

// pow10 holds the powers of ten that are exact in float64 (10^0 .. 10^22).
var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// isSpace reports whether c separates tokens on a line.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// tokenEnd returns the index of the first separator in s at or after i (or len(s)).
func tokenEnd(s []byte, i int) int {
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	return i
}

// parseFloat parses the number that starts at s[i] and ends at the next
// separator or the end of s. It returns the value, the index just past the
// token and ok=false if the token is not a number strconv.ParseFloat accepts
// (or it overflows to ±Inf).
//
// The fast path reads sign, up to 19 significant digits, a decimal point and
// a decimal exponent; when the mantissa is below 2^53 and the power of ten is
// within 10^±22, mantissa and power are both exact and one IEEE multiply or
// divide gives the correctly rounded result (Clinger 1990), so the result
// equals strconv.ParseFloat's bit for bit. Anything else (long mantissas,
// large exponents, hex floats, "inf", junk) goes to strconv.ParseFloat.
func parseFloat(s []byte, i int) (float64, int, bool) {
	start := i
	n := len(s)
	neg := false
	if i < n && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var mant uint64
	nd := 0 // significant digits accumulated in mant
	intEnd, mant, nd, ok := mantissaDigits(s, i, mant, nd)
	if !ok {
		return parseFloatSlow(s, start)
	}
	digits := intEnd - i // all digits seen in the mantissa
	fracExp := 0         // power-of-ten correction from digits after the point
	i = intEnd
	if i < n && s[i] == '.' {
		var fracEnd int
		fracEnd, mant, nd, ok = mantissaDigits(s, i+1, mant, nd)
		if !ok {
			return parseFloatSlow(s, start)
		}
		fracExp = i + 1 - fracEnd
		digits -= fracExp
		i = fracEnd
	}
	if digits == 0 {
		return parseFloatSlow(s, start)
	}
	exp := 0
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < n && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		if i >= n || s[i]-'0' >= 10 {
			return parseFloatSlow(s, start)
		}
		for i < n && s[i]-'0' < 10 {
			if exp > 10000 {
				return parseFloatSlow(s, start)
			}
			exp = exp*10 + int(s[i]-'0')
			i++
		}
		if eneg {
			exp = -exp
		}
	}
	if i < n && !isSpace(s[i]) {
		return parseFloatSlow(s, start)
	}
	var f float64
	if mant != 0 {
		e10 := exp + fracExp
		if mant >= 1<<53 || e10 < -22 || e10 > 22 {
			return parseFloatSlow(s, start)
		}
		f = float64(mant)
		if e10 < 0 {
			f /= pow10[-e10]
		} else {
			f *= pow10[e10]
		}
	}
	if neg {
		f = -f
	}
	return f, i, true
}

// mantissaDigits appends the decimal digits at s[i:] to mant, which holds nd
// significant digits (leading zeros are not counted). It returns the index
// of the first non-digit and ok=false if mant would exceed 19 digits.
func mantissaDigits(s []byte, i int, mant uint64, nd int) (int, uint64, int, bool) {
	for i < len(s) && s[i]-'0' < 10 {
		if mant != 0 || s[i] != '0' {
			if nd == 19 {
				return i, mant, nd, false
			}
			mant = mant*10 + uint64(s[i]-'0')
			nd++
		}
		i++
	}
	return i, mant, nd, true
}

// parseFloatSlow parses the token at s[start:] with strconv.ParseFloat.
func parseFloatSlow(s []byte, start int) (float64, int, bool) {
	end := tokenEnd(s, start)
	f, err := strconv.ParseFloat(string(s[start:end]), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return f, end, false
	}
	return f, end, true
}

// maxIndex is the largest 1-based feature index: 0-based indices are int32.
const maxIndex = math.MaxInt32

// parseIndex parses the decimal digits at s[i:] up to the next byte that is
// not a digit. ok is false if there are no digits or the number exceeds
// maxIndex.
func parseIndex(s []byte, i int) (idx int, next int, ok bool) {
	start := i
	for i < len(s) && s[i]-'0' < 10 {
		idx = idx*10 + int(s[i]-'0')
		if idx > maxIndex {
			return 0, i, false
		}
		i++
	}
	return idx, i, i > start
}
