package main

import (
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/solver/solverbench"
)

// benchMethods is bench train's part (e): epochs and wall time to 1e-3 and
// 1e-6 per method on a9a, rcv1_small and a1a_unscaled (P = 3 workers),
// each against liblinear-train -s 6 at the first -e that reaches the same
// suboptimality. phi* is liblinear's at -e 1e-9 (evaluated by asyncmb), so
// that no reference solve is needed.
func benchMethods(w io.Writer, exe, dir string, rounds int) error {
	bin, err := exec.LookPath("liblinear-train")
	if err != nil {
		return fmt.Errorf("bench train (e) needs liblinear-train (Debian: apt-get install liblinear-tools): %w", err)
	}
	fmt.Fprintf(w, "\n(e) methods: epochs and wall time to phi <= phi*(1+REL), --np 4 (3 workers), median of %d rounds"+
		" (liblinear: fastest of %d); caps: 1000 epochs or 15 s; epochs: the first snapshot in the trace at REL (snapshots are about 10%% apart in t)\n", rounds, rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "data\tREL\tmethod\tepochs\twall s\ttrain s\treached\tvs liblinear\t")
	sets := []struct {
		file   string
		lambda float64
	}{{"a9a", 1e-4}, {"rcv1_small", 1e-3}, {"a1a_unscaled", 1e-3}}
	methods := []struct {
		name string
		args []string
	}{
		{"sgd, theorem step (--method sgd --step convex)", []string{"--method", "sgd", "--step", "convex"}},
		{"best plain sgd (--step convex --tau 0 --average tail)", []string{"--method", "sgd", "--step", "convex", "--tau", "0", "--average", "tail"}},
		{"svrg default (problem flags only)", nil},
	}
	for _, set := range sets {
		data := filepath.Join(dir, set.file)
		pc := problem.Config{Data: data, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: set.lambda}}
		lp, err := pc.Load()
		if err != nil {
			return err
		}
		phiStar, err := solverbench.LiblinearPhi(bin, lp, set.lambda)
		if err != nil {
			return err
		}
		for _, rel := range []float64{1e-3, 1e-6} {
			target := phiStar + rel*math.Abs(phiStar)
			ll, eps, llErr := solverbench.TimeLiblinear(lp, set.lambda, target, rounds)
			llS := ll.Seconds()
			if llErr == nil {
				fmt.Fprintf(tw, "%s\t%g\tliblinear-train -s 6 -e %g\t\t%.3f\t\tyes\t1.00\t\n", set.file, rel, eps, llS)
			} else {
				fmt.Fprintf(tw, "%s\t%g\tliblinear-train: %v\t\t\t\t\t\t\n", set.file, rel, llErr)
			}
			for _, m := range methods {
				args := append([]string{"--np", "4", "--data", data, "--loss", "logistic", "--reg", "l1", "--lambda", fmt.Sprint(set.lambda),
					"--phi-star", strconv.FormatFloat(phiStar, 'g', -1, 64), "--target", fmt.Sprint(rel), "--epochs", "1000", "--time", "15s"}, m.args...)
				r, err := runTrain(exe, rounds, slices.Clone(args)...)
				if err != nil {
					return err
				}
				ratio := "-"
				if llS > 0 && r.num("target", "reached") == 1 {
					ratio = fmt.Sprintf("%.2f", r.wall.Seconds()/llS)
				}
				fmt.Fprintf(tw, "%s\t%g\t%s\t%.1f\t%.3f\t%.3f\t%s\t%s\t\n", set.file, rel, m.name, r.firstEpochs(rel), r.wall.Seconds(),
					r.num("target", "wall_s"), yesNo(r.num("target", "reached")), ratio)
			}
		}
	}
	return tw.Flush()
}
