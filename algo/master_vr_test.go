package algo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

// sparseQuad is the gradient of f(x) = 1/2 sum_i ||x_S(i) - c_i||^2 / n
// over the rows: row i touches the coordinates S(i) = {j : (7j + i) mod 5
// < 2} (with c_ij = sin(i + j)), so that a mini-batch gradient is sparse,
// in Idx/Val.
func sparseQuad(rows []int, x []float64, out *Grad) {
	mark := make(map[int32]float64)
	var loss float64
	for _, i := range rows {
		for j := range x {
			if (7*j+i)%5 >= 2 {
				continue
			}
			r := x[j] - math.Sin(float64(i+j))
			mark[int32(j)] += r / float64(len(rows))
			loss += r * r / 2 / float64(len(rows))
		}
	}
	out.Idx, out.Val = out.Idx[:0], out.Val[:0]
	for j := range mark {
		out.Idx = append(out.Idx, j)
	}
	slices.Sort(out.Idx)
	for _, j := range out.Idx {
		out.Val = append(out.Val, mark[j])
	}
	out.Rows, out.Loss, out.Dense = len(rows), loss, nil
}

// sparseQuadKeys is the support of sparseQuad's gradient on rows (of
// dimension d): the keys of a batch.
func sparseQuadKeys(d int) func(rows []int) []int32 {
	return func(rows []int) []int32 {
		keys := []int32{}
		for j := range d {
			for _, i := range rows {
				if (7*j+i)%5 < 2 {
					keys = append(keys, int32(j))
					break
				}
			}
		}
		return keys
	}
}

// runSparseVR runs an async svrg master with the sparse step, a metric and
// support weights and P workers on sparseQuad, delivering messages in an
// order drawn from seed, with the output avg and, with keys, replies on the
// keys of each worker's next batch; it returns x after every event (and
// the output at the end as its last entry).
func runSparseVR(t *testing.T, reg solver.Reg, alpha float64, adapt bool, seed uint64, avg solver.AvgKind, keys bool) (xs [][]float64, active, rejected int64) {
	t.Helper()
	const P, d, rows = 3, 60, 20
	rng := rand.New(rand.NewPCG(seed, 1))
	vc := &VRConfig{Alpha: alpha, Every: 25, Adapt: adapt, Sparse: true, FullShare: make([]float64, P+1),
		Metric: make([]float64, d), Weights: make([]float64, d)}
	for w := 1; w <= P; w++ {
		vc.FullShare[w] = 1 / float64(P)
	}
	for j := range d {
		vc.Metric[j] = math.Exp(rng.NormFloat64())
		vc.Weights[j] = 1 + 4*rng.Float64()
	}
	pull := PullAll
	if keys {
		pull = PullKeys
	}
	m, err := NewMaster(MasterConfig{Workers: P, X0: make([]float64, d), Reg: reg, Iters: 600, VR: vc, Pull: pull,
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: alpha}, Average: solver.Averager{Kind: avg}})
	if err != nil {
		t.Fatal(err)
	}
	ws := make([]*Worker, P+1)
	for w := 1; w <= P; w++ {
		wc := WorkerConfig{Worker: w, Dim: d, Rows: rows, Batch: 3, Seed: uint64(w), VR: true}
		if keys {
			wc.Keys = sparseQuadKeys(d)
		}
		ws[w] = newTestWorker(t, wc)
	}
	inbox := make([][]Reply, P+1)
	var flight []*Grad
	sparseSnaps := 0
	deliver := func(rd Ready) {
		for _, r := range rd.Replies {
			if r.Kind == ReplySnapshot && r.Idx != nil {
				// The snapshot's nonzeros, listed by the master, are
				// what the worker gets (as a driver sends them).
				var idx []int32
				var val []float64
				for j, v := range r.Dense {
					if v != 0 {
						idx, val = append(idx, int32(j)), append(val, v)
					}
				}
				if !slices.Equal(idx, r.Idx) || !slices.Equal(val, r.Val) {
					t.Fatalf("snapshot %d: nonzeros listed %v %v, dense has %v %v", r.T, r.Idx, r.Val, idx, val)
				}
				r.Dense = nil
				sparseSnaps++
			}
			if r.Kind != ReplyStop {
				r.Dense, r.Idx, r.Val = slices.Clone(r.Dense), slices.Clone(r.Idx), slices.Clone(r.Val)
				inbox[r.Worker] = append(inbox[r.Worker], r)
			}
		}
	}
	deliver(m.Start())
	for steps := 0; !m.Done(); steps++ {
		if steps > 100000 {
			t.Fatalf("no progress at t=%d", m.T())
		}
		var ready []int
		for w := 1; w <= P; w++ {
			if len(inbox[w]) > 0 {
				ready = append(ready, w)
			}
		}
		if len(ready) > 0 && (len(flight) == 0 || rng.IntN(2) == 0) {
			w := ready[rng.IntN(len(ready))]
			r := inbox[w][0]
			inbox[w] = inbox[w][1:]
			wrd := stepW(t, ws[w], WorkerEvent{Kind: WorkerReply, Reply: &r})
			for {
				if wrd.Send != nil {
					g := *wrd.Send
					g.Dense, g.Idx, g.Val = slices.Clone(g.Dense), slices.Clone(g.Idx), slices.Clone(g.Val)
					flight = append(flight, &g)
				}
				if !wrd.Compute {
					break
				}
				ws[w].Compute(sparseQuad)
				wrd = stepW(t, ws[w], WorkerEvent{Kind: WorkerComputed, Ns: 1})
			}
			continue
		}
		if len(flight) == 0 {
			t.Fatalf("stalled at t=%d", m.T())
		}
		k := rng.IntN(len(flight))
		g := flight[k]
		flight = slices.Delete(flight, k, k+1)
		rd, err := m.Step(Event{Kind: EventGrad, Grad: g, Now: int64(steps)})
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float64, d)
		m.Iterate(x)
		xs = append(xs, x)
		deliver(rd)
	}
	if want := avg == solver.AvgLast && vrPack && vrHold; m.xHeld() != want {
		t.Fatalf("x held %v, want %v", m.xHeld(), want)
	}
	if vrSupport && sparseSnaps == 0 {
		t.Fatal("no snapshot went as its listed nonzeros")
	}
	out := make([]float64, d)
	m.Output(out)
	xs = append(xs, out)
	if keys && m.Stats().RepliesKeyed < 300 {
		t.Fatalf("%d keyed replies, want most of 600", m.Stats().RepliesKeyed)
	}
	active, rejected = m.VRSnapshots()
	return xs, active, rejected
}

// TestVRPackedBitIdentical: the master's sparse svrg step on
// solver.VRStep.Pack's records (their mu~ rewritten on its support at
// every activation, the step changing without a repack), with x dense (an
// averaged output) or held in the records (the last iterate), and the
// snapshots copied, listed, cleared and scaled over the supports xs and
// ms, gives the same iterates, bit for bit after every event, and the
// same output, as the plain loop over the metric, weights and mu~ with
// every snapshot over all coordinates, in an async run with refreshes,
// rejections and differences at the previous snapshot, with full and
// keyed replies; the workers get the listed nonzeros of each snapshot.
func TestVRPackedBitIdentical(t *testing.T) {
	defer func() { vrPack, vrHold, vrSupport = true, true, true }()
	for _, c := range []struct {
		reg   solver.Reg
		alpha float64
		adapt bool
	}{
		{solver.Reg{Kind: solver.RegL1, Lambda: 0.05}, 0.3, true},
		{solver.Reg{Kind: solver.RegL1, Lambda: 0.05}, 3, true},    // large enough to be rejected
		{solver.Reg{Kind: solver.RegL1, Lambda: 0.05}, 0.3, false}, // mu~ changes, the step does not
		{solver.Reg{Kind: solver.RegElastic, Lambda: 0.05, Lambda2: 0.1}, 0.3, true},
		{solver.Reg{Kind: solver.RegBox, Lo: -0.3, Hi: 0.4}, 0.3, true},
	} {
		for _, keys := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/alpha=%g/adapt=%v/keys=%v", c.reg.Kind, c.alpha, c.adapt, keys), func(t *testing.T) {
				for _, avg := range []solver.AvgKind{solver.AvgLast, solver.AvgUniform} {
					vrPack, vrHold, vrSupport = false, false, false
					plain, a0, r0 := runSparseVR(t, c.reg, c.alpha, c.adapt, 7, avg, keys)
					for _, hold := range []bool{false, true} {
						vrPack, vrHold, vrSupport = true, hold, true
						packed, a1, r1 := runSparseVR(t, c.reg, c.alpha, c.adapt, 7, avg, keys)
						what := fmt.Sprintf("%s hold=%v", avg, hold)
						if len(plain) != len(packed) || a0 != a1 || r0 != r1 {
							t.Fatalf("%s: %d/%d events, %d/%d snapshots, %d/%d rejected", what, len(plain), len(packed), a0, a1, r0, r1)
						}
						if a1 < 5 {
							t.Fatalf("only %d snapshots: the comparison is weak", a1)
						}
						for k := range plain {
							for j := range plain[k] {
								if math.Float64bits(plain[k][j]) != math.Float64bits(packed[k][j]) {
									t.Fatalf("%s: event %d: x[%d] = %v packed, %v plain", what, k, j, packed[k][j], plain[k][j])
								}
							}
						}
						if !slices.ContainsFunc(packed[len(packed)-1], func(v float64) bool { return v != 0 }) {
							t.Fatal("x never moved")
						}
						t.Logf("%s: %d events, %d snapshots, %d rejected", what, len(packed), a1, r1)
					}
				}
			})
		}
	}
}

// TestVRHeldDenseMessages: with x held in the sparse step's records, a
// dense difference (the dense step, which takes x back and holds it
// again) and sparse ones interleaved give the same iterates, bit for bit,
// as with x dense; x is held again after each dense one.
func TestVRHeldDenseMessages(t *testing.T) {
	defer func() { vrHold = true }()
	const P, d = 2, 40
	rng := rand.New(rand.NewPCG(2, 3))
	var grads []Grad
	for k := range 30 {
		g := Grad{Rows: 4, Loss: 1, Snap: -1}
		for j := range int32(d) {
			if rng.IntN(4) == 0 {
				g.Idx, g.Val = append(g.Idx, j), append(g.Val, rng.NormFloat64())
			}
		}
		if k%3 == 2 {
			g.Dense = make([]float64, d)
			for i, j := range g.Idx {
				g.Dense[j] = g.Val[i]
			}
			g.Idx, g.Val = nil, nil
		}
		grads = append(grads, g)
	}
	full := Grad{Rows: 10, Loss: 1, Idx: []int32{1, 5, 9}, Val: []float64{0.3, -0.2, 0.1}}
	run := func(hold bool) [][]float64 {
		vrHold = hold
		wts, metric := make([]float64, d), make([]float64, d)
		for j := range d {
			wts[j], metric[j] = 1+float64(j%5), 1+float64(j%3)/2
		}
		vc := &VRConfig{Alpha: 0.2, Metric: metric, Sparse: true, Weights: wts, Every: 7, FullShare: []float64{0, 0.5, 0.5}}
		m, err := NewMaster(MasterConfig{Workers: P, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL1, Lambda: 0.01},
			Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.2}, Average: solver.Averager{Kind: solver.AvgLast}, VR: vc})
		if err != nil {
			t.Fatal(err)
		}
		rr := newRoundRobin(m, P, grads, full)
		var xs [][]float64
		for range 120 {
			if err := rr.step(); err != nil {
				t.Fatal(err)
			}
			if hold && m.T() > 0 && !m.xHeld() {
				t.Fatalf("t=%d: x not held", m.T())
			}
			x := make([]float64, d)
			m.Iterate(x)
			xs = append(xs, x)
		}
		if a, _ := m.VRSnapshots(); a < 5 {
			t.Fatalf("%d snapshots, want several", a)
		}
		return xs
	}
	dense, held := run(false), run(true)
	for k := range dense {
		for j := range dense[k] {
			if math.Float64bits(dense[k][j]) != math.Float64bits(held[k][j]) {
				t.Fatalf("step %d: x[%d] = %v held, %v dense", k, j, held[k][j], dense[k][j])
			}
		}
	}
	if !slices.ContainsFunc(held[len(held)-1], func(v float64) bool { return v != 0 }) {
		t.Fatal("x never moved")
	}
}
