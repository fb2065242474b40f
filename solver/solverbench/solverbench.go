// Package solverbench holds `asyncmb bench rates` and `asyncmb bench
// reference`: the convergence rates of package solver's schedules against
// the theorems' slopes, and the reference solver against liblinear-train,
// each measured in one run; and the liblinear helpers the train benchmark
// shares (TimeLiblinear, LiblinearPhi, ReadLiblinearModel).
package solverbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
)

// RatesOptions is what Rates measures: serial prox-SGD on Data (logistic)
// with L1 weight LambdaConvex and L2 weight LambdaStrong.
type RatesOptions struct {
	Data                       string
	LambdaConvex, LambdaStrong float64
	Batch                      int
	Epochs, FitFrom            float64
	Points, Seeds              int
	CacheDir                   string // the reference optima phi*
}

// Validate names the first field out of range.
func (o RatesOptions) Validate() error {
	switch {
	case o.Batch < 1:
		return fmt.Errorf("Batch %d: want >= 1", o.Batch)
	case !(o.Epochs > 0) || !(o.FitFrom >= 0) || o.FitFrom >= o.Epochs:
		return fmt.Errorf("FitFrom %g: want 0 <= --fit-from < --epochs (%g)", o.FitFrom, o.Epochs)
	case o.Points < 3:
		return fmt.Errorf("Points %d: want >= 3", o.Points)
	case o.Seeds < 1:
		return fmt.Errorf("Seeds %d: want >= 1", o.Seeds)
	case !(o.LambdaConvex > 0):
		return fmt.Errorf("LambdaConvex %g: want > 0", o.LambdaConvex)
	case !(o.LambdaStrong > 0):
		return fmt.Errorf("LambdaStrong %g: want > 0", o.LambdaStrong)
	}
	return nil
}

// rateRun is one schedule's measurements: mean suboptimality at each t.
type rateRun struct {
	name   string
	bound  float64 // the theorem's slope, 0 for none
	t      []int64
	subopt []float64
	slope  float64
}

// Rates runs both schedules (and the constant-step baseline), fits the
// log-log slopes and prints them with their ratio to the theorems' to w.
func Rates(o RatesOptions, w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	batch, epochs, fitFrom, points, seeds := o.Batch, o.Epochs, o.FitFrom, o.Points, o.Seeds
	var runs []*rateRun
	for _, job := range []struct {
		kind   solver.RegKind
		lambda float64
	}{{solver.RegL1, o.LambdaConvex}, {solver.RegL2, o.LambdaStrong}} {
		pc := problem.Config{Data: o.Data, Loss: kernels.Logistic, Reg: solver.Reg{Kind: job.kind, Lambda: job.lambda}}
		lp, err := pc.Load()
		if err != nil {
			return err
		}
		e, cached, err := lp.Optimum(context.Background(), o.CacheDir, nil)
		if err != nil {
			return err
		}
		p := lp.Problem
		n, d := p.Dims()
		L := p.EstimateL(100, 1)
		fmt.Fprintf(w, "problem %s: phi* %.12g (cached=%v), L %.4g\n", lp.Describe(), e.Phi, cached, L)
		x0 := make([]float64, d)
		var cfgs []struct {
			name  string
			bound float64
			cfg   solver.SGDConfig
		}
		add := func(name string, bound float64, sch solver.Schedule, avg solver.Averager) {
			cfgs = append(cfgs, struct {
				name  string
				bound float64
				cfg   solver.SGDConfig
			}{name, bound, solver.SGDConfig{Batch: batch, Schedule: sch, Average: avg}})
		}
		if job.kind == solver.RegL1 {
			sigma := p.EstimateSigma(x0, batch, 32, 1)
			conv := solver.ConvexSchedule(L, 0, sigma, math.Sqrt(float64(d)), batch)
			add(fmt.Sprintf("convex (sigma %.3g, R sqrt(d) = %.3g, beta %.3g), uniform average", sigma, math.Sqrt(float64(d)), conv.Beta), -0.5, conv, conv.DefaultAverage())
			cst := solver.Schedule{Kind: solver.StepConst, Alpha0: 1 / L}
			add("baseline: constant 1/L, uniform average", 0, cst, cst.DefaultAverage())
		} else {
			strong := solver.StrongSchedule(L, 0, p.Reg.Mu())
			add(fmt.Sprintf("strong (mu %g, t0 %.4g), (t+t0)-weighted average", strong.Mu, strong.T0), -1, strong, strong.DefaultAverage())
		}
		total := int64(math.Ceil(epochs * float64(n) / float64(batch)))
		ts := logSpaced(100, total, points)
		out := make([]float64, d)
		for _, cf := range cfgs {
			run := &rateRun{name: cf.name, bound: cf.bound, t: ts, subopt: make([]float64, len(ts))}
			for seed := 1; seed <= seeds; seed++ {
				cf.cfg.Seed = uint64(seed)
				s, err := solver.NewSGD(p, cf.cfg, nil)
				if err != nil {
					return err
				}
				k := 0
				s.Run(epochs, 1, func(s *solver.SGD) bool {
					if k < len(ts) && s.T == ts[k] {
						s.Output(out)
						run.subopt[k] += (p.Objective(out) - e.Phi) / float64(seeds)
						k++
					}
					return k < len(ts)
				})
			}
			lo := int64(fitFrom * float64(n) / float64(batch))
			run.slope = fitSlope(run.t, run.subopt, lo)
			runs = append(runs, run)
		}
	}
	printRates(w, runs, fitFrom, epochs, batch, seeds)
	return nil
}

// logSpaced returns up to n distinct integers from lo to hi, evenly spaced
// in log scale, ending at hi.
func logSpaced(lo, hi int64, n int) []int64 {
	var ts []int64
	for k := 0; k < n; k++ {
		t := int64(math.Round(float64(lo) * math.Pow(float64(hi)/float64(lo), float64(k)/float64(n-1))))
		if len(ts) == 0 || t > ts[len(ts)-1] {
			ts = append(ts, t)
		}
	}
	return ts
}

// fitSlope is the least-squares slope of log(s) against log(t) over the
// points with t >= from and s > 0.
func fitSlope(t []int64, s []float64, from int64) float64 {
	var n, sx, sy, sxx, sxy float64
	for i := range t {
		if t[i] < from || !(s[i] > 0) {
			continue
		}
		x, y := math.Log(float64(t[i])), math.Log(s[i])
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	if n < 2 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func printRates(w io.Writer, runs []*rateRun, fitFrom, epochs float64, batch, seeds int) {
	for _, r := range runs {
		fmt.Fprintf(w, "\n%s\n%12s %14s\n", r.name, "t", "phi - phi*")
		for i := range r.t {
			fmt.Fprintf(w, "%12d %14.5g\n", r.t[i], r.subopt[i])
		}
	}
	fmt.Fprintf(w, "\nlog-log slope of the mean suboptimality (%d seeds, batch %d) over epochs [%g, %g]:\n", seeds, batch, fitFrom, epochs)
	for _, r := range runs {
		if r.bound != 0 {
			fmt.Fprintf(w, "  %-70s slope %7.3f  theorem %5.2f  ratio %.2f\n", r.name, r.slope, r.bound, r.slope/r.bound)
		} else {
			fmt.Fprintf(w, "  %-70s slope %7.3f\n", r.name, r.slope)
		}
	}
}

// ReferenceOptions is what Reference times: l1-logistic on Data with
// weight Lambda, to phi*(1+Rel), each side Rounds times.
type ReferenceOptions struct {
	Data       string
	Lambda     float64
	Rel        float64
	Rounds     int
	FISTALimit time.Duration
	CacheDir   string
}

// Validate names the first field out of range.
func (o ReferenceOptions) Validate() error {
	switch {
	case !(o.Lambda > 0):
		return fmt.Errorf("Lambda %g: want > 0", o.Lambda)
	case !(o.Rel > 0):
		return fmt.Errorf("Rel %g: want > 0", o.Rel)
	case o.Rounds < 1:
		return fmt.Errorf("Rounds %d: want >= 1", o.Rounds)
	}
	return nil
}

// Reference times proximal Newton and FISTA to the target next to
// liblinear-train -s 6 and prints the times and ratios to w.
func Reference(o ReferenceOptions, w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	lambda, rel, rounds := o.Lambda, o.Rel, o.Rounds
	pc := problem.Config{Data: o.Data, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: lambda}}
	loadStart := time.Now()
	lp, err := pc.Load()
	if err != nil {
		return err
	}
	loadTime := time.Since(loadStart)
	fmt.Fprintf(w, "problem  %s (read in %.3fs)\n", lp.Describe(), loadTime.Seconds())
	e, cached, err := lp.Optimum(context.Background(), o.CacheDir, nil)
	if err != nil {
		return err
	}
	target := e.Phi * (1 + rel)
	fmt.Fprintf(w, "phi*     %.15g (%s to 1e-10, %d iterations, cached=%v); target phi*(1+%g) = %.15g\n", e.Phi, e.Method, e.Iters, cached, rel, target)
	limit := o.FISTALimit
	timeTo := func(m solver.RefMethod) (best time.Duration, iters int, reached bool) {
		for r := 0; r < rounds; r++ {
			start := time.Now()
			var took time.Duration
			k := 0
			solver.Reference(lp.Problem, solver.RefOptions{Method: m, Tol: 1e-13, Progress: func(it int, phi float64) bool {
				if phi <= target {
					took, k = time.Since(start), it
					return false
				}
				return time.Since(start) < limit
			}})
			if took == 0 {
				return time.Since(start), 0, false
			}
			if r == 0 || took < best {
				best, iters = took, k
			}
		}
		return best, iters, true
	}
	nb, nIters, nOK := timeTo(solver.RefNewton)
	if !nOK {
		return fmt.Errorf("bench reference: proximal Newton did not reach the target")
	}
	fb, fIters, fOK := timeTo(solver.RefFISTA)
	fmt.Fprintf(w, "asyncmb  Newton         %8.3fs to target (%d Newton steps, GOMAXPROCS=%d; %.3fs with reading the file)\n",
		nb.Seconds(), nIters, runtime.GOMAXPROCS(0), (nb + loadTime).Seconds())
	if fOK {
		fmt.Fprintf(w, "asyncmb  FISTA (old)    %8.3fs to target (%d iterations); Newton/FISTA %.3f\n", fb.Seconds(), fIters, nb.Seconds()/fb.Seconds())
	} else {
		fmt.Fprintf(w, "asyncmb  FISTA (old)    not at the target after %v (--fista-limit); Newton/FISTA < %.3f\n", limit, nb.Seconds()/fb.Seconds())
	}
	best := nb
	ll, eps, err := TimeLiblinear(lp, lambda, target, rounds)
	if errors.Is(err, exec.ErrNotFound) {
		fmt.Fprintf(w, "liblinear-train not found (Debian: apt-get install liblinear-tools): no baseline\n")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "liblinear-train -s 6 -e %g %6.3fs to target (wall, includes reading the file; single-threaded)\n", eps, ll.Seconds())
	fmt.Fprintf(w, "ratio    Newton/liblinear %.2f (solve only), %.2f (with reading the file)\n",
		best.Seconds()/ll.Seconds(), (best+loadTime).Seconds()/ll.Seconds())
	return nil
}

// TimeLiblinear runs liblinear-train -s 6 with C = 1/(n lambda) and ever
// smaller -e until its model reaches target, and returns the fastest of
// rounds runs at that -e.
func TimeLiblinear(lp *problem.Loaded, lambda, target float64, rounds int) (time.Duration, float64, error) {
	bin, err := exec.LookPath("liblinear-train")
	if err != nil {
		return 0, 0, err
	}
	n, _ := lp.Problem.Dims()
	tmp, err := os.MkdirTemp("", "asyncmb-liblinear-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	model := filepath.Join(tmp, "model")
	cArg := strconv.FormatFloat(1/(float64(n)*lambda), 'g', -1, 64)
	for _, eps := range []float64{1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9} {
		var best time.Duration
		for r := 0; r < rounds; r++ {
			cmd := exec.Command(bin, "-s", "6", "-c", cArg, "-e", strconv.FormatFloat(eps, 'g', -1, 64), "-B", "-1", "-q", lp.Config.Data, model)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return 0, 0, fmt.Errorf("liblinear-train: %v: %s", err, out)
			}
			if t := time.Since(start); r == 0 || t < best {
				best = t
			}
		}
		x, err := ReadLiblinearModel(model, lp)
		if err != nil {
			return 0, 0, err
		}
		if lp.Problem.Objective(x) <= target {
			return best, eps, nil
		}
	}
	return 0, 0, fmt.Errorf("liblinear-train -s 6 did not reach phi*(1+rel) even at -e 1e-9")
}

// ReadLiblinearModel reads the weights of a two-class liblinear model file
// into our sign convention (+1 is the data's larger label, LabelMap.Pos),
// padded with zeros to the problem's dimension.
func ReadLiblinearModel(path string, lp *problem.Loaded) ([]float64, error) {
	m, err := ranks.ReadModel(path)
	if err != nil {
		return nil, err
	}
	_, d := lp.Problem.Dims()
	if len(m.Weights) > d {
		return nil, fmt.Errorf("%s: %d weights for dimension %d", path, len(m.Weights), d)
	}
	x := append(m.Weights, make([]float64, d-len(m.Weights))...)
	if lp.LabelMap != nil && len(m.Labels) == 2 && m.Labels[0] != lp.LabelMap.Pos {
		for i := range x {
			x[i] = -x[i]
		}
	}
	return x, nil
}

// LiblinearPhi is phi of liblinear-train -s 6 -e 1e-9's model of lp.
func LiblinearPhi(bin string, lp *problem.Loaded, lambda float64) (float64, error) {
	n, _ := lp.Problem.Dims()
	tmp, err := os.MkdirTemp("", "asyncmb-liblinear-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	model := filepath.Join(tmp, "model")
	c := strconv.FormatFloat(1/(float64(n)*lambda), 'g', -1, 64)
	if out, err := exec.Command(bin, "-s", "6", "-c", c, "-e", "1e-9", "-B", "-1", "-q", lp.Config.Data, model).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("liblinear-train: %v: %s", err, out)
	}
	x, err := ReadLiblinearModel(model, lp)
	if err != nil {
		return 0, err
	}
	return lp.Problem.Objective(x), nil
}
