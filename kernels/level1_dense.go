//go:build !goexperiment.simd || !amd64 || noasm

package kernels

import "gonum.org/v1/gonum/floats"

// dotDense returns sum_i x[i] * y[i]; len(y) >= len(x).
//
//	for i, v := range x { s += v * y[i] }
//
// It calls gonum's assembly DotUnitary (via floats.Dot; gonum's plain Go
// loop under the noasm tag), which measured 2x faster than a
// four-accumulator Go loop at every length from 8 to 1024 on this machine.
// Built with GOEXPERIMENT=simd, level1_simd.go replaces it with AVX2.
func dotDense(x, y []float64) float64 {
	return floats.Dot(x, y[:len(x)])
}

// axpyDense does y[i] += alpha * x[i]; len(y) >= len(x).
//
//	for i, v := range x { y[i] += alpha * v }
//
// It calls gonum's assembly AxpyUnitary (via floats.AddScaled), 1.1x to 3x
// faster than a four-way unrolled Go loop for lengths 8 to 1024.
func axpyDense(alpha float64, x, y []float64) {
	floats.AddScaled(y[:len(x)], alpha, x)
}

// denseKernels names the dense kernels in use, for DenseKernels.
const denseKernels = "gonum SSE2 assembly"

// denseGemv lets the dense products use gonum's Dgemv for blocks in cache.
const denseGemv = true
