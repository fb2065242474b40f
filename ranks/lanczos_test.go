package ranks

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestLanczosMax: the estimate matches the largest eigenvalue from
// gonum's dense symmetric solver on Gram matrices A^T A of random sparse A,
// among them spectra with a small gap at the top, where it takes far
// fewer products than the power method it replaced needs to stop.
func TestLanczosMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name    string
		n, d    int
		gap     float64 // the second singular value of A over the first
		density float64
	}{
		{"random", 60, 40, 0, 0.2},
		{"small gap", 80, 60, 0.995, 0.3},
		{"tiny gap", 120, 100, 0.999, 0.5},
		{"one column", 10, 1, 0, 1},
	} {
		a := mat.NewDense(tc.n, tc.d, nil)
		for i := range tc.n {
			for j := range tc.d {
				if rng.Float64() < tc.density {
					a.Set(i, j, rng.NormFloat64())
				}
			}
		}
		if tc.gap > 0 { // set the singular values: 1, gap, then decaying
			var svd mat.SVD
			if !svd.Factorize(a, mat.SVDThin) {
				t.Fatal("svd")
			}
			var u, v mat.Dense
			svd.UTo(&u)
			svd.VTo(&v)
			s := make([]float64, tc.d)
			for k := range s {
				s[k] = math.Pow(tc.gap, float64(k)) * 10 / (1 + float64(k*k)/20)
			}
			a.Mul(&u, mat.NewDiagDense(tc.d, s))
			a.Mul(a, v.T())
		}
		var g mat.SymDense
		g.SymOuterK(1, a.T())
		var eig mat.EigenSym
		if !eig.Factorize(&g, false) {
			t.Fatal("eigen")
		}
		vals := eig.Values(nil)
		want := vals[len(vals)-1]
		op := func(v, res []float64) error {
			res2 := mat.NewVecDense(tc.d, res)
			res2.MulVec(&g, mat.NewVecDense(tc.d, v))
			return nil
		}
		got, iters, err := lanczosMax(tc.d, 1, powerTol, powerIters, op)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > powerTol*want || got > want*(1+1e-12) {
			t.Errorf("%s: lanczos %.12g after %d products, eigenvalue %.12g", tc.name, got, iters, want)
		}
		// The power method (as before lanczosMax) on the same operator.
		v := make([]float64, tc.d)
		prng := rand.New(rand.NewPCG(1, 77))
		for j := range v {
			v[j] = prng.NormFloat64()
		}
		normalize(v)
		res := make([]float64, tc.d)
		lambda, pit := 0.0, 0
		for pit < powerIters {
			op(v, res)
			copy(v, res)
			next := normalize(v)
			pit++
			done := math.Abs(next-lambda) <= powerTol*next
			lambda = next
			if done {
				break
			}
		}
		t.Logf("%s: eigenvalue %.10g; lanczos %.10g in %d products; power %.10g in %d", tc.name, want, got, iters, lambda, pit)
		if tc.d > 1 && !(iters < pit && math.Abs(got-want) < math.Abs(lambda-want)) {
			t.Errorf("%s: lanczos %d products (error %.2g), power %d (error %.2g): want fewer and closer", tc.name, iters, got-want, pit, lambda-want)
		}
	}
}

// TestTridiagMax: the bisection's largest eigenvalue of small symmetric
// tridiagonal matrices against gonum's.
func TestTridiagMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 30; n++ {
		a, b := make([]float64, n), make([]float64, n)
		m := mat.NewSymDense(n, nil)
		for i := range n {
			a[i] = rng.NormFloat64() * 3
			m.SetSym(i, i, a[i])
			if i+1 < n {
				b[i] = rng.NormFloat64()
				if n%5 == 0 {
					b[i] = 0 // a reducible matrix
				}
				m.SetSym(i, i+1, b[i])
			}
		}
		var eig mat.EigenSym
		if !eig.Factorize(m, false) {
			t.Fatal("eigen")
		}
		vals := eig.Values(nil)
		want := vals[n-1]
		if got := tridiagMax(a, b); math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
			t.Errorf("n=%d: %.15g, want %.15g", n, got, want)
		}
	}
}
