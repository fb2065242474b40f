package ranks

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// benchGrads reads a binary testdata file and makes 64 real logistic
// mini-batch gradients of it (batch 64, rows drawn with a fixed seed, at
// x = 0), the inputs of the master benchmarks.
func benchGrads(b *testing.B, file string) (*data.Dataset, []algo.Grad) {
	b.Helper()
	ds, err := data.Read("../testdata/"+file, data.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ds.ToBinary(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	acc := kernels.NewSparseAcc(ds.X.Cols)
	x := make([]float64, ds.X.Cols)
	var grads []algo.Grad
	for range 64 {
		rows := make([]int, 64)
		for i := range rows {
			rows[i] = rng.IntN(ds.X.Rows)
		}
		var sv kernels.SparseVec
		acc.GradBatchCSR(kernels.Logistic, &ds.X, ds.Y, rows, x, &sv)
		grads = append(grads, algo.Grad{Rows: 64, Idx: append([]int32(nil), sv.Idx...), Val: append([]float64(nil), sv.Val...)})
	}
	return ds, grads
}

// BenchmarkMasterStep measures the master's state machine alone (no
// network): one Step per real mini-batch gradient of a9a or rcv1_small
// (batch 64, taken at x = 0 and cycled), for the lazy O(nnz(g)) update and
// the eager O(d) one (the baseline), with 4 workers in async mode. It
// reports updates/s; the reply (dense, sparse or delta x) is built but not
// sent.
func BenchmarkMasterStep(b *testing.B) {
	for _, c := range []struct {
		file   string
		lambda float64
	}{{"a9a", 1e-4}, {"rcv1_small", 1e-3}} {
		ds, grads := benchGrads(b, c.file)
		d := ds.X.Cols
		for _, eager := range []bool{false, true} {
			name := fmt.Sprintf("%s/lazy", c.file)
			if eager {
				name = fmt.Sprintf("%s/eager", c.file)
			}
			b.Run(name, func(b *testing.B) {
				const P = 4
				m, err := algo.NewMaster(algo.MasterConfig{Workers: P, X0: make([]float64, d),
					Reg:      solver.Reg{Kind: solver.RegL1, Lambda: c.lambda},
					Schedule: solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 1},
					Average:  solver.Averager{Kind: solver.AvgTail}, Update: updateOf(eager)})
				if err != nil {
					b.Fatal(err)
				}
				ver := make([]int64, P+1)
				m.Start()
				var nnz int
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					g := grads[i%len(grads)]
					g.Worker = 1 + i%P
					g.TRead = ver[g.Worker]
					rd, err := m.Step(algo.Event{Kind: algo.EventGrad, Grad: &g})
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range rd.Replies {
						ver[r.Worker] = r.T
						nnz += len(r.Idx)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
				b.ReportMetric(float64(nnz)/float64(b.N), "reply-entries/op")
			})
		}
	}
}
