package main

import (
	"os"

	"github.com/asyncmb/asyncmb/ranks/trainbench"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:      "train",
		Usage:     "time asyncmb train end to end against liblinear-train and against itself (sync vs async, stragglers, compression, pipelining)",
		ArgsUsage: " ",
		Description: "Runs `asyncmb train` as separate processes, each configuration --rounds times (the median is shown), on this\n" +
			"machine over loopback, and in the same run liblinear-train -s 6 (C = 1/(n lambda)) at ever smaller -e until its\n" +
			"model reaches the same suboptimality. Every time is wall time of the whole command: starting the processes,\n" +
			"reading the data, rendezvous, training to phi <= phi*(1+REL), as the user sees it; the training time alone\n" +
			"(target.wall_s in summary.json) is shown beside it.\n\n" +
			"(a) time to target, async with P = 2 and 4 workers and serial (--np 1), against liblinear-train;\n" +
			"(b) one worker slowed 4x (--slow 1=4): async against sync;\n" +
			"(c) updates/s at the master, its busy fraction and capacity (updates per busy second), bytes per update with\n" +
			"    and without compression, on a9a and rcv1_small;\n" +
			"(d) --pipeline against the plain loop;\n" +
			"(e) per method (the paper's sgd with theorem steps, the best plain sgd, the svrg default): epochs and wall time to\n" +
			"    1e-3 and 1e-6 on a9a, rcv1_small and a1a_unscaled against liblinear-train at the first -e that gets there.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", EnvVars: envs("data-dir"), Value: "testdata", Usage: "the `DIR` holding a9a and rcv1_small"},
			&cli.Float64Flag{Name: "rel", EnvVars: envs("rel"), Value: 1e-3, Usage: "the target relative suboptimality `REL`"},
			&cli.IntFlag{Name: "rounds", EnvVars: envs("rounds"), Value: 3, Usage: "repeat every configuration `N` times and report the median"},
			&cli.Int64Flag{Name: "iters", EnvVars: envs("iters"), Value: 50000, Usage: "updates `T` of the throughput runs (c)"},
			&cli.StringFlag{Name: "part", EnvVars: envs("part"), Value: "all", Usage: "`P`: all, or methods (only part (e): epochs and time to 1e-3 and 1e-6 per method)"},
			cacheDirFlag(),
		},
		Action: benchTrainAction,
	})
}

func benchTrainAction(c *cli.Context) error {
	o := trainbench.Options{DataDir: c.String("data-dir"), Rel: c.Float64("rel"), Rounds: c.Int("rounds"), Iters: c.Int64("iters"), Part: c.String("part")}
	if err := o.Validate(); err != nil {
		return fieldError("bench train", err, nil)
	}
	var err error
	if o.Exe, err = os.Executable(); err != nil {
		return err
	}
	if o.Part != "methods" {
		if o.CacheDir, err = cacheDir(c); err != nil {
			return err
		}
	}
	return trainbench.Run(o, c.App.Writer)
}
