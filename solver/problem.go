package solver

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/asyncmb/asyncmb/kernels"
)

// Problem is the composite objective
//
//	phi(x) = f(x) + Psi(x),   f(x) = (1/n) sum_i l(a_i.x, y_i)
//
// over the rows a_i of A, with l a kernels.Loss and Psi = Reg. There is no
// intercept: a bias is a constant-1 column (AppendBias), and it is then
// regularized like every other weight, as liblinear's -B does.
//
// A Problem only reads A and Y (the caller keeps them alive and unchanged).
// It owns the buffers of its full-data evaluator, so it is not safe for
// concurrent use: give each goroutine its own Problem (NewProblem is cheap)
// or serialize the calls to Smooth and Objective.
type Problem struct {
	A    kernels.Matrix
	Y    []float64
	Loss kernels.Loss
	Reg  Reg

	n, d int
	fg   *kernels.FullGrad
	mp   *multiPart // K-class problems only (NewMultiProblem); nil for one weight vector
}

// NewProblem checks the shapes, the labels (in {-1, +1} for a
// classification loss) and the regularizer's parameters, and prepares
// full-data evaluation on workers goroutines (< 1 means 1).
func NewProblem(a kernels.Matrix, y []float64, loss kernels.Loss, reg Reg, workers int) (*Problem, error) {
	if (a.CSR == nil) == (a.Dense == nil) {
		return nil, fmt.Errorf("solver: the problem needs exactly one of a CSR or a dense matrix")
	}
	n, d := a.Dims()
	if n == 0 || d == 0 {
		return nil, fmt.Errorf("solver: empty problem (%d rows, %d columns)", n, d)
	}
	if len(y) != n {
		return nil, fmt.Errorf("solver: %d labels for %d rows", len(y), n)
	}
	switch loss {
	case kernels.Logistic, kernels.Squared, kernels.SqHinge:
	default:
		return nil, fmt.Errorf("solver: unknown loss %v", loss)
	}
	for i, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("solver: label %d is %v", i, v)
		}
		if loss.Classification() && v != 1 && v != -1 {
			return nil, fmt.Errorf("solver: %v loss needs labels in {-1, +1}, row %d has %v", loss, i, v)
		}
	}
	if err := reg.Validate(d); err != nil {
		return nil, err
	}
	return &Problem{A: a, Y: y, Loss: loss, Reg: reg, n: n, d: d, fg: kernels.NewFullGrad(a, y, workers)}, nil
}

// Dims returns the number of rows n and the dimension d of x (features
// times classes for a K-class problem).
func (p *Problem) Dims() (n, d int) { return p.n, p.d }

// Smooth returns f(x) and, if g is not nil, writes grad f(x) into g (len d).
func (p *Problem) Smooth(x, g []float64) float64 {
	if p.mp != nil {
		return p.mp.fg.Eval(x, g)
	}
	return p.fg.Eval(p.Loss, x, g)
}

// Objective returns phi(x) = f(x) + Psi(x) (+Inf outside Psi's domain).
func (p *Problem) Objective(x []float64) float64 {
	return p.Smooth(x, nil) + p.Reg.Value(x)
}

// GradBatch writes the mini-batch gradient (1/b) sum_{i in rows} grad l_i(x)
// into g and returns the mini-batch loss (see kernels.GradBatchCSR).
func (p *Problem) GradBatch(rows []int, x, g []float64) float64 {
	if p.mp != nil {
		return kernels.MultiGradBatchCSR(p.mp.mc, p.A.CSR, p.Y, rows, x, g, p.mp.scratch)
	}
	if p.A.CSR != nil {
		return kernels.GradBatchCSR(p.Loss, p.A.CSR, p.Y, rows, x, g)
	}
	return kernels.GradBatchDense(p.Loss, p.A.Dense, p.Y, rows, x, g)
}

func (p *Problem) mulVec(x, dst []float64) {
	if p.A.CSR != nil {
		kernels.MulVecCSR(p.A.CSR, x, dst)
		return
	}
	kernels.MulVecDense(p.A.Dense, x, dst)
}

func (p *Problem) mulTransVec(r, dst []float64) {
	if p.A.CSR != nil {
		kernels.MulTransVecCSR(p.A.CSR, r, dst)
		return
	}
	kernels.MulTransVecDense(p.A.Dense, r, dst)
}

// EstimateL returns the Lipschitz constant of grad f,
//
//	L = c * lambda_max(A^T A / n),   c = Loss.Curvature() (1/4 for logistic),
//
// with lambda_max from at most iters steps of the power method from a
// random start (seeded; stopped when the Rayleigh quotient changes by less
// than 1e-9 relative). The power method approaches lambda_max from below, so
// this is an estimate, not a bound; the reference solver backtracks on it.
func (p *Problem) EstimateL(iters int, seed uint64) float64 {
	if p.mp != nil {
		return p.mp.mc.Curvature() * p.powerMethod(nil, iters, seed)
	}
	return p.Loss.Curvature() * p.powerMethod(nil, iters, seed)
}

// powerMethod estimates lambda_max(A^T A / n) (see EstimateL), or with a
// metric c (len columns, positive; nil: none) lambda_max of
// C^-1/2 (A^T A / n) C^-1/2.
func (p *Problem) powerMethod(c []float64, iters int, seed uint64) float64 {
	_, cols := p.A.Dims()
	rng := rand.New(rand.NewPCG(seed, 0x4c))
	v := make([]float64, cols)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	u := v // C^-1/2 v
	if c != nil {
		u = make([]float64, cols)
	}
	av := make([]float64, p.n)
	w := make([]float64, cols)
	scale(v, 1/math.Sqrt(sumSq(v)))
	var lam float64
	for k := 0; k < iters; k++ {
		if c != nil {
			for j := range u {
				u[j] = v[j] / math.Sqrt(c[j])
			}
		}
		p.mulVec(u, av)
		next := sumSq(av) / float64(p.n) // Rayleigh quotient v^T M v, ||v|| = 1
		p.mulTransVec(av, w)
		if c != nil {
			for j := range w {
				w[j] /= math.Sqrt(c[j])
			}
		}
		nw := math.Sqrt(sumSq(w))
		if nw == 0 {
			break
		}
		copy(v, w)
		scale(v, 1/nw)
		done := k > 0 && math.Abs(next-lam) <= 1e-9*next
		lam = next
		if done {
			break
		}
	}
	return lam
}

// EstimateSigma returns sigma, the square root of the per-sample gradient
// variance sigma^2 = E_i ||grad l_i(x0) - grad f(x0)||^2, estimated from
// batches mini-batches of size batch drawn uniformly with replacement (seeded):
// a batch gradient has variance sigma^2 / batch, so
//
//	sigma^2 ~ batch * mean_k ||g_{B_k}(x0) - grad f(x0)||^2.
func (p *Problem) EstimateSigma(x0 []float64, batch, batches int, seed uint64) float64 {
	if batch < 1 || batches < 1 || len(x0) != p.d {
		panic("solver: EstimateSigma bad arguments")
	}
	rng := rand.New(rand.NewPCG(seed, 0x5a))
	full := make([]float64, p.d)
	p.Smooth(x0, full)
	g := make([]float64, p.d)
	rows := make([]int, batch)
	var s float64
	for k := 0; k < batches; k++ {
		for j := range rows {
			rows[j] = rng.IntN(p.n)
		}
		p.GradBatch(rows, x0, g)
		for i := range g {
			e := g[i] - full[i]
			s += e * e
		}
	}
	return math.Sqrt(float64(batch) * s / float64(batches))
}

// AppendBias returns a new CSR matrix with a constant 1 appended to every
// row as column a.Cols (the intercept feature of --bias). a is not modified.
func AppendBias(a *kernels.CSR) *kernels.CSR {
	nnz := a.NNZ()
	b := &kernels.CSR{
		Rows:    a.Rows,
		Cols:    a.Cols + 1,
		Indptr:  make([]int64, a.Rows+1),
		Indices: make([]int32, 0, nnz+a.Rows),
		Data:    make([]float64, 0, nnz+a.Rows),
	}
	for i := 0; i < a.Rows; i++ {
		idx, val := a.Row(i)
		b.Indices = append(b.Indices, idx...)
		b.Indices = append(b.Indices, int32(a.Cols))
		b.Data = append(b.Data, val...)
		b.Data = append(b.Data, 1)
		b.Indptr[i+1] = int64(len(b.Indices))
	}
	return b
}

// NNZ counts the nonzero entries of x.
func NNZ(x []float64) int {
	n := 0
	for _, v := range x {
		if v != 0 {
			n++
		}
	}
	return n
}
