package main

import (
	"fmt"
	"math"

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
