package memnet

import (
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/solver"
)

// quadGrad is a tiny synthetic problem: the gradient of
// f(x) = 1/2 ||x - c_i||^2 averaged over rows i, with c_i = (i, -i, ...).
func quadGrad(d int) algo.GradFunc {
	buf := make([]float64, d)
	return func(rows []int, x []float64, out *algo.Grad) {
		var loss float64
		clear(buf)
		for _, i := range rows {
			for j := range x {
				c := float64(i) * float64(1-2*(j%2))
				buf[j] += (x[j] - c) / float64(len(rows))
				loss += (x[j] - c) * (x[j] - c) / 2 / float64(len(rows))
			}
		}
		out.Rows, out.Loss, out.Dense, out.Idx, out.Val = len(rows), loss, buf, nil, nil
	}
}

// TestWorkerLeaves: a worker that leaves mid-run, while its gradient is
// in flight (so that the others may be waiting for it: in a sync round, at
// a --sync-every barrier, or under the bounded mode's delay bound,
// pipelined or not), does not stall the others: the run reaches its
// iterations, nothing of the leaver is applied after its leave, and the
// bounded mode keeps its bound. (Moved here from algo's hand-written
// network.)
func TestWorkerLeaves(t *testing.T) {
	for _, c := range []struct {
		name     string
		mod      func(*algo.MasterConfig)
		releases bool // some departure must have released replies to the others
	}{
		{"sync", func(c *algo.MasterConfig) { c.Mode = algo.ModeSync }, true},
		{"barrier", func(c *algo.MasterConfig) { c.SyncEvery = 5 }, true},
		{"bounded", func(c *algo.MasterConfig) { c.Mode, c.MaxDelay = algo.ModeBounded, 1 }, false},
		{"bounded-pipeline", func(c *algo.MasterConfig) { c.Mode, c.MaxDelay, c.Pipeline = algo.ModeBounded, 3, true }, false},
		{"async-pipeline", func(c *algo.MasterConfig) { c.Pipeline = true }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			released := 0
			for seed := uint64(1); seed <= 20; seed++ {
				const P, d, iters = 4, 3, 300
				cfg := algo.MasterConfig{Workers: P, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL2, Lambda: 0.1},
					Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.05}, Iters: iters}
				c.mod(&cfg)
				m, err := algo.NewMaster(cfg)
				if err != nil {
					t.Fatal(err)
				}
				ws, grads := make([]*algo.Worker, P+1), make([]algo.GradFunc, P+1)
				for w := 1; w <= P; w++ {
					if ws[w], err = algo.NewWorker(algo.WorkerConfig{Worker: w, Dim: d, Rows: 20, Batch: 2, Seed: uint64(w), Pipeline: cfg.Pipeline}); err != nil {
						t.Fatal(err)
					}
					grads[w] = quadGrad(d)
				}
				leaver, leaveAt := 1+int(seed%P), int64(20+seed*7)
				var (
					net       *Net
					leaving   bool
					leftGrads = int64(-1) // the leaver's gradients applied when it left
				)
				net, err = New(Config{Master: m, Workers: ws, Grads: grads, Reorder: true,
					Timing: NewRandom(seed, Random{ComputeS: []float64{1, 1, 3, 1, 2}, ComputeCV: 0.8, LatencyS: []float64{0.5}, LatencyCV: 1}),
					// Leave halfway along the leaver's first gradient on the
					// way from update leaveAt on (it is lost with the leaver), or 50
					// updates later.
					Sent: func(msg *Msg) {
						if !leaving && msg.Grad != nil && msg.W == leaver && m.T() >= leaveAt {
							leaving = true
							if err := net.Leave(leaver, (msg.At+msg.Arrive)/2); err != nil {
								t.Fatal(err)
							}
						}
					},
					Observe: func(ev algo.Event, rd algo.Ready, _ float64) bool {
						if !leaving && m.T() >= leaveAt+50 { // it had nothing on the way
							leaving = true
							if err := net.Leave(leaver, net.Now()); err != nil {
								t.Fatal(err)
							}
						}
						if ev.Kind == algo.EventLeave {
							released += len(rd.Replies)
							leftGrads = m.Stats().Workers[leaver].Grads
						}
						return false
					}})
				if err != nil {
					t.Fatal(err)
				}
				if err := net.Run(0); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if m.T() != iters || m.StopReason() != algo.StopIters {
					t.Fatalf("seed %d: stopped at t=%d (%v), want %d iterations", seed, m.T(), m.StopReason(), iters)
				}
				st := m.Stats()
				if leftGrads < 0 || m.Active() != P-1 {
					t.Fatalf("seed %d: worker %d never left", seed, leaver)
				}
				if g := st.Workers[leaver].Grads; g != leftGrads {
					t.Errorf("seed %d: %d gradients of the leaver applied after it left", seed, g-leftGrads)
				}
				if cfg.Mode == algo.ModeBounded && st.DelayMax > int64(cfg.MaxDelay) {
					t.Errorf("seed %d: max delay %d beyond the bound %d", seed, st.DelayMax, cfg.MaxDelay)
				}
				x := make([]float64, d)
				m.Iterate(x)
				for _, v := range x {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("seed %d: x = %v", seed, x)
					}
				}
			}
			if c.releases && released == 0 {
				t.Error("no departure released a reply: the test never left while the others waited")
			}
		})
	}
}
