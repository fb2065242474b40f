package ranks

import (
	"fmt"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// BenchmarkMasterStepVR is BenchmarkMasterStep for svrg: one Step per real
// mini-batch difference-sized gradient of a9a or rcv1_small (batch 64,
// l1), after a first snapshot made of full gradients, with the sparse
// O(nnz(g)) step (reweighted on the support) and the dense O(d) one (the
// baseline), 4 workers, no refresh during the timing.
func BenchmarkMasterStepVR(b *testing.B) {
	for _, c := range []struct {
		file   string
		lambda float64
	}{{"a9a", 1e-4}, {"rcv1_small", 1e-3}} {
		ds, grads := benchGrads(b, c.file)
		d := ds.X.Cols
		p, err := solver.NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Logistic, solver.Reg{Kind: solver.RegL1, Lambda: c.lambda}, 1)
		if err != nil {
			b.Fatal(err)
		}
		st := p.Columns()
		full := make([]float64, d)
		x := make([]float64, d)
		p.Smooth(x, full)
		for _, sparse := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/sparse=%v", c.file, sparse), func(b *testing.B) {
				const P = 4
				vc := &algo.VRConfig{Alpha: 0.1, Sparse: sparse, Every: 1 << 40, FullShare: []float64{0, 0.25, 0.25, 0.25, 0.25}}
				if sparse {
					vc.Weights = st.SupportWeights(64)
				}
				m, err := algo.NewMaster(algo.MasterConfig{Workers: P, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL1, Lambda: c.lambda},
					Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}, Average: solver.Averager{Kind: solver.AvgLast}, VR: vc})
				if err != nil {
					b.Fatal(err)
				}
				ver := make([]int64, P+1)
				track := func(rd algo.Ready) {
					for _, r := range rd.Replies {
						if r.Kind == algo.ReplyDense || r.Kind == algo.ReplySparse || r.Kind == algo.ReplyDelta {
							ver[r.Worker] = r.T
						}
					}
				}
				track(m.Start())
				for w := 1; w <= P; w++ {
					rd, err := m.Step(algo.Event{Kind: algo.EventGrad, Grad: &algo.Grad{Worker: w, Rows: ds.X.Rows / P, Kind: algo.GradFull, Snap: 0, Dense: full}})
					if err != nil {
						b.Fatal(err)
					}
					track(rd)
				}
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
					track(rd)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
			})
		}
	}
}
