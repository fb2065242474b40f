package main

import (
	"fmt"
	"io"
	"math"

	"context"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:  "rates",
		Usage: "fit the log-log slope of the averaged iterate's suboptimality against t for the convex and strongly convex schedules",
		Description: "Runs serial prox-SGD (P = 1, tau = 0) with the general convex schedule and the uniform average on\n" +
			"l1-logistic, and with the strongly convex schedule and the (t+t0)-weighted average on l2-logistic, records\n" +
			"the mean over --seeds runs of phi(average) - phi* at log-spaced t, and fits log(subopt) = a + s log(t) by least\n" +
			"squares over t in [--fit-from epochs, --epochs]. The theorems bound s by -1/2 and -1. The constant step\n" +
			"1/L with the uniform average is run alongside as a baseline (its slope flattens at its noise floor).\n" +
			"phi* comes from the reference cache (FISTA, computed and cached if missing).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: envs("data"), Value: "testdata/a9a", Usage: "the LIBSVM `FILE` (binary labels)"},
			&cli.Float64Flag{Name: "lambda-convex", EnvVars: envs("lambda-convex"), Value: 1e-4, Usage: "the L1 weight `LAMBDA` of the convex run"},
			&cli.Float64Flag{Name: "lambda-strong", EnvVars: envs("lambda-strong"), Value: 1e-4, Usage: "the L2 weight `LAMBDA` (= mu) of the strongly convex run"},
			&cli.IntFlag{Name: "batch", EnvVars: envs("batch"), Value: 8, Usage: "the mini-batch size `B`"},
			&cli.Float64Flag{Name: "epochs", EnvVars: envs("epochs"), Value: 20, Usage: "run `E` epochs; the fit window ends there"},
			&cli.Float64Flag{Name: "fit-from", EnvVars: envs("fit-from"), Value: 1, Usage: "the fit window starts after `E` epochs"},
			&cli.IntFlag{Name: "points", EnvVars: envs("points"), Value: 30, Usage: "`N` log-spaced measurements from t = 100 to the end"},
			&cli.IntFlag{Name: "seeds", EnvVars: envs("seeds"), Value: 5, Usage: "average the suboptimality over `N` seeds"},
			cacheDirFlag(),
		},
		Action: benchRatesAction,
	})
}

// rateRun is one schedule's measurements: mean suboptimality at each t.
type rateRun struct {
	name   string
	bound  float64 // the theorem's slope, 0 for none
	t      []int64
	subopt []float64
	slope  float64
}

func benchRatesAction(c *cli.Context) error {
	batch, epochs, fitFrom := c.Int("batch"), c.Float64("epochs"), c.Float64("fit-from")
	points, seeds := c.Int("points"), c.Int("seeds")
	lc, ls := c.Float64("lambda-convex"), c.Float64("lambda-strong")
	if batch < 1 || !(epochs > 0) || !(fitFrom >= 0) || fitFrom >= epochs || points < 3 || seeds < 1 || !(lc > 0) || !(ls > 0) {
		return usagef("bench rates: want --batch >= 1, 0 <= --fit-from < --epochs, --points >= 3, --seeds >= 1, lambdas > 0")
	}
	dir, err := cacheDir(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	var runs []*rateRun
	for _, job := range []struct {
		kind   solver.RegKind
		lambda float64
	}{{solver.RegL1, lc}, {solver.RegL2, ls}} {
		pc := problem.Config{Data: c.String("data"), Loss: kernels.Logistic, Reg: solver.Reg{Kind: job.kind, Lambda: job.lambda}}
		lp, err := pc.Load()
		if err != nil {
			return err
		}
		e, cached, err := lp.Optimum(context.Background(), dir, nil)
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
