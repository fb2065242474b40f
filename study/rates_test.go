package study

import (
	"math"
	"testing"
)

// TestTailSlope: the fit recovers the known slope of a synthetic trace
// over its last RateDecades decades, ignoring an earlier phase of another
// slope, rows at t = 0 and rows whose suboptimality is 0 or negative.
func TestTailSlope(t *testing.T) {
	for _, want := range []float64{-0.5, -1, -0.37} {
		tr := []Point{{T: 0, Rel: 1}}
		end := 100000.0
		knee := end / math.Pow(10, RateDecades)
		for k := 0; k <= 60; k++ {
			tt := math.Round(math.Pow(10, 5*float64(k)/60))
			rel := 3 * math.Pow(tt/knee, want) // the tail: slope want
			if tt < knee {
				rel = 3 * math.Pow(tt/knee, -0.1) // the start: another slope
			}
			tr = append(tr, Point{T: int64(tt), Rel: rel})
		}
		tr = append(tr, Point{T: 50000, Rel: 0}, Point{T: 60000, Rel: -1e-9})
		if got := TailSlope(tr, RateDecades); math.Abs(got-want) > 1e-9 {
			t.Errorf("slope %v: fitted %v", want, got)
		}
		// The whole trace has a flatter slope: the window matters.
		if got := TailSlope(tr, 5); !(got > want+0.05) {
			t.Errorf("slope %v over 5 decades: fitted %v, want flatter", want, got)
		}
	}
	for _, tr := range [][]Point{nil, {{T: 10, Rel: 1}, {T: 100, Rel: 0.1}}, {{T: 100, Rel: 1}, {T: 100, Rel: 0.5}, {T: 100, Rel: 0.2}}} {
		if got := TailSlope(tr, RateDecades); !math.IsNaN(got) {
			t.Errorf("TailSlope(%v) = %v, want NaN (too few rows or no range)", tr, got)
		}
	}
}
