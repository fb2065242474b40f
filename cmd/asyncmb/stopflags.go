package main

import (
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

// stopFlags are train's stopping rules that need no phi*, the epoch cap,
// the held-out set and the polish.
func stopFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: "tol", EnvVars: envs("tol"),
			Usage: "stop when the relative change of phi(output) on the full data, per epoch, between evaluations at least an epoch apart, is at most `TOL`" +
				" (needs no phi*; the master then loads the whole data set and evaluates the output beside its update loop, as for --target)"},
		&cli.Float64Flag{Name: "max-epochs", EnvVars: envs("max-epochs"),
			DefaultText: "1000, once training has also run 60 s, with --target or --tol when no --epochs, --iters or --time is given, else none",
			Usage: "stop after `E` passes over the data whatever the other rules say; a --target run that stops before reaching its target" +
				" (by this cap, --epochs, --iters or --time) still writes its outputs, marked \"reached\": false, and exits 1"},
		&cli.StringFlag{Name: "test", EnvVars: envs("test"),
			Usage: "a held-out LIBSVM `FILE`: its loss and accuracy/AUC (classification) or RMSE (regression) at every snapshot go into trace.csv," +
				" and those of the model into summary.json (evaluated after the run, like the training objective)"},
		&cli.IntFlag{Name: "polish", EnvVars: envs("polish"), Value: solver.DefaultPolishIters,
			Usage: "l1, elastic, l1box and group: at most `N` accelerated full-data proximal gradient steps (step 1/L with backtracking, FISTA with restart)" +
				" from the model after the run, which zero the coordinates the optimum has at zero; the result is kept only if phi does not rise; 0: no polish"},
	}
}
