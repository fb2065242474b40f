package ranks

import (
	"math"
	"math/rand/v2"
)

// lanczosMax estimates the largest eigenvalue of the symmetric positive
// semidefinite operator op on R^d (op(v, res) sets res = M v) with the
// Lanczos iteration: after k products the largest eigenvalue of the k x k
// tridiagonal matrix of the recurrence (a Ritz value, never above the true
// one in exact arithmetic) is the estimate; it stops when that moves by at
// most tol (relative) or after maxIter products.
//
// It replaced the power method, whose estimate after k products is the
// Rayleigh quotient of M^k v and converges with the ratio of the two
// largest eigenvalues: on issue 10's d = 1M data (a popularity-skewed
// spectrum with a small gap) the power method needed 84 rounds to move by
// less than 1e-4, 1.4% below its final value after 30; each round is a
// broadcast and a reduction of d floats and a pass over every shard, so
// at d = 16M the estimate alone took minutes. Lanczos converges as the
// square root of that ratio. Three vectors of d are kept (no
// reorthogonalisation: for the largest eigenvalue the lost orthogonality
// only repeats converged values).
func lanczosMax(d int, seed uint64, tol float64, maxIter int, op func(v, res []float64) error) (lambda float64, iters int, err error) {
	rng := rand.New(rand.NewPCG(seed, 77))
	v, prev, w := make([]float64, d), make([]float64, d), make([]float64, d)
	for j := range v {
		v[j] = rng.NormFloat64()
	}
	if normalize(v) == 0 {
		return 0, 0, nil
	}
	var alpha, beta []float64 // the tridiagonal matrix: diagonal, off-diagonal
	b := 0.0                  // beta of the previous step
	for k := 0; k < maxIter; k++ {
		if err := op(v, w); err != nil {
			return 0, k, err
		}
		a := 0.0
		for j, x := range v {
			a += x * w[j]
		}
		for j := range w {
			w[j] -= a*v[j] + b*prev[j]
		}
		alpha = append(alpha, a)
		next := tridiagMax(alpha, beta)
		done := k > 0 && math.Abs(next-lambda) <= tol*math.Abs(next)
		lambda = next
		b = normalize(w)
		if done || b <= 1e-12*math.Abs(lambda) {
			return lambda, k + 1, nil
		}
		beta = append(beta, b)
		prev, v, w = v, w, prev
	}
	return lambda, maxIter, nil
}

// tridiagMax is the largest eigenvalue of the symmetric tridiagonal matrix
// with diagonal a and off-diagonal b (len(b) >= len(a)-1; only the first
// len(a)-1 are used), by bisection on the Sturm count within the
// Gershgorin bounds, to about 1e-14 relative.
func tridiagMax(a, b []float64) float64 {
	n := len(a)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range n {
		r := 0.0
		if i > 0 {
			r += math.Abs(b[i-1])
		}
		if i < n-1 {
			r += math.Abs(b[i])
		}
		lo, hi = min(lo, a[i]-r), max(hi, a[i]+r)
	}
	// above(x): the number of eigenvalues greater than x.
	above := func(x float64) int {
		cnt, q := 0, 1.0
		for i := range n {
			off := 0.0
			if i > 0 {
				off = b[i-1] * b[i-1] / q
			}
			q = a[i] - x - off
			if q == 0 {
				q = -1e-300 * (1 + math.Abs(x))
			}
			if q > 0 {
				cnt++
			}
		}
		return cnt
	}
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi || hi-lo <= 1e-14*max(math.Abs(lo), math.Abs(hi)) {
			break
		}
		if above(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}
