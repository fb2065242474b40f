package ranks

import (
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// TestRunInProcessPolishTol runs the master with the evaluator's --tol
// rule, the held-out set and the polish over the workers' shards (the
// estGrad rounds), ranks as goroutines (so that -race sees the evaluator
// and the rounds): heart_scale l1-logistic, whose optimum (liblinear,
// testdata/reference.jsonl) has phi* 0.41829524536 and 10 nonzeros.
func TestRunInProcessPolishTol(t *testing.T) {
	const phiStar, nnzStar = 0.4182952453595799, 10
	cfg := Config{
		Data: "../testdata/heart_scale", Loss: kernels.Logistic,
		Reg:  solver.Reg{Kind: solver.RegL1, Lambda: 0.01},
		Mode: algo.ModeAsync, Batch: 16, Tol: 1e-4, MaxEpochs: 2000, Seed: 3,
		Step: StepSpec{Kind: solver.StepConvex, Tau: 0, Average: "tail"},
		Out:  t.TempDir(), PhiStar: math.NaN(), Test: "../testdata/heart_scale", PolishIters: 200,
	}
	s := runInProcess(t, 3, cfg)
	if s.StopReason != "tol" || s.Tol == nil || !s.Tol.Reached {
		t.Errorf("stop reason %q, tol %+v", s.StopReason, s.Tol)
	}
	if s.Polish == nil || s.Model == nil || s.Test == nil || s.Test.Accuracy == nil {
		t.Fatalf("polish %+v model %+v test %+v", s.Polish, s.Model, s.Test)
	}
	rel := (s.Model.Phi - phiStar) / phiStar
	t.Logf("%.1f epochs; polish %d steps: nnz %d -> %d, phi %.10g -> %.10g (rel %.2e); test accuracy %.4f",
		s.Epochs, s.Polish.Iters, s.Polish.NNZBefore, s.Polish.NNZAfter, s.Polish.PhiBefore, s.Polish.PhiAfter, rel, *s.Test.Accuracy)
	if s.Model.NNZ != nnzStar || !(rel < 1e-6) || s.Polish.PhiAfter > s.Polish.PhiBefore {
		t.Errorf("model nnz %d (optimum %d), rel. subopt %.3g", s.Model.NNZ, nnzStar, rel)
	}
}
