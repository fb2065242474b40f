package main

import (
	"fmt"
	"math"
	"time"

	"context"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

func init() {
	flags := append(problemFlags(), stepFlags()...)
	flags = append(flags,
		&cli.Float64Flag{Name: "epochs", EnvVars: envs("epochs"), Value: 10, Usage: "stop after `E` passes over the data"},
		&cli.BoolFlag{Name: "target", EnvVars: envs("target"),
			Usage: "report the suboptimality phi - phi* each epoch, with phi* from the reference cache (computed and cached if missing)"},
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
		Flags:  flags,
		Action: sgdAction,
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
	w := c.App.Writer
	fmt.Fprintf(w, "problem %s\nsgd     %s seed=%d\n", lp.Describe(), sc.describe(), sc.Seed)
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
	var s *solver.SGD
	if c.Bool("resume") {
		ck, err := solver.ReadCheckpoint(ckPath)
		if err != nil {
			return err
		}
		if s, err = solver.RestoreSGD(lp.Problem, ck, lp.Key); err != nil {
			return fmt.Errorf("%s: %w", ckPath, err)
		}
		fmt.Fprintf(w, "resumed from %s at update %d (epoch %.3f)\n", ckPath, s.T, s.Epochs())
	} else if s, err = solver.NewSGD(lp.Problem, solver.SGDConfig{Batch: sc.Batch, Schedule: sc.Schedule, Average: sc.Average, Seed: sc.Seed}, nil); err != nil {
		return err
	}
	_, d := lp.Problem.Dims()
	out := make([]float64, d)
	fmt.Fprintf(w, "%8s %12s %10s %18s %12s %10s\n", "epoch", "updates", "alpha", "phi(output)", "phi-phi*", "seconds")
	start := time.Now()
	var ckErr error
	report := func(s *solver.SGD) {
		s.Output(out)
		phi := lp.Problem.Objective(out)
		fmt.Fprintf(w, "%8.3f %12d %10.4g %18.12g %12.4g %10.3f\n", s.Epochs(), s.T, s.Schedule.Alpha(s.T, 0), phi, phi-phiStar, time.Since(start).Seconds())
		if ckPath != "" && ckErr == nil {
			ckErr = solver.WriteCheckpoint(ckPath, s.Checkpoint(lp.Key))
		}
	}
	for e := math.Floor(s.Epochs()) + 1; ckErr == nil; e++ {
		s.Run(math.Min(e, epochs), 0, nil)
		report(s)
		if e >= epochs {
			break
		}
	}
	if ckErr != nil {
		return ckErr
	}
	s.Output(out)
	fmt.Fprintf(w, "nnz     %d of %d\n", solver.NNZ(out), d)
	return nil
}
