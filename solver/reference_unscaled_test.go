package solver_test

import (
	"bufio"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// needTool returns the path of an external tool, or skips the test without
// it (fails with ASYNCMB_REQUIRE_TOOLS=1).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not found and ASYNCMB_REQUIRE_TOOLS=1: %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

// liblinearOptimum trains liblinear-train -s solverType (6: l1-logistic,
// 0: l2-logistic) with C = 1/(n lambda), -e 1e-9, -B -1 on file and returns
// its weights in the problem's sign convention (+1 is the larger label),
// padded to d.
// converged is false when liblinear warned that it stopped early (its
// iteration cap of 100 Newton steps, or a trust region too small).
func liblinearOptimum(t *testing.T, file string, solverType int, lambda float64, n, d int) (w []float64, converged bool) {
	t.Helper()
	bin := needTool(t, "liblinear-train")
	model := filepath.Join(t.TempDir(), "model")
	c := strconv.FormatFloat(1/(float64(n)*lambda), 'g', -1, 64)
	out, err := exec.Command(bin, "-s", strconv.Itoa(solverType), "-c", c, "-e", "1e-9", "-B", "-1", file, model).CombinedOutput()
	if err != nil {
		t.Fatalf("liblinear-train: %v: %s", err, out)
	}
	converged = !strings.Contains(string(out), "WARNING")
	f, err := os.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var labels []float64
	inW := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case inW && len(fields) == 1:
			v, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				t.Fatal(err)
			}
			w = append(w, v)
		case len(fields) > 0 && fields[0] == "label":
			for _, s := range fields[1:] {
				v, _ := strconv.ParseFloat(s, 64)
				labels = append(labels, v)
			}
		case len(fields) > 0 && fields[0] == "w":
			inW = true
		}
	}
	if len(labels) != 2 || len(w) > d {
		t.Fatalf("liblinear model: labels %v, %d weights for d=%d", labels, len(w), d)
	}
	if labels[0] < labels[1] { // liblinear's w scores its first label
		for i := range w {
			w[i] = -w[i]
		}
	}
	return append(w, make([]float64, d-len(w))...), converged
}

// pythonOptimum runs a scikit-learn / numpy script that prints the weights
// of the lasso (sklearn Lasso, tol 1e-12, no intercept) or of ridge least
// squares (least squares on [A; sqrt(n lambda) I] x = [y; 0], which does not
// square the condition number as the normal equations would).
func pythonOptimum(t *testing.T, file, problem string, lambda float64, d int) []float64 {
	t.Helper()
	py := needTool(t, "/usr/bin/python3")
	script := `
import sys, numpy as np
from sklearn.datasets import load_svmlight_file
X, y = load_svmlight_file(sys.argv[1], n_features=int(sys.argv[4]))
X = X.toarray(); n = X.shape[0]; lam = float(sys.argv[3])
if sys.argv[2] == "lasso":
    from sklearn.linear_model import Lasso
    w = Lasso(alpha=lam, tol=1e-12, fit_intercept=False, max_iter=10**7).fit(X, y).coef_
else:
    A = np.vstack([X, np.sqrt(n*lam)*np.eye(X.shape[1])]); b = np.concatenate([y, np.zeros(X.shape[1])])
    w = np.linalg.lstsq(A, b, rcond=None)[0]
print(" ".join(repr(float(v)) for v in w))
`
	out, err := exec.Command(py, "-c", script, file, problem, strconv.FormatFloat(lambda, 'g', -1, 64), strconv.Itoa(d)).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && strings.Contains(string(ee.Stderr), "No module named") {
		if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
			t.Fatalf("python3 lacks scikit-learn: %s", ee.Stderr)
		}
		t.Skipf("python3 lacks scikit-learn: %s", ee.Stderr)
	}
	if err != nil {
		t.Fatalf("python3: %v %s", err, out)
	}
	var w []float64
	for _, s := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		w = append(w, v)
	}
	if len(w) != d {
		t.Fatalf("python3 gave %d weights, want %d", len(w), d)
	}
	return w
}

// TestReferenceUnscaled: on the unscaled variants (column j times 10^k_j,
// k_j in -3..6, testdata/PROVENANCE.md; Lipschitz constants up to 1e12,
// where FISTA does not converge in 100,000 iterations) the reference solver
// reaches the optimum computed on the spot by liblinear-train -e 1e-9
// (l1- and l2-logistic) and by scikit-learn's Lasso / a least-squares solve
// (lasso, ridge), both evaluated by our objective, to 1e-8 relative; and its
// own optimum is at least as good (phi(x_ref) <= phi(x_indep) (1 + 1e-12)).
func TestReferenceUnscaled(t *testing.T) {
	cases := []struct {
		file, problem string
		lambda        float64
	}{
		{"heart_unscaled", "l1-logistic", 0.01},
		{"heart_unscaled", "l2-logistic", 0.01},
		{"a1a_unscaled", "l1-logistic", 0.001},
		{"a1a_unscaled", "l2-logistic", 0.001},
		{"mushrooms_unscaled", "l1-logistic", 0.001},
		{"mushrooms_unscaled", "l2-logistic", 0.001},
		{"abalone_unscaled", "lasso", 0.01},
		{"abalone_unscaled", "ridge-ls", 0.001},
	}
	for _, c := range cases {
		// Loaded here: loadData's cache is not safe for the parallel subtests.
		r := refRow{Dataset: c.file, Problem: c.problem, Lambda: c.lambda}
		ds := loadData(t, c.file, strings.HasSuffix(c.problem, "logistic"))
		r.N, r.D = ds.X.Rows, ds.X.Cols
		p := problemOf(t, r)
		t.Run(c.file+"/"+c.problem, func(t *testing.T) {
			t.Parallel() // the time goes into waiting for liblinear and python
			path := filepath.Join("..", "testdata", c.file)
			var indep []float64
			indepConverged := true
			switch c.problem {
			case "l1-logistic":
				indep, indepConverged = liblinearOptimum(t, path, 6, c.lambda, r.N, r.D)
			case "l2-logistic":
				indep, indepConverged = liblinearOptimum(t, path, 0, c.lambda, r.N, r.D)
			default:
				indep = pythonOptimum(t, path, c.problem, c.lambda, r.D)
			}
			want := p.Objective(indep)
			start := time.Now()
			res := solver.Reference(p, solver.RefOptions{})
			rel := (res.Phi - want) / math.Abs(want)
			t.Logf("%s %s lambda=%g: phi=%.15g independent %.15g (converged %v) rel %.2g nnz=%d/%d newton steps=%d cd passes=%d evals=%d in %v",
				c.file, c.problem, c.lambda, res.Phi, want, indepConverged, rel, res.NNZ, solver.NNZ(indep), res.Iters, res.InnerPasses, res.Evals, time.Since(start))
			if !res.Converged {
				t.Errorf("not converged: %s", res.Stuck())
			}
			if rel > 1e-10 {
				t.Errorf("phi*=%.15g is above the independent solver's %.15g (relative %.3g)", res.Phi, want, rel)
			}
			if rel >= -1e-8 {
				return // the two agree to 1e-8
			}
			// Ours is lower than the independent solver's by more than 1e-8
			// (we have a point that proves its optimum is not the optimum):
			// liblinear stops at 100 Newton steps, and its -e is a gradient
			// test relative to the start that is loose when phi* is tiny
			// (mushrooms_unscaled: 3.3e-5). Then ours needs its own
			// certificate: for l2 the duality gap, for l1 (whose simple dual
			// point is too loose on unscaled data) liblinear's own warning
			// that it stopped early, and a difference below 1e-6.
			switch {
			case c.problem == "l2-logistic":
				if gap := dualityGap(p, res.X) / math.Abs(res.Phi); gap > 1e-9 {
					t.Errorf("phi*=%.15g below the independent %.15g (relative %.3g), but its duality gap is %.3g > 1e-9 relative", res.Phi, want, rel, gap)
				}
			case c.problem == "l1-logistic" && !indepConverged:
				if rel < -1e-6 {
					t.Errorf("phi*=%.15g is far below the unconverged independent solver's %.15g (relative %.3g)", res.Phi, want, rel)
				}
			default:
				t.Errorf("phi*=%.15g, independent optimum %.15g: relative gap %.3g > 1e-8", res.Phi, want, -rel)
			}
		})
	}
}

// dualityGap returns phi(x) - D(v), an upper bound on phi(x) - phi*, for
// logistic loss with l1 or l2 (Fenchel duality for min F(Ax) + Psi(x), F(u)
// = (1/n) sum_i l(u_i, y_i): D(v) = -F*(v) - Psi*(-A^T v)) at the dual point
// v = s grad F(Ax), s = 1 for l2 and s = min(1, lambda/||grad f(x)||_inf) for
// l1 (which makes Psi*(-A^T v), the indicator of ||.||_inf <= lambda, 0).
// With p_i = sigma(-y_i a_i.x) the logistic conjugate is the negative
// entropy: F*(v) = (1/n) sum_i q_i log q_i + (1-q_i) log(1-q_i), q_i = s p_i;
// for l2, Psi*(w) = ||w||^2 / (2 lambda).
func dualityGap(p *solver.Problem, x []float64) float64 {
	n, d := p.Dims()
	a := p.A.CSR
	grad := make([]float64, d)
	pr := make([]float64, n)
	for i := 0; i < n; i++ {
		idx, val := a.Row(i)
		var m float64
		for k, j := range idx {
			m += val[k] * x[j]
		}
		z := -p.Y[i] * m
		pr[i] = 1 / (1 + math.Exp(-z)) // sigma(z)
		for k, j := range idx {
			grad[j] += -p.Y[i] * pr[i] * val[k] / float64(n)
		}
	}
	s := 1.0
	lam := p.Reg.Lambda
	if p.Reg.Kind == solver.RegL1 {
		var gmax float64
		for _, v := range grad {
			gmax = math.Max(gmax, math.Abs(v))
		}
		s = math.Min(1, lam/gmax)
	}
	xlogx := func(q float64) float64 {
		if q <= 0 {
			return 0
		}
		return q * math.Log(q)
	}
	var fstar float64
	for _, pi := range pr {
		q := s * pi
		fstar += xlogx(q) + xlogx(1-q)
	}
	fstar /= float64(n)
	var psiStar float64
	if p.Reg.Kind == solver.RegL2 {
		for _, v := range grad {
			psiStar += s * s * v * v / (2 * lam)
		}
	}
	return p.Objective(x) + fstar + psiStar
}

// TestReferenceLassoKKT: the lasso optimum on unscaled data satisfies its
// optimality conditions (Friedman, Hastie and Tibshirani 2010, eq. 5) to
// 1e-9 relative to lambda, beyond the rounding of the gradient's sums:
// |grad_j f(x)| <= lambda where x_j = 0, and grad_j f(x) = -lambda sign(x_j)
// elsewhere; a check that needs no other solver.
func TestReferenceLassoKKT(t *testing.T) {
	ds := loadData(t, "abalone_unscaled", false)
	const lambda = 0.01
	p, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Squared, solver.Reg{Kind: solver.RegL1, Lambda: lambda}, 2)
	if err != nil {
		t.Fatal(err)
	}
	res := solver.Reference(p, solver.RefOptions{})
	if !res.Converged {
		t.Fatalf("not converged: %s", res.Stuck())
	}
	// The gradient (1/n) A^T (A x - y), summed here, and the rounding
	// allowance of each sum: sqrt(n) eps (1/n) sum_i |a_ij r_i|, the
	// typical error of a float64 sum of n terms (a column scaled by 1e5 has
	// gradient entries of size 1e5 whose last bits are noise).
	a := &ds.X
	n, d := a.Rows, a.Cols
	g, abs := make([]float64, d), make([]float64, d)
	for i := 0; i < n; i++ {
		idx, val := a.Row(i)
		var m float64
		for k, j := range idx {
			m += val[k] * res.X[j]
		}
		r := m - ds.Y[i]
		for k, j := range idx {
			g[j] += val[k] * r / float64(n)
			abs[j] += math.Abs(val[k]*r) / float64(n)
		}
	}
	for j, x := range res.X {
		var viol float64
		if x == 0 {
			viol = math.Max(0, math.Abs(g[j])-lambda)
		} else {
			viol = math.Abs(g[j] + lambda*math.Copysign(1, x))
		}
		round := math.Sqrt(float64(n)) * 0x1p-52 * abs[j]
		t.Logf("coordinate %d: x=%.6g grad=%.15g violation %.2g (rounding allowance %.2g)", j, x, g[j], viol, round)
		if viol > 1e-9*lambda+round {
			t.Errorf("coordinate %d: x=%g grad=%.15g: KKT violation %.3g > 1e-9 lambda + %.3g", j, x, g[j], viol, round)
		}
	}
}
