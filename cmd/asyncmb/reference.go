package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

func init() {
	flags := append(problemFlags(),
		cacheDirFlag(),
		&cli.BoolFlag{Name: "recompute", EnvVars: envs("recompute"), Usage: "solve even if the cache holds phi*, and overwrite the cache entry"},
		&cli.Float64Flag{Name: "tol", EnvVars: envs("tol"), Value: 1e-10,
			Usage: "stop when the relative change of x and the prox-gradient mapping norm are both <= `TOL`; a value other than 1e-10 bypasses the cache"},
		&cli.IntFlag{Name: "max-iter", EnvVars: envs("max-iter"), Value: 100000, Usage: "give up after `N` iterations (exit code 1)"},
	)
	register(&cli.Command{
		Name:  "reference",
		Usage: "compute the optimum phi* of a problem with FISTA (backtracking, adaptive restart) on the full data and cache it",
		Description: "Minimizes phi(x) = (1/n) sum_i loss(a_i.x, y_i) + Psi(x) to a prox-gradient mapping norm and a relative change\n" +
			"of x below --tol, with the full gradient computed in parallel. Prints phi*, nnz(x*), the iterations and the time,\n" +
			"and stores phi* in --cache-dir under the data file's SHA-256 and the problem, so that later runs (train --target,\n" +
			"the benches) report the suboptimality phi(x) - phi* without solving again.",
		Flags:  flags,
		Action: referenceAction,
	})
	registerBench(&cli.Command{
		Name:  "reference",
		Usage: "time the reference solver to phi*(1+1e-6) on a9a l1-logistic next to liblinear-train -s 6, in one run",
		Description: "Solves the problem once to --tol 1e-10 (or reads phi* from the cache), then times a fresh FISTA run until\n" +
			"phi(x) <= phi*(1+REL) and liblinear-train -s 6 (C = 1/(n lambda), -B -1) at -e 1e-1, 1e-2, ... until the objective of\n" +
			"its model, evaluated by asyncmb, is <= phi*(1+REL). liblinear's wall time includes reading the text file, so\n" +
			"asyncmb's read time is printed too.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: envs("data"), Value: "testdata/a9a", Usage: "the LIBSVM `FILE` (binary labels)"},
			&cli.Float64Flag{Name: "lambda", EnvVars: envs("lambda"), Value: 1e-4, Usage: "the L1 weight `LAMBDA` > 0"},
			&cli.Float64Flag{Name: "rel", EnvVars: envs("rel"), Value: 1e-6, Usage: "the target relative suboptimality `REL` > 0"},
			&cli.IntFlag{Name: "rounds", EnvVars: envs("rounds"), Value: 3, Usage: "time each side `N` times and report the fastest"},
			cacheDirFlag(),
		},
		Action: benchReferenceAction,
	})
}

func referenceAction(c *cli.Context) error {
	pc, err := problemConfigFrom(c)
	if err != nil {
		return err
	}
	tol, maxIter := c.Float64("tol"), c.Int("max-iter")
	if !(tol > 0) || tol >= 1 {
		return usagef("--tol %v: want 0 < TOL < 1", tol)
	}
	if maxIter < 1 {
		return usagef("--max-iter %d: want N >= 1", maxIter)
	}
	dir, err := cacheDir(c)
	if err != nil {
		return err
	}
	lp, err := pc.load()
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "problem    %s\n", lp.describe())
	if tol == 1e-10 && !c.Bool("recompute") {
		e, ok, err := solver.ReadRefCache(dir, lp.Key)
		if err != nil {
			return err
		}
		if ok {
			return printRef(w, e, "read from "+solver.RefCachePath(dir, lp.Key))
		}
	}
	start := time.Now()
	res := solver.Reference(lp.Problem, solver.RefOptions{Tol: tol, MaxIter: maxIter})
	e := solver.RefEntry{Key: lp.Key, Phi: res.Phi, NNZ: res.NNZ, Iters: res.Iters, Converged: res.Converged,
		MapNorm: res.MapNorm, Seconds: time.Since(start).Seconds()}
	if !res.Converged {
		printRef(w, e, "not written")
		return fmt.Errorf("reference: not converged after %d iterations (mapping norm %.3g, relative change %.3g)", res.Iters, res.MapNorm, res.RelChange)
	}
	where := "not written (--tol is not 1e-10)"
	if tol == 1e-10 {
		if err := solver.WriteRefCache(dir, e); err != nil {
			return err
		}
		where = "written to " + solver.RefCachePath(dir, lp.Key)
	}
	fmt.Fprintf(w, "restarts   %d, full-data passes %d, final L %.4g\n", res.Restarts, res.Evals, res.L)
	return printRef(w, e, where)
}

func printRef(w io.Writer, e solver.RefEntry, cache string) error {
	_, err := fmt.Fprintf(w, "phi*       %.15g\nnnz(x*)    %d\niterations %d\ntime       %.3fs\nmapping    %.3g\ncache      %s\n",
		e.Phi, e.NNZ, e.Iters, e.Seconds, e.MapNorm, cache)
	return err
}

func benchReferenceAction(c *cli.Context) error {
	lambda, rel, rounds := c.Float64("lambda"), c.Float64("rel"), c.Int("rounds")
	if !(lambda > 0) || !(rel > 0) || rounds < 1 {
		return usagef("bench reference: want --lambda > 0, --rel > 0, --rounds >= 1")
	}
	dir, err := cacheDir(c)
	if err != nil {
		return err
	}
	pc := problemConfig{Data: c.String("data"), Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: lambda}}
	loadStart := time.Now()
	lp, err := pc.load()
	if err != nil {
		return err
	}
	loadTime := time.Since(loadStart)
	w := c.App.Writer
	fmt.Fprintf(w, "problem  %s (read in %.3fs)\n", lp.describe(), loadTime.Seconds())
	e, cached, err := referenceOptimum(lp, dir)
	if err != nil {
		return err
	}
	target := e.Phi * (1 + rel)
	fmt.Fprintf(w, "phi*     %.15g (FISTA to 1e-10, %d iterations, cached=%v); target phi*(1+%g) = %.15g\n", e.Phi, e.Iters, cached, rel, target)

	var best time.Duration
	var iters int
	for r := 0; r < rounds; r++ {
		start := time.Now()
		var took time.Duration
		res := solver.Reference(lp.Problem, solver.RefOptions{Progress: func(k int, phi float64) bool {
			if phi <= target {
				took, iters = time.Since(start), k
				return false
			}
			return true
		}})
		if took == 0 {
			return fmt.Errorf("bench reference: FISTA stopped at phi=%.15g above the target", res.Phi)
		}
		if r == 0 || took < best {
			best = took
		}
	}
	fmt.Fprintf(w, "asyncmb  FISTA          %8.3fs to target (%d iterations, GOMAXPROCS=%d; %.3fs with reading the file)\n",
		best.Seconds(), iters, runtime.GOMAXPROCS(0), (best + loadTime).Seconds())

	ll, eps, err := timeLiblinear(lp, lambda, target, rounds)
	if errors.Is(err, exec.ErrNotFound) {
		fmt.Fprintf(w, "liblinear-train not found (Debian: apt-get install liblinear-tools): no baseline\n")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "liblinear-train -s 6 -e %g %6.3fs to target (wall, includes reading the file; single-threaded)\n", eps, ll.Seconds())
	fmt.Fprintf(w, "ratio    asyncmb/liblinear %.2f (solve only), %.2f (with reading the file)\n",
		best.Seconds()/ll.Seconds(), (best+loadTime).Seconds()/ll.Seconds())
	return nil
}

// timeLiblinear runs liblinear-train -s 6 with C = 1/(n lambda) and ever
// smaller -e until its model reaches target, and returns the fastest of
// rounds runs at that -e.
func timeLiblinear(lp *loadedProblem, lambda, target float64, rounds int) (time.Duration, float64, error) {
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
		x, err := readLiblinearModel(model, lp)
		if err != nil {
			return 0, 0, err
		}
		if lp.Problem.Objective(x) <= target {
			return best, eps, nil
		}
	}
	return 0, 0, fmt.Errorf("liblinear-train -s 6 did not reach phi*(1+rel) even at -e 1e-9")
}

// readLiblinearModel reads the weights of a two-class liblinear model file
// into our sign convention (+1 is the data's larger label, LabelMap.Pos),
// padded with zeros to the problem's dimension.
func readLiblinearModel(path string, lp *loadedProblem) ([]float64, error) {
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
