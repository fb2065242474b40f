package solver

import (
	"math"
)

// RefOptions tunes Reference. The zero value asks for the defaults.
type RefOptions struct {
	// Tol stops the solver once both the relative change of the iterate,
	// ||x_k - x_{k-1}|| / max(1, ||x_k||), and the norm of the
	// prox-gradient mapping at the extrapolated point,
	// L ||y_k - prox_{Psi/L}(y_k - grad f(y_k)/L)||, are at most Tol.
	// 0 means 1e-10.
	Tol float64
	// MaxIter caps the iterations (0 means 100000); hitting it returns the
	// last iterate with Converged false.
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

// RefResult is the outcome of Reference. X is owned by the caller.
type RefResult struct {
	X         []float64
	Phi       float64 // phi(X)
	NNZ       int     // nonzeros of X
	Iters     int
	Evals     int // full-data passes (a loss with gradient counts one, a loss alone one)
	Restarts  int // momentum restarts
	L         float64
	MapNorm   float64
	RelChange float64
	Converged bool
}

// Reference minimizes phi = f + Psi with FISTA (Beck and Teboulle 2009) on
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
func Reference(p *Problem, opt RefOptions) RefResult {
	tol := opt.Tol
	if tol == 0 {
		tol = 1e-10
	}
	maxIter := opt.MaxIter
	if maxIter == 0 {
		maxIter = 100000
	}
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
	res := RefResult{}
	t := 1.0
	phi := math.Inf(1)
	for k := 1; k <= maxIter; k++ {
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
	return res
}

// refShrink lowers the backtracking constant after each accepted step.
const refShrink = 0.9
