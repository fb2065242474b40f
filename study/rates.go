package study

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
)

// RateDecades is the fit window of TailSlope: the last 1.5 decades of t,
// [t_end / 10^1.5, t_end]. The theorems' rates are asymptotic; this skips
// the start, where the 1/L-limited steps dominate.
const RateDecades = 1.5

// TailSlope is the least-squares slope of log(Rel) against log(T) over
// the trace's rows with T in [T_end / 10^decades, T_end], T > 0 and Rel
// > 0 (finite): the empirical rate of the output's suboptimality. NaN
// with fewer than 3 such rows or when T spans no range.
func TailSlope(tr []Point, decades float64) float64 {
	var end int64
	for _, p := range tr {
		end = max(end, p.T)
	}
	if end <= 0 {
		return math.NaN()
	}
	from := float64(end) / math.Pow(10, decades)
	var n, sx, sy, sxx, sxy float64
	for _, p := range tr {
		if p.T <= 0 || float64(p.T) < from || !(p.Rel > 0) || math.IsInf(p.Rel, 0) {
			continue
		}
		x, y := math.Log(float64(p.T)), math.Log(p.Rel)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	den := n*sxx - sx*sx
	if n < 3 || !(den > 1e-12*n*sxx) {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / den
}

// TheoremSlope is the rate the paper proves for train's --step: -1/2
// for convex (general convex, uniform average), -1 for strong (strongly
// convex, (t+t0)-weighted average); NaN for the others.
func TheoremSlope(step string) float64 {
	switch step {
	case "convex":
		return -0.5
	case "strong":
		return -1
	}
	return math.NaN()
}

// hasSteps reports whether the sweep has a --step axis.
func (res *Result) hasSteps() bool {
	return slices.ContainsFunc(res.Records, func(r Record) bool { return r.Step != "" })
}

// markdownRates adds, when the sweep has a step axis, the median fitted
// slope per configuration (P and step) beside the theorem's.
func (res *Result) markdownRates(b *strings.Builder) {
	if !res.hasSteps() {
		return
	}
	fmt.Fprintf(b, "\n## rates\n\nLeast-squares slope of log(relative suboptimality of the output) against log(t) over the last %g decades of each run's trace"+
		" (rows with positive suboptimality); median, min and max over the repeats. The theorems: -0.5 (convex), -1 (strong).\n\n", RateDecades)
	b.WriteString("| mode | method | step | batch | slow | net delay | P | runs | median slope | min | max | theorem |\n|")
	for range 12 {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, k := range res.keys() {
		if k.Step == "" {
			continue
		}
		var v []float64
		for _, r := range res.group(k) {
			if !math.IsNaN(r.Slope) {
				v = append(v, r.Slope)
			}
		}
		method := k.Method
		if method == "" {
			method = "-"
		}
		lo, hi := math.NaN(), math.NaN()
		if len(v) > 0 {
			lo, hi = slices.Min(v), slices.Max(v)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %g | %s | %d | %d | %s | %s | %s | %s |\n", k.Mode, method, k.Step, k.Batch, k.Slowdown, fmtDelay(k.NetDelay), k.Workers,
			len(v), cell(Median(v), "**%.3f**"), cell(lo, "%.3f"), cell(hi, "%.3f"), cell(TheoremSlope(k.Step), "%g"))
	}
}

// ratesFigure draws, when the sweep has a step axis, the median fitted
// slope against P, one line per step (and mode), with the theorems'
// slopes -1/2 and -1 as reference lines.
func (res *Result) ratesFigure(dir string, base Key, workers []int) error {
	if !res.hasSteps() {
		return nil
	}
	p := newPlot(fmt.Sprintf("log-log slope of the suboptimality against t (last %g decades of t, median)", RateDecades),
		"workers P", "slope d log(subopt) / d log(t)")
	lo, hi := float64(workers[0]), float64(workers[len(workers)-1])
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	for i, ref := range []struct {
		y     float64
		label string
	}{{-0.5, "theorem, convex: -1/2"}, {-1, "theorem, strong: -1"}} {
		if err := addLine(p, plotter.XYs{{X: lo, Y: ref.y}, {X: hi, Y: ref.y}}, ref.label, color.Gray{Y: uint8(90 + 60*i)}, 1+i, false); err != nil {
			return err
		}
	}
	var steps []string
	for _, k := range res.keys() {
		if k.Step != "" && !slices.Contains(steps, k.Step) {
			steps = append(steps, k.Step)
		}
	}
	modes := res.modes()
	for i, step := range steps {
		for j, m := range modes {
			k := base
			k.Step, k.Mode = step, m
			var xy plotter.XYs
			for _, w := range workers {
				k.Workers = w
				var v []float64
				for _, r := range res.group(k) {
					if !math.IsNaN(r.Slope) {
						v = append(v, r.Slope)
					}
				}
				if len(v) > 0 {
					xy = append(xy, plotter.XY{X: float64(w), Y: Median(v)})
				}
			}
			label := step
			if len(modes) > 1 {
				label += " " + m
			}
			if err := addLine(p, xy, label, plotutil.Color(i), j, true); err != nil {
				return err
			}
		}
	}
	p.Y.Min, p.Y.Max = math.Min(p.Y.Min, -1.5), math.Max(p.Y.Max, 0)
	p.Legend.Top, p.Legend.Left = false, false
	return save(p, dir, "rates")
}
