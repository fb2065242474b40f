package ranks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/memnet"
	"github.com/asyncmb/asyncmb/solver"
)

// lsProblem is a small random least-squares problem for the fake workers.
type lsProblem struct {
	a *kernels.Dense
	y []float64
}

// newLS makes an n x d problem whose entries are nonzero with probability
// 1/sparsity.
func newLS(n, d int, seed uint64, sparsity int) *lsProblem {
	rng := rand.New(rand.NewPCG(seed, 1))
	a := &kernels.Dense{Rows: n, Cols: d, Data: make([]float64, n*d)}
	for i := range a.Data {
		if rng.IntN(sparsity) == 0 {
			a.Data[i] = rng.NormFloat64()
		}
	}
	xs := make([]float64, d)
	for j := range xs {
		if j%3 == 0 {
			xs[j] = rng.NormFloat64()
		}
	}
	y := make([]float64, n)
	kernels.MulVecDense(a, xs, y)
	for i := range y {
		y[i] += 0.1 * rng.NormFloat64()
	}
	return &lsProblem{a: a, y: y}
}

// fakeWorker is the real worker state machine (algo.Worker) computing
// mini-batch gradients of an lsProblem, sparse or dense, with the replies
// it has received and not yet read.
type fakeWorker struct {
	id     int
	w      *algo.Worker
	grad   algo.GradFunc
	inbox  []algo.Reply
	sparse bool
}

func newFakeWorker(t *testing.T, p *lsProblem, id, b int, seed uint64, sparse, pipeline bool) *fakeWorker {
	t.Helper()
	n, d := p.a.Rows, p.a.Cols
	w, err := algo.NewWorker(algo.WorkerConfig{Worker: id, Dim: d, Rows: n, Batch: b, Seed: seed, Pipeline: pipeline})
	if err != nil {
		t.Fatal(err)
	}
	dense := make([]float64, d)
	f := func(rows []int, x []float64, out *algo.Grad) {
		out.Rows = len(rows)
		out.Loss = kernels.GradBatchDense(kernels.Squared, p.a, p.y, rows, x, dense)
		out.Dense, out.Idx, out.Val = nil, nil, nil
		if !sparse {
			out.Dense = dense
			return
		}
		for j, v := range dense {
			if v != 0 {
				out.Idx = append(out.Idx, int32(j))
				out.Val = append(out.Val, v)
			}
		}
	}
	return &fakeWorker{id: id, w: w, grad: f, sparse: sparse}
}

// read gives the worker its oldest reply and runs it until it waits for
// the next one: it returns the gradients it sent (copies).
func (fw *fakeWorker) read() ([]*algo.Grad, error) {
	r := fw.inbox[0]
	fw.inbox = fw.inbox[1:]
	rd, err := fw.w.Step(algo.WorkerEvent{Kind: algo.WorkerReply, Reply: &r})
	var sent []*algo.Grad
	for err == nil {
		if rd.Send != nil {
			g := *rd.Send
			g.Dense, g.Idx, g.Val = slices.Clone(g.Dense), slices.Clone(g.Idx), slices.Clone(g.Val)
			sent = append(sent, &g)
		}
		if !rd.Compute {
			break
		}
		fw.w.Compute(fw.grad)
		rd, err = fw.w.Step(algo.WorkerEvent{Kind: algo.WorkerComputed, Ns: 1000})
	}
	return sent, err
}

func copyReply(r algo.Reply) algo.Reply {
	r.Dense = slices.Clone(r.Dense)
	r.Idx = slices.Clone(r.Idx)
	r.Val = slices.Clone(r.Val)
	return r
}

type netCase struct {
	name     string
	mode     algo.Mode
	maxDelay int
	every    int64
	pipeline bool
	reg      solver.Reg
	workers  int
	sparse   bool
	slow     int  // this worker's messages are delivered 8x less often
	wide     bool // d = 400 with about 7 nonzeros a row (delta replies pay)
}

// runNet drives a master and fake workers over memnet, the in-memory
// network, until iters updates: random compute times (the slow worker 8x
// slower) and link latencies (cv 1) reorder the messages across links;
// each link is FIFO, as TCP is. Each time a worker computes, it checks
// that the worker's copy equals the master's x at the version the worker
// holds; a deadlock (nothing in flight, run not over) is memnet's
// ErrStalled.
func runNet(t *testing.T, c netCase, iters int64, seed uint64, eager bool) *algo.Master {
	t.Helper()
	n, d, b, sparsity := 200, 30, 8, 3
	if c.wide {
		d, sparsity = 400, 60
	}
	p := newLS(n, d, 7, sparsity)
	cfg := algo.MasterConfig{
		Workers: c.workers, X0: make([]float64, d), Reg: c.reg,
		Schedule: solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 0.05},
		Average:  solver.Averager{Kind: solver.AvgUniform},
		Mode:     c.mode, MaxDelay: c.maxDelay, SyncEvery: c.every, Pipeline: c.pipeline,
		Iters: iters, Update: updateOf(eager),
	}
	c.reg.Init(cfg.X0)
	m, err := algo.NewMaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	workers := make([]*fakeWorker, c.workers+1)
	for w := 1; w <= c.workers; w++ {
		workers[w] = newFakeWorker(t, p, w, b, uint64(w), c.sparse, c.pipeline)
	}
	compute := make([]float64, c.workers+1)
	for w := range compute {
		compute[w] = 1
		if w == c.slow {
			compute[w] = 8
		}
	}
	runMemnet(t, c.name, m, workers, memnet.NewRandom(seed, memnet.Random{ComputeS: compute, ComputeCV: 0.5, LatencyS: []float64{0.5}, LatencyCV: 1}), nil)
	return m
}

// runMemnet runs master m and the workers on memnet under tm until m is
// done, checking every worker's copy of x whenever it computes; observe,
// if set, sees every master step (before the copy of x is recorded).
func runMemnet(t *testing.T, name string, m *algo.Master, workers []*fakeWorker, tm memnet.Timing, observe func(algo.Event, algo.Ready)) {
	t.Helper()
	P := len(workers) - 1
	d := len(workers[1].w.X())
	xAt := map[int64][]float64{}
	snap := func() {
		x := make([]float64, d)
		m.Iterate(x)
		xAt[m.T()] = x
	}
	ws, grads := make([]*algo.Worker, P+1), make([]algo.GradFunc, P+1)
	for w := 1; w <= P; w++ {
		fw := workers[w]
		ws[w] = fw.w
		grads[w] = func(rows []int, x []float64, out *algo.Grad) {
			tr := fw.w.T()
			want, ok := xAt[tr]
			if !ok {
				t.Fatalf("%s: worker %d holds unknown version %d", name, fw.id, tr)
			}
			copyX := fw.w.X()
			for j := range want {
				if math.Abs(copyX[j]-want[j]) > 1e-12*(1+math.Abs(want[j])) {
					t.Fatalf("%s: worker %d copy of x_%d differs at %d: %v vs %v", name, fw.id, tr, j, copyX[j], want[j])
				}
			}
			fw.grad(rows, x, out)
		}
	}
	snap()
	net, err := memnet.New(memnet.Config{Master: m, Workers: ws, Grads: grads, Timing: tm,
		Observe: func(ev algo.Event, rd algo.Ready, _ float64) bool {
			if observe != nil {
				observe(ev, rd)
			}
			snap()
			return false
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Run(0); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestMasterOverRandomNetwork(t *testing.T) {
	l1 := solver.Reg{Kind: solver.RegL1, Lambda: 0.05}
	cases := []netCase{
		{name: "async", mode: algo.ModeAsync, reg: l1, workers: 4},
		{name: "async-sparse-none", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegNone}, workers: 3, sparse: true},
		{name: "async-sparse-box", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegBox, Lo: -0.2, Hi: 0.3}, workers: 3, sparse: true},
		{name: "async-l1-strong", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegL1, Lambda: 1}, workers: 3, sparse: true},
		{name: "async-pipeline", mode: algo.ModeAsync, reg: l1, workers: 3, pipeline: true},
		{name: "sync", mode: algo.ModeSync, reg: l1, workers: 4},
		{name: "bounded-0", mode: algo.ModeBounded, maxDelay: 0, reg: l1, workers: 3},
		{name: "bounded-1-slow", mode: algo.ModeBounded, maxDelay: 1, reg: l1, workers: 4, slow: 2},
		{name: "bounded-3", mode: algo.ModeBounded, maxDelay: 3, reg: l1, workers: 5, slow: 1},
		{name: "bounded-2-pipeline", mode: algo.ModeBounded, maxDelay: 2, reg: l1, workers: 3, pipeline: true},
		{name: "async-sync-every", mode: algo.ModeAsync, every: 7, reg: l1, workers: 4},
		{name: "async-slow", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegElastic, Lambda: 0.01, Lambda2: 0.1}, workers: 4, slow: 3, sparse: true},
		{name: "p1", mode: algo.ModeAsync, reg: l1, workers: 1},
		{name: "async-delta-none", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegNone}, workers: 3, sparse: true, wide: true},
		{name: "async-delta-nonneg", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegNonneg}, workers: 4, sparse: true, wide: true, slow: 2},
		{name: "async-sparse-l1-wide", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegL1, Lambda: 0.05}, workers: 3, sparse: true, wide: true},
		{name: "bounded-delta", mode: algo.ModeBounded, maxDelay: 2, reg: solver.Reg{Kind: solver.RegNone}, workers: 3, sparse: true, wide: true},
	}
	for _, c := range cases {
		for _, eager := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/eager=%v", c.name, eager), func(t *testing.T) {
				const iters = 600
				m := runNet(t, c, iters, 11, eager)
				st := m.Stats()
				if m.T() != iters {
					t.Fatalf("T=%d want %d", m.T(), iters)
				}
				switch c.mode {
				case algo.ModeSync:
					if st.DelayMax != 0 {
						t.Errorf("sync: max delay %d, want 0", st.DelayMax)
					}
					if st.Grads != iters*int64(c.workers) {
						t.Errorf("sync: %d gradients for %d updates of %d workers", st.Grads, iters, c.workers)
					}
				case algo.ModeBounded:
					if st.DelayMax > int64(c.maxDelay) {
						t.Errorf("bounded: max delay %d > %d", st.DelayMax, c.maxDelay)
					}
				}
				if c.every > 0 && st.Barriers < iters/c.every-1 {
					t.Errorf("sync-every %d: %d barriers in %d updates", c.every, st.Barriers, iters)
				}
				if c.mode == algo.ModeAsync && c.workers > 1 && st.DelayMax == 0 {
					t.Errorf("async with %d workers never saw a delay", c.workers)
				}
				var per int64
				for _, w := range st.Workers {
					per += w.Grads
				}
				if per != st.Grads {
					t.Errorf("per-worker gradients sum to %d, want %d", per, st.Grads)
				}
			})
		}
	}
}

// TestMasterLazyEqualsEager feeds the same gradients, in the same order, to
// a lazy and an eager master and compares what they send and output.
func TestMasterLazyEqualsEager(t *testing.T) {
	for _, reg := range []solver.Reg{
		{Kind: solver.RegL1, Lambda: 0.3},
		{Kind: solver.RegElastic, Lambda: 0.05, Lambda2: 0.4},
		{Kind: solver.RegL2, Lambda: 0.2},
		{Kind: solver.RegNone},
	} {
		for _, avg := range []solver.AvgKind{solver.AvgUniform, solver.AvgWeighted, solver.AvgTail, solver.AvgLast} {
			const d, P, iters = 500, 3, 2000
			base := algo.MasterConfig{
				Workers: P, X0: make([]float64, d), Reg: reg,
				Schedule: solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 0.5, Tau0: 2},
				Average:  solver.Averager{Kind: avg, T0: 10}, Iters: iters, LazyWindow: 97,
			}
			lazyCfg, eagerCfg := base, base
			eagerCfg.Update, lazyCfg.Update = algo.UpdateEager, algo.UpdateLazy
			lz, err := algo.NewMaster(lazyCfg)
			if err != nil {
				t.Fatal(err)
			}
			eg, _ := algo.NewMaster(eagerCfg)
			if !lz.Lazy() || eg.Lazy() {
				t.Fatal("lazy/eager masters not built as asked")
			}
			rng := rand.New(rand.NewPCG(3, uint64(avg)))
			lz.Start()
			eg.Start()
			ver := make([]int64, P+1)
			for s := 0; s < iters; s++ {
				w := 1 + rng.IntN(P)
				g := &algo.Grad{Worker: w, TRead: ver[w], Rows: 1}
				for j := 0; j < d; j++ {
					if rng.IntN(50) == 0 {
						g.Idx = append(g.Idx, int32(j))
						g.Val = append(g.Val, rng.NormFloat64())
					}
				}
				r1, err1 := lz.Step(algo.Event{Kind: algo.EventGrad, Grad: g})
				r2, err2 := eg.Step(algo.Event{Kind: algo.EventGrad, Grad: g})
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if len(r1.Replies) != len(r2.Replies) {
					t.Fatalf("step %d: %d vs %d replies", s, len(r1.Replies), len(r2.Replies))
				}
				for k := range r1.Replies {
					a, b := denseOf(r1.Replies[k], d), denseOf(r2.Replies[k], d)
					for j := range a {
						if math.Abs(a[j]-b[j]) > 1e-10*(1+math.Abs(b[j])) {
							t.Fatalf("%v/%v step %d: reply x[%d] lazy %v eager %v", reg.Kind, avg, s, j, a[j], b[j])
						}
					}
					ver[r1.Replies[k].Worker] = r1.Replies[k].T
				}
			}
			o1, o2 := make([]float64, d), make([]float64, d)
			lz.Output(o1)
			eg.Output(o2)
			for j := range o1 {
				if math.Abs(o1[j]-o2[j]) > 1e-10*(1+math.Abs(o2[j])) {
					t.Fatalf("%v/%v: output[%d] lazy %v eager %v", reg.Kind, avg, j, o1[j], o2[j])
				}
			}
		}
	}
}

// denseOf expands a full reply (dense or sparse) to a dense vector.
func denseOf(r algo.Reply, d int) []float64 {
	x := make([]float64, d)
	if r.Kind == algo.ReplyDense {
		copy(x, r.Dense)
		return x
	}
	for k, j := range r.Idx {
		x[j] = r.Val[k]
	}
	return x
}

// TestMasterP1IsSerialProxSGD: with one worker and no pipelining the
// asynchronous master is exactly serial proximal SGD (delay 0 every step).
func TestMasterP1IsSerialProxSGD(t *testing.T) {
	const n, d, b, iters = 300, 20, 10, 500
	p := newLS(n, d, 5, 3)
	reg := solver.Reg{Kind: solver.RegL1, Lambda: 0.02}
	sched := solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 0.05}
	m, err := algo.NewMaster(algo.MasterConfig{Workers: 1, X0: make([]float64, d), Reg: reg, Schedule: sched,
		Average: solver.Averager{Kind: solver.AvgUniform}, Iters: iters, Update: algo.UpdateEager})
	if err != nil {
		t.Fatal(err)
	}
	w := newFakeWorker(t, p, 1, b, 9, false, false)
	rd := m.Start()
	for !m.Done() {
		w.inbox = append(w.inbox, copyReply(rd.Replies[0]))
		sent, err := w.read()
		if err != nil || len(sent) != 1 {
			t.Fatalf("worker: %d gradients, %v", len(sent), err)
		}
		rd, err = m.Step(algo.Event{Kind: algo.EventGrad, Grad: sent[0]})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The same loop, serially.
	x := make([]float64, d)
	g := make([]float64, d)
	avg := solver.Averager{Kind: solver.AvgUniform}
	s := algo.NewSampler(n, 9)
	for k := int64(0); k < iters; k++ {
		kernels.GradBatchDense(kernels.Squared, p.a, p.y, s.Next(b), x, g)
		reg.Step(x, g, sched.Alpha(k, 0))
		avg.Add(x)
	}
	got, want := make([]float64, d), make([]float64, d)
	m.Iterate(got)
	for j := range got {
		if got[j] != x[j] {
			t.Fatalf("x[%d] = %v, serial %v", j, got[j], x[j])
		}
	}
	m.Output(got)
	avg.Value(x, want)
	for j := range got {
		if got[j] != want[j] {
			t.Fatalf("avg[%d] = %v, serial %v", j, got[j], want[j])
		}
	}
	if st := m.Stats(); st.DelayMax != 0 {
		t.Fatalf("P=1 max delay %d", st.DelayMax)
	}
}

// TestMasterRejectsBadGradients: a gradient with NaN or Inf, of the wrong
// length, with bad indices, rows or loss is refused and counted, never
// applied, and its worker gets fresh x; a gradient that breaks the
// protocol (an unknown worker, a version never sent) is an error.
func TestMasterRejectsBadGradients(t *testing.T) {
	m, err := algo.NewMaster(algo.MasterConfig{Workers: 2, X0: make([]float64, 4), Reg: solver.Reg{Kind: solver.RegNone},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	nan, inf := math.NaN(), math.Inf(1)
	x := make([]float64, 4)
	for i, c := range []struct {
		name string
		g    algo.Grad
		want string
	}{
		{"NaN dense", algo.Grad{Dense: []float64{1, nan, 0, 0}}, "entry 1 = NaN"},
		{"Inf sparse", algo.Grad{Idx: []int32{0, 2}, Val: []float64{1, -inf}}, "entry 1 = -Inf"},
		{"short dense", algo.Grad{Dense: make([]float64, 3)}, "length 3, want 4"},
		{"index range", algo.Grad{Idx: []int32{1, 4}, Val: []float64{1, 1}}, "index 4"},
		{"index order", algo.Grad{Idx: []int32{2, 1}, Val: []float64{1, 1}}, "index 1"},
		{"no rows", algo.Grad{Rows: -1, Dense: make([]float64, 4)}, "-1 rows"},
		{"NaN loss", algo.Grad{Loss: nan, Dense: make([]float64, 4)}, "loss NaN"},
	} {
		c.g.Worker, c.g.TRead = 1, m.T()
		if c.g.Rows == 0 {
			c.g.Rows = 8
		}
		rd, err := m.Step(algo.Event{Kind: algo.EventGrad, Grad: &c.g})
		if err != nil {
			t.Fatalf("%s: %v, want a refusal", c.name, err)
		}
		st := m.Stats()
		if st.RefusedGrads != int64(i+1) || !strings.Contains(st.LastRefusal, c.want) {
			t.Errorf("%s: %d refused, last %q; want %d, mentioning %q", c.name, st.RefusedGrads, st.LastRefusal, i+1, c.want)
		}
		if m.T() != 0 || len(rd.Replies) != 1 || rd.Replies[0].Worker != 1 {
			t.Fatalf("%s: t=%d, replies %+v; want nothing applied and fresh x for worker 1", c.name, m.T(), rd.Replies)
		}
		m.Iterate(x)
		for _, v := range x {
			if v != 0 {
				t.Fatalf("%s: x = %v after a refused gradient", c.name, x)
			}
		}
	}
	for _, c := range []struct {
		name string
		g    algo.Grad
		want string
	}{
		{"unknown worker", algo.Grad{Worker: 3, Rows: 1, Dense: make([]float64, 4)}, "unknown worker 3"},
		{"future version", algo.Grad{Worker: 1, Rows: 1, TRead: 5, Idx: []int32{}, Val: []float64{}}, "version 5"},
		{"version never sent", algo.Grad{Worker: 2, Rows: 1, TRead: 0, Dense: make([]float64, 4)}, ""},
	} {
		_, err := m.Step(algo.Event{Kind: algo.EventGrad, Grad: &c.g})
		if c.want == "" {
			// The first gradient at version 0 is fine; a second is not.
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			_, err = m.Step(algo.Event{Kind: algo.EventGrad, Grad: &c.g})
			c.want = "never sent"
		}
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

// TestMasterSyncRefusedGradient: in sync mode a round with a refused
// gradient applies the mean of the others.
func TestMasterSyncRefusedGradient(t *testing.T) {
	m, err := algo.NewMaster(algo.MasterConfig{Workers: 2, X0: make([]float64, 2), Reg: solver.Reg{Kind: solver.RegNone},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.5}, Mode: algo.ModeSync})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	if _, err := m.Step(algo.Event{Kind: algo.EventGrad, Grad: &algo.Grad{Worker: 1, Rows: 1, Dense: []float64{math.NaN(), 1}}}); err != nil {
		t.Fatal(err)
	}
	rd, err := m.Step(algo.Event{Kind: algo.EventGrad, Grad: &algo.Grad{Worker: 2, Rows: 1, Dense: []float64{2, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 2)
	m.Iterate(x)
	if m.T() != 1 || x[0] != -1 || x[1] != -2 || len(rd.Replies) != 2 {
		t.Fatalf("t=%d x=%v, %d replies; want t=1, x = -0.5*(2,4), replies to both", m.T(), x, len(rd.Replies))
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestMasterReplyKinds checks that each reply form is chosen where it is
// the smallest: deltas when few coordinates changed, sparse x under a strong
// L1 penalty, dense otherwise.
func TestMasterReplyKinds(t *testing.T) {
	for _, c := range []struct {
		nc   netCase
		kind algo.ReplyKind
	}{
		{netCase{name: "delta", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegNone}, workers: 3, sparse: true, wide: true}, algo.ReplyDelta},
		{netCase{name: "sparse", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegL1, Lambda: 0.5}, workers: 3, sparse: true, wide: true}, algo.ReplySparse},
		{netCase{name: "dense", mode: algo.ModeAsync, reg: solver.Reg{Kind: solver.RegL2, Lambda: 0.01}, workers: 3}, algo.ReplyDense},
	} {
		m := runNet(t, c.nc, 300, 1, false)
		st := m.Stats()
		got := map[algo.ReplyKind]int64{algo.ReplyDense: st.RepliesDense, algo.ReplySparse: st.RepliesSparse, algo.ReplyDelta: st.RepliesDelta}
		var total int64
		for _, v := range got {
			total += v
		}
		if got[c.kind] < total*8/10 {
			t.Errorf("%s: %v replies %d of %d (dense %d sparse %d delta %d)", c.nc.name, c.kind, got[c.kind], total, st.RepliesDense, st.RepliesSparse, st.RepliesDelta)
		}
	}
}

func updateOf(eager bool) algo.Update {
	if eager {
		return algo.UpdateEager
	}
	return algo.UpdateLazy
}
