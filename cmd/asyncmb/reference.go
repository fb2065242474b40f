package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"context"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

func init() {
	flags := append(problemFlags(),
		cacheDirFlag(),
		&cli.BoolFlag{Name: "recompute", EnvVars: envs("recompute"), Usage: "solve even if the cache holds phi*, and overwrite the cache entry"},
		&cli.Float64Flag{Name: "tol", EnvVars: envs("tol"), Value: 1e-10,
			Usage: "Newton: stop when the decrease the step predicts is <= `TOL` |phi|; FISTA: when the relative change of x and the prox-gradient mapping norm are both <= TOL; a value other than 1e-10 bypasses the cache"},
		&cli.IntFlag{Name: "max-iter", EnvVars: envs("max-iter"), Usage: "give up after `N` iterations (exit code 1); 0: 1000 Newton steps or 100000 FISTA iterations"},
		&cli.StringFlag{Name: "method", EnvVars: envs("method"), Value: "auto",
			Usage: "`M`: auto (proximal Newton for none, l1, l2, elastic, box, nonneg, l1box; FISTA for ball, group, simplex; K-class files: L-BFGS for none and l2, FISTA otherwise), newton or fista; a value other than auto bypasses the cache"},
	)
	register(&cli.Command{
		Name:  "reference",
		Usage: "compute the optimum phi* of a problem with proximal Newton (or FISTA) on the full data and cache it",
		Description: "Minimizes phi(x) = (1/n) sum_i loss(a_i.x, y_i) + Psi(x) to high accuracy: proximal Newton with coordinate descent on\n" +
			"the quadratic model (liblinear's newGLMNET; insensitive to the columns' scales) for the separable regularizers, FISTA with\n" +
			"backtracking and adaptive restart for ball, group and simplex, with the full-data passes on every core. Prints phi*,\n" +
			"nnz(x*), the iterations and the time, and stores phi* in --cache-dir under the data file's SHA-256 and the problem, so\n" +
			"that later runs (train --target, the benches) report the suboptimality phi(x) - phi* without solving again. Ctrl-C stops\n" +
			"the solve (exit 130).",
		Flags:  flags,
		Action: referenceAction,
	})
	registerBench(&cli.Command{
		Name:  "reference",
		Usage: "time the reference solver (Newton and the old FISTA) to phi*(1+REL) on l1-logistic next to liblinear-train -s 6, in one run",
		Description: "Solves the problem once to --tol 1e-10 (or reads phi* from the cache), then times fresh proximal Newton and FISTA\n" +
			"runs until phi(x) <= phi*(1+REL) (each stopped after --fista-limit) and liblinear-train -s 6 (C = 1/(n lambda), -B -1)\n" +
			"at -e 1e-1, 1e-2, ... until the objective of its model, evaluated by asyncmb, is <= phi*(1+REL). liblinear's wall time\n" +
			"includes reading the text file, so asyncmb's read time is printed too.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: envs("data"), Value: "testdata/a9a", Usage: "the LIBSVM `FILE` (binary labels)"},
			&cli.Float64Flag{Name: "lambda", EnvVars: envs("lambda"), Value: 1e-4, Usage: "the L1 weight `LAMBDA` > 0"},
			&cli.Float64Flag{Name: "rel", EnvVars: envs("rel"), Value: 1e-6, Usage: "the target relative suboptimality `REL` > 0"},
			&cli.IntFlag{Name: "rounds", EnvVars: envs("rounds"), Value: 3, Usage: "time each side `N` times and report the fastest"},
			&cli.DurationFlag{Name: "fista-limit", EnvVars: envs("fista-limit"), Value: time.Minute, Usage: "stop a FISTA run that has not reached the target after `D`"},
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
	if maxIter < 0 {
		return usagef("--max-iter %d: want N >= 0", maxIter)
	}
	method, ok := map[string]solver.RefMethod{"auto": solver.RefAuto, "newton": solver.RefNewton, "fista": solver.RefFISTA}[c.String("method")]
	if !ok {
		return usagef("--method %q: want auto, newton or fista", c.String("method"))
	}
	useCache := tol == 1e-10 && method == solver.RefAuto
	dir, err := cacheDir(c)
	if err != nil {
		return err
	}
	lp, err := pc.Load()
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "problem    %s\n", lp.Describe())
	if useCache && !c.Bool("recompute") {
		e, ok, err := solver.ReadRefCache(dir, lp.Key)
		if err != nil {
			return err
		}
		if ok {
			return printRef(w, e, "read from "+solver.RefCachePath(dir, lp.Key))
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := solver.ReferenceContext(ctx, lp.Problem, solver.RefOptions{Tol: tol, MaxIter: maxIter, Method: method})
	if err != nil {
		return exitErr{code: exitInterrupt, err: fmt.Errorf("reference: interrupted after %s (nothing written)", res.Stuck())}
	}
	e := solver.RefEntryOf(lp.Key, res, time.Since(start))
	if !res.Converged {
		printRef(w, e, "not written")
		return fmt.Errorf("reference: not converged after %s", res.Stuck())
	}
	where := "not written (--tol is not 1e-10 or --method is not auto)"
	if useCache {
		if err := solver.WriteRefCache(dir, e); err != nil {
			return err
		}
		where = "written to " + solver.RefCachePath(dir, lp.Key)
	}
	switch res.Method {
	case "newton":
		fmt.Fprintf(w, "newton     %d coordinate-descent passes, %d full-data passes, last predicted decrease %.3g relative\n", res.InnerPasses, res.Evals, res.RelDecrease)
	case "lbfgs":
		fmt.Fprintf(w, "lbfgs      %d full-data passes, gradient norm %.3g (K classes, smooth regularizer)\n", res.Evals, res.MapNorm)
	default:
		fmt.Fprintf(w, "fista      %d restarts, %d full-data passes, final L %.4g\n", res.Restarts, res.Evals, res.L)
	}
	return printRef(w, e, where)
}

func printRef(w io.Writer, e solver.RefEntry, cache string) error {
	_, err := fmt.Fprintf(w, "phi*       %.15g\nnnz(x*)    %d\nmethod     %s\niterations %d\ntime       %.3fs\nmapping    %.3g\ncache      %s\n",
		e.Phi, e.NNZ, e.Method, e.Iters, e.Seconds, e.MapNorm, cache)
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
	pc := problem.Config{Data: c.String("data"), Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: lambda}}
	loadStart := time.Now()
	lp, err := pc.Load()
	if err != nil {
		return err
	}
	loadTime := time.Since(loadStart)
	w := c.App.Writer
	fmt.Fprintf(w, "problem  %s (read in %.3fs)\n", lp.Describe(), loadTime.Seconds())
	e, cached, err := lp.Optimum(context.Background(), dir, nil)
	if err != nil {
		return err
	}
	target := e.Phi * (1 + rel)
	fmt.Fprintf(w, "phi*     %.15g (%s to 1e-10, %d iterations, cached=%v); target phi*(1+%g) = %.15g\n", e.Phi, e.Method, e.Iters, cached, rel, target)
	limit := c.Duration("fista-limit")
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
	ll, eps, err := timeLiblinear(lp, lambda, target, rounds)
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

// timeLiblinear runs liblinear-train -s 6 with C = 1/(n lambda) and ever
// smaller -e until its model reaches target, and returns the fastest of
// rounds runs at that -e.
func timeLiblinear(lp *problem.Loaded, lambda, target float64, rounds int) (time.Duration, float64, error) {
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
func readLiblinearModel(path string, lp *problem.Loaded) ([]float64, error) {
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
