package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/sim/simbench"
	"github.com/asyncmb/asyncmb/study"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:      "simulate",
		Usage:     "check asyncmb simulate against real runs: time to target and mean delay, per P",
		ArgsUsage: " ",
		Description: "For each P and round: a real run goes to --target; the simulator, calibrated from that run's summary.json (its\n" +
			"mean compute, service and idle times: sim.Calibrate) or with --calib-iters from a separate short run, predicts its\n" +
			"time to target and mean delay (the updates it needs come from the simulated algorithm, not the run). Prints per P the\n" +
			"medians over the rounds of the real and simulated time to target and mean delay and their ratios; the simulator\n" +
			"agrees when the time is within 25% and the mean delay within 20%. l1-logistic on --data, async, batch 64,\n" +
			"--tau 0 --average tail (what make run uses).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: envs("data"), Value: "testdata/a9a", Usage: "the LIBSVM `FILE`"},
			&cli.Float64Flag{Name: "lambda", EnvVars: envs("lambda"), Value: 1e-4, Usage: "the l1 weight `LAMBDA`"},
			&cli.Float64Flag{Name: "phi-star", EnvVars: envs("phi-star"), Value: simbench.A9aL1PhiStar, Usage: "phi* `PHI` of the problem (default: a9a, lambda 1e-4, from testdata/reference.jsonl)"},
			&cli.StringFlag{Name: "workers", EnvVars: envs("workers"), Value: "1,2,4,8", Usage: "the numbers of workers `P,...`"},
			&cli.IntFlag{Name: "rounds", EnvVars: envs("rounds"), Value: 3, Usage: "`N` rounds (seeds) per P; the medians are shown"},
			&cli.Float64Flag{Name: "target", EnvVars: envs("target"), Value: 1e-3, Usage: "the relative suboptimality `EPS` to time"},
			&cli.Int64Flag{Name: "calib-iters", EnvVars: envs("calib-iters"),
				Usage: "calibrate from separate real runs of `T` updates; 0: from the compared run's own summary.json (its mean compute, service and idle times)"},
			&cli.Float64Flag{Name: "tau0", EnvVars: envs("tau0"), Usage: "delay-adaptive steps alpha(t)/(1 + tau(t)/`T0`) in both (0: off)"},
			&cli.Float64Flag{Name: "dilate", EnvVars: envs("dilate"), Value: 1, Usage: "run the real ranks with time dilation `F` (times are divided by it)"},
		},
		Action: benchSimulateAction,
	})
}

func benchSimulateAction(c *cli.Context) error {
	workers, err := study.ParseInts("workers", c.String("workers"))
	if err != nil {
		return usageError{err}
	}
	o := simbench.Options{Data: c.String("data"), Lambda: c.Float64("lambda"), PhiStar: c.Float64("phi-star"), Workers: workers,
		Rounds: c.Int("rounds"), Target: c.Float64("target"), CalibIters: c.Int64("calib-iters"), Tau0: c.Float64("tau0"), Dilate: c.Float64("dilate")}
	if err := o.Validate(); err != nil {
		return fieldError("bench simulate", err, nil)
	}
	if o.Exe, err = os.Executable(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return job.Interrupted(ctx, simbench.Run(ctx, o, c.App.Writer, c.App.ErrWriter))
}
