package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"context"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/solver/solverbench"
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

// benchRun is one measured `asyncmb train`.
type benchRun struct {
	wall    time.Duration
	summary map[string]any
	trace   [][]string // trace.csv, header first
}

// firstEpochs is the epochs column of the first trace row whose output
// (rel_subopt_avg) is at most rel, NaN if none.
func (r benchRun) firstEpochs(rel float64) float64 {
	if len(r.trace) < 2 {
		return math.NaN()
	}
	ep, sub := slices.Index(r.trace[0], "epochs"), slices.Index(r.trace[0], "rel_subopt_avg")
	if ep < 0 || sub < 0 {
		return math.NaN()
	}
	for _, row := range r.trace[1:] {
		if v, err := strconv.ParseFloat(row[sub], 64); err == nil && v <= rel {
			e, _ := strconv.ParseFloat(row[ep], 64)
			return e
		}
	}
	return math.NaN()
}

func (r benchRun) num(path ...string) float64 {
	var v any = r.summary
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return math.NaN()
		}
		v = m[p]
	}
	switch x := v.(type) {
	case float64:
		return x
	case bool:
		if x {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// runTrain runs `asyncmb train args` rounds times and returns the run with
// the median wall time.
func runTrain(exe string, rounds int, args ...string) (benchRun, error) {
	var runs []benchRun
	for range rounds {
		dir, err := os.MkdirTemp("", "asyncmb-bench-train-")
		if err != nil {
			return benchRun{}, err
		}
		full := append([]string{"train", "--progress", "none", "--out", dir}, args...)
		cmd := exec.Command(exe, full...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if _, serr := os.Stat(filepath.Join(dir, "summary.json")); err != nil && serr != nil {
			// A run that misses its --target exits 1 with its outputs:
			// a result, not a failure.
			os.RemoveAll(dir)
			return benchRun{}, fmt.Errorf("asyncmb %v: %v\n%s", full, err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		tr, _ := os.ReadFile(filepath.Join(dir, "trace.csv"))
		os.RemoveAll(dir)
		if err != nil {
			return benchRun{}, err
		}
		r := benchRun{wall: wall}
		r.trace, _ = csv.NewReader(bytes.NewReader(tr)).ReadAll()
		if err := json.Unmarshal(b, &r.summary); err != nil {
			return benchRun{}, err
		}
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b benchRun) int { return int(a.wall - b.wall) })
	return runs[len(runs)/2], nil
}

func benchTrainAction(c *cli.Context) error {
	w := c.App.Writer
	dir := c.String("data-dir")
	rel, rounds, iters := c.Float64("rel"), c.Int("rounds"), c.Int64("iters")
	if !(rel > 0) || rounds < 1 || iters < 1 {
		return usagef("--rel, --rounds and --iters must be > 0")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if c.String("part") == "methods" {
		return benchMethods(w, exe, dir, rounds)
	}
	cache, err := cacheDir(c)
	if err != nil {
		return err
	}
	a9a := filepath.Join(dir, "a9a")
	const lambda = 1e-4
	pc := problem.Config{Data: a9a, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: lambda}}
	lp, err := pc.Load()
	if err != nil {
		return err
	}
	e, _, err := lp.Optimum(context.Background(), cache, nil)
	if err != nil {
		return err
	}
	phiStar := e.Phi
	target := phiStar + rel*math.Abs(phiStar)
	fmt.Fprintf(w, "a9a l1-logistic lambda %g: phi* %.12g, target phi <= phi*(1+%g); median of %d rounds; %d CPUs\n\n", lambda, phiStar, rel, rounds, runtime.NumCPU())

	common := []string{"--data", a9a, "--loss", "logistic", "--reg", "l1", "--lambda", fmt.Sprint(lambda),
		"--phi-star", fmt.Sprint(phiStar), "--cache-dir", cache, "--batch", "64", "--step", "convex", "--tau", "0", "--average", "tail"}
	toTarget := append(slices.Clone(common), "--target", fmt.Sprint(rel), "--epochs", "100")

	// (a) time to target against liblinear-train.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "(a) time to target, a9a (wall time of the whole command; training alone in brackets)")
	fmt.Fprintln(tw, "run\twall s\ttrain s\tupdates\tepochs\treached\tvs liblinear\t")
	ll, eps, llErr := solverbench.TimeLiblinear(lp, lambda, target, rounds)
	var llS float64
	if llErr == nil {
		llS = ll.Seconds()
		fmt.Fprintf(tw, "liblinear-train -s 6 -e %g\t%.3f\t\t\t\tyes\t1.00\t\n", eps, llS)
	} else {
		fmt.Fprintf(w, "liblinear-train: %v (no baseline; Debian: apt-get install liblinear-tools)\n", llErr)
	}
	for _, np := range []int{1, 3, 5} {
		r, err := runTrain(exe, rounds, append(slices.Clone(toTarget), "--np", strconv.Itoa(np))...)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("async P=%d", np-1)
		if np == 1 {
			name = "serial (--np 1)"
		}
		ratio := "-"
		if llS > 0 {
			ratio = fmt.Sprintf("%.2f", r.wall.Seconds()/llS)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.0f\t%.1f\t%s\t%s\t\n", name, r.wall.Seconds(), r.num("target", "wall_s"),
			r.num("updates"), r.num("epochs"), yesNo(r.num("target", "reached")), ratio)
	}
	tw.Flush()

	// (b) one straggler: async against sync.
	fmt.Fprintln(w, "\n(b) P=4 workers, worker 1 slowed 4x (--slow 1=4), time to target")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\twall s\ttrain s\tupdates\tmean delay\treached\t")
	var trainS [2]float64
	for i, mode := range []string{"async", "sync"} {
		r, err := runTrain(exe, rounds, append(slices.Clone(toTarget), "--np", "5", "--mode", mode, "--slow", "1=4")...)
		if err != nil {
			return err
		}
		trainS[i] = r.num("target", "wall_s")
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.0f\t%.2f\t%s\t\n", mode, r.wall.Seconds(), trainS[i], r.num("updates"), r.num("delay", "mean"), yesNo(r.num("target", "reached")))
	}
	tw.Flush()
	fmt.Fprintf(w, "sync/async training time to target: %.2fx\n", trainS[1]/trainS[0])

	// (c) throughput at the master, with and without compression.
	fmt.Fprintf(w, "\n(c) %d updates, P=3 workers, batch 64: the master's rate and the bytes per update\n", iters)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "data\tcodec\tupdates/s\tmaster busy\tcapacity upd/s\tns/update\twire B/upd\traw B/upd\tratio\t")
	rcv := filepath.Join(dir, "rcv1_small")
	for _, ds := range []string{a9a, rcv} {
		for _, codec := range []string{"none", "s2", "zstd"} {
			args := []string{"--data", ds, "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4", "--reference=false",
				"--batch", "64", "--step", "convex", "--tau", "0", "--iters", strconv.FormatInt(iters, 10), "--np", "4", "--codec", codec}
			r, err := runTrain(exe, rounds, args...)
			if err != nil {
				return err
			}
			busy := r.num("master", "busy_s")
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f%%\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t\n", filepath.Base(ds), codec, r.num("updates_per_s"),
				100*r.num("master", "busy_fraction"), r.num("updates")/busy, r.num("master", "ns_per_update"),
				r.num("comm", "wire_bytes_per_update"), r.num("comm", "raw_bytes_per_update"), r.num("comm", "compression_ratio"))
		}
	}
	tw.Flush()

	// (d) pipelining.
	fmt.Fprintln(w, "\n(d) P=4 workers, time to target with and without --pipeline")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "loop\twall s\ttrain s\tupdates/s\tmean delay\treached\t")
	for _, pipe := range []bool{false, true} {
		r, err := runTrain(exe, rounds, append(slices.Clone(toTarget), "--np", "5", "--pipeline="+strconv.FormatBool(pipe))...)
		if err != nil {
			return err
		}
		name := "plain"
		if pipe {
			name = "--pipeline"
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.0f\t%.2f\t%s\t\n", name, r.wall.Seconds(), r.num("target", "wall_s"), r.num("updates_per_s"), r.num("delay", "mean"), yesNo(r.num("target", "reached")))
	}
	tw.Flush()
	return benchMethods(w, exe, dir, rounds)
}

func yesNo(v float64) string {
	if v == 1 {
		return "yes"
	}
	return "NO"
}
