// Package simbench is `asyncmb bench simulate`: it checks the simulator
// (package sim) against real runs of asyncmb train, started through
// package study, by time to target and mean delay per P.
package simbench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/sim"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/study"
)

// A9aL1PhiStar is phi* of a9a l1-logistic lambda 1e-4 from
// testdata/reference.jsonl (liblinear -s 6 -e 1e-9).
const A9aL1PhiStar = 0.32689896196913504

// Options is what Run compares: l1-logistic on Data with weight Lambda and
// optimum PhiStar, real runs of the asyncmb binary Exe (empty: this
// process's) against the
// simulator for each of Workers, Rounds seeds each, to the relative
// suboptimality Target.
type Options struct {
	Exe             string
	Data            string
	Lambda, PhiStar float64
	Workers         []int
	Rounds          int
	Target          float64
	CalibIters      int64   // > 0: calibrate from separate runs of that many updates
	Tau0            float64 // delay-adaptive steps in both
	Dilate          float64 // the real ranks' time dilation
}

// Validate names the first field out of range.
func (o Options) Validate() error {
	switch {
	case o.Rounds < 1:
		return fmt.Errorf("Rounds %d: want >= 1", o.Rounds)
	case !(o.Target > 0):
		return fmt.Errorf("Target %g: want > 0", o.Target)
	case !(o.Dilate >= 1):
		return fmt.Errorf("Dilate %g: want >= 1", o.Dilate)
	}
	return nil
}

// Run does the real and the simulated runs and prints the table to stdout,
// the per-round figures to stderr.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	workers, rounds, eps, dilate := o.Workers, o.Rounds, o.Target, o.Dilate
	path, lambda, phi := o.Data, o.Lambda, o.PhiStar
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
	exe := o.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "asyncmb-bench-simulate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"--loss=logistic", "--reg=l1", "--lambda=" + strconv.FormatFloat(lambda, 'g', -1, 64), "--tau=0", "--average=tail",
		"--phi-star=" + strconv.FormatFloat(phi, 'g', -1, 64), "--epochs=50", "--tau0=" + strconv.FormatFloat(o.Tau0, 'g', -1, 64)}
	spec := func(out string, extra ...string) study.Spec {
		return study.Spec{Exe: exe, Data: path, TrainArgs: append(append([]string(nil), args...), extra...), Workers: workers,
			Modes: []string{"async"}, Batches: []int{64}, Repeat: rounds, Seed0: 1, Targets: []float64{eps}, Dilate: dilate,
			Launcher: "local", Timeout: 10 * time.Minute, Out: out, Log: stderr}
	}
	real := spec(filepath.Join(tmp, "real"))
	resR, err := real.Execute(ctx)
	if err != nil {
		return err
	}
	resC := resR
	if n := o.CalibIters; n > 0 {
		calib := spec(filepath.Join(tmp, "calib"), fmt.Sprintf("--iters=%d", n), "--target=1e-9")
		if resC, err = calib.Execute(ctx); err != nil {
			return err
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
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "P\treal time to %s (s)\tsim\tsim/real\treal mean delay\tsim\tsim/real\tverdict\t\n", study.TargetLabel(eps))
	ok := true
	for _, p := range workers {
		var rt, st, rtr, rd, sd, rdr []float64
		for rep := 1; rep <= rounds; rep++ {
			rc, rr := find(resC, p, rep), find(resR, p, rep)
			if rc == nil || rr == nil || math.IsNaN(rr.TimeTo[0]) {
				continue
			}
			sum, err := study.ReadSummary(filepath.Join(rc.Dir, "summary.json"))
			if err != nil {
				return err
			}
			cfg := &sim.Config{Problem: prob, Workers: p, PhiStar: phi, Targets: []float64{eps}, MaxUpdates: 10_000_000,
				Train: ranks.Config{Mode: algo.ModeAsync, Batch: 64, Seed: uint64(rep), Epochs: 50,
					Step: ranks.StepSpec{Kind: solver.StepConvex, Tau: 0, Tau0: o.Tau0, Average: "tail"}}}
			cfg.Model.Bandwidth = 0
			if err := sim.Calibrate(cfg, sum, dilate); err != nil {
				return err
			}
			r, err := sim.Run(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "P=%d round %d: real %.4g s (%d updates, %.0f/s overall), sim %.4g s (%d updates, %.0f/s overall)\n",
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
		fmt.Fprintf(tw, "%d\t%.4g\t%.4g\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", p, study.Median(rt), study.Median(st), tr, study.Median(rd), study.Median(sd), study.Cell(dr, "%.2f"), verdict)
	}
	tw.Flush()
	if ok {
		fmt.Fprintln(stdout, "simulator: time to target within 25% and mean delay within 20% for every P (medians of the rounds)")
	} else {
		fmt.Fprintln(stdout, "simulator: outside 25% (time) or 20% (delay) for some P (see above)")
	}
	return nil
}
