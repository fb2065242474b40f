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
// Space, \t, \v, \f and \r (and \n, which never occurs inside a line).
func isSpace(c byte) bool {
	return c == ' ' || c-'\t' < 5
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
// The fast path reads a sign, at most 19 digits around an optional decimal
// point and a decimal exponent; when the mantissa is below 2^53 and the
// power of ten is within 10^±22, mantissa and power are both exact and one
// IEEE multiply or divide gives the correctly rounded result (Clinger 1990),
// so the result equals strconv.ParseFloat's bit for bit. Anything else (long
// mantissas, large exponents, hex floats, "inf", junk) goes to
// strconv.ParseFloat.
func parseFloat(s []byte, i int) (float64, int, bool) {
	start := i
	n := len(s)
	neg := false
	if i < n && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var mant uint64
	j := i
	for j < n && s[j]-'0' < 10 {
		mant = mant*10 + uint64(s[j]-'0')
		j++
	}
	nd := j - i // digits in mant (it wraps beyond 19: then nd says so)
	if (j == n || isSpace(s[j])) && nd > 0 && nd <= 15 {
		// An integer below 10^15 (e.g. "1", the most common value): exact.
		f := float64(mant)
		if neg {
			f = -f
		}
		return f, j, true
	}
	e10 := 0
	if j < n && s[j] == '.' {
		j++
		f := j
		for j < n && s[j]-'0' < 10 {
			mant = mant*10 + uint64(s[j]-'0')
			j++
		}
		nd += j - f
		e10 = f - j
	}
	if nd == 0 || nd > 19 {
		return parseFloatSlow(s, start)
	}
	if j < n && (s[j] == 'e' || s[j] == 'E') {
		j++
		eneg := false
		if j < n && (s[j] == '+' || s[j] == '-') {
			eneg = s[j] == '-'
			j++
		}
		e := j
		exp := 0
		for j < n && s[j]-'0' < 10 {
			exp = exp*10 + int(s[j]-'0')
			j++
		}
		if j == e || j-e > 4 {
			return parseFloatSlow(s, start)
		}
		if eneg {
			exp = -exp
		}
		e10 += exp
	}
	if j < n && !isSpace(s[j]) {
		return parseFloatSlow(s, start)
	}
	var f float64
	if mant != 0 {
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
	return f, j, true
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
// maxIndex (next is then just past the digits).
func parseIndex(s []byte, i int) (idx int, next int, ok bool) {
	j := i
	for j < len(s) && s[j]-'0' < 10 {
		idx = idx*10 + int(s[j]-'0')
		j++
	}
	if j == i || j-i > 18 || idx > maxIndex {
		return 0, j, false
	}
	return idx, j, true
}
