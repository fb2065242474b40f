package study

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Figure size and formats: every figure is written as PNG and SVG.
const (
	figW = 7 * vg.Inch
	figH = 4.5 * vg.Inch
)

var figFormats = []string{"png", "svg"}

const relLabel = "(phi - phi*) / |phi*|"

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	return p
}

func logY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
}

func logX(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
}

// save writes p as dir/name.png and dir/name.svg. A log axis whose data
// span no range (one point, or one value) is widened to a decade, which
// gonum/plot needs; a panic inside gonum/plot becomes an error, so that
// a figure never takes a finished run down.
func save(p *plot.Plot, dir, name string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("study: figure %s: %v", filepath.Join(dir, name), r)
		}
	}()
	widenLog(&p.X)
	widenLog(&p.Y)
	for _, ext := range figFormats {
		path := filepath.Join(dir, name+"."+ext)
		if err := p.Save(figW, figH, path+".tmp."+ext); err != nil {
			return fmt.Errorf("study: figure %s: %w", path, err)
		}
		if err := os.Rename(path+".tmp."+ext, path); err != nil {
			return err
		}
	}
	return nil
}

// widenLog gives a log-scale axis with no range (Min >= Max) or no data
// (Min <= 0) a decade around its value.
func widenLog(a *plot.Axis) {
	if _, ok := a.Scale.(plot.LogScale); !ok {
		return
	}
	switch {
	case !(a.Max > 0):
		a.Min, a.Max = 0.1, 1
	case !(a.Min > 0) || a.Min >= a.Max:
		a.Min, a.Max = a.Max/math.Sqrt(10), a.Max*math.Sqrt(10)
	}
}

// addLine adds a styled line (and its points when points) to p.
func addLine(p *plot.Plot, xy plotter.XYs, label string, c color.Color, dash int, points bool) error {
	if len(xy) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color, l.Width, l.Dashes = c, vg.Points(1.5), plotutil.Dashes(dash)
	p.Add(l)
	if !points {
		p.Legend.Add(label, l)
		return nil
	}
	s, err := plotter.NewScatter(xy)
	if err != nil {
		return err
	}
	s.Color, s.Shape, s.Radius = c, draw.CircleGlyph{}, vg.Points(2.5)
	p.Add(s)
	p.Legend.Add(label, l, s)
	return nil
}

// suboptXY is a trace as (x, rel) with positive coordinates (for log axes).
func suboptXY(tr []Point, byUpdates bool, last bool) plotter.XYs {
	var xy plotter.XYs
	for _, pt := range tr {
		x, y := pt.WallS, pt.Rel
		if byUpdates {
			x = float64(pt.T)
		}
		if last {
			y = pt.RelLast
		}
		if x > 0 && y > 0 && !math.IsInf(y, 0) {
			xy = append(xy, plotter.XY{X: x, Y: y})
		}
	}
	return xy
}

// Figures draws the sweep's figures into dir: suboptimality against time
// and updates per P and mode, speedup against P with the ideal line, the
// delay histogram per P, async against sync, and (when the sweep varies
// them) time to target against the slowdown or the message delay.
func (res *Result) Figures(dir string) error {
	if len(res.Records) == 0 {
		return errors.New("study: no runs to draw")
	}
	base := res.baseKey()
	workers := res.workers()
	modes := res.modes()
	for _, byUpd := range []bool{false, true} {
		name, x, title := "subopt_time", "training time (s)", "relative suboptimality of the output against time"
		if byUpd {
			name, x, title = "subopt_updates", "updates t (master steps)", "relative suboptimality of the output against updates"
		}
		p := newPlot(title+" (repeat 1)", x, relLabel)
		logY(p)
		if byUpd {
			logX(p)
		}
		for i, w := range workers {
			for j, m := range modes {
				k := base
				k.Workers, k.Mode = w, m
				r := res.first(k)
				if r == nil {
					continue
				}
				if err := addLine(p, suboptXY(r.Trace, byUpd, false), fmt.Sprintf("P=%d %s", w, m), plotutil.Color(i), j, false); err != nil {
					return err
				}
			}
		}
		if err := save(p, dir, name); err != nil {
			return err
		}
	}
	if err := res.speedupFigure(dir, base, workers, modes); err != nil {
		return err
	}
	if err := res.delayFigure(dir, base, workers, modes); err != nil {
		return err
	}
	if err := res.ratesFigure(dir, base, workers); err != nil {
		return err
	}
	if slices.Contains(modes, "async") && slices.Contains(modes, "sync") {
		if err := res.asyncSyncFigure(dir, base, workers); err != nil {
			return err
		}
	}
	return res.heterogeneityFigure(dir, base)
}

// baseKey is the configuration the per-P figures show: the first record's
// method, batch, slowdown and message delay.
func (res *Result) baseKey() Key {
	return res.Records[0].key()
}

func (res *Result) workers() []int {
	var ws []int
	for i := range res.Records {
		if !slices.Contains(ws, res.Records[i].Workers) {
			ws = append(ws, res.Records[i].Workers)
		}
	}
	slices.Sort(ws)
	return ws
}

func (res *Result) modes() []string {
	var ms []string
	for i := range res.Records {
		if !slices.Contains(ms, res.Records[i].Mode) {
			ms = append(ms, res.Records[i].Mode)
		}
	}
	return ms
}

// first returns repeat 1 of a configuration (or its first successful run).
func (res *Result) first(k Key) *Record {
	g := res.group(k)
	for _, r := range g {
		if r.Rep == 1 && r.Trace != nil {
			return r
		}
	}
	for _, r := range g {
		if r.Trace != nil {
			return r
		}
	}
	return nil
}

func (res *Result) speedupFigure(dir string, base Key, workers []int, modes []string) error {
	p := newPlot("speedup against P = 1 (median time to target)", "workers P", "speedup T(1)/T(P)")
	if res.Spec.Weak {
		p.Y.Label.Text = "scaled speedup P T(1)/T(P)"
	}
	maxP := float64(workers[len(workers)-1])
	ideal := plotter.XYs{{X: 1, Y: 1}, {X: maxP, Y: maxP}}
	if err := addLine(p, ideal, "ideal (= P)", color.Gray{Y: 110}, 1, false); err != nil {
		return err
	}
	for i, m := range modes {
		for j, e := range res.Spec.Targets {
			k := base
			k.Mode = m
			var xy plotter.XYs
			for _, w := range workers {
				k.Workers = w
				k1 := k
				k1.Workers = 1
				s := res.median(k1, j) / res.median(k, j)
				if res.Spec.Weak {
					s *= float64(w)
				}
				if !math.IsNaN(s) && !math.IsInf(s, 0) {
					xy = append(xy, plotter.XY{X: float64(w), Y: s})
				}
			}
			if err := addLine(p, xy, fmt.Sprintf("%s, to %s", m, TargetLabel(e)), plotutil.Color(i), j+2, true); err != nil {
				return err
			}
		}
	}
	p.X.Min, p.Y.Min = 0, 0
	p.Legend.Left = true
	return save(p, dir, "speedup")
}

func (res *Result) delayFigure(dir string, base Key, workers []int, modes []string) error {
	mode := modes[0]
	if slices.Contains(modes, "async") {
		mode = "async"
	}
	p := newPlot(fmt.Sprintf("delay histogram, %s (all repeats)", mode), "delay tau(t) = t - t_read (updates)", "fraction of applied gradients")
	logY(p)
	var p99, maxD int64
	for i, w := range workers {
		k := base
		k.Workers, k.Mode = w, mode
		var hist []int64
		for _, r := range res.group(k) {
			p99, maxD = max(p99, r.DelayP99), max(maxD, r.DelayMax)
			for d, c := range r.DelayHist {
				if d >= len(hist) {
					hist = append(hist, make([]int64, d+1-len(hist))...)
				}
				hist[d] += c
			}
		}
		if err := addLine(p, histXY(hist), fmt.Sprintf("P=%d", w), plotutil.Color(i), 0, true); err != nil {
			return err
		}
	}
	clipDelays(p, p99, maxD)
	return save(p, dir, "delay_hist")
}

// clipDelays limits a delay histogram's x axis to 3 times the largest p99
// (the rare long delays of a preempted process would squash the rest) and
// says so in the title.
func clipDelays(p *plot.Plot, p99, maxD int64) {
	lim := float64(max(3*p99, 10))
	if float64(maxD) > lim {
		p.X.Min, p.X.Max = 0, lim
		p.Title.Text += fmt.Sprintf("; x cut at 3 p99, max %d", maxD)
	}
}

// histXY turns delay counts into (delay, fraction) points, leaving out
// empty buckets (log axis).
func histXY(hist []int64) plotter.XYs {
	var n int64
	for _, c := range hist {
		n += c
	}
	var xy plotter.XYs
	for d, c := range hist {
		if c > 0 {
			xy = append(xy, plotter.XY{X: float64(d), Y: float64(c) / float64(n)})
		}
	}
	return xy
}

// DrawDelayHist draws one run's delay histogram into dir/delay_hist.
func DrawDelayHist(dir string, hist []int64) error {
	p := newPlot("delay histogram", "delay tau(t) = t - t_read (updates)", "fraction of applied gradients")
	logY(p)
	if err := addLine(p, histXY(hist), "this run", plotutil.Color(0), 0, true); err != nil {
		return err
	}
	var n, acc, p99 int64
	for _, c := range hist {
		n += c
	}
	for d, c := range hist {
		if acc += c; acc >= n*99/100 {
			p99 = int64(d)
			break
		}
	}
	clipDelays(p, p99, int64(len(hist)-1))
	return save(p, dir, "delay_hist")
}

func (res *Result) asyncSyncFigure(dir string, base Key, workers []int) error {
	base.Workers = workers[len(workers)-1]
	title := fmt.Sprintf("async against sync, P = %d", base.Workers)
	if base.Slowdown != 1 {
		title += fmt.Sprintf(", worker 1 slowed %gx", base.Slowdown)
	}
	p := newPlot(title+" (repeat 1)", "training time (s)", relLabel)
	logY(p)
	for i, m := range []string{"async", "sync"} {
		k := base
		k.Mode = m
		r := res.first(k)
		if r == nil {
			continue
		}
		if err := addLine(p, suboptXY(r.Trace, false, false), m, plotutil.Color(i), i, false); err != nil {
			return err
		}
	}
	return save(p, dir, "async_vs_sync")
}

// heterogeneityFigure draws, when the sweep varies the slowdown or the
// message delay, the time to the tightest target against it at the largest P.
func (res *Result) heterogeneityFigure(dir string, base Key) error {
	var slows []float64
	var delays []float64
	for i := range res.Records {
		r := &res.Records[i]
		if !slices.Contains(slows, r.Slowdown) {
			slows = append(slows, r.Slowdown)
		}
		if d := r.NetDelay.Seconds() * 1e3; !slices.Contains(delays, d) {
			delays = append(delays, d)
		}
	}
	if len(slows) < 2 && len(delays) < 2 {
		return nil
	}
	ws := res.workers()
	base.Workers = ws[len(ws)-1]
	j := len(res.Spec.Targets) - 1 // the tightest: where waiting costs most
	byDelay := len(slows) < 2
	x := "slowdown of worker 1 (x)"
	vals := slows
	if byDelay {
		x, vals = "message delay (ms)", delays
	}
	slices.Sort(vals)
	p := newPlot(fmt.Sprintf("heterogeneity: time to %s at P = %d", TargetLabel(res.Spec.Targets[j]), base.Workers), x, "time to target (s)")
	logY(p)
	for i, m := range res.modes() {
		var xy plotter.XYs
		for _, v := range vals {
			k := base
			k.Mode = m
			if byDelay {
				k.NetDelay = durationMs(v)
			} else {
				k.Slowdown = v
			}
			if t := res.median(k, j); t > 0 {
				xy = append(xy, plotter.XY{X: v, Y: t})
			}
		}
		if err := addLine(p, xy, m, plotutil.Color(i), i, true); err != nil {
			return err
		}
	}
	return save(p, dir, "heterogeneity")
}

// DrawRun draws one training run's figures into its directory: the
// suboptimality of the output and of the last iterate against time and
// against updates (the objective phi itself when the run did not know phi*),
// and the delay histogram when hist is not nil.
func DrawRun(dir string, dilate float64) error {
	tr, err := ReadTrace(filepath.Join(dir, "trace.csv"), dilate)
	if err != nil {
		return err
	}
	known := len(suboptXY(tr, false, false))+len(suboptXY(tr, false, true)) > 0
	for _, byUpd := range []bool{false, true} {
		name, x := "subopt_time", "training time (s)"
		if byUpd {
			name, x = "subopt_updates", "updates t (master steps)"
		}
		title, y := "suboptimality of this run", relLabel
		if !known {
			title, y = "objective of this run (phi* unknown: run with --target for suboptimality)", "objective phi"
		}
		p := newPlot(title, x, y)
		if known {
			logY(p)
		}
		if byUpd {
			logX(p)
		}
		out, last := suboptXY(tr, byUpd, false), suboptXY(tr, byUpd, true)
		if !known {
			out, last = phiXY(tr, byUpd, false), phiXY(tr, byUpd, true)
		}
		if len(out)+len(last) == 0 {
			return fmt.Errorf("study: %s has nothing to draw", filepath.Join(dir, "trace.csv"))
		}
		if err := addLine(p, out, "output (average)", plotutil.Color(0), 0, false); err != nil {
			return err
		}
		if err := addLine(p, last, "last iterate", plotutil.Color(1), 1, false); err != nil {
			return err
		}
		if err := save(p, dir, name); err != nil {
			return err
		}
	}
	return nil
}

// phiXY is suboptXY for the objective itself (finite values, x > 0 so that
// a log x axis can hold them).
func phiXY(tr []Point, byUpdates bool, last bool) plotter.XYs {
	var xy plotter.XYs
	for _, pt := range tr {
		x, y := pt.WallS, pt.Phi
		if byUpdates {
			x = float64(pt.T)
		}
		if last {
			y = pt.PhiLast
		}
		if x > 0 && !math.IsNaN(y) && !math.IsInf(y, 0) {
			xy = append(xy, plotter.XY{X: x, Y: y})
		}
	}
	return xy
}

func durationMs(ms float64) time.Duration { return time.Duration(math.Round(ms * 1e6)) }

// DrawRunDir draws a training run's figures into its directory (trace.csv,
// and summary.json for the delay histogram and the dilation factor, whose
// times it divides out).
func DrawRunDir(dir string) error {
	dilate := 1.0
	var hist []int64
	if s, err := ReadSummary(filepath.Join(dir, "summary.json")); err == nil {
		hist = s.Delay.Hist
		dilate = ManifestDilate(s.Manifest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := DrawRun(dir, dilate); err != nil {
		return err
	}
	if len(hist) == 0 {
		return nil
	}
	return DrawDelayHist(dir, hist)
}

// ManifestDilate finds --dilate=F among a summary manifest's flags (1 if
// absent).
func ManifestDilate(m map[string]any) float64 {
	flags, _ := m["flags"].([]any)
	for _, f := range flags {
		s, _ := f.(string)
		if v, ok := strings.CutPrefix(s, "--dilate="); ok {
			if d, err := strconv.ParseFloat(v, 64); err == nil && d >= 1 {
				return d
			}
		}
	}
	return 1
}
