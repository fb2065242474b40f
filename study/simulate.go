package study

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/sim"
	"github.com/asyncmb/asyncmb/solver"
)

// SimSpec is `asyncmb simulate`: the real master and gradients of Problem
// under Train, in simulated time, for each of Workers.
type SimSpec struct {
	Data       string // the data file, for the table's title
	Problem    *solver.Problem
	Train      ranks.Config
	Workers    []int
	Targets    []float64
	PhiStar    float64
	MaxSimS    float64
	MaxUpdates int64
	Bandwidth  float64
	// Summary, if not nil, calibrates the model (its dilation Dilate is
	// divided out; see Calibrate); the times given explicitly (not nil)
	// then override it, and ComputeCV does when there is no Summary or
	// ComputeCVSet.
	Summary                   *ranks.Summary
	Dilate                    float64
	Compute, Service, Latency *time.Duration
	ComputeCV                 float64
	ComputeCVSet              bool
	Out                       string    // "": write no sim.csv and sim.md
	Log                       io.Writer // one line per P
}

// ParseLists sets o.Workers and o.Targets from comma-separated lists
// (simulate's --workers and --targets; a UsageError names the flag).
func (o *SimSpec) ParseLists(workers, targets string) (err error) {
	if o.Workers, err = ParseInts("workers", workers); err != nil {
		return &UsageError{err}
	}
	if o.Targets, err = ParseFloats("targets", targets); err != nil {
		return &UsageError{err}
	}
	return nil
}

// Calibrate reads Summary and its Dilate from a real run's summary.json
// at path; without one, some time must be given (else a UsageError
// wrapping ErrNoModel).
func (o *SimSpec) Calibrate(path string) error {
	if path == "" {
		if o.Compute == nil && o.Service == nil && o.Latency == nil {
			return &UsageError{ErrNoModel}
		}
		return nil
	}
	var err error
	if o.Summary, err = ReadSummary(path); err != nil {
		return err
	}
	o.Dilate = ManifestDilate(o.Summary.Manifest)
	return nil
}

// ErrNoModel is Calibrate's error when neither a summary nor any time is
// given.
var ErrNoModel = errors.New("give --calibrate SUMMARY (a real run's summary.json) or the model's times (--compute, --service, --latency)")

// Simulate runs every P, prints the Markdown table to w and writes sim.md
// and sim.csv into Out.
func Simulate(o SimSpec, w io.Writer) ([]*sim.Result, error) {
	var results []*sim.Result
	var models []sim.Model
	for _, p := range o.Workers {
		cfg := &sim.Config{Problem: o.Problem, Train: o.Train, Workers: p, PhiStar: o.PhiStar, Targets: o.Targets,
			MaxSimS: o.MaxSimS, MaxUpdates: o.MaxUpdates}
		cfg.Model.Bandwidth = o.Bandwidth
		if o.Summary != nil {
			if err := sim.Calibrate(cfg, o.Summary, o.Dilate); err != nil {
				return nil, err
			}
		}
		for _, t := range []struct {
			d   *time.Duration
			dst *float64
		}{{o.Compute, &cfg.Model.ComputeS}, {o.Service, &cfg.Model.ServiceS}, {o.Latency, &cfg.Model.LatencyS}} {
			if t.d != nil {
				*t.dst = t.d.Seconds()
			}
		}
		if o.Summary == nil || o.ComputeCVSet {
			cfg.Model.ComputeCV = o.ComputeCV
		}
		t0 := time.Now()
		r, err := sim.Run(cfg)
		if err != nil {
			return nil, fmt.Errorf("P=%d: %w", p, err)
		}
		fmt.Fprintf(o.Log, "simulate: P=%d: %s after %d updates, %.4g s simulated (%.1f s to compute)\n",
			p, r.StopReason, r.Updates, r.SimS, time.Since(t0).Seconds())
		results = append(results, r)
		models = append(models, cfg.Model)
	}
	md := SimMarkdown(o.Data, o.Targets, results, models)
	fmt.Fprint(w, md)
	if dir := o.Out; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "sim.md"), []byte(md), 0o644); err != nil {
			return nil, err
		}
		if err := WriteSimCSV(filepath.Join(dir, "sim.csv"), o.Targets, results, models); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// sortedTargets is t from the largest.
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

// SimMarkdown is the table of simulated runs rs (with their models ms) as
// Markdown, the targets from the largest.
func SimMarkdown(data string, targets []float64, rs []*sim.Result, ms []sim.Model) string {
	targets = sortedTargets(targets)
	var b strings.Builder
	fmt.Fprintf(&b, "Simulated runs on `%s` (seconds of simulated time; speedup against the first P).\n\n| P | compute | service | latency |", data)
	for _, e := range targets {
		fmt.Fprintf(&b, " time to %s | updates to %s | speedup %s |", TargetLabel(e), TargetLabel(e), TargetLabel(e))
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
			fmt.Fprintf(&b, " %s | %s | %s |", Cell(r.TimeTo[j], "%.4g"), Cell(float64(r.UpdatesTo[j]), "%.0f"), Cell(sp, "%.2f"))
		}
		fmt.Fprintf(&b, " %.0f | %.2f | %.2f | %d | %s |\n", r.UpdPerS, r.MasterUtil, r.DelayMean, r.DelayP99, fmtS(r.IdleS))
	}
	return b.String()
}

// fmtS is s seconds as a duration.
func fmtS(s float64) string {
	return time.Duration(s * 1e9).Round(100 * time.Nanosecond).String()
}

// Cell formats v, or "-" for NaN, an infinity or a negative value.
func Cell(v float64, format string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// WriteSimCSV writes the simulated runs rs as CSV to path.
func WriteSimCSV(path string, targets []float64, rs []*sim.Result, ms []sim.Model) error {
	targets = sortedTargets(targets)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	head := []string{"workers", "compute_s", "compute_cv", "service_s", "latency_s", "bandwidth", "stop_reason", "updates", "sim_s",
		"updates_per_s", "master_busy", "delay_mean", "delay_p50", "delay_p99", "delay_max", "idle_per_grad_s", "final_rel_subopt"}
	for _, e := range targets {
		l := TargetLabel(e)
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
