//go:build amd64 && !noasm

package comm

import "golang.org/x/sys/cpu"

// addAVX2 is the AVX2 form of addGo (reduce_amd64.s).
//
//go:noescape
func addAVX2(dst, src []float64)

// addOK: the CPU has AVX2.
var addOK = cpu.X86.HasAVX2

// addTo does dst[i] += src[i]; len(src) >= len(dst). The Go loop (one
// scalar add per value) reduced 14 GB/s of a vector in cache and 8 GB/s
// of one that is not (what a collective's vector usually is), the AVX2
// kernel 42 and 14 GB/s (BenchmarkReduce). The sums are the same: each
// value is one IEEE addition either way. Build with -tags noasm for the
// Go loop only.
func addTo(dst, src []float64) {
	if addOK {
		addAVX2(dst, src[:len(dst)])
		return
	}
	addGo(dst, src)
}
