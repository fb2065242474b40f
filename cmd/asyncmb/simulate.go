package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/ranks"
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
		Name:      "simulate",
		Usage:     "predict time to target, delays and speedup for P up to 1024 and beyond: the real master and gradients, simulated time",
		ArgsUsage: " ",
		Description: "Runs the real master state machine and step-size policy with real mini-batch gradients on --data, driven by a\n" +
			"discrete-event model of P workers: lognormal compute times (--compute, --compute-cv), the master's service time per\n" +
			"gradient (--service), one-way latency (--latency) and the master's link bandwidth (--bandwidth). --calibrate takes\n" +
			"the times from a short real run's summary.json (at the same P where possible: the latency is fitted so that the\n" +
			"workers' idle time matches). Times are seconds of simulated time. Training flags are train's (network and output\n" +
			"flags are accepted and ignored); --workers lists the P to simulate.",
		Flags:  simulateFlags(),
		Action: simulateAction,
	})
}

func simulateAction(c *cli.Context) error {
	tc, err := trainConfigFrom(c)
	if err != nil {
		return err
	}
	workers, err := intList(c, "workers")
	if err != nil {
		return err
	}
	targets, err := floatList(c, "targets")
	if err != nil {
		return err
	}
	var summary *ranks.Summary
	dilate := 1.0
	if path := c.String("calibrate"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		summary = new(ranks.Summary)
		if err := json.Unmarshal(b, summary); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		dilate = study.ManifestDilate(summary.Manifest)
	} else if !c.IsSet("compute") && !c.IsSet("service") && !c.IsSet("latency") {
		return usagef("give --calibrate SUMMARY (a real run's summary.json) or the model's times (--compute, --service, --latency)")
	}
	lp, err := tc.problem.Load()
	if err != nil {
		return err
	}
	phi := tc.cfg.PhiStar
	if math.IsNaN(phi) && tc.cfg.Reference != nil {
		if phi, err = tc.cfg.Reference(lp.Problem, lp.Hash); err != nil {
			return err
		}
	}
	var results []*sim.Result
	var models []sim.Model
	for _, p := range workers {
		cfg := &sim.Config{Problem: lp.Problem, Train: tc.cfg, Workers: p, PhiStar: phi, Targets: targets,
			MaxSimS: c.Float64("max-sim-time"), MaxUpdates: c.Int64("max-updates")}
		cfg.Model.Bandwidth = c.Float64("bandwidth")
		if summary != nil {
			if err := sim.Calibrate(cfg, summary, dilate); err != nil {
				return err
			}
		}
		if c.IsSet("compute") {
			cfg.Model.ComputeS = c.Duration("compute").Seconds()
		}
		if c.IsSet("service") {
			cfg.Model.ServiceS = c.Duration("service").Seconds()
		}
		if c.IsSet("latency") {
			cfg.Model.LatencyS = c.Duration("latency").Seconds()
		}
		if summary == nil || c.IsSet("compute-cv") {
			cfg.Model.ComputeCV = c.Float64("compute-cv")
		}
		t0 := time.Now()
		r, err := sim.Run(cfg)
		if err != nil {
			return fmt.Errorf("P=%d: %w", p, err)
		}
		fmt.Fprintf(c.App.ErrWriter, "simulate: P=%d: %s after %d updates, %.4g s simulated (%.1f s to compute)\n",
			p, r.StopReason, r.Updates, r.SimS, time.Since(t0).Seconds())
		results = append(results, r)
		models = append(models, cfg.Model)
	}
	md := simMarkdown(lp.Config.Data, targets, results, models)
	fmt.Fprint(c.App.Writer, md)
	if dir := c.String("out"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "sim.md"), []byte(md), 0o644); err != nil {
			return err
		}
		if err := writeSimCSV(filepath.Join(dir, "sim.csv"), targets, results, models); err != nil {
			return err
		}
	}
	return nil
}

func sortedTargets(t []float64) []float64 {
	s := append([]float64(nil), t...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] > s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func simMarkdown(data string, targets []float64, rs []*sim.Result, ms []sim.Model) string {
	targets = sortedTargets(targets)
	var b strings.Builder
	fmt.Fprintf(&b, "Simulated runs on `%s` (seconds of simulated time; speedup against the first P).\n\n| P | compute | service | latency |", data)
	for _, e := range targets {
		fmt.Fprintf(&b, " time to %s | updates to %s | speedup %s |", study.TargetLabel(e), study.TargetLabel(e), study.TargetLabel(e))
	}
	b.WriteString(" upd/s | master busy | mean delay | p99 delay | idle/grad |\n|")
	for range 4 + 3*len(targets) + 5 {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i, r := range rs {
		m := ms[i]
		fmt.Fprintf(&b, "| %d | %s | %s | %s |", r.Workers, fmtS(m.ComputeS), fmtS(m.ServiceS), fmtS(m.LatencyS))
		for j := range targets {
			sp := rs[0].TimeTo[j] / r.TimeTo[j]
			fmt.Fprintf(&b, " %s | %s | %s |", cellF(r.TimeTo[j], "%.4g"), cellF(float64(r.UpdatesTo[j]), "%.0f"), cellF(sp, "%.2f"))
		}
		fmt.Fprintf(&b, " %.0f | %.2f | %.2f | %d | %s |\n", r.UpdPerS, r.MasterUtil, r.DelayMean, r.DelayP99, fmtS(r.IdleS))
	}
	return b.String()
}

func fmtS(s float64) string {
	return time.Duration(s * 1e9).Round(100 * time.Nanosecond).String()
}

func cellF(v float64, format string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func writeSimCSV(path string, targets []float64, rs []*sim.Result, ms []sim.Model) error {
	targets = sortedTargets(targets)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	head := []string{"workers", "compute_s", "compute_cv", "service_s", "latency_s", "bandwidth", "stop_reason", "updates", "sim_s",
		"updates_per_s", "master_busy", "delay_mean", "delay_p50", "delay_p99", "delay_max", "idle_per_grad_s", "final_rel_subopt"}
	for _, e := range targets {
		l := study.TargetLabel(e)
		head = append(head, "time_"+l, "updates_"+l)
	}
	_ = w.Write(head)
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for i, r := range rs {
		m := ms[i]
		row := []string{strconv.Itoa(r.Workers), g(m.ComputeS), g(m.ComputeCV), g(m.ServiceS), g(m.LatencyS), g(m.Bandwidth), r.StopReason,
			strconv.FormatInt(r.Updates, 10), g(r.SimS), g(r.UpdPerS), g(r.MasterUtil), g(r.DelayMean), strconv.FormatInt(r.DelayP50, 10),
			strconv.FormatInt(r.DelayP99, 10), strconv.FormatInt(r.DelayMax, 10), g(r.IdleS), g(r.FinalRel)}
		for j := range targets {
			row = append(row, g(r.TimeTo[j]), strconv.FormatInt(r.UpdatesTo[j], 10))
		}
		_ = w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
