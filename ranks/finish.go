package ranks

import (
	"context"
	"fmt"
	"math"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/solver"
)

// What both drivers do once training has stopped and the trace is
// evaluated: decide the model to write (none after a divergence; polished
// for the sparse regularizers), score it, and record the stopping rules'
// outcomes in the summary.

// diverged stops the run at the master's current update.
func (r *masterRun) diverged(what string) {
	r.div = &Divergence{T: r.m.T(), Epochs: float64(r.m.SamplesDone()) / float64(r.n), What: what}
}

// finish runs the after-run rounds the model needs (on the workers'
// shards: the polish, the model's phi, L for a divergence's advice) and
// returns the model to write.
func (r *masterRun) finish(ctx context.Context, sum *Summary, f *facts, model []float64, sched solver.Schedule, L float64, test *heldOut, rows []TraceRow) ([]float64, error) {
	cfg := r.cfg
	bestPhi := math.NaN()
	if r.ev != nil {
		bestPhi = r.ev.bestPhi
		if cfg.Tol > 0 {
			sum.Tol = &TolInfo{Tol: cfg.Tol, Reached: r.m.StopReason() == algo.StopTol, LastChange: finitePtr(r.m.TolChange())}
		}
	}
	markTarget(sum, rows, bestPhi)
	if r.div != nil {
		if L == 0 && !r.p2p {
			// The advice names 1/L: estimate it on the shards.
			est := *cfg
			est.Step.Kind, est.Step.L = solver.StepStrong, 0
			var err error
			if L, _, err = masterEstimate(ctx, r.c, &est, f, make([]float64, f.d)); err != nil {
				return nil, err
			}
		}
		r.div.explain(sched, L)
		sum.Diverged = r.div
		return nil, nil
	}
	var err error
	smooth := r.smoothFunc(ctx, f, &err)
	model = finishModel(cfg, sum, model, smooth, L, test)
	return model, err
}

// finishModel polishes the model (sparse regularizers, cfg.PolishIters >
// 0, not after an interrupt) and records its phi, nonzeros and held-out figures in sum; it
// returns the model to write.
func finishModel(cfg *Config, sum *Summary, model []float64, smooth solver.SmoothFunc, L float64, test *heldOut) []float64 {
	var phi float64
	// An interrupted run writes its output at once, unpolished.
	if cfg.PolishIters > 0 && polishes(cfg.Reg) && sum.StopReason != "interrupted" {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "polish: up to %d proximal gradient steps on the full data from the model (nnz %d)\n", cfg.PolishIters, solver.NNZ(model))
		}
		model, sum.Polish = polishModel(smooth, cfg, model, L)
		phi = sum.Polish.PhiAfter
	} else {
		phi = smooth(model, make([]float64, len(model))) + cfg.Reg.Value(model)
	}
	sum.Model = &ModelInfo{Phi: phi, NNZ: solver.NNZ(model)}
	if sum.PhiStar != nil {
		sum.Model.Rel = finitePtr((phi - *sum.PhiStar) / math.Abs(*sum.PhiStar))
	}
	if test != nil {
		sum.Test = test.info(test.score(model))
	}
	return model
}
