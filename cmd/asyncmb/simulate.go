package main

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/asyncmb/asyncmb/sim"
	"github.com/asyncmb/asyncmb/study"
	"github.com/urfave/cli/v2"
)

func simulateFlags() []cli.Flag {
	own := []cli.Flag{
		&cli.StringFlag{Name: "workers", EnvVars: envs("workers"), Value: "1,2,4,8,16,32,64,128,256,512,1024", Usage: "the numbers of simulated workers `P,...`"},
		&cli.StringFlag{Name: "targets", EnvVars: envs("targets"), Value: "1e-1,1e-2,1e-3", Usage: "relative suboptimalities `EPS,...` to time; a run stops at the smallest"},
		&cli.StringFlag{Name: "calibrate", EnvVars: envs("calibrate"),
			Usage: "a real run's `SUMMARY` (summary.json) to take compute, service and latency times from (its dilation is divided out); the flags below override"},
		&cli.DurationFlag{Name: "compute", EnvVars: envs("compute"), Usage: "a worker's mean time `D` per mini-batch gradient"},
		&cli.Float64Flag{Name: "compute-cv", EnvVars: envs("compute-cv"), Value: sim.DefaultComputeCV, Usage: "the coefficient of variation `CV` of the (lognormal) compute times"},
		&cli.DurationFlag{Name: "service", EnvVars: envs("service"), Usage: "the master's time `D` per arriving gradient (update and replies)"},
		&cli.DurationFlag{Name: "latency", EnvVars: envs("latency"), Usage: "one-way message latency `D`"},
		&cli.Float64Flag{Name: "bandwidth", EnvVars: envs("bandwidth"), Value: 1.25e9, Usage: "the master's link in `BYTES/S` (every gradient and reply crosses it); 0: unlimited"},
		&cli.Float64Flag{Name: "max-sim-time", EnvVars: envs("max-sim-time"), Value: 3600, Usage: "stop a simulated run after `S` seconds of simulated time"},
		&cli.Int64Flag{Name: "max-updates", EnvVars: envs("max-updates"), Value: 20_000_000, Usage: "stop a simulated run after `T` updates"},
		&cli.StringFlag{Name: "out", EnvVars: envs("out"), Usage: "write sim.csv and sim.md into `DIR`"},
	}
	for _, f := range trainFlags() {
		switch f.Names()[0] {
		case "out", "target":
			continue
		}
		own = append(own, f)
	}
	return own
}

func init() {
	register(&cli.Command{
		Name: "simulate", ArgsUsage: " ", Usage: "predict time to target, delays and speedup for P up to 1024 and beyond: the real master and gradients, simulated time",
		Description: "Runs the real master state machine and step-size policy with real mini-batch gradients on --data, driven by a\n" +
			"discrete-event model of P workers: lognormal compute times (--compute, --compute-cv), the master's service time per\n" +
			"gradient (--service), one-way latency (--latency) and the master's link bandwidth (--bandwidth). --calibrate takes\n" +
			"the times from a short real run's summary.json (at the same P where possible: the latency is fitted so that the\n" +
			"workers' idle time matches). Times are seconds of simulated time. Training flags are train's (network and output\n" +
			"flags are accepted and ignored); --workers lists the P to simulate.",
		Flags: simulateFlags(), Action: simulateAction,
	})
}

func simulateAction(c *cli.Context) error {
	tc, err := trainConfigFrom(c)
	if err != nil {
		return err
	}
	workers, err := study.ParseInts("workers", c.String("workers"))
	if err != nil {
		return usageError{err}
	}
	targets, err := study.ParseFloats("targets", c.String("targets"))
	if err != nil {
		return usageError{err}
	}
	o := study.SimSpec{Data: tc.problem.Data, Train: tc.cfg, Workers: workers, Targets: targets, MaxSimS: c.Float64("max-sim-time"),
		MaxUpdates: c.Int64("max-updates"), Bandwidth: c.Float64("bandwidth"), Out: c.String("out"), Log: c.App.ErrWriter, Dilate: 1,
		Compute: durationIf(c, "compute"), Service: durationIf(c, "service"), Latency: durationIf(c, "latency"),
		ComputeCV: c.Float64("compute-cv"), ComputeCVSet: c.IsSet("compute-cv")}
	if err := o.Calibrate(c.String("calibrate")); errors.Is(err, study.ErrNoModel) {
		return usageError{err}
	} else if err != nil {
		return err
	}
	lp, err := tc.problem.Load()
	if err != nil {
		return err
	}
	o.Problem, o.PhiStar = lp.Problem, tc.cfg.PhiStar
	if math.IsNaN(o.PhiStar) && tc.phiStar != nil {
		if o.PhiStar, err = tc.phiStar(context.Background(), lp.Problem, lp.Hash); err != nil {
			return err
		}
	}
	_, err = study.Simulate(o, c.App.Writer)
	return err
}

// durationIf is the value of the duration flag name when it is set.
func durationIf(c *cli.Context, name string) *time.Duration {
	if !c.IsSet(name) {
		return nil
	}
	d := c.Duration(name)
	return &d
}
