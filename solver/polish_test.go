package solver_test

import (
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// TestPolishReachesSupport: from a dense start the polish (FISTA with
// backtracking, Beck and Teboulle 2009) decreases phi, never ends above
// its start, and on heart_scale l1-logistic reaches liblinear's optimum
// (testdata/reference.jsonl: phi* and its 10 nonzeros).
func TestPolishReachesSupport(t *testing.T) {
	var row refRow
	for _, r := range readRefRows(t) {
		if r.Dataset == "heart_scale" && r.Problem == "l1-logistic" {
			row = r
		}
	}
	ds := loadData(t, "heart_scale", true)
	p, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Logistic, solver.Reg{Kind: solver.RegL1, Lambda: row.Lambda}, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, d := p.Dims()
	x0 := make([]float64, d)
	for j := range x0 {
		x0[j] = 0.1 * float64(j%3-1) // dense but for a third
		if x0[j] == 0 {
			x0[j] = 0.05
		}
	}
	keep := append([]float64(nil), x0...)
	prev := math.Inf(1)
	for _, iters := range []int{1, 5, 20, 200} {
		r := solver.Polish(p.Smooth, p.Reg, x0, solver.PolishOptions{MaxIter: iters})
		if got := p.Objective(r.X); math.Abs(got-r.Phi) > 1e-12*math.Abs(got) || r.Phi > r.Phi0 || r.Phi > prev {
			t.Errorf("%d steps: phi %.15g (objective %.15g), start %.15g, fewer steps %.15g", iters, r.Phi, got, r.Phi0, prev)
		}
		prev = r.Phi
		t.Logf("%d steps (%d taken, %d evaluations, %d restarts): phi %.12g, nnz %d", iters, r.Iters, r.Evals, r.Restarts, r.Phi, r.NNZ)
		if iters == 200 {
			if rel := (r.Phi - row.Objective) / row.Objective; !(rel < 1e-8) || r.NNZ != row.NNZ || !r.Converged {
				t.Errorf("after %d steps: rel. subopt %.3g, nnz %d (liblinear %d), converged %v", r.Iters, rel, r.NNZ, row.NNZ, r.Converged)
			}
		}
	}
	for j := range x0 {
		if x0[j] != keep[j] {
			t.Fatal("Polish wrote into x0")
		}
	}
}

// TestPolishKeepsStartOnFailure: when f fails (NaN) after the start the
// polish returns a copy of the start, with Phi == Phi0.
func TestPolishKeepsStartOnFailure(t *testing.T) {
	calls := 0
	f := func(x, g []float64) float64 {
		calls++
		if calls > 1 {
			return math.NaN()
		}
		var s float64
		for j, v := range x {
			s += 0.5 * (v - 1) * (v - 1)
			g[j] = v - 1
		}
		return s
	}
	x0 := []float64{3, -2, 0.5}
	r := solver.Polish(f, solver.Reg{Kind: solver.RegL1, Lambda: 0.1}, x0, solver.PolishOptions{})
	if r.Phi != r.Phi0 || r.X[0] != 3 || r.X[1] != -2 || r.X[2] != 0.5 || &r.X[0] == &x0[0] {
		t.Errorf("result %v phi %v (start %v)", r.X, r.Phi, r.Phi0)
	}
}

// TestPolishElasticNet: on the separable quadratic f = 1/2 ||x - c||^2 the
// elastic-net optimum is soft(c, lambda) / (1 + lambda2) coordinate-wise
// (the prox of the elastic net at c with alpha 1); the polish finds it.
func TestPolishElasticNet(t *testing.T) {
	c := []float64{2, -0.05, 0.3, -1.5, 0.01, 0}
	f := func(x, g []float64) float64 {
		var s float64
		for j, v := range x {
			s += 0.5 * (v - c[j]) * (v - c[j])
			g[j] = v - c[j]
		}
		return s
	}
	reg := solver.Reg{Kind: solver.RegElastic, Lambda: 0.1, Lambda2: 0.5}
	x0 := []float64{1, 1, 1, 1, 1, 1}
	r := solver.Polish(f, reg, x0, solver.PolishOptions{MaxIter: 500})
	for j, v := range c {
		want := math.Copysign(math.Max(math.Abs(v)-0.1, 0), v) / 1.5
		if math.Abs(r.X[j]-want) > 1e-7 {
			t.Errorf("x[%d] = %.12g, want %.12g", j, r.X[j], want)
		}
	}
	if r.NNZ != 3 {
		t.Errorf("nnz %d, want 3", r.NNZ)
	}
}
