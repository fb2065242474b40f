package sim

import (
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
)

// heart returns l1-logistic on heart_scale (lambda 0.01) and its optimum
// from testdata/reference.jsonl (liblinear).
func heart(t *testing.T) (*solver.Problem, float64) {
	t.Helper()
	ds, err := data.Read("../testdata/heart_scale", data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.ToBinary(); err != nil {
		t.Fatal(err)
	}
	p, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Logistic, solver.Reg{Kind: solver.RegL1, Lambda: 0.01}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return p, 0.4182952453595799
}

func baseConfig(p *solver.Problem, phi float64, workers int, mode algo.Mode, m Model) *Config {
	return &Config{Problem: p, Workers: workers, PhiStar: phi, Targets: []float64{1e-1, 1e-2}, Model: m,
		Train: ranks.Config{Mode: mode, Batch: 16, Seed: 1, Iters: 2000, Replicate: true,
			Step: ranks.StepSpec{Kind: solver.StepConvex, Tau: 0, Average: "tail"}}}
}

// TestSimQueueing checks the discrete-event model against what queueing
// gives in closed form, for cases without randomness (CV 0).
func TestSimQueueing(t *testing.T) {
	p, phi := heart(t)
	const c = 1e-3
	for _, tc := range []struct {
		name      string
		workers   int
		mode      algo.Mode
		model     Model
		updPerS   float64 // expected rate
		delayMean float64
	}{
		// One worker: an update every compute + service + 2 latency.
		{"serial", 1, algo.ModeAsync, Model{ComputeS: c, ServiceS: 1e-4, LatencyS: 2e-4}, 1 / (c + 1e-4 + 4e-4), 0},
		// P equal workers, free master: P updates per compute time, each
		// gradient P-1 updates old.
		{"async P=4", 4, algo.ModeAsync, Model{ComputeS: c}, 4 / c, 3},
		{"async P=8", 8, algo.ModeAsync, Model{ComputeS: c}, 8 / c, 7},
		// Sync: one update per round, no delay.
		{"sync P=4", 4, algo.ModeSync, Model{ComputeS: c, LatencyS: 1e-4}, 1 / (c + 2e-4), 0},
		// The master saturates: one update per service time.
		{"master-bound", 8, algo.ModeAsync, Model{ComputeS: c, ServiceS: c / 2}, 2 / c, 7},
		// The master's link saturates: each update moves a dense gradient
		// and a dense reply of d = 13 floats (2 (88 + 104) bytes).
		{"link-bound", 8, algo.ModeAsync, Model{ComputeS: c, Bandwidth: 2 * (headerBytes + 8*13) * 2 / c}, 2 / c, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(p, phi, tc.workers, tc.mode, tc.model)
			cfg.Targets = nil
			r, err := Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Updates != 2000 {
				t.Fatalf("%d updates, want 2000", r.Updates)
			}
			if math.Abs(r.UpdPerS-tc.updPerS) > 0.02*tc.updPerS {
				t.Errorf("%.1f updates/s, want %.1f", r.UpdPerS, tc.updPerS)
			}
			if math.Abs(r.DelayMean-tc.delayMean) > 0.02*tc.delayMean+0.01 {
				t.Errorf("mean delay %.3f, want %.3f", r.DelayMean, tc.delayMean)
			}
		})
	}
}

// TestSimConverges: the simulated run applies real gradients with the
// real master, so it must reach the targets (against liblinear's optimum),
// and its time to a target must be the time of the update that reached it.
func TestSimConverges(t *testing.T) {
	p, phi := heart(t)
	cfg := baseConfig(p, phi, 4, algo.ModeAsync, Model{ComputeS: 1e-3, ComputeCV: 0.3, ServiceS: 1e-5, LatencyS: 5e-5})
	cfg.Train.Iters = 200000
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.StopReason != "target" {
		t.Fatalf("stopped by %s at rel. suboptimality %g after %d updates", r.StopReason, r.FinalRel, r.Updates)
	}
	for j, eps := range []float64{1e-1, 1e-2} {
		if r.UpdatesTo[j] <= 0 || !(r.TimeTo[j] > 0) {
			t.Fatalf("target %g: %d updates, %g s", eps, r.UpdatesTo[j], r.TimeTo[j])
		}
		// about 4 updates per 1.1 ms (the master is nearly free), once
		// the start's transient is over
		if eps > 1e-2 {
			continue
		}
		if rate := float64(r.UpdatesTo[j]) / r.TimeTo[j]; math.Abs(rate-4/1.1e-3) > 0.15*4/1.1e-3 {
			t.Errorf("target %g: %.0f updates/s on the way, want about %.0f", eps, rate, 4/1.1e-3)
		}
	}
	if r.FinalRel > 1e-2 {
		t.Errorf("final rel. suboptimality %g > 1e-2", r.FinalRel)
	}
}

// TestSimStraggler: a worker slowed 4x holds sync back to its pace, and
// async is not held back.
func TestSimStraggler(t *testing.T) {
	p, phi := heart(t)
	m := Model{ComputeS: 1e-3, LatencyS: 1e-5}
	rate := map[algo.Mode]float64{}
	for _, mode := range []algo.Mode{algo.ModeAsync, algo.ModeSync} {
		cfg := baseConfig(p, phi, 4, mode, m)
		cfg.Targets = nil
		cfg.Train.Slow = map[int]float64{1: 4}
		cfg.Train.Replicate = false
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rate[mode] = float64(r.Grads) / r.SimS
	}
	// sync: 4 gradients per 4 ms; async: 3 workers at 1/ms plus 1/4 per ms
	if want := 1 / 1e-3; math.Abs(rate[algo.ModeSync]-want) > 0.03*want {
		t.Errorf("sync: %.0f gradients/s, want %.0f", rate[algo.ModeSync], want)
	}
	if want := 3.25 / 1e-3; math.Abs(rate[algo.ModeAsync]-want) > 0.03*want {
		t.Errorf("async: %.0f gradients/s, want %.0f", rate[algo.ModeAsync], want)
	}
}
