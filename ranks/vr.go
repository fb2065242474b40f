package ranks

import (
	"errors"
	"fmt"
	"math"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/solver"
)

// This file holds what the serial and the distributed runs of
// solver.MethodSVRG share: the checks, the choice of metric, update and
// step size.

func (c *Config) validateVR() error {
	if c.Method >= solver.Method(len(solver.MethodNames())) {
		return fmt.Errorf("ranks: unknown method %d", c.Method)
	}
	if c.Method == solver.MethodSGD {
		if c.Metric == solver.MetricDiag {
			return errors.New("ranks: --metric diag needs --method svrg (the paper's sgd keeps the Euclidean step)")
		}
		return nil
	}
	switch {
	case c.Mode == algo.ModeSync:
		return errors.New("ranks: --method svrg runs in --mode async or bounded, not sync")
	case !c.Step.Default && c.Step.Kind != solver.StepConst:
		return fmt.Errorf("ranks: --method svrg takes a constant step (--step const --alpha0 A, or no --step for its adaptive step), not --step %s", c.Step.Kind)
	case c.Step.Tau0 > 0:
		return errors.New("ranks: --method svrg takes no --tau0")
	}
	return nil
}

// vrPlan is how a svrg run steps, decided from the data.
type vrPlan struct {
	alpha  float64
	L      float64   // in the metric
	metric []float64 // nil: Euclidean
	spread float64   // the columns' scale spread (ColumnStats.ScaleSpread)
	sparse bool      // solver.VRStep.Sparse on the batch's support
	wts    []float64 // its support weights
	adapt  bool      // solver.VRRate adapts the step at each snapshot
}

// useMetric decides --metric for a svrg run with column statistics st.
func useMetric(cfg *Config, st solver.ColumnStats) bool {
	if !cfg.Reg.Separable() {
		return false // ball, group, simplex keep their own distance
	}
	switch cfg.Metric {
	case solver.MetricDiag:
		return true
	case solver.MetricAuto:
		return st.ScalesDiffer()
	}
	return false
}

// sparseVR reports whether the update is the O(nnz) sparse step: for a
// separable regularizer with --update lazy, or auto where the workers send
// sparse gradients (d > denseMaxDim; a dense message gets the dense step).
func sparseVR(cfg *Config, d int) bool {
	if !cfg.Reg.Separable() {
		return false
	}
	switch cfg.Update {
	case algo.UpdateLazy:
		return true
	case algo.UpdateAuto:
		return d > denseMaxDim
	}
	return false
}

// newVRPlan completes a plan once the metric is chosen and L (in it) is
// known; b is the mini-batch size of one update.
// The statistics and metric are per column of A; a K-class iterate (k > 1
// weights per column) gets them repeated over each column's weights.
func newVRPlan(cfg *Config, st solver.ColumnStats, metric []float64, L float64, d, k int) (vrPlan, error) {
	p := vrPlan{metric: solver.PerWeight(metric, k), L: L, spread: st.ScaleSpread(), sparse: sparseVR(cfg, d)}
	if p.sparse {
		p.wts = solver.PerWeight(st.SupportWeights(cfg.Batch), k)
	}
	p.alpha = cfg.Step.Alpha0
	if cfg.Step.Default || p.alpha == 0 {
		if !(L > 0) || math.IsInf(L, 0) {
			return p, fmt.Errorf("ranks: svrg needs a Lipschitz constant L > 0 for its step, got %v (give --step const --alpha0)", L)
		}
		p.alpha = 1 / (solver.VRStepDiv * L)
		p.adapt = true
	}
	return p, nil
}

// metricName is the metric as decided.
func (p vrPlan) metricName() string {
	if p.metric != nil {
		return solver.MetricDiag.String()
	}
	return solver.MetricNone.String()
}

// masterVRConfig is the master's svrg configuration: a cycle is one
// epoch-equivalent of updates, ceil(n/b).
func masterVRConfig(cfg *Config, f *facts, P int, p vrPlan) *algo.VRConfig {
	vc := &algo.VRConfig{Alpha: p.alpha, Metric: p.metric, Sparse: p.sparse, Weights: p.wts, Adapt: p.adapt,
		Every: (f.n + int64(cfg.Batch) - 1) / int64(cfg.Batch), FullShare: make([]float64, P+1)}
	for w := 1; w <= P; w++ {
		vc.FullShare[w] = 1 / float64(P)
		if !cfg.Replicate {
			vc.FullShare[w] = float64(f.rows[w]) / float64(f.n)
		}
	}
	return vc
}
