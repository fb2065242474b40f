package main

import (
	"fmt"
	"math"

	"context"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

func init() {
	flags := append(problemFlags(), stepFlags()...)
	flags = append(flags,
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
		Flags: flags, Action: sgdAction,
	})
}

func sgdAction(c *cli.Context) error {
	pc, err := problemConfigFrom(c)
	if err != nil {
		return err
	}
	epochs := c.Float64("epochs")
	if !(epochs > 0) || math.IsInf(epochs, 0) {
		return usagef("--epochs %v: want E > 0", epochs)
	}
	ckPath := c.String("checkpoint")
	if c.Bool("resume") && ckPath == "" {
		return usagef("--resume needs --checkpoint FILE")
	}
	lp, err := pc.Load()
	if err != nil {
		return err
	}
	sc, err := stepConfigFrom(c, lp.Problem, 0)
	if err != nil {
		return err
	}
	w, cfg := c.App.Writer, solver.SGDConfig{Batch: sc.Batch, Schedule: sc.Schedule, Average: sc.Average, Seed: sc.Seed}
	fmt.Fprintf(w, "problem %s\nsgd     %s seed=%d\n", lp.Describe(), problem.DescribeSGD(cfg, sc.Sigma, sc.R), sc.Seed)
	phiStar := math.NaN()
	if c.Bool("target") {
		dir, err := cacheDir(c)
		if err != nil {
			return err
		}
		e, cached, err := lp.Optimum(context.Background(), dir, nil)
		if err != nil {
			return err
		}
		phiStar = e.Phi
		fmt.Fprintf(w, "phi*    %.15g (cached=%v)\n", phiStar, cached)
	}
	return lp.SGD(problem.SGDOptions{Config: cfg, Epochs: epochs, PhiStar: phiStar, Checkpoint: ckPath, Resume: c.Bool("resume")}, w)
}
