package kernels

// Compact ("local") mini-batch gradients. When the keys of a batch (the
// sorted union of its rows' columns, k of them) are known, the gradient
// needs x only on those keys and is nonzero only there: with the batch's
// rows copied into a small CSR whose columns are positions among the keys,
// the whole computation runs on vectors of length k (x gathered on the
// keys, the gradient accumulated in place), which stay in cache whatever d
// is: no scratch of length d, no bitmap, no sort. The result is the one
// SparseAcc gives, bit for bit: the same products summed by the same
// kernel in the same order.

// Gather sets dst[p] = x[idx[p]] for every p (len(dst) == len(idx)).
func Gather(idx []int32, x, dst []float64) {
	dst = dst[:len(idx)]
	for p, j := range idx {
		dst[p] = x[j]
	}
}

// GradBatchLocal computes the mini-batch gradient of a batch in local
// form: b holds its rows in order (a row drawn twice is there twice), with
// columns that are positions among the batch's keys (b.Cols of them), y
// their labels, xk is x gathered on the keys and g (len b.Cols) receives
// the gradient on the keys, overwritten:
//
//	g[p] = (1/b.Rows) sum_r l'(b_r.xk, y_r) b_rp
//
// It returns the mini-batch loss. It is SparseAcc.GradBatchCSR on the
// original rows, bit for bit: every row's terms are added in row order, a
// zero derivative's too, so g[p] is the entry SparseAcc lists for the p-th
// key (0 included).
func GradBatchLocal(l Loss, b *CSR, y, xk, g []float64) float64 {
	if len(xk) != b.Cols || len(g) != b.Cols || len(y) != b.Rows || len(b.Indptr) != b.Rows+1 {
		panic("kernels: GradBatchLocal shape mismatch")
	}
	clear(g)
	if b.Rows == 0 {
		return 0
	}
	inv := 1 / float64(b.Rows)
	var loss float64
	ip, ind, val := b.Indptr, b.Indices, b.Data
	for r, yr := range y {
		lo, hi := ip[r], ip[r+1]
		idx, v := ind[lo:hi], val[lo:hi]
		li, di := l.ValueDeriv(dotSparse(idx, v, xk), yr)
		loss += li
		c := di * inv
		v = v[:len(idx)]
		for k, p := range idx {
			g[p] += c * v[k]
		}
	}
	return loss * inv
}

// GradDiffLocal is GradBatchLocal at two points at once, for svrg's
// difference: ga receives the gradient at xa and gb the one at xb, each
// bit for bit what GradBatchLocal gives (each accumulates its own terms in
// the same order); it returns the loss at xa. Each row is read once for
// both.
func GradDiffLocal(l Loss, b *CSR, y, xa, xb, ga, gb []float64) float64 {
	if len(xa) != b.Cols || len(xb) != b.Cols || len(ga) != b.Cols || len(gb) != b.Cols || len(y) != b.Rows || len(b.Indptr) != b.Rows+1 {
		panic("kernels: GradDiffLocal shape mismatch")
	}
	clear(ga)
	clear(gb)
	if b.Rows == 0 {
		return 0
	}
	inv := 1 / float64(b.Rows)
	var loss float64
	ip, ind, val := b.Indptr, b.Indices, b.Data
	for r, yr := range y {
		lo, hi := ip[r], ip[r+1]
		idx, v := ind[lo:hi], val[lo:hi]
		la, da := l.ValueDeriv(dotSparse(idx, v, xa), yr)
		_, db := l.ValueDeriv(dotSparse(idx, v, xb), yr)
		loss += la
		ca, cb := da*inv, db*inv
		v = v[:len(idx)]
		for k, p := range idx {
			ga[p] += ca * v[k]
			gb[p] += cb * v[k]
		}
	}
	return loss * inv
}
