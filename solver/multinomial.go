package solver

import (
	"context"
	"fmt"
	"math"

	"github.com/asyncmb/asyncmb/kernels"
)

// multiPart is what a K-class Problem adds to a Problem: the loss and the
// full-data evaluator over the flat W (see kernels.Multi).
type multiPart struct {
	mc      kernels.Multi
	fg      *kernels.MultiFullGrad
	scratch []float64 // 2K, for GradBatch
}

// NewMultiProblem is NewProblem for a K-class model W (d x K, x = W flat,
// row-major by feature, len(x) = d*K): y holds class indices 0..K-1, the
// loss is mc's (softmax or one-vs-rest logistic) and Reg acts on the d*K
// entries (group lasso with groups of K contiguous entries selects whole
// rows of W, i.e. features). A is CSR. Problem.Loss is Logistic.
func NewMultiProblem(a *kernels.CSR, y []float64, mc kernels.Multi, reg Reg, workers int) (*Problem, error) {
	if a == nil {
		return nil, fmt.Errorf("solver: a multiclass problem needs a CSR matrix")
	}
	if mc.K < 2 {
		return nil, fmt.Errorf("solver: %d classes, want at least 2", mc.K)
	}
	if a.Rows == 0 || a.Cols == 0 {
		return nil, fmt.Errorf("solver: empty problem (%d rows, %d columns)", a.Rows, a.Cols)
	}
	fg, err := kernels.NewMultiFullGrad(mc, a, y, workers)
	if err != nil {
		return nil, fmt.Errorf("solver: %w", err)
	}
	d := a.Cols * mc.K
	if err := reg.Validate(d); err != nil {
		return nil, err
	}
	return &Problem{A: kernels.Matrix{CSR: a}, Y: y, Loss: kernels.Logistic, Reg: reg, n: a.Rows, d: d,
		mp: &multiPart{mc: mc, fg: fg, scratch: make([]float64, 2*mc.K)}}, nil
}

// Multi returns the K-class loss of a problem built by NewMultiProblem, and
// false for a problem with one weight vector.
func (p *Problem) Multi() (kernels.Multi, bool) {
	if p.mp == nil {
		return kernels.Multi{}, false
	}
	return p.mp.mc, true
}

// WithWorkers returns a Problem over the same data, loss and regularizer
// whose full-data evaluation uses workers goroutines (its own buffers).
func (p *Problem) WithWorkers(workers int) (*Problem, error) {
	if p.mp != nil {
		return NewMultiProblem(p.A.CSR, p.Y, p.mp.mc, p.Reg, workers)
	}
	return NewProblem(p.A, p.Y, p.Loss, p.Reg, workers)
}

// MultiProblemKey is ProblemKey for a K-class problem over d features.
func MultiProblemKey(dataHash string, d int, bias bool, mc kernels.Multi, r Reg) string {
	mode := "softmax"
	if mc.OVR {
		mode = "ovr"
	}
	return ProblemKey(dataHash, d, bias, kernels.Logistic, r) + fmt.Sprintf(" classes=%d multiclass=%s", mc.K, mode)
}

// smoothReg reports whether Psi is differentiable everywhere (none, l2),
// so that phi can be minimized by a quasi-Newton method.
func (r Reg) smoothReg() bool { return r.Kind == RegNone || r.Kind == RegL2 }

// lbfgsMemory is the number of curvature pairs ReferenceLBFGS keeps.
const lbfgsMemory = 20

// referenceLBFGS minimizes a smooth phi = f + Psi (Psi none or l2) with
// L-BFGS (Nocedal and Wright, Algorithm 7.4, memory 20) and a backtracking
// line search on the Armijo condition from the unit step (pairs that fail
// the curvature condition s.y > 0 are skipped). It stops when
// ||grad phi|| <= Tol max(1, |phi|) (Tol of opt, 0 meaning 1e-10) or the
// objective stops decreasing over 10 iterations in a row at the level of
// rounding. On ill-conditioned strongly convex problems such as unscaled
// multinomial logistic regression (wine: a feature of ~1000 against
// lambda 1e-2) it needs hundreds of iterations where FISTA needs ~1e5.
// ReferenceContext calls it for K-class problems with those regularizers
// (not RefFISTA); the result's MapNorm is ||grad phi||, Method "lbfgs". It
// returns ctx.Err() (and the iterate so far) once ctx is done.
func referenceLBFGS(ctx context.Context, p *Problem, opt RefOptions) (RefResult, error) {
	if !p.Reg.smoothReg() {
		panic("solver: referenceLBFGS needs a smooth regularizer (none or l2)")
	}
	tol, maxIter := opt.limits(100000)
	_, d := p.Dims()
	lam := 0.0
	if p.Reg.Kind == RegL2 {
		lam = p.Reg.Lambda
	}
	eval := func(x, g []float64) float64 {
		f := p.Smooth(x, g)
		var sq float64
		for i, v := range x {
			g[i] += lam * v
			sq += v * v
		}
		return f + 0.5*lam*sq
	}
	x := make([]float64, d)
	if opt.X0 != nil {
		copy(x, opt.X0)
	}
	g := make([]float64, d)
	res := RefResult{Method: "lbfgs"}
	phi := eval(x, g)
	res.Evals++
	S, Yv := make([][]float64, 0, lbfgsMemory), make([][]float64, 0, lbfgsMemory)
	rho := make([]float64, 0, lbfgsMemory)
	dir := make([]float64, d)
	xn, gn := make([]float64, d), make([]float64, d)
	alphas := make([]float64, lbfgsMemory)
	stall := 0
	for k := 1; k <= maxIter; k++ {
		if ctx.Err() != nil {
			break
		}
		gnorm := math.Sqrt(sumSq(g))
		res.MapNorm = gnorm
		if gnorm <= tol*math.Max(1, math.Abs(phi)) {
			res.Converged = true
			break
		}
		// Two-loop recursion: dir = -H g.
		for i := range dir {
			dir[i] = -g[i]
		}
		for j := len(S) - 1; j >= 0; j-- {
			alphas[j] = rho[j] * dot(S[j], dir)
			axpy(-alphas[j], Yv[j], dir)
		}
		if m := len(S); m > 0 {
			scale(dir, dot(S[m-1], Yv[m-1])/dot(Yv[m-1], Yv[m-1]))
		} else {
			scale(dir, 1/math.Max(gnorm, 1))
		}
		for j := range S {
			b := rho[j] * dot(Yv[j], dir)
			axpy(alphas[j]-b, S[j], dir)
		}
		slope := dot(g, dir)
		if !(slope < 0) { // not a descent direction (rounding): restart from -g
			S, Yv, rho = S[:0], Yv[:0], rho[:0]
			for i := range dir {
				dir[i] = -g[i] / math.Max(gnorm, 1)
			}
			slope = dot(g, dir)
		}
		step := 1.0
		var phiN float64
		for tries := 0; ; tries++ {
			for i := range xn {
				xn[i] = x[i] + step*dir[i]
			}
			phiN = eval(xn, gn)
			res.Evals++
			if phiN <= phi+1e-4*step*slope || tries >= 60 {
				break
			}
			step *= 0.5
		}
		if phiN >= phi {
			stall++
		} else {
			stall = 0
		}
		if phiN > phi || stall >= 10 {
			// No progress at the level of rounding: x is as good as it gets.
			res.Converged = gnorm <= math.Sqrt(tol)*math.Max(1, math.Abs(phi))
			res.Iters = k
			break
		}
		var s, y []float64
		if len(S) == lbfgsMemory {
			s, y = S[0], Yv[0]
			S, Yv, rho = append(S[:0], S[1:]...), append(Yv[:0], Yv[1:]...), append(rho[:0], rho[1:]...)
		} else {
			s, y = make([]float64, d), make([]float64, d)
		}
		var change, nx float64
		for i := range s {
			s[i] = xn[i] - x[i]
			y[i] = gn[i] - g[i]
			change += s[i] * s[i]
			nx += xn[i] * xn[i]
		}
		if sy := dot(s, y); sy > 1e-300 {
			S, Yv, rho = append(S, s), append(Yv, y), append(rho, 1/sy)
		}
		copy(x, xn)
		copy(g, gn)
		phi = phiN
		res.Iters = k
		res.RelChange = math.Sqrt(change) / math.Max(1, math.Sqrt(nx))
		if opt.Progress != nil && !opt.Progress(k, phi) {
			break
		}
	}
	res.X, res.Phi, res.NNZ = x, p.Objective(x), NNZ(x)
	return res, ctx.Err()
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(alpha float64, x, y []float64) {
	for i, v := range x {
		y[i] += alpha * v
	}
}

// ScaleGroups turns group boundaries over d features into boundaries over
// the flat d x K matrix W (row-major by feature): a group of features
// becomes the group of all their K weights, so group lasso selects a
// feature for every class or for none.
func ScaleGroups(bounds []int, k int) []int {
	out := make([]int, len(bounds))
	for i, b := range bounds {
		out[i] = b * k
	}
	return out
}
