// Package trainbench is `asyncmb bench train`: it runs `asyncmb train` as
// separate processes, end to end as a user sees it, against liblinear-train
// and against itself (sync against async, a straggler, compression,
// pipelining, the methods), in one run.
package trainbench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/solver/solverbench"
)

// Options is what Run measures. Exe is the asyncmb binary it runs (empty:
// this process's); DataDir
// holds a9a, rcv1_small and a1a_unscaled.
type Options struct {
	Exe      string
	DataDir  string
	Rel      float64
	Rounds   int
	Iters    int64
	Part     string // all, or methods: only part (e), or sparse: only part (f)
	CacheDir string
}

// Validate names the first field out of range.
func (o Options) Validate() error {
	switch {
	case !(o.Rel > 0):
		return fmt.Errorf("Rel %g: want > 0", o.Rel)
	case o.Rounds < 1:
		return fmt.Errorf("Rounds %d: want > 0", o.Rounds)
	case o.Iters < 1:
		return fmt.Errorf("Iters %d: want > 0", o.Iters)
	case o.Part != "all" && o.Part != "methods" && o.Part != "sparse":
		return fmt.Errorf("Part %q: want all, methods or sparse", o.Part)
	}
	return nil
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

// Run runs every part (or only the methods) and prints the tables to w.
func Run(o Options, w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Exe == "" {
		var err error
		if o.Exe, err = os.Executable(); err != nil {
			return err
		}
	}
	exe, dir, rel, rounds, iters := o.Exe, o.DataDir, o.Rel, o.Rounds, o.Iters
	if o.Part == "methods" {
		return methods(w, exe, dir, rounds)
	}
	if o.Part == "sparse" {
		return sparse(w, exe, os.TempDir(), rounds)
	}
	cache := o.CacheDir
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
	return methods(w, exe, dir, rounds)
}

func yesNo(v float64) string {
	if v == 1 {
		return "yes"
	}
	return "NO"
}

// methods is bench train's part (e): epochs and wall time to 1e-3 and
// 1e-6 per method on a9a, rcv1_small and a1a_unscaled (P = 3 workers),
// each against liblinear-train -s 6 at the first -e that reaches the same
// suboptimality. phi* is liblinear's at -e 1e-9 (evaluated by asyncmb), so
// that no reference solve is needed.
func methods(w io.Writer, exe, dir string, rounds int) error {
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
