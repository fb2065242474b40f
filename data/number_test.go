package data

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// checkFloat compares parseFloat with strconv.ParseFloat bit for bit.
func checkFloat(t testing.TB, s string) {
	t.Helper()
	got, end, ok := parseFloat([]byte(s), 0)
	want, err := strconv.ParseFloat(s, 64)
	wantOK := err == nil && !math.IsInf(want, 0) && !math.IsNaN(want)
	if ok != wantOK {
		t.Fatalf("parseFloat(%q): ok=%v, strconv: %v, %v", s, ok, want, err)
	}
	if ok && (math.Float64bits(got) != math.Float64bits(want) || end != len(s)) {
		t.Fatalf("parseFloat(%q) = %v (bits %x) end %d, strconv %v (bits %x)", s, got, math.Float64bits(got), end, want, math.Float64bits(want))
	}
}

func TestParseFloatMatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "1", "-1", "+1", "0.708333", "-0.320755", "6.2699720e-02", "1e22", "1e23",
		"9007199254740993", "9007199254740992", "123456789012345678", "1234567890123456789",
		"12345678901234567890", "0.1", "0.3", "1.7976931348623157e308", "1.8e308", "4.9e-324",
		"2.2250738585072014e-308", "1e-400", ".5", "5.", "-.5e1", "0x1p-2", "inf", "-Inf", "NaN",
		"1e", "1e+", ".", "-", "+", "", "1_0", "00000000000000000000000001.5", "0.00000000000000000000000123",
		"1.000000000000000000000", "3E4", "3e-0", "1e99999999999999999999",
	} {
		checkFloat(t, s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var s string
		switch r.IntN(4) {
		case 0:
			s = strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)), 'g', -1, 64)
		case 1:
			s = strconv.FormatFloat(r.Float64(), 'f', r.IntN(20), 64)
		case 2:
			s = strconv.FormatFloat(r.NormFloat64(), 'e', r.IntN(18), 64)
		default:
			s = strconv.FormatUint(r.Uint64()>>r.IntN(64), 10)
		}
		checkFloat(t, s)
	}
}

// FuzzParseFloat checks the fast number parser against strconv.ParseFloat
// bit for bit on arbitrary tokens.
func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"0.708333", "-0.320755", "6.2699720e-02", "1", "+1", "-0", "1e22", "1e23",
		"9007199254740993", ".5", "5.", "0x1p-2", "inf", "1e-400", "123456789012345678901"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i := 0; i < len(s); i++ {
			if isSpace(s[i]) || s[i] == '\n' {
				return // tokens never hold separators
			}
		}
		checkFloat(t, s)
	})
}
