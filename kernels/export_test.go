package kernels

// Reference loops and generators for the external test package
// (kernels_test), which reads real data with package data.
var (
	RefMulVec           = refMulVec
	RefMulTransVec      = refMulTransVec
	RefGrad             = refGrad
	RefMulVecDense      = refMulVecDense
	RefMulTransVecDense = refMulTransVecDense
	RefGradDense        = refGradDense
	NearSlice           = nearSlice
)

// refMulVecDense is dst[i] = sum_j A[i,j] x[j] as a plain double loop.
func refMulVecDense(a *Dense, x, dst []float64) []float64 {
	dst = zeroed(dst, a.Rows)
	for i := range dst {
		for j := 0; j < a.Cols; j++ {
			dst[i] += a.Data[i*a.Cols+j] * x[j]
		}
	}
	return dst
}

// refMulTransVecDense is dst[j] = sum_i A[i,j] r[i] as a plain double loop.
func refMulTransVecDense(a *Dense, r, dst []float64) []float64 {
	dst = zeroed(dst, a.Cols)
	for i := range r {
		for j := range dst {
			dst[j] += a.Data[i*a.Cols+j] * r[i]
		}
	}
	return dst
}

// refGradDense is refGrad for a dense matrix.
func refGradDense(l Loss, a *Dense, y []float64, rows []int, x, g []float64) (float64, []float64) {
	g = zeroed(g, a.Cols)
	var loss float64
	for _, i := range rows {
		var m float64
		for j := 0; j < a.Cols; j++ {
			m += a.Data[i*a.Cols+j] * x[j]
		}
		loss += l.Value(m, y[i])
		d := l.Deriv(m, y[i])
		for j := 0; j < a.Cols; j++ {
			g[j] += d * a.Data[i*a.Cols+j]
		}
	}
	if len(rows) == 0 {
		return 0, g
	}
	b := float64(len(rows))
	for j := range g {
		g[j] /= b
	}
	return loss / b, g
}

// nearSlice returns the first index where got and want differ by more than
// tol relative to 1+max(|got|,|want|), or -1.
func nearSlice(got, want []float64, tol float64) int {
	if len(got) != len(want) {
		return 0
	}
	for j := range got {
		if !near(got[j], want[j], tol) {
			return j
		}
	}
	return -1
}
