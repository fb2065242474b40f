package kernels_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/kernels/kernelbench"
)

// Every benchmark reports, besides ns/op and MB/s (from b.SetBytes):
//
//	ns/nnz    time per stored matrix entry touched
//	GB/s      bytes the kernel must move (matrix entries, offsets, vectors) per second
//	x-stream  GB/s divided by the streaming-read bandwidth of this machine,
//	          measured in the same run by summing a 128 MiB array with the same
//	          number of goroutines (above 1 means the data sat in cache)
//	x-naive   time of the plain reference loop divided by the kernel's time,
//	          both measured in the same run
//
// Run: go test -run '^$' -bench . ./kernels/

// benchMatrix is one benchmark input: a9a, rcv1_small or a dense random matrix.
type benchMatrix struct {
	name string
	m    kernels.Matrix
	y    []float64
	x, r []float64 // a model vector (len cols) and a residual (len rows)
}

var (
	benchOnce sync.Once
	benchMats []*benchMatrix
)

// benchMatrices loads a9a and rcv1_small from testdata and builds the dense
// 4096x1024 case, once per test binary.
func benchMatrices(b *testing.B) []*benchMatrix {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(41, 42))
		for _, name := range []string{"a9a", "rcv1_small"} {
			ds := realSetNamed(name).load(b)
			benchMats = append(benchMats, &benchMatrix{name: name, m: kernels.Matrix{CSR: &ds.X}, y: ds.Y})
		}
		d := &kernels.Dense{Rows: 4096, Cols: 1024, Data: randVec(rng, 4096*1024, 1)}
		y := make([]float64, d.Rows)
		for i := range y {
			y[i] = float64(2*rng.IntN(2) - 1)
		}
		benchMats = append(benchMats, &benchMatrix{name: "dense4096x1024", m: kernels.Matrix{Dense: d}, y: y})
		for _, bm := range benchMats {
			n, d := bm.m.Dims()
			bm.x, bm.r = randVec(rng, d, 0.1), randVec(rng, n, 1)
		}
	})
	if len(benchMats) != 3 {
		b.Fatal("benchmark inputs failed to load")
	}
	return benchMats
}

var (
	streamMu sync.Mutex
	streamGB = map[int]float64{}
)

// streamBandwidth is kernels.StreamBandwidth over a 128 MiB array, measured
// once per goroutine count and test binary.
func streamBandwidth(workers int) float64 {
	streamMu.Lock()
	defer streamMu.Unlock()
	if v, ok := streamGB[workers]; ok {
		return v
	}
	v := kernelbench.StreamReadGBs(workers)
	streamGB[workers] = v
	return v
}

// naiveTime returns the median time in ns of f (the reference loop), run
// after one warm-up until 7 runs or 100 ms have passed. Benchmarks call it
// right after their own loop, so that both sides see the same load from
// other processes.
func naiveTime(f func()) float64 {
	f()
	var times []float64
	start := time.Now()
	for len(times) < 7 || time.Since(start) < 100*time.Millisecond {
		t0 := time.Now()
		f()
		times = append(times, float64(time.Since(t0).Nanoseconds()))
		if len(times) >= 1000 {
			break
		}
	}
	sort.Float64s(times)
	return times[len(times)/2]
}

// report adds the package's custom metrics for one benchmark run.
func report(b *testing.B, bytes, nnz int64, workers int, naive float64) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	gbs := float64(bytes) / ns
	b.ReportMetric(ns/float64(nnz), "ns/nnz")
	b.ReportMetric(gbs, "GB/s")
	b.ReportMetric(gbs/streamBandwidth(workers), "x-stream")
	b.ReportMetric(naive/ns, "x-naive")
}

func mustNear(b *testing.B, name string, got, want []float64, tol float64) {
	b.Helper()
	if j := kernels.NearSlice(got, want, tol); j >= 0 {
		b.Fatalf("%s: result differs from the reference at %d", name, j)
	}
}

var benchWorkers = []int{1, 2}

// BenchmarkMulVec times A x (ParMul.MulVec) against the reference loop.
func BenchmarkMulVec(b *testing.B) { benchProduct(b, false) }

// BenchmarkMulTransVec times A^T r (ParMul.MulTransVec) against the reference loop.
func BenchmarkMulTransVec(b *testing.B) { benchProduct(b, true) }

func benchProduct(b *testing.B, trans bool) {
	for _, bm := range benchMatrices(b) {
		n, d := bm.m.Dims()
		in, outLen := bm.x, n
		if trans {
			in, outLen = bm.r, d
		}
		want := make([]float64, outLen)
		naive := func() {
			switch {
			case bm.m.CSR != nil && trans:
				kernels.RefMulTransVec(bm.m.CSR, in, want)
			case bm.m.CSR != nil:
				kernels.RefMulVec(bm.m.CSR, in, want)
			case trans:
				kernels.RefMulTransVecDense(bm.m.Dense, in, want)
			default:
				kernels.RefMulVecDense(bm.m.Dense, in, want)
			}
		}
		for _, workers := range benchWorkers {
			b.Run(fmt.Sprintf("%s/workers=%d", bm.name, workers), func(b *testing.B) {
				p := kernels.NewParMul(bm.m, workers)
				dst := make([]float64, outLen)
				b.SetBytes(kernelbench.ProductBytes(bm.m))
				b.ReportAllocs()
				for b.Loop() {
					if trans {
						p.MulTransVec(in, dst)
					} else {
						p.MulVec(in, dst)
					}
				}
				naive()
				mustNear(b, "product", dst, want, 1e-12)
				report(b, kernelbench.ProductBytes(bm.m), int64(bm.m.NNZ()), workers, naiveTime(naive))
			})
		}
	}
}

// BenchmarkGradBatch times one logistic mini-batch gradient of b rows drawn
// with replacement, written densely (out=dense: GradBatchCSR/GradBatchDense)
// or sparsely (out=sparse: SparseAcc.GradBatchCSR). Each iteration uses the
// next of 64 prepared batches.
func BenchmarkGradBatch(b *testing.B) {
	const batches = 64
	l := kernels.Logistic
	for _, bm := range benchMatrices(b) {
		n, d := bm.m.Dims()
		for _, size := range []int{64, 256} {
			rng := rand.New(rand.NewPCG(uint64(size), 43))
			sets := make([][]int, batches)
			var nnz int64
			for k := range sets {
				sets[k] = make([]int, size)
				for j := range sets[k] {
					i := rng.IntN(n)
					sets[k][j] = i
					nnz += int64(bm.m.RowNNZ(i))
				}
			}
			nnz /= batches // mean stored entries per batch
			idxBytes := int64(12)
			if bm.m.CSR == nil {
				idxBytes = 8
			}
			outs := []string{"dense"}
			if bm.m.CSR != nil {
				outs = append(outs, "sparse")
			}
			for _, out := range outs {
				b.Run(fmt.Sprintf("%s/b=%d/out=%s", bm.name, size, out), func(b *testing.B) {
					want := make([]float64, d)
					var naive func()
					if a := bm.m.CSR; a != nil {
						naive = func() {
							for _, rows := range sets {
								kernels.RefGrad(l, a, bm.y, rows, bm.x, want)
							}
						}
					} else {
						naive = func() {
							for _, rows := range sets {
								kernels.RefGradDense(l, bm.m.Dense, bm.y, rows, bm.x, want)
							}
						}
					}
					g := make([]float64, d)
					acc := kernels.NewSparseAcc(d)
					var sv kernels.SparseVec
					// Bytes: the batch's entries and offsets, labels, x reads
					// of those entries, and for a dense output clearing g.
					bytes := nnz*idxBytes + int64(size)*24
					if out == "dense" {
						bytes += int64(d) * 8
					}
					b.SetBytes(bytes)
					b.ReportAllocs()
					k := 0
					for b.Loop() {
						rows := sets[k%batches]
						switch {
						case out == "sparse":
							acc.GradBatchCSR(l, bm.m.CSR, bm.y, rows, bm.x, &sv)
						case bm.m.CSR != nil:
							kernels.GradBatchCSR(l, bm.m.CSR, bm.y, rows, bm.x, g)
						default:
							kernels.GradBatchDense(l, bm.m.Dense, bm.y, rows, bm.x, g)
						}
						k++
					}
					// Check the last batch against the reference loop.
					last := sets[(k-1+batches)%batches]
					if a := bm.m.CSR; a != nil {
						kernels.RefGrad(l, a, bm.y, last, bm.x, want)
					} else {
						kernels.RefGradDense(l, bm.m.Dense, bm.y, last, bm.x, want)
					}
					if out == "sparse" {
						clear(g)
						for k, j := range sv.Idx {
							g[j] = sv.Val[k]
						}
					}
					mustNear(b, "GradBatch", g, want, 1e-12)
					report(b, bytes, nnz, 1, naiveTime(naive)/batches)
				})
			}
		}
	}
}

// BenchmarkFullGrad times the full-data logistic loss and gradient.
func BenchmarkFullGrad(b *testing.B) {
	l := kernels.Logistic
	for _, bm := range benchMatrices(b) {
		n, d := bm.m.Dims()
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		want := make([]float64, d)
		var naive func()
		if a := bm.m.CSR; a != nil {
			naive = func() { kernels.RefGrad(l, a, bm.y, all, bm.x, want) }
		} else {
			naive = func() { kernels.RefGradDense(l, bm.m.Dense, bm.y, all, bm.x, want) }
		}
		bytes := kernelbench.ProductBytes(bm.m) + int64(n)*8 + int64(d)*8
		for _, workers := range benchWorkers {
			b.Run(fmt.Sprintf("%s/workers=%d", bm.name, workers), func(b *testing.B) {
				f := kernels.NewFullGrad(bm.m, bm.y, workers)
				g := make([]float64, d)
				b.SetBytes(bytes)
				b.ReportAllocs()
				for b.Loop() {
					f.Eval(l, bm.x, g)
				}
				naive()
				mustNear(b, "FullGrad", g, want, 1e-12)
				report(b, bytes, int64(bm.m.NNZ()), workers, naiveTime(naive))
			})
		}
	}
}

// BenchmarkRandomLoads measures this machine's memory as the sparse
// kernels and the master's lazy state meet it: loads at random positions
// of an array of 8-byte words, dependent (a pointer chase: each load's
// address is the previous load's value, the latency) and independent (a
// gather of random positions, which the core overlaps), for arrays from
// 1 MB (in L2) to 256 MB. It reports ns/load; the ratio of the two is the
// overlap the core achieves. Run: go test -run '^$' -bench RandomLoads ./kernels/
func BenchmarkRandomLoads(b *testing.B) {
	for _, mb := range []int{1, 4, 32, 256} {
		n := mb << 20 / 8
		next := make([]int32, 2*n) // the chase: one cycle through every 4-byte word
		words := make([]int64, n)
		rng := rand.New(rand.NewPCG(uint64(mb), 1))
		perm := rng.Perm(len(next))
		for i := range next {
			next[perm[i]] = int32(perm[(i+1)%len(next)])
		}
		pos := make([]int32, 4096)
		for i := range pos {
			pos[i] = int32(rng.IntN(n))
		}
		b.Run(fmt.Sprintf("MB=%d/dependent", mb), func(b *testing.B) {
			j := int32(0)
			for b.Loop() {
				for range 4096 {
					j = next[j]
				}
			}
			sink = int64(j)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4096), "ns/load")
		})
		b.Run(fmt.Sprintf("MB=%d/independent", mb), func(b *testing.B) {
			var s int64
			r := 0
			for b.Loop() {
				off := int32(r * 64)
				for _, p := range pos {
					s += words[(p+off)%int32(n)]
				}
				r++
			}
			sink = s
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4096), "ns/load")
		})
	}
}

var sink int64
