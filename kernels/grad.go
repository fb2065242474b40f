package kernels

import (
	"sync"
)

// MulVecCSR computes dst = A x:
//
//	for i := range dst { dst[i] = sum_k Data[k] * x[Indices[k]] over row i }
//
// len(x) must be a.Cols and len(dst) a.Rows.
func MulVecCSR(a *CSR, x, dst []float64) {
	if len(x) != a.Cols || len(dst) != a.Rows {
		panic("kernels: MulVecCSR shape mismatch")
	}
	for i := range dst {
		lo, hi := a.Indptr[i], a.Indptr[i+1]
		dst[i] = dotSparse(a.Indices[lo:hi], a.Data[lo:hi], x)
	}
}

// MulTransVecCSR computes dst = A^T r, overwriting dst:
//
//	dst[:] = 0; for each row i, for k in row i { dst[Indices[k]] += Data[k] * r[i] }
//
// len(r) must be a.Rows and len(dst) a.Cols.
func MulTransVecCSR(a *CSR, r, dst []float64) {
	if len(r) != a.Rows || len(dst) != a.Cols {
		panic("kernels: MulTransVecCSR shape mismatch")
	}
	clear(dst)
	for i, ri := range r {
		if ri == 0 {
			continue
		}
		lo, hi := a.Indptr[i], a.Indptr[i+1]
		axpySparse(ri, a.Indices[lo:hi], a.Data[lo:hi], dst)
	}
}

// MulVecDense computes dst = A x for a dense row-major A.
func MulVecDense(a *Dense, x, dst []float64) {
	if len(x) != a.Cols || len(dst) != a.Rows || len(a.Data) != a.Rows*a.Cols {
		panic("kernels: MulVecDense shape mismatch")
	}
	for i := range dst {
		dst[i] = dotDense(a.Data[i*a.Cols:(i+1)*a.Cols], x)
	}
}

// MulTransVecDense computes dst = A^T r for a dense row-major A, overwriting dst.
func MulTransVecDense(a *Dense, r, dst []float64) {
	if len(r) != a.Rows || len(dst) != a.Cols || len(a.Data) != a.Rows*a.Cols {
		panic("kernels: MulTransVecDense shape mismatch")
	}
	clear(dst)
	for i, ri := range r {
		if ri == 0 {
			continue
		}
		axpyDense(ri, a.Data[i*a.Cols:(i+1)*a.Cols], dst)
	}
}

// GradBatchCSR computes the mini-batch gradient over the given rows,
// overwriting g (len a.Cols):
//
//	g = (1/b) sum_{i in rows} l'(a_i.x, y_i) a_i
//
// and returns the mini-batch loss (1/b) sum_{i in rows} l(a_i.x, y_i).
// rows may repeat (sampling with replacement). It is O(d + nnz(batch)); use
// SparseAcc.GradBatchCSR when d is much larger than the batch's nonzeros.
func GradBatchCSR(l Loss, a *CSR, y []float64, rows []int, x, g []float64) float64 {
	if len(x) != a.Cols || len(g) != a.Cols || len(y) != a.Rows {
		panic("kernels: GradBatchCSR shape mismatch")
	}
	clear(g)
	if len(rows) == 0 {
		return 0
	}
	inv := 1 / float64(len(rows))
	var loss float64
	for _, i := range rows {
		lo, hi := a.Indptr[i], a.Indptr[i+1]
		idx, val := a.Indices[lo:hi], a.Data[lo:hi]
		m := dotSparse(idx, val, x)
		loss += l.Value(m, y[i])
		axpySparse(l.Deriv(m, y[i])*inv, idx, val, g)
	}
	return loss * inv
}

// GradBatchDense is GradBatchCSR for a dense row-major A.
func GradBatchDense(l Loss, a *Dense, y []float64, rows []int, x, g []float64) float64 {
	if len(x) != a.Cols || len(g) != a.Cols || len(y) != a.Rows || len(a.Data) != a.Rows*a.Cols {
		panic("kernels: GradBatchDense shape mismatch")
	}
	clear(g)
	if len(rows) == 0 {
		return 0
	}
	inv := 1 / float64(len(rows))
	var loss float64
	for _, i := range rows {
		row := a.Data[i*a.Cols : (i+1)*a.Cols]
		m := dotDense(row, x)
		loss += l.Value(m, y[i])
		axpyDense(l.Deriv(m, y[i])*inv, row, g)
	}
	return loss * inv
}

// SparseVec is a sparse vector: Val[k] is the entry at index Idx[k]. Idx is
// strictly increasing. The owner of the slices is whoever built the vector;
// kernels that fill a SparseVec reuse its capacity.
type SparseVec struct {
	Idx []int32
	Val []float64
}

// Len is the number of stored entries.
func (v *SparseVec) Len() int { return len(v.Idx) }

// SparseAcc accumulates mini-batch gradients of a d-dimensional model
// without touching all d entries: a dense scratch vector that is kept zero
// between calls, and the list of entries a call touched. A SparseAcc is not
// safe for concurrent use; give each goroutine its own.
type SparseAcc struct {
	scratch []float64
	seen    []bool
	touched []int32
}

// NewSparseAcc returns an accumulator for dimension d (it allocates O(d) once).
func NewSparseAcc(d int) *SparseAcc {
	return &SparseAcc{scratch: make([]float64, d), seen: make([]bool, d)}
}

// GradBatchCSR computes the same gradient and loss as the package-level
// GradBatchCSR but writes the gradient into out as a sparse vector (sorted
// indices, reusing out's capacity). Cost O(nnz(batch) log nnz(g)), not O(d).
func (s *SparseAcc) GradBatchCSR(l Loss, a *CSR, y []float64, rows []int, x []float64, out *SparseVec) float64 {
	if len(x) != a.Cols || len(s.scratch) != a.Cols || len(y) != a.Rows {
		panic("kernels: SparseAcc.GradBatchCSR shape mismatch")
	}
	out.Idx, out.Val = out.Idx[:0], out.Val[:0]
	if len(rows) == 0 {
		return 0
	}
	inv := 1 / float64(len(rows))
	var loss float64
	scratch, seen := s.scratch, s.seen
	for _, i := range rows {
		lo, hi := a.Indptr[i], a.Indptr[i+1]
		idx, val := a.Indices[lo:hi], a.Data[lo:hi]
		m := dotSparse(idx, val, x)
		loss += l.Value(m, y[i])
		c := l.Deriv(m, y[i]) * inv
		for k, j := range idx {
			if !seen[j] {
				seen[j] = true
				s.touched = append(s.touched, j)
			}
			scratch[j] += c * val[k]
		}
	}
	sortInt32(s.touched)
	for _, j := range s.touched {
		out.Idx = append(out.Idx, j)
		out.Val = append(out.Val, scratch[j])
		scratch[j] = 0
		seen[j] = false
	}
	s.touched = s.touched[:0]
	return loss * inv
}

// FullGrad evaluates the full-data smooth objective f(x) = (1/n) sum_i l(a_i.x, y_i)
// and its gradient with several goroutines. It owns per-goroutine buffers
// allocated once by NewFullGrad. A FullGrad is not safe for concurrent use
// (one Eval at a time); the matrix and labels are only read.
type FullGrad struct {
	m       Matrix
	y       []float64
	n, d    int
	workers int
	parts   []int       // row boundaries, len workers+1
	gbuf    [][]float64 // per-worker gradient accumulators (worker 0 writes g directly)
	lbuf    []float64
}

// NewFullGrad prepares full-data evaluation of matrix m with labels y on
// workers goroutines (workers < 1 means 1).
func NewFullGrad(m Matrix, y []float64, workers int) *FullGrad {
	n, d := m.Dims()
	if len(y) != n {
		panic("kernels: NewFullGrad len(y) != rows")
	}
	if workers < 1 {
		workers = 1
	}
	if workers > n && n > 0 {
		workers = n
	}
	f := &FullGrad{m: m, y: y, n: n, d: d, workers: workers}
	f.parts = make([]int, workers+1)
	nnz := m.NNZ()
	// Balance by nonzeros, not rows.
	for w := 1; w < workers; w++ {
		f.parts[w] = f.rowAtNNZ(int64(nnz) * int64(w) / int64(workers))
	}
	f.parts[workers] = n
	f.gbuf = make([][]float64, workers)
	for w := 1; w < workers; w++ {
		f.gbuf[w] = make([]float64, d)
	}
	f.lbuf = make([]float64, workers)
	return f
}

func (f *FullGrad) rowAtNNZ(target int64) int {
	if f.m.CSR == nil {
		return int(target / int64(max(f.d, 1)))
	}
	ip := f.m.CSR.Indptr
	lo, hi := 0, f.n
	for lo < hi {
		mid := (lo + hi) / 2
		if ip[mid] < target {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Eval returns f(x) and, if g is not nil, writes its gradient into g (len d).
func (f *FullGrad) Eval(l Loss, x, g []float64) float64 {
	if len(x) != f.d || (g != nil && len(g) != f.d) {
		panic("kernels: FullGrad.Eval shape mismatch")
	}
	if f.n == 0 {
		if g != nil {
			clear(g)
		}
		return 0
	}
	var wg sync.WaitGroup
	for w := 1; w < f.workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var gw []float64
			if g != nil {
				gw = f.gbuf[w]
			}
			f.lbuf[w] = f.evalRange(l, x, gw, f.parts[w], f.parts[w+1])
		}(w)
	}
	f.lbuf[0] = f.evalRange(l, x, g, f.parts[0], f.parts[1])
	wg.Wait()
	var loss float64
	for w := 0; w < f.workers; w++ {
		loss += f.lbuf[w]
	}
	inv := 1 / float64(f.n)
	if g != nil {
		for w := 1; w < f.workers; w++ {
			axpyDense(1, f.gbuf[w], g)
		}
		for j := range g {
			g[j] *= inv
		}
	}
	return loss * inv
}

// evalRange sums l over rows [lo,hi) and, if g != nil, overwrites g with
// sum l'(a_i.x, y_i) a_i over those rows (unscaled).
func (f *FullGrad) evalRange(l Loss, x, g []float64, lo, hi int) float64 {
	if g != nil {
		clear(g)
	}
	var loss float64
	y := f.y
	if a := f.m.CSR; a != nil {
		for i := lo; i < hi; i++ {
			s, e := a.Indptr[i], a.Indptr[i+1]
			idx, val := a.Indices[s:e], a.Data[s:e]
			m := dotSparse(idx, val, x)
			loss += l.Value(m, y[i])
			if g != nil {
				axpySparse(l.Deriv(m, y[i]), idx, val, g)
			}
		}
		return loss
	}
	a := f.m.Dense
	for i := lo; i < hi; i++ {
		row := a.Data[i*a.Cols : (i+1)*a.Cols]
		m := dotDense(row, x)
		loss += l.Value(m, y[i])
		if g != nil {
			axpyDense(l.Deriv(m, y[i]), row, g)
		}
	}
	return loss
}

// Margins writes dst[i] = a_i.x for every row (len(dst) == rows).
func (f *FullGrad) Margins(x, dst []float64) {
	if f.m.CSR != nil {
		MulVecCSR(f.m.CSR, x, dst)
		return
	}
	MulVecDense(f.m.Dense, x, dst)
}
