//go:build !amd64 || noasm

package comm

const addOK = false

// addTo does dst[i] += src[i]; len(src) >= len(dst).
func addTo(dst, src []float64) { addGo(dst, src) }
