package kernels

import (
	"math/bits"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// MulVecCSR computes dst = A x on the calling goroutine:
//
//	for i := range dst { dst[i] = sum_k Data[k] * x[Indices[k]] over row i }
//
// len(x) must be a.Cols and len(dst) a.Rows. See ParMul for the parallel form.
func MulVecCSR(a *CSR, x, dst []float64) {
	if len(x) != a.Cols || len(dst) != a.Rows || len(a.Indptr) != a.Rows+1 {
		panic("kernels: MulVecCSR shape mismatch")
	}
	mulVecCSR(a, x, dst, 0, a.Rows)
}

// mulVecCSR writes dst[i] = a_i.x for rows [lo, hi). It walks the entries
// of the row block with one running index instead of slicing each row: a9a
// rows hold 14 entries, so per-row slicing and a call per row cost as much
// as the products themselves. The price is that the compiler keeps the
// bounds checks on val[k] and ind[k] (it cannot prove k >= 0); measured
// (interleaved min of 60 rounds) this loop still takes 0.55 ns per entry on
// a9a and rcv1_small against 0.71 and 0.61 for the per-row resliced loop
// that has none, and an unsafe pointer loop without any checks was no faster.
func mulVecCSR(a *CSR, x, dst []float64, lo, hi int) {
	ip, ind, val := a.Indptr[lo+1:hi+1], a.Indices, a.Data
	val = val[:len(ind)]
	dst = dst[lo:hi]
	dst = dst[:len(ip)]
	k := int(a.Indptr[lo])
	for i, e64 := range ip {
		e := min(int(e64), len(ind))
		var s0, s1, s2, s3 float64
		for ; k+3 < e; k += 4 {
			s0 += val[k] * x[ind[k]]
			s1 += val[k+1] * x[ind[k+1]]
			s2 += val[k+2] * x[ind[k+2]]
			s3 += val[k+3] * x[ind[k+3]]
		}
		for ; k < e; k++ {
			s0 += val[k] * x[ind[k]]
		}
		dst[i] = (s0 + s1) + (s2 + s3)
	}
}

// MulTransVecCSR computes dst = A^T r, overwriting dst, on the calling
// goroutine:
//
//	dst[:] = 0; for each row i, for k in row i { dst[Indices[k]] += Data[k] * r[i] }
//
// len(r) must be a.Rows and len(dst) a.Cols. See ParMul for the parallel form.
func MulTransVecCSR(a *CSR, r, dst []float64) {
	if len(r) != a.Rows || len(dst) != a.Cols || len(a.Indptr) != a.Rows+1 {
		panic("kernels: MulTransVecCSR shape mismatch")
	}
	clear(dst)
	mulTransVecCSRAdd(a, r, dst, 0, a.Rows)
}

// mulTransVecCSRAdd adds sum_{i in [lo,hi)} r[i] a_i to dst, walking the
// entries with one running index as mulVecCSR does.
func mulTransVecCSRAdd(a *CSR, r, dst []float64, lo, hi int) {
	ip, ind, val := a.Indptr[lo+1:hi+1], a.Indices, a.Data
	val = val[:len(ind)]
	r = r[lo:hi]
	r = r[:len(ip)]
	k := int(a.Indptr[lo])
	for i, e64 := range ip {
		e := min(int(e64), len(ind))
		ri := r[i]
		if ri == 0 {
			k = e
			continue
		}
		for ; k+3 < e; k += 4 {
			dst[ind[k]] += ri * val[k]
			dst[ind[k+1]] += ri * val[k+1]
			dst[ind[k+2]] += ri * val[k+2]
			dst[ind[k+3]] += ri * val[k+3]
		}
		for ; k < e; k++ {
			dst[ind[k]] += ri * val[k]
		}
	}
}

// MulVecDense computes dst = A x for a dense row-major A on the calling
// goroutine:
//
//	for i := range dst { dst[i] = sum_j A[i*Cols+j] * x[j] }
func MulVecDense(a *Dense, x, dst []float64) {
	if len(x) != a.Cols || len(dst) != a.Rows || len(a.Data) != a.Rows*a.Cols {
		panic("kernels: MulVecDense shape mismatch")
	}
	mulVecDense(a, x, dst, 0, a.Rows)
}

// denseGemvMaxBytes is the largest matrix block (in bytes) for which the
// dense products use gonum's Dgemv, whose assembly walks four rows at a time.
// That wins while the block sits in cache (256x1024: 0.14 ns per entry
// against 0.20 for one dot per row) and loses when it streams from memory
// (4096x1024: 0.43 against 0.32), where one row at a time suits the
// hardware prefetcher better. With the AVX2 kernels (GOEXPERIMENT=simd) one
// dot per row beats Dgemv at every size, so denseGemv is false there.
const denseGemvMaxBytes = 4 << 20

// block returns rows [lo, hi) of a as a gonum matrix.
func (a *Dense) block(lo, hi int) blas64.General {
	return blas64.General{Rows: hi - lo, Cols: a.Cols, Stride: a.Cols, Data: a.Data[lo*a.Cols : hi*a.Cols]}
}

// mulVecDense writes dst[i] = a_i.x for rows [lo, hi).
func mulVecDense(a *Dense, x, dst []float64, lo, hi int) {
	c := a.Cols
	if c == 0 || hi <= lo {
		clear(dst[lo:hi])
		return
	}
	if denseGemv && (hi-lo)*c*8 <= denseGemvMaxBytes {
		blas64.Gemv(blas.NoTrans, 1, a.block(lo, hi), vec(x), 0, vec(dst[lo:hi]))
		return
	}
	x = x[:c]
	for i := lo; i < hi; i++ {
		dst[i] = dotDense(a.Data[i*c:(i+1)*c], x)
	}
}

// vec wraps a contiguous slice as a gonum vector.
func vec(x []float64) blas64.Vector { return blas64.Vector{N: len(x), Inc: 1, Data: x} }

// MulTransVecDense computes dst = A^T r for a dense row-major A, overwriting
// dst, on the calling goroutine:
//
//	dst[:] = 0; for i, ri := range r { for j := range dst { dst[j] += ri * A[i*Cols+j] } }
func MulTransVecDense(a *Dense, r, dst []float64) {
	if len(r) != a.Rows || len(dst) != a.Cols || len(a.Data) != a.Rows*a.Cols {
		panic("kernels: MulTransVecDense shape mismatch")
	}
	clear(dst)
	mulTransVecDenseAdd(a, r, dst, 0, a.Rows)
}

// mulTransVecDenseAdd adds sum_{i in [lo,hi)} r[i] a_i to dst.
func mulTransVecDenseAdd(a *Dense, r, dst []float64, lo, hi int) {
	c := a.Cols
	if c == 0 || hi <= lo {
		return
	}
	if denseGemv && (hi-lo)*c*8 <= denseGemvMaxBytes {
		blas64.Gemv(blas.Trans, 1, a.block(lo, hi), vec(r[lo:hi]), 1, vec(dst[:c]))
		return
	}
	for i := lo; i < hi; i++ {
		if ri := r[i]; ri != 0 {
			axpyDense(ri, a.Data[i*c:(i+1)*c], dst[:c])
		}
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
// Each row is read once: its margin, loss and derivative are computed and the
// row is added to g while it is still in cache.
func GradBatchCSR(l Loss, a *CSR, y []float64, rows []int, x, g []float64) float64 {
	if len(x) != a.Cols || len(g) != a.Cols || len(y) != a.Rows || len(a.Indptr) != a.Rows+1 {
		panic("kernels: GradBatchCSR shape mismatch")
	}
	clear(g)
	if len(rows) == 0 {
		return 0
	}
	inv := 1 / float64(len(rows))
	var loss float64
	ip, ind, val := a.Indptr, a.Indices, a.Data
	for _, i := range rows {
		s, e := ip[i], ip[i+1]
		idx, v := ind[s:e], val[s:e]
		li, di := l.ValueDeriv(dotSparse(idx, v, x), y[i])
		loss += li
		if di != 0 {
			axpySparse(di*inv, idx, v, g)
		}
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
	c := a.Cols
	for _, i := range rows {
		row := a.Data[i*c : (i+1)*c]
		li, di := l.ValueDeriv(dotDense(row, x), y[i])
		loss += li
		if di != 0 {
			axpyDense(di*inv, row, g)
		}
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
// without touching all d entries: a dense scratch vector and a bitmap of the
// entries in use, both kept zero between calls, and the list of entries a
// call touched. A SparseAcc is not safe for concurrent use; give each
// goroutine its own.
type SparseAcc struct {
	scratch []float64
	seen    []uint64 // bit j%64 of word j/64 is set while scratch[j] is in use
	touched []int32
}

// NewSparseAcc returns an accumulator for dimension d (it allocates O(d) once).
func NewSparseAcc(d int) *SparseAcc {
	return &SparseAcc{scratch: make([]float64, d), seen: make([]uint64, (d+63)/64)}
}

// GradBatchCSR computes the same gradient and loss as the package-level
// GradBatchCSR but writes the gradient into out as a sparse vector (sorted
// indices, reusing out's capacity; an entry whose terms cancel to exactly
// zero is still listed). It never does O(d) float work: with t the batch's
// stored entries it costs O(t) plus either a sweep of the d/64-word bitmap
// (when d/64 <= t log t) or a sort of the touched indices.
func (s *SparseAcc) GradBatchCSR(l Loss, a *CSR, y []float64, rows []int, x []float64, out *SparseVec) float64 {
	if len(x) != a.Cols || len(s.scratch) != a.Cols || len(y) != a.Rows || len(a.Indptr) != a.Rows+1 {
		panic("kernels: SparseAcc.GradBatchCSR shape mismatch")
	}
	out.Idx, out.Val = out.Idx[:0], out.Val[:0]
	if len(rows) == 0 {
		return 0
	}
	ip := a.Indptr
	var nnz int64
	for _, i := range rows {
		nnz += ip[i+1] - ip[i]
	}
	if int64(len(s.seen)) <= nnz*int64(bits.Len64(uint64(nnz))) {
		return s.gradSweep(l, a, y, rows, x, out)
	}
	return s.gradSort(l, a, y, rows, x, out)
}

// gradSweep accumulates into scratch, marks each entry in the bitmap with an
// unconditional OR (no branch, no list), then sweeps the bitmap, which yields
// the indices in order and clears itself.
func (s *SparseAcc) gradSweep(l Loss, a *CSR, y []float64, rows []int, x []float64, out *SparseVec) float64 {
	inv := 1 / float64(len(rows))
	var loss float64
	scratch, seen := s.scratch, s.seen
	ip, ind, val := a.Indptr, a.Indices, a.Data
	for _, i := range rows {
		lo, hi := ip[i], ip[i+1]
		idx, v := ind[lo:hi], val[lo:hi]
		li, di := l.ValueDeriv(dotSparse(idx, v, x), y[i])
		loss += li
		c := di * inv
		v = v[:len(idx)]
		for k, j := range idx {
			scratch[j] += c * v[k]
			seen[j>>6] |= 1 << (uint(j) & 63)
		}
	}
	t := 0
	for _, word := range seen {
		t += bits.OnesCount64(word)
	}
	out.Idx, out.Val = grow(out.Idx, t), growF(out.Val, t)
	oi, ov := out.Idx[:t], out.Val[:t]
	n := 0
	for w, word := range seen {
		if word == 0 {
			continue
		}
		seen[w] = 0
		for word != 0 {
			j := int32(w<<6 | bits.TrailingZeros64(word))
			word &= word - 1
			oi[n], ov[n] = j, scratch[j]
			scratch[j] = 0
			n++
		}
	}
	return loss * inv
}

// gradSort is for a tiny batch in a huge dimension: it lists each entry the
// first time the bitmap shows it, then sorts the list.
func (s *SparseAcc) gradSort(l Loss, a *CSR, y []float64, rows []int, x []float64, out *SparseVec) float64 {
	inv := 1 / float64(len(rows))
	var loss float64
	scratch, seen, touched := s.scratch, s.seen, s.touched[:0]
	ip, ind, val := a.Indptr, a.Indices, a.Data
	for _, i := range rows {
		lo, hi := ip[i], ip[i+1]
		idx, v := ind[lo:hi], val[lo:hi]
		li, di := l.ValueDeriv(dotSparse(idx, v, x), y[i])
		loss += li
		c := di * inv
		v = v[:len(idx)]
		for k, j := range idx {
			w, bit := j>>6, uint64(1)<<(uint(j)&63)
			if seen[w]&bit == 0 {
				seen[w] |= bit
				touched = append(touched, j)
			}
			scratch[j] += c * v[k]
		}
	}
	sortInt32(touched)
	t := len(touched)
	out.Idx, out.Val = grow(out.Idx, t), growF(out.Val, t)
	oi, ov := out.Idx[:t], out.Val[:t]
	for k, j := range touched {
		oi[k], ov[k] = j, scratch[j]
		scratch[j] = 0
		seen[j>>6] = 0
	}
	s.touched = touched[:0]
	return loss * inv
}

// grow returns s resliced to length n, reallocating only if cap(s) < n.
func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func growF(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// FullGrad evaluates the full-data smooth objective f(x) = (1/n) sum_i l(a_i.x, y_i)
// and its gradient with several goroutines. It owns per-goroutine buffers
// and one float64 per row, allocated once by NewFullGrad. A FullGrad is not safe for concurrent use
// (one Eval at a time); the matrix and labels are only read.
type FullGrad struct {
	m       Matrix
	y       []float64
	n, d    int
	workers int
	parts   []int       // row boundaries, len workers+1, balanced by nonzeros
	cols    []int       // column boundaries for the reduction, len workers+1
	gbuf    [][]float64 // per-worker gradient accumulators (worker 0 writes g directly)
	lbuf    []float64
	rbuf    []float64 // margins, then derivatives, per row; worker w uses rows parts[w]..parts[w+1]
}

// NewFullGrad prepares full-data evaluation of matrix m with labels y on
// workers goroutines (workers < 1 means 1).
func NewFullGrad(m Matrix, y []float64, workers int) *FullGrad {
	n, d := m.Dims()
	if len(y) != n {
		panic("kernels: NewFullGrad len(y) != rows")
	}
	workers = clampWorkers(workers, n)
	f := &FullGrad{m: m, y: y, n: n, d: d, workers: workers}
	f.parts = rowParts(m, workers)
	f.cols = evenParts(d, workers)
	f.gbuf = make([][]float64, workers)
	for w := 1; w < workers; w++ {
		f.gbuf[w] = make([]float64, d)
	}
	f.lbuf = make([]float64, workers)
	f.rbuf = make([]float64, n)
	return f
}

// Workers is the number of goroutines Eval uses.
func (f *FullGrad) Workers() int { return f.workers }

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
	return fanOut(f.workers, f.n, f.cols, f.lbuf, f.gbuf, g, func(w int, gw []float64) float64 {
		return f.evalRange(l, x, gw, f.parts[w], f.parts[w+1])
	})
}

// fanOut runs eval for parts 1..workers-1 in goroutines (part w writes its
// unscaled gradient into gbuf[w]) and part 0 in the caller (into g), then
// returns the mean loss over n rows and, if g is not nil, leaves in g the
// mean gradient (the parts summed by reduceScale over the column ranges cols). It
// is the one parallel skeleton of FullGrad and MultiFullGrad.
func fanOut(workers, n int, cols []int, lbuf []float64, gbuf [][]float64, g []float64, eval func(w int, gw []float64) float64) float64 {
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var gw []float64
			if g != nil {
				gw = gbuf[w]
			}
			lbuf[w] = eval(w, gw)
		}(w)
	}
	lbuf[0] = eval(0, g)
	wg.Wait()
	var loss float64
	for w := 0; w < workers; w++ {
		loss += lbuf[w]
	}
	inv := 1 / float64(n)
	if g != nil {
		reduceScale(g, gbuf[1:], inv, cols)
	}
	return loss * inv
}

// evalRange sums l over rows [lo,hi) and, if g != nil, overwrites g with
// sum l'(a_i.x, y_i) a_i over those rows (unscaled). It makes three passes:
// the margins with the fast row sweep, the losses and derivatives over the
// contiguous margins, and the transposed sweep. Measured on a9a (logistic)
// that is 1.6 ms against 4.5 ms for one fused pass per row: the loss (exp
// and log1p, about 30 ns a row) no longer sits between a row's dot product
// and its update, so branch mispredictions in it do not flush row work.
func (f *FullGrad) evalRange(l Loss, x, g []float64, lo, hi int) float64 {
	r := f.rbuf[lo:hi]
	mulVecRange(f.m, x, f.rbuf, lo, hi)
	var loss float64
	y := f.y[lo:hi]
	y = y[:len(r)]
	for i, m := range r {
		li, di := l.ValueDeriv(m, y[i])
		loss += li
		r[i] = di
	}
	if g != nil {
		clear(g)
		mulTransVecAdd(f.m, f.rbuf, g, lo, hi)
	}
	return loss
}

// Margins writes dst[i] = a_i.x for every row (len(dst) == rows), using the
// FullGrad's goroutines.
func (f *FullGrad) Margins(x, dst []float64) {
	if len(x) != f.d || len(dst) != f.n {
		panic("kernels: FullGrad.Margins shape mismatch")
	}
	parallel(f.workers, func(w int) { mulVecRange(f.m, x, dst, f.parts[w], f.parts[w+1]) })
}
