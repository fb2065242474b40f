package kernels_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
)

// realSet is one testdata file, loaded once per test binary.
type realSet struct {
	name       string
	regression bool
	once       sync.Once
	ds         *data.Dataset
	err        error
}

var realSets = []*realSet{
	{name: "a9a"},
	{name: "rcv1_small"},
	{name: "abalone_scale", regression: true},
	{name: "heart_scale"},
}

func (s *realSet) load(tb testing.TB) *data.Dataset {
	tb.Helper()
	s.once.Do(func() {
		s.ds, s.err = data.Read(filepath.Join("..", "testdata", s.name), data.Options{})
		if s.err == nil && !s.regression {
			_, s.err = s.ds.ToBinary()
		}
	})
	if s.err != nil {
		tb.Fatalf("load %s: %v", s.name, s.err)
	}
	return s.ds
}

func realSetNamed(name string) *realSet {
	for _, s := range realSets {
		if s.name == name {
			return s
		}
	}
	panic("no test set " + name)
}

func randVec(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

func checkNear(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if j := kernels.NearSlice(got, want, tol); j >= 0 {
		if len(got) != len(want) {
			t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
		}
		t.Fatalf("%s[%d] = %.17g, want %.17g", name, j, got[j], want[j])
	}
}

func TestRealDataProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, s := range realSets {
		t.Run(s.name, func(t *testing.T) {
			ds := s.load(t)
			a := &ds.X
			if err := a.Check(); err != nil {
				t.Fatal(err)
			}
			x, r := randVec(rng, a.Cols, 1), randVec(rng, a.Rows, 1)
			wantAx, wantATr := kernels.RefMulVec(a, x, nil), kernels.RefMulTransVec(a, r, nil)
			got := make([]float64, a.Rows)
			kernels.MulVecCSR(a, x, got)
			checkNear(t, "MulVecCSR", got, wantAx, 1e-13)
			gotT := make([]float64, a.Cols)
			kernels.MulTransVecCSR(a, r, gotT)
			checkNear(t, "MulTransVecCSR", gotT, wantATr, 1e-13)
			for workers := 1; workers <= 8; workers++ {
				p := kernels.NewParMul(kernels.Matrix{CSR: a}, workers)
				clear(got)
				p.MulVec(x, got)
				checkNear(t, fmt.Sprintf("ParMul(%d).MulVec", workers), got, wantAx, 1e-13)
				p.MulTransVec(r, gotT)
				checkNear(t, fmt.Sprintf("ParMul(%d).MulTransVec", workers), gotT, wantATr, 1e-13)
			}
			if a.Rows*a.Cols > 1<<23 {
				return // rcv1_small is 1000 x 47117: too big to densify here
			}
			d := ds.Dense()
			kernels.MulVecDense(d, x, got)
			checkNear(t, "MulVecDense", got, wantAx, 1e-13)
			kernels.MulTransVecDense(d, r, gotT)
			checkNear(t, "MulTransVecDense", gotT, wantATr, 1e-13)
			for workers := 1; workers <= 4; workers++ {
				p := kernels.NewParMul(kernels.Matrix{Dense: d}, workers)
				p.MulVec(x, got)
				checkNear(t, fmt.Sprintf("dense ParMul(%d).MulVec", workers), got, wantAx, 1e-13)
				p.MulTransVec(r, gotT)
				checkNear(t, fmt.Sprintf("dense ParMul(%d).MulTransVec", workers), gotT, wantATr, 1e-13)
			}
		})
	}
}

// TestRealDataGradients checks the mini-batch gradients (dense output,
// sparse output, dense matrix) and the full gradient for 1..8 goroutines
// against the reference loop on every testdata file and every loss that fits
// its labels.
func TestRealDataGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, s := range realSets {
		ds := s.load(t)
		a := &ds.X
		var dense *kernels.Dense
		if a.Rows*a.Cols <= 1<<23 {
			dense = ds.Dense()
		}
		all := make([]int, a.Rows)
		for i := range all {
			all[i] = i
		}
		for _, l := range []kernels.Loss{kernels.Logistic, kernels.Squared, kernels.SqHinge} {
			if l.Classification() && s.regression {
				continue
			}
			t.Run(s.name+"/"+l.String(), func(t *testing.T) {
				x := randVec(rng, a.Cols, 0.2)
				acc := kernels.NewSparseAcc(a.Cols)
				var sv kernels.SparseVec
				g := make([]float64, a.Cols)
				for _, b := range []int{1, 64, 256} {
					rows := make([]int, b)
					for k := range rows {
						rows[k] = rng.IntN(a.Rows)
					}
					wantLoss, wantG := kernels.RefGrad(l, a, ds.Y, rows, x, nil)
					loss := kernels.GradBatchCSR(l, a, ds.Y, rows, x, g)
					checkNear(t, fmt.Sprintf("b=%d GradBatchCSR loss", b), []float64{loss}, []float64{wantLoss}, 1e-13)
					checkNear(t, fmt.Sprintf("b=%d GradBatchCSR", b), g, wantG, 1e-13)

					sloss := acc.GradBatchCSR(l, a, ds.Y, rows, x, &sv)
					if sloss != loss {
						t.Fatalf("b=%d SparseAcc loss %v, GradBatchCSR %v", b, sloss, loss)
					}
					scattered := make([]float64, a.Cols)
					for k, j := range sv.Idx {
						if k > 0 && sv.Idx[k-1] >= j {
							t.Fatalf("b=%d SparseAcc indices not increasing at %d", b, k)
						}
						scattered[j] = sv.Val[k]
					}
					if !slices.Equal(scattered, g) {
						t.Fatalf("b=%d SparseAcc gradient differs from GradBatchCSR", b)
					}

					if dense != nil {
						gd := make([]float64, a.Cols)
						dloss := kernels.GradBatchDense(l, dense, ds.Y, rows, x, gd)
						checkNear(t, fmt.Sprintf("b=%d GradBatchDense loss", b), []float64{dloss}, []float64{wantLoss}, 1e-13)
						checkNear(t, fmt.Sprintf("b=%d GradBatchDense", b), gd, wantG, 1e-13)
					}
				}

				wantLoss, wantG := kernels.RefGrad(l, a, ds.Y, all, x, nil)
				for workers := 1; workers <= 8; workers++ {
					ms := []kernels.Matrix{{CSR: a}}
					if dense != nil {
						ms = append(ms, kernels.Matrix{Dense: dense})
					}
					for _, m := range ms {
						name := fmt.Sprintf("FullGrad workers=%d dense=%v", workers, m.Dense != nil)
						loss := kernels.NewFullGrad(m, ds.Y, workers).Eval(l, x, g)
						checkNear(t, name+" loss", []float64{loss}, []float64{wantLoss}, 1e-12)
						checkNear(t, name, g, wantG, 1e-12)
					}
				}
			})
		}
	}
}

// TestRealDataFiniteDifference checks the a9a mini-batch gradient against
// central differences of the reference objective, coordinate by coordinate.
func TestRealDataFiniteDifference(t *testing.T) {
	ds := realSetNamed("a9a").load(t)
	a := &ds.X
	rng := rand.New(rand.NewPCG(35, 36))
	rows := make([]int, 64)
	for k := range rows {
		rows[k] = rng.IntN(a.Rows)
	}
	for _, l := range []kernels.Loss{kernels.Logistic, kernels.Squared, kernels.SqHinge} {
		x := randVec(rng, a.Cols, 0.05)
		g := make([]float64, a.Cols)
		kernels.GradBatchCSR(l, a, ds.Y, rows, x, g)
		const h = 1e-6
		for j := range x {
			xp, xm := slices.Clone(x), slices.Clone(x)
			xp[j] += h
			xm[j] -= h
			fp, _ := kernels.RefGrad(l, a, ds.Y, rows, xp, nil)
			fm, _ := kernels.RefGrad(l, a, ds.Y, rows, xm, nil)
			fd := (fp - fm) / (2 * h)
			if kernels.NearSlice([]float64{g[j]}, []float64{fd}, 1e-6) >= 0 {
				t.Errorf("%v: d/dx[%d] = %v, central difference %v", l, j, g[j], fd)
			}
		}
	}
}
