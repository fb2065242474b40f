package kernels

import (
	"fmt"
	"math"
)

// Multi is a K-class linear model's loss. The model is W, d x K, stored as
// one flat vector x of length d*K, row-major by feature: W[j][c] = x[j*K+c],
// so feature j's K weights are contiguous. Row i of A gives the K margins
//
//	m_c = sum_j a_ij W[j][c],   c = 0..K-1,
//
// and its class y_i in {0, ..., K-1} (a float64 holding the index). The loss
// of the row is
//
//	softmax (OVR false): log sum_c exp(m_c) - m_{y_i}
//	one-vs-rest (OVR):   sum_c log(1 + exp(-s_c m_c)),  s_c = +1 if c == y_i else -1
//
// (the second is K independent binary logistic problems sharing A). A
// mini-batch gradient is sparse in the rows of W (the batch's features) and
// dense in its columns.
type Multi struct {
	K   int  // classes, >= 2
	OVR bool // one-vs-rest instead of the multinomial (softmax) loss
}

func (mc Multi) String() string {
	if mc.OVR {
		return fmt.Sprintf("ovr-logistic(K=%d)", mc.K)
	}
	return fmt.Sprintf("softmax(K=%d)", mc.K)
}

// Curvature bounds the largest eigenvalue of the Hessian of one row's loss
// in its K margins: 1/2 for the softmax (diag(p) - p p^T <= (1/2) I,
// Bohning's bound), 1/4 for one-vs-rest.
// So L = Curvature * lambda_max(A^T A / n) bounds grad f's Lipschitz constant.
func (mc Multi) Curvature() float64 {
	if mc.OVR {
		return 0.25
	}
	return 0.5
}

// ValueDeriv returns one row's loss from its margins m (len K) and class y,
// and writes the derivatives dl/dm_c into dm (len K). The softmax is
// evaluated with the largest margin shifted to 0 (log-sum-exp), so it is
// finite for any finite margins. m and dm may not alias.
//
//	mx = max_c m_c,  s = sum_c exp(m_c - mx)
//	l = mx + log(s) - m_y,   dm_c = exp(m_c - mx)/s - [c == y]
func (mc Multi) ValueDeriv(m []float64, y int, dm []float64) float64 {
	k := mc.K
	m, dm = m[:k], dm[:k]
	if mc.OVR {
		var l float64
		for c, v := range m {
			s := -1.0
			if c == y {
				s = 1
			}
			lc, dc := Logistic.ValueDeriv(v, s)
			l += lc
			dm[c] = dc
		}
		return l
	}
	mx := m[0]
	for _, v := range m[1:] {
		mx = math.Max(mx, v)
	}
	var s float64
	for c, v := range m {
		e := math.Exp(v - mx)
		dm[c] = e
		s += e
	}
	inv := 1 / s
	for c := range dm {
		dm[c] *= inv
	}
	dm[y] -= 1
	return mx + math.Log(s) - m[y]
}

// MultiMarginsRow writes the K margins of the sparse row (idx, val) at the
// flat W x into m:
//
//	for c := range m { m[c] = 0 }
//	for k, j := range idx { for c := range m { m[c] += val[k] * x[int(j)*K+c] } }
func MultiMarginsRow(k int, idx []int32, val, x, m []float64) {
	m = m[:k]
	clear(m)
	val = val[:len(idx)]
	for t, j := range idx {
		v := val[t]
		w := x[int(j)*k : int(j)*k+k]
		for c := range m {
			m[c] += v * w[c]
		}
	}
}

// multiAddRow adds alpha * val ⊗ dm to the rows idx of the flat g:
//
//	for k, j := range idx { for c := range dm { g[j*K+c] += alpha * val[k] * dm[c] } }
func multiAddRow(k int, alpha float64, idx []int32, val, dm, g []float64) {
	dm = dm[:k]
	val = val[:len(idx)]
	for t, j := range idx {
		v := alpha * val[t]
		w := g[int(j)*k : int(j)*k+k]
		for c, dc := range dm {
			w[c] += v * dc
		}
	}
}

// class returns y as a class index of mc, panicking if it is not one.
func (mc Multi) class(y float64) int {
	c := int(y)
	if float64(c) != y || c < 0 || c >= mc.K {
		panic("kernels: multiclass label is not a class index in [0, K)")
	}
	return c
}

// MultiGradBatchCSR writes the mini-batch gradient of the K-class loss mc
// into the flat g (len a.Cols*K),
//
//	g = (1/b) sum_{i in rows} a_i ⊗ dl_i/dm,
//
// and returns the mini-batch loss (1/b) sum_{i in rows} l_i. y holds class
// indices; scratch has length at least 2K (margins and derivatives). rows
// may repeat. It is O(d K + K nnz(batch)); use MultiSparseAcc when d is much
// larger than the batch's nonzeros.
func MultiGradBatchCSR(mc Multi, a *CSR, y []float64, rows []int, x, g, scratch []float64) float64 {
	k := mc.K
	if k < 2 || len(x) != a.Cols*k || len(g) != a.Cols*k || len(y) != a.Rows || len(a.Indptr) != a.Rows+1 || len(scratch) < 2*k {
		panic("kernels: MultiGradBatchCSR shape mismatch")
	}
	clear(g)
	if len(rows) == 0 {
		return 0
	}
	m, dm := scratch[:k], scratch[k:2*k]
	inv := 1 / float64(len(rows))
	var loss float64
	ip, ind, val := a.Indptr, a.Indices, a.Data
	for _, i := range rows {
		s, e := ip[i], ip[i+1]
		idx, v := ind[s:e], val[s:e]
		MultiMarginsRow(k, idx, v, x, m)
		loss += mc.ValueDeriv(m, mc.class(y[i]), dm)
		multiAddRow(k, inv, idx, v, dm, g)
	}
	return loss * inv
}

// MultiSparseAcc accumulates K-class mini-batch gradients without touching
// all d*K entries: a dense scratch W kept zero between calls and a bitmap
// of the features in use. It is not safe for concurrent use.
type MultiSparseAcc struct {
	k       int
	scratch []float64 // d*K
	seen    []uint64  // bit j%64 of word j/64: feature j in use
	touched []int32
	m, dm   []float64
}

// NewMultiSparseAcc returns an accumulator for d features and K classes
// (it allocates O(d K) once).
func NewMultiSparseAcc(d, k int) *MultiSparseAcc {
	return &MultiSparseAcc{k: k, scratch: make([]float64, d*k), seen: make([]uint64, (d+63)/64),
		m: make([]float64, k), dm: make([]float64, k)}
}

// GradBatchCSR computes MultiGradBatchCSR's gradient and loss but writes the
// gradient into out as a sparse flat vector: for each feature j the batch
// touches, in increasing order, the K entries j*K .. j*K+K-1 (so out.Idx is
// strictly increasing; entries that are exactly zero are still listed).
func (s *MultiSparseAcc) GradBatchCSR(mc Multi, a *CSR, y []float64, rows []int, x []float64, out *SparseVec) float64 {
	k := s.k
	if mc.K != k || len(x) != a.Cols*k || len(s.scratch) != a.Cols*k || len(y) != a.Rows || len(a.Indptr) != a.Rows+1 {
		panic("kernels: MultiSparseAcc.GradBatchCSR shape mismatch")
	}
	out.Idx, out.Val = out.Idx[:0], out.Val[:0]
	if len(rows) == 0 {
		return 0
	}
	inv := 1 / float64(len(rows))
	var loss float64
	scratch, seen, touched := s.scratch, s.seen, s.touched[:0]
	ip, ind, val := a.Indptr, a.Indices, a.Data
	for _, i := range rows {
		lo, hi := ip[i], ip[i+1]
		idx, v := ind[lo:hi], val[lo:hi]
		MultiMarginsRow(k, idx, v, x, s.m)
		loss += mc.ValueDeriv(s.m, mc.class(y[i]), s.dm)
		multiAddRow(k, inv, idx, v, s.dm, scratch)
		for _, j := range idx {
			w, bit := j>>6, uint64(1)<<(uint(j)&63)
			if seen[w]&bit == 0 {
				seen[w] |= bit
				touched = append(touched, j)
			}
		}
	}
	sortInt32(touched)
	t := len(touched) * k
	out.Idx, out.Val = grow(out.Idx, t), growF(out.Val, t)
	oi, ov := out.Idx[:t], out.Val[:t]
	n := 0
	for _, j := range touched {
		base := int(j) * k
		row := scratch[base : base+k]
		for c := range row {
			oi[n], ov[n] = int32(base+c), row[c]
			n++
		}
		clear(row)
		seen[j>>6] = 0
	}
	s.touched = touched[:0]
	return loss * inv
}

// MultiFullGrad evaluates the full-data K-class objective
// f(W) = (1/n) sum_i l_i(W) and its gradient on several goroutines. It owns
// per-goroutine buffers allocated once; it is not safe for concurrent use
// (one Eval at a time). The matrix and labels are only read.
type MultiFullGrad struct {
	mc      Multi
	a       *CSR
	y       []float64
	workers int
	parts   []int
	cols    []int
	gbuf    [][]float64
	lbuf    []float64
	sbuf    [][]float64 // per worker: margins and derivatives (2K)
}

// NewMultiFullGrad prepares full-data evaluation of a with class indices y
// (checked here: each must be an integer in [0, K)) on workers goroutines.
func NewMultiFullGrad(mc Multi, a *CSR, y []float64, workers int) (*MultiFullGrad, error) {
	if mc.K < 2 {
		return nil, fmt.Errorf("kernels: %d classes, want at least 2", mc.K)
	}
	if len(y) != a.Rows {
		return nil, fmt.Errorf("kernels: %d labels for %d rows", len(y), a.Rows)
	}
	for i, v := range y {
		if c := int(v); float64(c) != v || c < 0 || c >= mc.K {
			return nil, fmt.Errorf("kernels: row %d has class %v, want an index in [0, %d)", i, v, mc.K)
		}
	}
	workers = clampWorkers(workers, a.Rows)
	f := &MultiFullGrad{mc: mc, a: a, y: y, workers: workers}
	f.parts = rowParts(Matrix{CSR: a}, workers)
	f.cols = evenParts(a.Cols*mc.K, workers)
	f.gbuf = make([][]float64, workers)
	f.sbuf = make([][]float64, workers)
	for w := range workers {
		if w > 0 {
			f.gbuf[w] = make([]float64, a.Cols*mc.K)
		}
		f.sbuf[w] = make([]float64, 2*mc.K)
	}
	f.lbuf = make([]float64, workers)
	return f, nil
}

// Eval returns f(W) for the flat x (len d*K) and, if g is not nil, writes
// the gradient into g (len d*K).
func (f *MultiFullGrad) Eval(x, g []float64) float64 {
	dk := f.a.Cols * f.mc.K
	if len(x) != dk || (g != nil && len(g) != dk) {
		panic("kernels: MultiFullGrad.Eval shape mismatch")
	}
	if f.a.Rows == 0 {
		if g != nil {
			clear(g)
		}
		return 0
	}
	return fanOut(f.workers, f.a.Rows, f.cols, f.lbuf, f.gbuf, g, func(w int, gw []float64) float64 {
		return f.evalRange(w, x, gw)
	})
}

// evalRange sums the loss over worker w's rows and, if g != nil,
// overwrites g with the unscaled sum of their gradients.
func (f *MultiFullGrad) evalRange(w int, x, g []float64) float64 {
	k := f.mc.K
	m, dm := f.sbuf[w][:k], f.sbuf[w][k:2*k]
	if g != nil {
		clear(g)
	}
	var loss float64
	a := f.a
	for i := f.parts[w]; i < f.parts[w+1]; i++ {
		idx, v := a.Row(i)
		MultiMarginsRow(k, idx, v, x, m)
		loss += f.mc.ValueDeriv(m, int(f.y[i]), dm)
		if g != nil {
			multiAddRow(k, 1, idx, v, dm, g)
		}
	}
	return loss
}

// Workers is the number of goroutines Eval uses.
func (f *MultiFullGrad) Workers() int { return f.workers }
