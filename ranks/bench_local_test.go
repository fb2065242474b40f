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
// the same run). Every way first applies the keyed reply for its batch (x
// on the batch's keys) to an algo.Replica, as the worker does; "onkeys"
// defers it (Replica.Defer) and computes on the reply's entries in place
// (gradComputer.onKeys), where "local" scatters them into the dense copy
// and gathers them back.
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
	// The replies the batches are computed at: x on their keys.
	replies := make([]algo.Reply, len(batches))
	ks := algo.NewKeySet(d)
	for i, rows := range batches {
		k := slices.Clone(ks.Keys(s.a.Indptr, s.a.Indices, rows))
		v := make([]float64, len(k))
		kernels.Gather(k, x, v)
		replies[i] = algo.Reply{Kind: algo.ReplyKeyed, Idx: k, Val: v}
	}
	ns := map[string]float64{}
	for _, method := range []solver.Method{solver.MethodSGD, solver.MethodSVRG} {
		for _, way := range []string{"old", "local", "onkeys"} {
			name := method.String() + "/" + way
			b.Run(name, func(b *testing.B) {
				cfg := &Config{Loss: kernels.Logistic, Pull: algo.PullKeys}
				var out algo.Grad
				var keys int
				rep := algo.NewReplica(d)
				rep.Defer = way == "onkeys"
				apply := func(i int) {
					r := &replies[i%len(replies)]
					r.T = int64(i)
					if err := rep.Apply(r); err != nil {
						b.Fatal(err)
					}
				}
				var vrSnap []float64
				if method == solver.MethodSVRG {
					vrSnap = snap
				}
				if way == "onkeys" {
					gc := newGradComputer(cfg, s)
					gc.keys(next(0))
					for i := 0; b.Loop(); i++ {
						apply(i)
						keys += len(gc.keys(next(i + 1)))
						k, v, _ := rep.Keyed()
						if !gc.onKeys(next(i), k, v, vrSnap, &out) {
							b.Fatal("not computed on its keys")
						}
						rep.Take()
					}
				} else if way == "old" {
					ks, acc := algo.NewKeySet(d), kernels.NewSparseAcc(d)
					var sv kernels.SparseVec
					var iA []int32
					var vA []float64
					for i := 0; b.Loop(); i++ {
						apply(i)
						keys += len(ks.Keys(s.a.Indptr, s.a.Indices, next(i+1)))
						out.Loss = acc.GradBatchCSR(cfg.Loss, s.a, s.y, next(i), rep.X, &sv)
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
						apply(i)
						keys += len(gc.keys(next(i + 1)))
						if method == solver.MethodSVRG {
							if !gc.diff(next(i), rep.X, snap, &out) {
								b.Fatal("not in local form")
							}
						} else {
							gc.compute(next(i), rep.X, &out)
						}
					}
				}
				ns[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(float64(keys)/float64(b.N), "keys/op")
				if old := ns[method.String()+"/old"]; way != "old" && old > 0 {
					b.ReportMetric(old/ns[name], "x-faster")
				}
				if local := ns[method.String()+"/local"]; way == "onkeys" && local > 0 {
					b.ReportMetric(local/ns[name], "x-faster-than-local")
				}
			})
		}
	}
}

// BenchmarkShardFullGrad measures a worker's svrg full gradient over its
// shard (65,536 rows of 100 nonzeros, popularity 1/j, d = 2^20: a worker's
// third of the d = 1M set): "acc", the mini-batch path over all rows
// (the sparse accumulator), against "full", gradComputer.full's three
// passes, in the same run, with the ratio.
func BenchmarkShardFullGrad(b *testing.B) {
	const rows, d = 1 << 16, 1 << 20
	s := zipfShard(rows, d, 100, 1)
	x := make([]float64, d)
	rng := rand.New(rand.NewPCG(6, 6))
	for j := range x {
		if rng.IntN(5) == 0 {
			x[j] = 0.01 * rng.NormFloat64()
		}
	}
	all := make([]int, rows)
	for i := range all {
		all[i] = i
	}
	gc := newGradComputer(&Config{Loss: kernels.Logistic, Pull: algo.PullKeys}, s)
	var out algo.Grad
	var accNs float64
	b.Run("acc", func(b *testing.B) {
		for b.Loop() {
			gc.compute(all, x, &out)
		}
		accNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			gc.full(all, x, &out)
		}
		if accNs > 0 {
			b.ReportMetric(accNs/(float64(b.Elapsed().Nanoseconds())/float64(b.N)), "x-faster")
		}
	})
}
