package main

import (
	"context"
	"errors"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/launch"
	"github.com/asyncmb/asyncmb/sim"
	"github.com/asyncmb/asyncmb/study"
	"github.com/urfave/cli/v2"
)

// scaleOwn are the flags of `scale` that are not forwarded to train as
// they are: the sweep's axes and its own settings.
var scaleOwn = []string{"workers", "mode", "method", "step", "batch", "repeat", "seed", "targets", "max-delay", "weak", "weak-rows", "gen",
	"slowdown", "net-delay", "dilate", "launcher", "run-timeout", "out"}

// scaleSkip are train flags that make no sense in a sweep (each run gets
// its own).
var scaleSkip = []string{"progress", "net-jitter"}

func scaleFlags() []cli.Flag {
	own := []cli.Flag{
		&cli.StringFlag{Name: "workers", EnvVars: envs("workers"), Value: "1,2,4,8", Usage: "the numbers of workers `P,...` to sweep (each run: train --np P+1)"},
		&cli.StringFlag{Name: "mode", EnvVars: envs("mode"), Value: "async,sync,bounded", Usage: "the modes `M,...` to sweep: async, sync, bounded"},
		&cli.StringFlag{Name: "method", EnvVars: envs("method"), Usage: "the methods `M,...` to sweep (train's --method); empty: train's default"},
		&cli.StringFlag{Name: "step", EnvVars: envs("step"),
			Usage: "the step-size policies `S[:FLAGS],...` to sweep (train's --step), each with more train flags for its runs after a colon (no commas in them)," +
				" e.g. 'convex:--reg=l1 --phi-star=0.3269,strong:--reg=l2 --phi-star=0.3245'; empty: train's default." +
				" With it, runs do not stop at a target (they run their epochs), and scale.md gets a rates table and the figure rates: the log-log slope of the output's suboptimality against t over each run's last 1.5 decades of t, against P"},
		&cli.StringFlag{Name: "batch", EnvVars: envs("batch"), Value: "64", Usage: "the mini-batch sizes `B,...` to sweep"},
		&cli.IntFlag{Name: "repeat", EnvVars: envs("repeat"), Value: 3, Usage: "run every configuration `R` times (seeds --seed, --seed+1, ...); the table shows medians"},
		&cli.Uint64Flag{Name: "seed", EnvVars: envs("seed"), Value: 1, Usage: "the first repeat's `SEED`"},
		&cli.StringFlag{Name: "targets", EnvVars: envs("targets"), Value: "1e-1,1e-2,1e-3",
			Usage: "relative suboptimalities `EPS,...` to time; each run stops at the smallest (--target) or after 20 epochs unless --epochs, --iters, --time or --max-epochs is given" +
				" (and runs with --polish 0 unless --polish is given: the sweep times the training)"},
		&cli.IntFlag{Name: "max-delay", EnvVars: envs("max-delay"), Usage: "the delay bound `K` of the bounded runs; 0: P"},
		&cli.BoolFlag{Name: "weak", EnvVars: envs("weak"),
			Usage: "weak scaling: the data grow with P (the first P/maxP of --data's rows, or --weak-rows per worker from asyncmb gen); phi* is solved for per P"},
		&cli.IntFlag{Name: "weak-rows", EnvVars: envs("weak-rows"), Usage: "with --weak: generate `N` rows per worker with asyncmb gen (its other flags in --gen) instead of cutting --data"},
		&cli.StringFlag{Name: "gen", EnvVars: envs("gen"), Value: "--features 1000 --density 0.01 --seed 1", Usage: "with --weak-rows: the other flags `FLAGS` of asyncmb gen (space-separated)"},
		&cli.StringFlag{Name: "slowdown", EnvVars: envs("slowdown"), Value: "1", Usage: "slow-down factors `F,...` of worker 1 to sweep (1: none; train's --slow 1=F)"},
		&cli.StringFlag{Name: "net-delay", EnvVars: envs("net-delay"), Value: "0", Usage: "message delays `D,...` to sweep (train's --net-delay, e.g. 0,200us,1ms)"},
		&cli.Float64Flag{Name: "dilate", EnvVars: envs("dilate"), Value: 1, Usage: "time dilation `F` >= 1 of every run (train's --dilate); the table and figures report times divided by F"},
		&cli.StringFlag{Name: "launcher", EnvVars: envs("launcher"), Value: "auto",
			Usage: "how runs start `L`: local (asyncmb train), srun (asyncmb train --launcher srun, inside an allocation), auto (srun when SLURM_JOB_ID is set)"},
		&cli.DurationFlag{Name: "run-timeout", EnvVars: envs("run-timeout"), Value: 10 * time.Minute, Usage: "kill a run after `D` (it is recorded as failed)"},
		&cli.StringFlag{Name: "out", EnvVars: envs("out"), Usage: "output `DIR` (scale.csv, scale.md, figures, runs/); default out/scale-<time>"},
	}
	return append(own, trainFlagsBut(append(scaleOwn, scaleSkip...)...)...)
}

func init() {
	register(&cli.Command{
		Name: "scale", ArgsUsage: " ", Usage: "scaling study: sweep workers, modes, methods, batch sizes, stragglers and message delays over real training runs",
		Description: "Runs `asyncmb train` once per configuration and repeat (one at a time), with every training flag given here passed on,\n" +
			"and records for each run the time and updates to reach each --targets suboptimality (from its trace.csv), speedup and\n" +
			"efficiency against P = 1 (medians over the repeats), updates/s, delays, the workers' idle fraction and bytes on the wire\n" +
			"(from its summary.json). Writes scale.csv (one row per run), scale.md (the table) and figures (PNG and SVG):\n" +
			"subopt_time, subopt_updates, speedup, delay_hist, async_vs_sync, heterogeneity (when --slowdown or --net-delay vary), rates (with --step).\n" +
			"Inside a Slurm allocation (SLURM_JOB_ID set) runs start with train --launcher srun; --out must be on a file system every node sees.\n" +
			"Give phi* with --phi-star where it is known, so that runs do not look it up.",
		Flags: scaleFlags(), Action: scaleAction,
	})
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
	register(&cli.Command{
		Name: "plot", ArgsUsage: "DIR", Usage: "redraw the figures of a finished training run (train --out DIR) or sweep (scale --out DIR)",
		Description: "A sweep's directory (scale.csv) gets subopt_time, subopt_updates, speedup, delay_hist, async_vs_sync and\n" +
			"heterogeneity; a run's (trace.csv, summary.json) gets subopt_time, subopt_updates and delay_hist. PNG and SVG each.",
		Action: plotAction,
	})
}

func scaleAction(c *cli.Context) error {
	o := study.ScaleOptions{Axes: study.Axes{Workers: c.String("workers"), Modes: c.String("mode"), Methods: c.String("method"), Steps: c.String("step"),
		Batches: c.String("batch"), Targets: c.String("targets"), Slowdowns: c.String("slowdown"), NetDelays: c.String("net-delay")},
		Launcher: c.String("launcher"), Slow: c.StringSlice("slow"), PhiStarSet: c.IsSet("phi-star")}
	sp := &o.Spec
	sp.Repeat, sp.Seed0, sp.MaxDelay = c.Int("repeat"), c.Uint64("seed"), c.Int("max-delay")
	sp.Weak, sp.WeakRows, sp.GenArgs = c.Bool("weak"), c.Int("weak-rows"), strings.Fields(c.String("gen"))
	sp.Dilate, sp.Timeout, sp.Data, sp.Log = c.Float64("dilate"), c.Duration("run-timeout"), c.String("data"), c.App.ErrWriter
	sp.TrainArgs = forwardFlags(c, append(append([]string{"data"}, scaleOwn...), scaleSkip...)...)
	if sp.Out = c.String("out"); sp.Out == "" {
		sp.Out = filepath.Join("out", "scale-"+time.Now().UTC().Format("20060102-150405"))
	}
	sp.Env = launch.WithoutEnv(os.Environ(), envNames(c.Command.Flags))
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return job.Interrupted(ctx, study.Scale(ctx, o, c.App.Writer))
}

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
	return append(own, trainFlagsBut("out", "target")...)
}

// trainFlagsBut are trainFlags without those named in skip.
func trainFlagsBut(skip ...string) []cli.Flag {
	return slices.DeleteFunc(trainFlags(), func(f cli.Flag) bool { return slices.Contains(skip, f.Names()[0]) })
}

func simulateAction(c *cli.Context) error {
	tc, err := trainConfigFrom(c)
	if err != nil {
		return err
	}
	o := study.SimSpec{Data: tc.problem.Data, Train: tc.cfg, MaxSimS: c.Float64("max-sim-time"),
		MaxUpdates: c.Int64("max-updates"), Bandwidth: c.Float64("bandwidth"), Out: c.String("out"), Log: c.App.ErrWriter, Dilate: 1,
		Compute: durationIf(c, "compute"), Service: durationIf(c, "service"), Latency: durationIf(c, "latency"),
		ComputeCV: c.Float64("compute-cv"), ComputeCVSet: c.IsSet("compute-cv")}
	if err := o.ParseLists(c.String("workers"), c.String("targets")); err != nil {
		return err
	}
	if err := o.Calibrate(c.String("calibrate")); err != nil {
		return err // a UsageError without a summary or times
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

// figuresFlag is train's --figures (not forwarded to the ranks).
func figuresFlag() cli.Flag {
	return &cli.BoolFlag{Name: "figures", EnvVars: envs("figures"), Value: true,
		Usage: "draw the run's figures into --out after it (subopt_time, subopt_updates, delay_hist; PNG and SVG); --figures=false: none"}
}

func plotAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("plot takes one directory, got %d arguments", c.NArg())
	}
	if err := study.Plot(c.Args().First(), c.App.Writer); errors.Is(err, study.ErrNoRun) {
		return usageError{err}
	} else {
		return err
	}
}
