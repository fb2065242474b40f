package kernels

// Parallel runs body(0) on the calling goroutine and body(1..workers-1) on
// new goroutines, and returns when all are done (workers < 1 runs body(0)
// alone). The full-data loops outside kernels (the reference solver's
// per-column passes) use it to split work the way ParMul and FullGrad do.
func Parallel(workers int, body func(w int)) {
	parallel(max(workers, 1), body)
}
