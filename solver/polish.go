package solver

import "math"

// SmoothFunc returns f(x) and writes grad f(x) into g (len d): the smooth
// part of the objective on the full data, however it is computed (on this
// process, or summed over the workers' shards). Problem.Smooth is one.
type SmoothFunc func(x, g []float64) float64

// PolishOptions tunes Polish. The zero value asks for the defaults.
type PolishOptions struct {
	// MaxIter caps the prox-gradient steps (0: DefaultPolishIters).
	MaxIter int
	// L0 is the first guess of the Lipschitz constant of grad f for the
	// backtracking (0 or not finite: the curvature along the gradient,
	// ||grad f(x0 - h g) - g|| / ||h g||, one more evaluation).
	L0 float64
	// Tol stops the steps once the support has not changed for
	// polishStable steps and the relative decrease of phi over the last
	// step is at most Tol (0: 1e-9).
	Tol float64
}

// DefaultPolishIters is Polish's default number of steps at most.
const DefaultPolishIters = 100

// polishStable is how many steps the support must stay the same before
// Polish may stop early.
const polishStable = 10

// PolishResult is Polish's outcome; X is owned by the caller.
type PolishResult struct {
	X         []float64
	Phi0, Phi float64 // phi at the start and at X (Phi <= Phi0)
	NNZ0, NNZ int     // nonzeros at the start and of X
	Iters     int     // prox-gradient steps
	Evals     int     // full-data evaluations (loss and gradient each)
	Restarts  int
	L         float64 // the backtracking constant at the end
	Converged bool    // stopped by Tol rather than MaxIter
}

// Polish takes accelerated proximal gradient steps on phi = f + reg from
// x0, the steps of Reference (FISTA with backtracking, L lowered by 10%
// after each step, and the gradient-based adaptive restart of O'Donoghue
// and Candes) with f given as a function:
//
//	z_k = prox_{reg/L}(y_k - grad f(y_k) / L),
//	      L doubled until f(z) <= f(y) + <grad f(y), z-y> + (L/2)||z-y||^2
//
// The soft-threshold of l1 zeroes every coordinate whose partial derivative
// is within lambda of 0 and whose value is within lambda/L of it: started
// at the dense average of a stochastic method, a few dozen to a hundred
// steps bring the model to about the optimum's support (on the testdata
// sets, from outputs at relative suboptimality 1e-3, 30-50 steps did as
// well as 100 plain ISTA steps; from mushrooms at 1e-1, 100 steps went from
// 109 nonzeros to 17 where 50 left 27). FISTA is not monotone: Polish
// returns the iterate of least phi, never worse than x0 (then X == x0's
// copy). x0 is only read.
func Polish(f SmoothFunc, reg Reg, x0 []float64, opt PolishOptions) PolishResult {
	maxIter := opt.MaxIter
	if maxIter <= 0 {
		maxIter = DefaultPolishIters
	}
	tol := opt.Tol
	if tol <= 0 {
		tol = 1e-9
	}
	L := opt.L0
	d := len(x0)
	x := append([]float64(nil), x0...)
	reg.Prox(x, 0) // feasible: the projection of the constrained kinds, identity for l1
	y := append([]float64(nil), x...)
	z := make([]float64, d)
	gy := make([]float64, d)
	gz := make([]float64, d)
	fy := f(y, gy)
	res := PolishResult{Evals: 1, NNZ0: NNZ(x0), Phi0: fy + reg.Value(x)}
	if !(L > 0) || math.IsInf(L, 0) {
		L = secantL(f, y, gy, z, gz)
		res.Evals++
	}
	best := append([]float64(nil), x...)
	bestPhi := res.Phi0
	t, stable := 1.0, 0
	for res.Iters < maxIter && !math.IsNaN(fy) && !math.IsInf(fy, 0) {
		var fz, sq float64
		for {
			for i := range z {
				z[i] = y[i] - gy[i]/L
			}
			reg.Prox(z, 1/L)
			fz = f(z, gz)
			res.Evals++
			var lin float64
			sq = 0
			for i := range z {
				dz := z[i] - y[i]
				lin += gy[i] * dz
				sq += dz * dz
			}
			if fz <= fy+lin+0.5*L*sq+1e-13*math.Abs(fy) || math.IsNaN(fz) || L > 1e300 {
				break
			}
			L *= 2
		}
		res.Iters++
		phiZ := fz + reg.Value(z)
		if math.IsNaN(phiZ) {
			break
		}
		same, restart := true, 0.0
		for i := range z {
			if (z[i] == 0) != (x[i] == 0) {
				same = false
			}
			restart += (y[i] - z[i]) * (z[i] - x[i])
		}
		if same {
			stable++
		} else {
			stable = 0
		}
		dec := (bestPhi - phiZ) / math.Max(math.Abs(phiZ), 1e-300)
		if phiZ <= bestPhi {
			copy(best, z)
			bestPhi = phiZ
		}
		if sq == 0 || (stable >= polishStable && dec <= tol) {
			res.Converged = true
			break
		}
		tn := (1 + math.Sqrt(1+4*t*t)) / 2
		beta := (t - 1) / tn
		if restart > 0 {
			res.Restarts++
			tn, beta = 1, 0
		}
		if beta == 0 {
			// No momentum: y = z, whose gradient is at hand.
			copy(y, z)
			fy = fz
			gy, gz = gz, gy
		} else {
			for i := range z {
				y[i] = z[i] + beta*(z[i]-x[i])
			}
			fy = f(y, gy)
			res.Evals++
		}
		copy(x, z)
		t = tn
		L *= refShrink
	}
	res.X, res.Phi, res.NNZ, res.L = best, bestPhi, NNZ(best), L
	return res
}

// secantL estimates the curvature of f at x along its gradient g,
// ||grad f(x - h g) - g|| / ||h g|| for a small h (z and gz are scratch),
// or returns 1 when that is not a positive number. Too small an estimate is
// raised by the backtracking; too large a one would only be lowered by 10%
// a step.
func secantL(f SmoothFunc, x, g, z, gz []float64) float64 {
	gn := math.Sqrt(sumSq(g))
	if !(gn > 0) || math.IsInf(gn, 0) {
		return 1
	}
	h := 1e-4 * math.Max(1, math.Sqrt(sumSq(x))) / gn
	for i := range z {
		z[i] = x[i] - h*g[i]
	}
	f(z, gz)
	var dg float64
	for i := range gz {
		dg += (gz[i] - g[i]) * (gz[i] - g[i])
	}
	L := math.Sqrt(dg) / (h * gn)
	if !(L > 0) || math.IsInf(L, 0) {
		return 1
	}
	return L
}
