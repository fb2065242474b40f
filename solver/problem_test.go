package solver_test

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// TestEstimateL: the power method gives c * lambda_max(A^T A / n), checked
// against gonum's symmetric eigendecomposition on heart_scale and abalone.
func TestEstimateL(t *testing.T) {
	for _, name := range []string{"heart_scale", "abalone_scale"} {
		ds := loadData(t, name, false)
		n, d := ds.X.Rows, ds.X.Cols
		dense := ds.Dense()
		a := mat.NewDense(n, d, dense.Data)
		var ata mat.SymDense
		ata.SymOuterK(1/float64(n), a.T())
		var eig mat.EigenSym
		if !eig.Factorize(&ata, false) {
			t.Fatal("eigendecomposition failed")
		}
		vals := eig.Values(nil)
		want := vals[len(vals)-1]
		p, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Squared, solver.Reg{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.EstimateL(200, 3); math.Abs(got-want) > 1e-6*want {
			t.Errorf("%s: EstimateL=%.10g, lambda_max(A^T A/n)=%.10g", name, got, want)
		}
	}
}

// TestEstimateSigma: on a problem where every row's gradient is known, the
// estimate of sigma^2 = E||grad l_i - grad f||^2 is close to the exact value.
func TestEstimateSigma(t *testing.T) {
	ds := loadData(t, "heart_scale", true)
	p, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Logistic, solver.Reg{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	n, d := p.Dims()
	x0 := make([]float64, d)
	full := make([]float64, d)
	p.Smooth(x0, full)
	g := make([]float64, d)
	var s2 float64
	for i := 0; i < n; i++ {
		p.GradBatch([]int{i}, x0, g)
		for j := range g {
			s2 += (g[j] - full[j]) * (g[j] - full[j])
		}
	}
	want := math.Sqrt(s2 / float64(n))
	got := p.EstimateSigma(x0, 10, 400, 1)
	if math.Abs(got-want) > 0.1*want {
		t.Errorf("EstimateSigma=%g, exact %g", got, want)
	}
}

func TestAppendBiasAndProblemChecks(t *testing.T) {
	ds := loadData(t, "heart_scale", true)
	b := solver.AppendBias(&ds.X)
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	if b.Cols != ds.X.Cols+1 || b.NNZ() != ds.X.NNZ()+ds.X.Rows {
		t.Fatalf("bias matrix %dx%d nnz %d", b.Rows, b.Cols, b.NNZ())
	}
	for i := 0; i < b.Rows; i++ {
		idx, val := b.Row(i)
		if idx[len(idx)-1] != int32(ds.X.Cols) || val[len(val)-1] != 1 {
			t.Fatalf("row %d does not end with the bias feature", i)
		}
	}
	// phi(x) with a bias weight w equals phi without it at margins + w.
	p, err := solver.NewProblem(kernels.Matrix{CSR: b}, ds.Y, kernels.Logistic, solver.Reg{Kind: solver.RegL2, Lambda: 0.1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, b.Cols)
	x[b.Cols-1] = 0.7
	want := math.Log1p(math.Exp(-0.7))*float64(countPos(ds.Y))/float64(len(ds.Y)) +
		math.Log1p(math.Exp(0.7))*float64(len(ds.Y)-countPos(ds.Y))/float64(len(ds.Y)) + 0.05*0.49
	if got := p.Objective(x); math.Abs(got-want) > 1e-12 {
		t.Errorf("objective with only the bias: %.15g, want %.15g", got, want)
	}
	if _, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, make([]float64, ds.X.Rows), kernels.Logistic, solver.Reg{}, 1); err == nil {
		t.Error("logistic loss accepted labels 0")
	}
	if _, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Logistic, solver.Reg{Kind: solver.RegL1, Lambda: -1}, 1); err == nil {
		t.Error("negative lambda accepted")
	}
}

func countPos(y []float64) int {
	n := 0
	for _, v := range y {
		if v > 0 {
			n++
		}
	}
	return n
}
