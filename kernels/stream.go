package kernels

import (
	"sync"
	"time"
)

// StreamBandwidth measures the machine's streaming-read bandwidth in GB/s:
// the best of reps timed SumDense passes over buf, split into workers
// contiguous parts read by that many goroutines. Benchmarks divide a
// kernel's bytes per second by it ("x stream"); buf should be several times
// larger than the last-level cache (128 MiB here) so that it is read from
// memory. buf is only read; it panics if workers < 1 or reps < 1.
func StreamBandwidth(buf []float64, workers, reps int) float64 {
	if workers < 1 || reps < 1 {
		panic("kernels: StreamBandwidth needs workers >= 1 and reps >= 1")
	}
	sums := make([]float64, workers)
	best := time.Duration(1 << 62)
	for range reps {
		t0 := time.Now()
		var wg sync.WaitGroup
		wg.Add(workers)
		for w := range workers {
			go func() {
				defer wg.Done()
				sums[w] = SumDense(buf[len(buf)*w/workers : len(buf)*(w+1)/workers])
			}()
		}
		wg.Wait()
		best = min(best, time.Since(t0))
	}
	var total float64
	for _, s := range sums {
		total += s
	}
	streamSink = total // the sums are used, so no compiler may drop them
	return float64(len(buf)*8) / float64(max(best.Nanoseconds(), 1))
}

// streamSink keeps StreamBandwidth's sums alive.
var streamSink float64
