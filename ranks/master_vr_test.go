package ranks

import (
	"fmt"
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/memnet"
	"github.com/asyncmb/asyncmb/solver"
)

// csrOf converts a dense matrix to CSR.
func csrOf(a *kernels.Dense, lo, hi int) *kernels.CSR {
	c := &kernels.CSR{Rows: hi - lo, Cols: a.Cols, Indptr: []int64{0}}
	for i := lo; i < hi; i++ {
		for j, v := range a.Row(i) {
			if v != 0 {
				c.Indices = append(c.Indices, int32(j))
				c.Data = append(c.Data, v)
			}
		}
		c.Indptr = append(c.Indptr, int64(len(c.Indices)))
	}
	return c
}

// TestMasterSVRGOverRandomNetwork runs the svrg master with workers that
// use the real worker code (gradComputer, workerVR) on shards of a lasso
// problem, over an in-memory network delivering in random order: every
// worker copy matches the master's x at its version, the refreshes
// complete while the others keep updating, no update happens before the
// first snapshot is complete, and x converges linearly to the optimum of
// the reference solver (to 1e-9 relative in phi) with the dense and the
// sparse step, with and without the metric.
func TestMasterSVRGOverRandomNetwork(t *testing.T) {
	const n, d, b, P = 240, 40, 8, 3
	plain := newLS(n, d, 7, 3)
	// The same with columns of very different scales, for the metric.
	scaled := newLS(n, d, 7, 3)
	for i := 0; i < n; i++ {
		row := scaled.a.Row(i)
		for j := range row {
			row[j] *= math.Pow(10, float64(j%4)-1)
		}
	}
	for _, reg := range []solver.Reg{{Kind: solver.RegL1, Lambda: 0.05}, {Kind: solver.RegL2, Lambda: 0.01}} {
		for _, sparse := range []bool{false, true} {
			for _, metric := range []bool{false, true} {
				name := fmt.Sprintf("%s/sparse=%v/metric=%v", reg.Kind, sparse, metric)
				t.Run(name, func(t *testing.T) {
					p := plain
					if metric {
						p = scaled
					}
					full, err := solver.NewProblem(kernels.Matrix{Dense: p.a}, p.y, kernels.Squared, reg, 1)
					if err != nil {
						t.Fatal(err)
					}
					ref := solver.Reference(full, solver.RefOptions{Tol: 1e-11})
					st := full.Columns()
					var c []float64
					if metric {
						c = st.Metric(1)
					}
					L := full.EstimateLMetric(c, 200, 1)
					vc := &algo.VRConfig{Alpha: 1 / (2 * L), Metric: c, Sparse: sparse, Every: n / b, Adapt: true, FullShare: make([]float64, P+1)}
					if sparse {
						vc.Weights = st.SupportWeights(b)
					}
					shards := make([]*shard, P+1)
					for w := 1; w <= P; w++ {
						lo, hi := (w-1)*n/P, w*n/P
						shards[w] = &shard{a: csrOf(p.a, lo, hi), y: p.y[lo:hi], d: d, n: n}
						vc.FullShare[w] = float64(hi-lo) / n
					}
					runVRNet(t, p, shards, full, reg, vc, ref.Phi, uint64(len(name)), algo.ModeAsync)
					if !sparse && !metric {
						runVRNet(t, p, shards, full, reg, vc, ref.Phi, 5, algo.ModeBounded)
					}
				})
			}
		}
	}
}

func runVRNet(t *testing.T, p *lsProblem, shards []*shard, full *solver.Problem, reg solver.Reg, vc *algo.VRConfig, phiStar float64, seed uint64, mode algo.Mode) {
	const b, iters = 8, 6000
	P, d := len(shards)-1, p.a.Cols
	m, err := algo.NewMaster(algo.MasterConfig{Workers: P, X0: make([]float64, d), Reg: reg,
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: vc.Alpha}, Average: solver.Averager{Kind: solver.AvgLast},
		Mode: mode, MaxDelay: 2, Iters: iters, VR: vc})
	if err != nil {
		t.Fatal(err)
	}
	ws := make([]*fakeWorker, P+1)
	for w := 1; w <= P; w++ {
		cfg := &Config{Loss: kernels.Squared}
		aw, err := algo.NewWorker(algo.WorkerConfig{Worker: w, Dim: d, Rows: shards[w].a.Rows, Batch: b, Seed: uint64(w), VR: true})
		if err != nil {
			t.Fatal(err)
		}
		ws[w] = &fakeWorker{id: w, w: aw, grad: newGradComputer(cfg, shards[w]).compute}
	}
	fullsDone := 0
	// Every worker's first message is its part of the first refresh: no
	// update may be applied before all P have arrived.
	observe := func(ev algo.Event, _ algo.Ready) {
		if ev.Kind == algo.EventGrad && ev.Grad.Kind == algo.GradFull {
			fullsDone++
			if fullsDone < P && m.T() != 0 {
				t.Fatalf("update %d applied before the first snapshot was complete", m.T())
			}
		}
	}
	tm := memnet.NewRandom(seed, memnet.Random{ComputeS: []float64{1, 1, 2, 1}, ComputeCV: 0.5, LatencyS: []float64{0.5}, LatencyCV: 1})
	runMemnet(t, "svrg", m, ws, tm, observe)
	x := make([]float64, d)
	m.Output(x)
	phi := full.Objective(x)
	active, rejected := m.VRSnapshots()
	if rel := (phi - phiStar) / phiStar; !(rel <= 1e-9) {
		t.Errorf("phi %.15g, phi* %.15g: rel. subopt %.3g after %d updates (%d snapshots, %d rejected, step %.3g)", phi, phiStar, rel, iters, active, rejected, m.VRAlpha())
	}
	if st := m.Stats(); mode == algo.ModeBounded && st.DelayMax > 2 {
		t.Errorf("bounded: max delay %d > 2", st.DelayMax)
	}
	if want := int64(iters / vc.Every / 2); active < want {
		t.Errorf("%d snapshots in %d updates of cycle %d, want at least %d", active, iters, vc.Every, want)
	}
}

// TestMasterSVRGLeave: a worker that leaves during the first refresh
// cancels it; the others get their replies, go on with plain gradients,
// and the next refresh, over the workers left, completes and activates.
func TestMasterSVRGLeave(t *testing.T) {
	const d, P = 4, 3
	vc := &algo.VRConfig{Alpha: 0.1, Every: 2, FullShare: []float64{0, 1.0 / 3, 1.0 / 3, 1.0 / 3}}
	m, err := algo.NewMaster(algo.MasterConfig{Workers: P, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL2, Lambda: 0.1},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}, Average: solver.Averager{Kind: solver.AvgLast}, VR: vc})
	if err != nil {
		t.Fatal(err)
	}
	ver := make([]int64, P+1)
	snapOf := make([]int64, P+1) // the snapshot each worker was asked for, -1 none
	active := make([]int64, P+1)
	for w := range snapOf {
		snapOf[w], active[w] = -1, -1
	}
	take := func(rd algo.Ready) (models int) {
		for _, r := range rd.Replies {
			switch r.Kind {
			case algo.ReplySnapshot:
				snapOf[r.Worker] = r.T
			case algo.ReplyActivate:
				active[r.Worker] = r.T
			case algo.ReplyDense, algo.ReplySparse, algo.ReplyDelta:
				ver[r.Worker] = r.T
				models++
			}
		}
		return models
	}
	step := func(w int) algo.Ready {
		g := &algo.Grad{Worker: w, TRead: ver[w], Rows: 10, Loss: 0.5, Dense: []float64{1, -1, 0.5, 0}, Snap: active[w]}
		if snapOf[w] >= 0 {
			g.Kind, g.Snap = algo.GradFull, snapOf[w]
			snapOf[w] = -1
		}
		rd, err := m.Step(algo.Event{Kind: algo.EventGrad, Grad: g})
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	take(m.Start())
	take(step(1)) // worker 1's part; held: the first snapshot is incomplete
	rd, err := m.Step(algo.Event{Kind: algo.EventLeave, Worker: 2})
	if err != nil {
		t.Fatal(err)
	}
	if take(rd) != 1 {
		t.Fatalf("after the leave, worker 1's withheld reply was not released: %v", rd.Replies)
	}
	if take(step(3)) != 1 {
		t.Fatal("worker 3's part of the cancelled refresh got no reply")
	}
	for k := 0; k < 40 && (active[1] < 0 || active[3] < 0); k++ {
		take(step(1 + 2*(k%2)))
	}
	if active[1] < 0 || active[3] < 0 {
		t.Fatalf("no snapshot activated after the leave (t=%d)", m.T())
	}
	if a, _ := m.VRSnapshots(); a < 1 {
		t.Fatalf("%d snapshots active", a)
	}
}
