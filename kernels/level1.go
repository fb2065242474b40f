package kernels

import "slices"

// dotSparse returns sum_k val[k] * x[idx[k]].
func dotSparse(idx []int32, val []float64, x []float64) float64 {
	val = val[:len(idx)]
	var s float64
	for k, j := range idx {
		s += val[k] * x[j]
	}
	return s
}

// axpySparse does y[idx[k]] += alpha * val[k] for every k.
func axpySparse(alpha float64, idx []int32, val []float64, y []float64) {
	val = val[:len(idx)]
	for k, j := range idx {
		y[j] += alpha * val[k]
	}
}

// dotDense returns sum_i x[i] * y[i]; len(y) >= len(x).
func dotDense(x, y []float64) float64 {
	y = y[:len(x)]
	var s float64
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// axpyDense does y[i] += alpha * x[i]; len(y) >= len(x).
func axpyDense(alpha float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func sortInt32(s []int32) { slices.Sort(s) }
