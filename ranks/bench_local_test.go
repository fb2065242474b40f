package ranks

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// BenchmarkWorkerGrad measures a worker's CPU per mini-batch gradient with
// keyed pull on text-like data like the d = 1M set (d = 2^20, and 2^24
// with the same rows, 65,536 rows of 100 nonzeros, popularity 1/j, batch
// 64, logistic), one op being what
// a worker computes per gradient: the keys of the batch after it and the
// gradient (sgd), or the svrg difference at x and a snapshot. "old" is the
// way before local batches: KeySet.Keys and SparseAcc.GradBatchCSR (twice
// for svrg, the first copied, the indices compared and the second
// subtracted, as algo's workerVR does); "local" is gradComputer's keys and
// compute (or diff) on the batch kept in local form. It reports the keys
// per batch and, for local, the ratio of old's time to its own (measured in
// the same run).
func BenchmarkWorkerGrad(b *testing.B) {
	for _, d := range []int{1 << 20, 1 << 24} {
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) { benchWorkerGrad(b, d) })
	}
}

func benchWorkerGrad(b *testing.B, d int) {
	const rows, nnz, batch = 1 << 16, 100, 64
	s := zipfShard(rows, d, nnz, 1)
	rng := rand.New(rand.NewPCG(5, 5))
	x, snap := make([]float64, d), make([]float64, d)
	for j := range x {
		x[j], snap[j] = 0.01*rng.NormFloat64(), 0.01*rng.NormFloat64()
	}
	sampler := algo.NewSampler(rows, 9)
	batches := make([][]int, 256)
	for i := range batches {
		batches[i] = slices.Clone(sampler.Next(batch))
	}
	next := func(i int) []int { return batches[i%len(batches)] }
	ns := map[string]float64{}
	for _, method := range []solver.Method{solver.MethodSGD, solver.MethodSVRG} {
		for _, way := range []string{"old", "local"} {
			name := method.String() + "/" + way
			b.Run(name, func(b *testing.B) {
				cfg := &Config{Loss: kernels.Logistic, Pull: algo.PullKeys}
				var out algo.Grad
				var keys int
				if way == "old" {
					ks, acc := algo.NewKeySet(d), kernels.NewSparseAcc(d)
					var sv kernels.SparseVec
					var iA []int32
					var vA []float64
					for i := 0; b.Loop(); i++ {
						keys += len(ks.Keys(s.a.Indptr, s.a.Indices, next(i+1)))
						out.Loss = acc.GradBatchCSR(cfg.Loss, s.a, s.y, next(i), x, &sv)
						if method == solver.MethodSVRG {
							iA, vA = append(iA[:0], sv.Idx...), append(vA[:0], sv.Val...)
							acc.GradBatchCSR(cfg.Loss, s.a, s.y, next(i), snap, &sv)
							if !slices.Equal(iA, sv.Idx) {
								b.Fatal("indices differ")
							}
							for k, g := range sv.Val {
								vA[k] -= g
							}
						}
					}
				} else {
					gc := newGradComputer(cfg, s)
					gc.keys(next(0))
					for i := 0; b.Loop(); i++ {
						keys += len(gc.keys(next(i + 1)))
						if method == solver.MethodSVRG {
							if !gc.diff(next(i), x, snap, &out) {
								b.Fatal("not in local form")
							}
						} else {
							gc.compute(next(i), x, &out)
						}
					}
				}
				ns[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(float64(keys)/float64(b.N), "keys/op")
				if old := ns[method.String()+"/old"]; way == "local" && old > 0 {
					b.ReportMetric(old/ns[name], "x-faster")
				}
			})
		}
	}
}
