package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/sim"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/study"
	"github.com/urfave/cli/v2"
)

// a9aL1PhiStar is phi* of a9a l1-logistic lambda 1e-4 from
// testdata/reference.jsonl (liblinear -s 6 -e 1e-9).
const a9aL1PhiStar = 0.32689896196913504

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
			&cli.Float64Flag{Name: "phi-star", EnvVars: envs("phi-star"), Value: a9aL1PhiStar, Usage: "phi* `PHI` of the problem (default: a9a, lambda 1e-4, from testdata/reference.jsonl)"},
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
	workers, err := intList(c, "workers")
	if err != nil {
		return err
	}
	rounds, eps, dilate := c.Int("rounds"), c.Float64("target"), c.Float64("dilate")
	if rounds < 1 || !(eps > 0) || !(dilate >= 1) {
		return usagef("want --rounds >= 1, --target > 0 and --dilate >= 1")
	}
	path, lambda, phi := c.String("data"), c.Float64("lambda"), c.Float64("phi-star")
	ds, err := data.Read(path, data.Options{})
	if err != nil {
		return err
	}
	if _, err := ds.ToBinary(); err != nil {
		return err
	}
	prob, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Logistic, solver.Reg{Kind: solver.RegL1, Lambda: lambda}, 1)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "asyncmb-bench-simulate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := []string{"--loss=logistic", "--reg=l1", "--lambda=" + strconv.FormatFloat(lambda, 'g', -1, 64), "--tau=0", "--average=tail",
		"--phi-star=" + strconv.FormatFloat(phi, 'g', -1, 64), "--epochs=50", "--tau0=" + strconv.FormatFloat(c.Float64("tau0"), 'g', -1, 64)}
	spec := func(out string, extra ...string) study.Spec {
		return study.Spec{Exe: exe, Data: path, TrainArgs: append(append([]string(nil), args...), extra...), Workers: workers,
			Modes: []string{"async"}, Batches: []int{64}, Repeat: rounds, Seed0: 1, Targets: []float64{eps}, Dilate: dilate,
			Launcher: "local", Timeout: 10 * time.Minute, Out: out, Log: c.App.ErrWriter}
	}
	real := spec(filepath.Join(tmp, "real"))
	resR, err := real.Execute(ctx)
	if err != nil {
		return interrupted(ctx, err)
	}
	resC := resR
	if n := c.Int64("calib-iters"); n > 0 {
		calib := spec(filepath.Join(tmp, "calib"), fmt.Sprintf("--iters=%d", n), "--target=1e-9")
		if resC, err = calib.Execute(ctx); err != nil {
			return interrupted(ctx, err)
		}
	}
	find := func(res *study.Result, p, rep int) *study.Record {
		for i := range res.Records {
			if r := &res.Records[i]; r.Workers == p && r.Rep == rep && r.Err == "" {
				return r
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "P\treal time to %s (s)\tsim\tsim/real\treal mean delay\tsim\tsim/real\tverdict\t\n", study.TargetLabel(eps))
	ok := true
	for _, p := range workers {
		var rt, st, rtr, rd, sd, rdr []float64
		for rep := 1; rep <= rounds; rep++ {
			rc, rr := find(resC, p, rep), find(resR, p, rep)
			if rc == nil || rr == nil || math.IsNaN(rr.TimeTo[0]) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(rc.Dir, "summary.json"))
			if err != nil {
				return err
			}
			var sum ranks.Summary
			if err := json.Unmarshal(b, &sum); err != nil {
				return err
			}
			cfg := &sim.Config{Problem: prob, Workers: p, PhiStar: phi, Targets: []float64{eps}, MaxUpdates: 10_000_000,
				Train: ranks.Config{Mode: algo.ModeAsync, Batch: 64, Seed: uint64(rep), Epochs: 50,
					Step: ranks.StepSpec{Kind: solver.StepConvex, Tau: 0, Tau0: c.Float64("tau0"), Average: "tail"}}}
			cfg.Model.Bandwidth = 0
			if err := sim.Calibrate(cfg, &sum, dilate); err != nil {
				return err
			}
			r, err := sim.Run(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "P=%d round %d: real %.4g s (%d updates, %.0f/s overall), sim %.4g s (%d updates, %.0f/s overall)\n",
				p, rep, rr.TimeTo[0], rr.UpdatesTo[0], rr.UpdPerS, r.TimeTo[0], r.UpdatesTo[0], r.UpdPerS)
			rt, st, rtr = append(rt, rr.TimeTo[0]), append(st, r.TimeTo[0]), append(rtr, r.TimeTo[0]/rr.TimeTo[0])
			rd, sd = append(rd, rr.DelayMean), append(sd, r.DelayMean)
			if rr.DelayMean > 0 {
				rdr = append(rdr, r.DelayMean/rr.DelayMean)
			}
		}
		tr, dr := study.Median(rtr), study.Median(rdr)
		verdict := "agrees"
		if len(rtr) == 0 || math.Abs(tr-1) > 0.25 || (len(rdr) > 0 && math.Abs(dr-1) > 0.20) {
			verdict, ok = "DISAGREES", false
		}
		fmt.Fprintf(tw, "%d\t%.4g\t%.4g\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", p, study.Median(rt), study.Median(st), tr, study.Median(rd), study.Median(sd), cellF(dr, "%.2f"), verdict)
	}
	tw.Flush()
	if ok {
		fmt.Fprintln(c.App.Writer, "simulator: time to target within 25% and mean delay within 20% for every P (medians of the rounds)")
	} else {
		fmt.Fprintln(c.App.Writer, "simulator: outside 25% (time) or 20% (delay) for some P (see above)")
	}
	return nil
}
