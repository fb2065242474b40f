package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/solver/solverbench"
	"github.com/urfave/cli/v2"
)

func init() {
	sgdFlags := append(append(problemFlags(), stepFlags(8)...),
		&cli.Float64Flag{Name: "epochs", EnvVars: envs("epochs"), Value: 10, Usage: "stop after `E` passes over the data"},
		&cli.BoolFlag{Name: "target", EnvVars: envs("target"), Usage: "report the suboptimality phi - phi* each epoch, with phi* from the reference cache (computed and cached if missing)"},
		cacheDirFlag(),
		&cli.StringFlag{Name: "checkpoint", EnvVars: envs("checkpoint"), Usage: "write the solver state to `FILE` (atomically) after every epoch"},
		&cli.BoolFlag{Name: "resume", EnvVars: envs("resume"), Usage: "continue from the --checkpoint file instead of starting afresh"},
	)
	register(&cli.Command{
		Name:  "sgd",
		Usage: "serial proximal SGD (one process, no network): the P = 1 baseline of the asynchronous algorithm",
		Description: "Each update samples a mini-batch without replacement (a fresh random permutation per epoch, the last batch of an\n" +
			"epoch holding the n mod B rows left), takes the regularized step x <- argmin <g,u> + Psi(u) + D(u,x)/alpha(t), and\n" +
			"adds x to the average. Prints phi of the output (the average) after every epoch.",
		Flags: sgdFlags, Action: sgdAction,
	})
	refFlags := append(problemFlags(),
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
		Flags: refFlags, Action: referenceAction,
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

func sgdAction(c *cli.Context) error {
	pc, err := problemConfigFrom(c)
	if err != nil {
		return err
	}
	o := problem.SGDOptions{Epochs: c.Float64("epochs"), PhiStar: math.NaN(), Checkpoint: c.String("checkpoint"), Resume: c.Bool("resume"),
		Target: c.Bool("target"), CacheDir: c.String("cache-dir")}
	if err := o.Validate(); err != nil {
		return fieldError("", err, nil)
	}
	lp, err := pc.Load()
	if err != nil {
		return err
	}
	sc, err := stepConfigFrom(c, lp.Problem, 0)
	if err != nil {
		return err
	}
	o.Config = solver.SGDConfig{Batch: sc.Batch, Schedule: sc.Schedule, Average: sc.Average, Seed: sc.Seed}
	fmt.Fprintf(c.App.Writer, "problem %s\nsgd     %s seed=%d\n", lp.Describe(), problem.DescribeSGD(o.Config, sc.Sigma, sc.R), sc.Seed)
	return lp.SGD(o, c.App.Writer)
}

func referenceAction(c *cli.Context) error {
	pc, err := problemConfigFrom(c)
	if err != nil {
		return err
	}
	o := problem.RefOptions{Tol: c.Float64("tol"), MaxIter: c.Int("max-iter"), Recompute: c.Bool("recompute")}
	if err := o.Validate(); err != nil {
		return fieldError("", err, nil)
	}
	var ok bool
	if o.Method, ok = map[string]solver.RefMethod{"auto": solver.RefAuto, "newton": solver.RefNewton, "fista": solver.RefFISTA}[c.String("method")]; !ok {
		return usagef("--method %q: want auto, newton or fista", c.String("method"))
	}
	if o.CacheDir, err = cacheDir(c); err != nil {
		return err
	}
	lp, err := pc.Load()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "problem    %s\n", lp.Describe())
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err = lp.Reference(ctx, o, c.App.Writer); errors.Is(err, problem.ErrInterrupted) {
		return job.ExitError{Code: exitInterrupt, Err: err}
	}
	return err
}

func benchReferenceAction(c *cli.Context) error {
	o := solverbench.ReferenceOptions{Data: c.String("data"), Lambda: c.Float64("lambda"), Rel: c.Float64("rel"), Rounds: c.Int("rounds"), FISTALimit: c.Duration("fista-limit")}
	err := o.Validate()
	if err != nil {
		return fieldError("bench reference", err, nil)
	}
	if o.CacheDir, err = cacheDir(c); err != nil {
		return err
	}
	return solverbench.Reference(o, c.App.Writer)
}
