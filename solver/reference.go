package solver

import (
	"context"
	"fmt"
	"math"
)

// RefMethod chooses the algorithm of Reference.
type RefMethod uint8

const (
	// RefAuto is proximal Newton for the separable regularizers and FISTA
	// for the others (ball, group, simplex).
	RefAuto RefMethod = iota
	// RefNewton is proximal Newton with coordinate descent (separable
	// regularizers only; others fall back to FISTA).
	RefNewton
	// RefFISTA is FISTA with backtracking and adaptive restart.
	RefFISTA
)

// RefOptions tunes Reference. The zero value asks for the defaults.
type RefOptions struct {
	// Method picks the algorithm (the zero value RefAuto is the default).
	Method RefMethod
	// Tol is the stopping tolerance, 0 meaning 1e-10. Proximal Newton stops
	// once the decrease its step predicts, -Delta, and the coordinate-wise
	// optimality measure K = sum_j H_jj s_j^2 are both at most Tol |phi|
	// (the step is then taken); FISTA once both the relative change of the
	// iterate, ||x_k - x_{k-1}|| / max(1, ||x_k||), and the norm of the
	// prox-gradient mapping at the extrapolated point,
	// L ||y_k - prox_{Psi/L}(y_k - grad f(y_k)/L)||, are at most Tol.
	Tol float64
	// MaxIter caps the iterations (0 means 1000 Newton steps or 100000
	// FISTA iterations); hitting it returns the last iterate with
	// Converged false.
	MaxIter int
	// L0 is the first Lipschitz guess of the backtracking; 0 means
	// Problem.EstimateL.
	L0 float64
	// X0 is the starting point (only read); nil means Reg.Init.
	X0 []float64
	// Progress, if set, is called after every iteration with the iteration
	// number and phi(x_k); returning false stops the solver (Converged false).
	Progress func(iter int, phi float64) bool
}

func (o RefOptions) newton(r Reg) bool { return o.Method != RefFISTA && newtonApplies(r) }

// limits returns Tol and MaxIter with their defaults (1e-10, defIter).
func (o RefOptions) limits(defIter int) (tol float64, maxIter int) {
	tol, maxIter = o.Tol, o.MaxIter
	if tol == 0 {
		tol = 1e-10
	}
	if maxIter == 0 {
		maxIter = defIter
	}
	return tol, maxIter
}

// RefResult is the outcome of Reference. X is owned by the caller.
type RefResult struct {
	Method    string // "newton" or "fista"
	X         []float64
	Phi       float64 // phi(X)
	NNZ       int     // nonzeros of X
	Iters     int     // Newton steps or FISTA iterations
	Evals     int     // full-data passes (FISTA: a loss with gradient counts one, a loss alone one; Newton: each A x and A^T r)
	Converged bool
	// MapNorm is FISTA's prox-gradient mapping norm, or Newton's
	// sqrt(K) (see RefOptions.Tol) at the last gradient.
	MapNorm float64
	// FISTA only.
	Restarts  int // momentum restarts
	L         float64
	RelChange float64
	// Newton only.
	InnerPasses int     // coordinate-descent passes over the active columns, in all
	RelDecrease float64 // -Delta / |phi| of the last Newton step
}

// Stuck describes a solve that did not converge, for error messages.
func (r RefResult) Stuck() string {
	if r.Method == "lbfgs" {
		return fmt.Sprintf("%d L-BFGS iterations, gradient norm %.3g", r.Iters, r.MapNorm)
	}
	if r.Method == "newton" {
		return fmt.Sprintf("%d Newton steps (%d coordinate-descent passes), the last predicting a relative decrease of %.3g", r.Iters, r.InnerPasses, r.RelDecrease)
	}
	return fmt.Sprintf("%d FISTA iterations, prox-gradient mapping norm %.3g, relative change of x %.3g", r.Iters, r.MapNorm, r.RelChange)
}

// Reference is ReferenceContext without cancellation.
func Reference(p *Problem, opt RefOptions) RefResult {
	res, _ := ReferenceContext(context.Background(), p, opt)
	return res
}

// ReferenceContext minimizes phi = f + Psi on the full data to high
// accuracy: with proximal Newton (proxNewton, below) for the separable
// regularizers (none, l1, l2, elastic, box, nonneg, l1box) and with FISTA
// (fista) for ball, group and simplex, or as opt.Method says. It returns
// ctx.Err() (and the iterate so far, Converged false) once ctx is done,
// checked at least every coordinate-descent pass or FISTA iteration.
//
// The proximal Newton method is newGLMNET (Yuan, Ho and Lin 2012, liblinear's
// -s 6): with Psi = (rho/2)||x||^2 + sum_j psi(x_j), psi(v) = lambda1 |v| +
// I_[lo,hi](v), and g = grad f(x) + rho x, each step minimizes the model
//
//	q(delta) = g.delta + 1/2 delta^T (A^T diag(l''(a_i.x)) A / n + (rho + 1e-12) I) delta + sum_j psi(x_j + delta_j)
//
// by coordinate descent (exact one-coordinate minimization, a clamped
// soft-threshold, over the columns of a column-major copy of A, in random
// order) on the coordinates not shrunk away (at a kink of psi with the
// gradient strictly inside its subdifferential), until a pass moves q by
// less than a tolerance that tightens with the predicted decrease, then
// takes x + t delta with the Armijo rule phi(x + t delta) - phi(x) <= 0.01 t
// Delta, Delta = g.delta + sum_j psi(x_j + delta_j) - psi(x_j), t = 1, 1/2,
// .... Coordinate descent minimizes each coordinate exactly, so the method
// does not care how the columns are scaled (the unscaled data sets whose
// Lipschitz constants reach 1e12 take as many steps as the scaled ones); the
// margins A x and the gradient A^T l' are computed with every core; the
// coordinate descent runs on one.
func ReferenceContext(ctx context.Context, p *Problem, opt RefOptions) (RefResult, error) {
	if p.mp != nil { // K classes: Newton's coordinate descent is for one weight vector
		if p.Reg.smoothReg() && opt.Method != RefFISTA {
			return referenceLBFGS(ctx, p, opt)
		}
		return fista(ctx, p, opt)
	}
	if opt.newton(p.Reg) {
		return proxNewton(ctx, p, opt)
	}
	return fista(ctx, p, opt)
}

// fista minimizes phi = f + Psi with FISTA (Beck and Teboulle 2009) on
// the full data:
//
//	z_k = prox_{Psi/L}(y_k - grad f(y_k) / L)
//	      with L doubled until f(z) <= f(y) + <grad f(y), z-y> + (L/2)||z-y||^2
//	t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2
//	y_{k+1} = z_k + ((t_k - 1) / t_{k+1}) (z_k - x_{k-1}),   x_k = z_k
//
// with the gradient-based adaptive restart of O'Donoghue and Candes (2015):
// when <y_k - z_k, z_k - x_{k-1}> > 0 the momentum is dropped (t = 1,
// y_{k+1} = x_k). After each accepted step L is lowered by 10% so that the
// step follows the local curvature (backtracking raises it again). The sufficient
// decrease test allows a slack of 1e-13 |f(y)| for rounding in the sums
// over n rows, which otherwise makes L explode once steps are ~1e-10.
// For the simplex the Euclidean projection is used (FISTA is Euclidean).
// The full gradient is computed in parallel by the Problem.
func fista(ctx context.Context, p *Problem, opt RefOptions) (RefResult, error) {
	tol, maxIter := opt.limits(100000)
	_, d := p.Dims()
	L := opt.L0
	if L == 0 {
		L = p.EstimateL(100, 1)
	}
	if !(L > 0) {
		L = 1
	}
	x := make([]float64, d)
	if opt.X0 != nil {
		copy(x, opt.X0)
		p.Reg.Prox(x, 1) // a feasible start
	} else {
		p.Reg.Init(x)
	}
	y := append([]float64(nil), x...)
	z := make([]float64, d)
	g := make([]float64, d)
	res := RefResult{Method: "fista"}
	t := 1.0
	phi := math.Inf(1)
	for k := 1; k <= maxIter; k++ {
		if ctx.Err() != nil {
			break
		}
		fy := p.Smooth(y, g)
		res.Evals++
		var fz, sq float64
		for {
			for i := range z {
				z[i] = y[i] - g[i]/L
			}
			p.Reg.Prox(z, 1/L)
			fz = p.Smooth(z, nil)
			res.Evals++
			var lin float64
			sq = 0
			for i := range z {
				dz := z[i] - y[i]
				lin += g[i] * dz
				sq += dz * dz
			}
			if fz <= fy+lin+0.5*L*sq+1e-13*math.Abs(fy) || math.IsNaN(fz) || L > 1e300 {
				break
			}
			L *= 2
		}
		res.MapNorm = L * math.Sqrt(sq)
		var change, nz, restart float64
		for i := range z {
			dx := z[i] - x[i]
			change += dx * dx
			nz += z[i] * z[i]
			restart += (y[i] - z[i]) * dx
		}
		res.RelChange = math.Sqrt(change) / math.Max(1, math.Sqrt(nz))
		phi = fz + p.Reg.Value(z)
		res.Iters = k
		if restart > 0 {
			res.Restarts++
			t = 1
			copy(x, z)
			copy(y, z)
		} else {
			tn := (1 + math.Sqrt(1+4*t*t)) / 2
			beta := (t - 1) / tn
			for i := range z {
				y[i] = z[i] + beta*(z[i]-x[i])
			}
			copy(x, z)
			t = tn
		}
		if opt.Progress != nil && !opt.Progress(k, phi) {
			break
		}
		if res.MapNorm <= tol && res.RelChange <= tol {
			res.Converged = true
			break
		}
		L *= refShrink
	}
	res.X, res.Phi, res.NNZ, res.L = x, phi, NNZ(x), L
	return res, ctx.Err()
}

// refShrink lowers the backtracking constant after each accepted step.
const refShrink = 0.9
