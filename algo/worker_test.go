package algo

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// quadGrad is the gradient of f(x) = 1/2 ||x - c_i||^2 averaged over rows
// i, with c_i = (i, -i, ...): the mean of x - c_i. It records the rows and
// iterates it was called with.
type quadGrad struct {
	buf   []float64
	calls []quadCall
}

type quadCall struct {
	rows []int
	x    []float64
}

func (q *quadGrad) f(rows []int, x []float64, out *Grad) {
	q.calls = append(q.calls, quadCall{slices.Clone(rows), slices.Clone(x)})
	if q.buf == nil {
		q.buf = make([]float64, len(x))
	}
	var loss float64
	clear(q.buf)
	for _, i := range rows {
		for j := range x {
			c := float64(i) * float64(1-2*(j%2))
			q.buf[j] += (x[j] - c) / float64(len(rows))
			loss += (x[j] - c) * (x[j] - c) / 2 / float64(len(rows))
		}
	}
	out.Rows, out.Loss, out.Dense, out.Idx, out.Val = len(rows), loss, q.buf, nil, nil
}

func newTestWorker(t *testing.T, cfg WorkerConfig) *Worker {
	t.Helper()
	w, err := NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func dense(t int64, x ...float64) *Reply { return &Reply{Kind: ReplyDense, T: t, Dense: x} }

func stepW(t *testing.T, w *Worker, ev WorkerEvent) WorkerReady {
	t.Helper()
	rd, err := w.Step(ev)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// TestWorkerPlain: a worker without pipelining computes one gradient per
// reply, at the x of that reply, on the sampler's batches, and sends it
// with the times the driver measured; a stop ends it.
func TestWorkerPlain(t *testing.T) {
	w := newTestWorker(t, WorkerConfig{Worker: 2, Dim: 2, Rows: 10, Batch: 3, Seed: 7})
	ref := NewSampler(10, 7)
	var q quadGrad
	for k := int64(0); k < 5; k++ {
		rd := stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: dense(k, float64(k), 1), Ns: 100 + k})
		if !rd.Compute || rd.Send != nil || rd.T != k {
			t.Fatalf("reply %d: %+v, want a computation at version %d", k, rd, k)
		}
		w.Compute(q.f)
		rd = stepW(t, w, WorkerEvent{Kind: WorkerComputed, Ns: 50})
		g := rd.Send
		if rd.Compute || g == nil || g.Worker != 2 || g.TRead != k || g.IdleNs != 100+k || g.ComputeNs != 50 || g.Rows != 3 {
			t.Fatalf("gradient %d: %+v (compute %v)", k, g, rd.Compute)
		}
		call := q.calls[len(q.calls)-1]
		if want := ref.Next(3); !slices.Equal(call.rows, want) || call.x[0] != float64(k) {
			t.Fatalf("gradient %d over rows %v at %v, want rows %v at x_%d", k, call.rows, call.x, want, k)
		}
	}
	rd := stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: &Reply{Kind: ReplyStop, Base: 42}})
	if !rd.Stop || rd.StopBase != 42 || rd.Send != nil || rd.Compute {
		t.Fatalf("stop: %+v", rd)
	}
	if _, err := w.Step(WorkerEvent{Kind: WorkerReply, Reply: dense(9, 0, 0)}); err == nil {
		t.Fatal("a step after the stop was accepted")
	}
}

// TestWorkerPipeline: a pipelining worker sends its first gradient and
// computes the second at the same x at once; from then on each gradient
// is computed while the reply to the one before is in flight, and sent
// when that reply arrives (with the wait for it as its idle time), before
// the next is computed at the new x.
func TestWorkerPipeline(t *testing.T) {
	w := newTestWorker(t, WorkerConfig{Worker: 1, Dim: 2, Rows: 10, Batch: 2, Seed: 1, Pipeline: true})
	var q quadGrad
	rd := stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: dense(0, 0, 0), Ns: 9})
	if !rd.Compute || rd.T != 0 {
		t.Fatalf("first x: %+v", rd)
	}
	w.Compute(q.f)
	rd = stepW(t, w, WorkerEvent{Kind: WorkerComputed, Ns: 4})
	if rd.Send == nil || rd.Send.TRead != 0 || rd.Send.IdleNs != 9 || !rd.Compute || rd.T != 0 {
		t.Fatalf("first gradient: %+v", rd)
	}
	for k := int64(1); k <= 4; k++ {
		w.Compute(q.f)
		rd = stepW(t, w, WorkerEvent{Kind: WorkerComputed, Ns: 4})
		if rd.Send != nil || rd.Compute || rd.Stop {
			t.Fatalf("gradient %d was not held for the reply: %+v", k+1, rd)
		}
		rd = stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: dense(k, float64(k), 0), Ns: 20 + k})
		if g := rd.Send; g == nil || g.TRead != k-1 || g.IdleNs != 20+k || g.ComputeNs != 4 || !rd.Compute || rd.T != k {
			t.Fatalf("reply %d: %+v (sent %+v), want the gradient at x_%d sent and one at x_%d computed", k, rd, rd.Send, k-1, k)
		}
		if x := q.calls[len(q.calls)-1].x[0]; x != float64(k-1) {
			t.Fatalf("gradient %d computed at x = %v, want x_%d", k+1, x, k-1)
		}
	}
	if w.Sent() != 5 {
		t.Fatalf("%d gradients sent, want 5", w.Sent())
	}
	// A stop while a gradient is held: it is dropped.
	w.Compute(q.f)
	stepW(t, w, WorkerEvent{Kind: WorkerComputed})
	if rd := stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: &Reply{Kind: ReplyStop}}); !rd.Stop || rd.Send != nil {
		t.Fatalf("stop: %+v", rd)
	}
}

// TestWorkerVR: with svrg the worker keeps the snapshot it is sent,
// answers the next x with its shard's full gradient there (every row),
// switches to it on the activation, and then sends differences
// g_B(x) - g_B(x~) on the same rows.
func TestWorkerVR(t *testing.T) {
	const n = 6
	w := newTestWorker(t, WorkerConfig{Worker: 3, Dim: 2, Rows: n, Batch: 2, Seed: 3, VR: true})
	var q quadGrad
	run := func(r *Reply) WorkerReady {
		t.Helper()
		rd := stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: r})
		if rd.Compute {
			w.Compute(q.f)
			rd = stepW(t, w, WorkerEvent{Kind: WorkerComputed})
		}
		return rd
	}
	if rd := run(&Reply{Kind: ReplySnapshot, T: 0, Dense: []float64{1, 1}}); rd.Send != nil || rd.Compute {
		t.Fatalf("a snapshot asked for something: %+v", rd)
	}
	g := run(dense(0, 2, 2)).Send
	call := q.calls[len(q.calls)-1]
	if g == nil || g.Kind != GradFull || g.Snap != 0 || len(call.rows) != n || call.x[0] != 1 {
		t.Fatalf("full gradient: %+v over %v at %v, want every row at the snapshot", g, call.rows, call.x)
	}
	g = run(dense(1, 2, 2)).Send
	if g.Kind != GradBatch || g.Snap != -1 || len(q.calls) != 2 {
		t.Fatalf("before the activation: %+v, %d calls, want a plain gradient", g, len(q.calls))
	}
	if _, err := w.Step(WorkerEvent{Kind: WorkerReply, Reply: &Reply{Kind: ReplyActivate, T: 5}}); err == nil {
		t.Fatal("the activation of a snapshot never sent was accepted")
	}
	run(&Reply{Kind: ReplyActivate, T: 0})
	g = run(dense(2, 3, 5)).Send
	a, b := q.calls[len(q.calls)-2], q.calls[len(q.calls)-1]
	if g.Kind != GradBatch || g.Snap != 0 || !slices.Equal(a.rows, b.rows) || a.x[0] != 3 || b.x[0] != 1 {
		t.Fatalf("difference: %+v from %v at %v and %v at %v", g, a.rows, a.x, b.rows, b.x)
	}
	// f(x) - f(x~) for the quadratic is x - x~ on every row.
	if g.Dense[0] != 2 || g.Dense[1] != 4 {
		t.Fatalf("difference %v, want x - x~ = [2 4]", g.Dense)
	}
}

// TestWorkerLeave: a worker that asked to leave applies replies but
// computes and sends nothing until its stop; and a finished computation
// it did not ask for is an error.
func TestWorkerLeave(t *testing.T) {
	w := newTestWorker(t, WorkerConfig{Worker: 1, Dim: 1, Rows: 4, Batch: 1})
	if _, err := w.Step(WorkerEvent{Kind: WorkerComputed}); err == nil {
		t.Fatal("a computation that was not asked for was accepted")
	}
	stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: dense(0, 1)})
	w.Leave()
	w.Compute((&quadGrad{}).f)
	if rd := stepW(t, w, WorkerEvent{Kind: WorkerComputed}); rd.Send != nil || rd.Compute {
		t.Fatalf("leaving: %+v", rd)
	}
	if rd := stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: dense(1, 2)}); rd.Send != nil || rd.Compute || w.X()[0] != 2 {
		t.Fatalf("leaving: %+v, x %v", rd, w.X())
	}
	if rd := stepW(t, w, WorkerEvent{Kind: WorkerReply, Reply: &Reply{Kind: ReplyStop, Base: -2}}); !rd.Stop || rd.StopBase != -2 {
		t.Fatalf("stop: %+v", rd)
	}
}

// netRun is an in-memory network of a master and P real workers
// delivering messages in random order (deterministic for the seed), for
// TestStateRestore's checkpoint in mid-run. The protocol tests with
// timing, reordering, drops and leaves run on package memnet.
type netRun struct {
	m        *Master
	ws       []*Worker
	inbox    [][]Reply
	gone     []bool
	flight   []*Grad
	q        []*quadGrad
	released int // replies a departure released
	// stopAt ends run at that update (0: when the master stops); log,
	// if set, sees every event given to the master and its Ready.
	stopAt  int64
	log     func(Event, Ready)
	started bool
}

func newNetRun(t *testing.T, cfg MasterConfig, batch int) *netRun {
	t.Helper()
	m, err := NewMaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	P := cfg.Workers
	r := &netRun{m: m, ws: make([]*Worker, P+1), inbox: make([][]Reply, P+1), gone: make([]bool, P+1), q: make([]*quadGrad, P+1)}
	for w := 1; w <= P; w++ {
		r.ws[w] = newTestWorker(t, WorkerConfig{Worker: w, Dim: len(cfg.X0), Rows: 20, Batch: batch, Seed: uint64(w), Pipeline: cfg.Pipeline, VR: cfg.VR != nil})
		r.q[w] = &quadGrad{}
	}
	return r
}

func (r *netRun) deliver(rd Ready) {
	for _, rp := range rd.Replies {
		if rp.Kind == ReplyStop || r.gone[rp.Worker] {
			continue
		}
		rp.Dense, rp.Idx, rp.Val = slices.Clone(rp.Dense), slices.Clone(rp.Idx), slices.Clone(rp.Val)
		r.inbox[rp.Worker] = append(r.inbox[rp.Worker], rp)
	}
}

// read runs worker w on its oldest reply until it waits again.
func (r *netRun) read(t *testing.T, w int) {
	t.Helper()
	rp := r.inbox[w][0]
	r.inbox[w] = r.inbox[w][1:]
	rd := stepW(t, r.ws[w], WorkerEvent{Kind: WorkerReply, Reply: &rp})
	for {
		if rd.Send != nil {
			g := *rd.Send
			g.Dense = slices.Clone(g.Dense)
			r.flight = append(r.flight, &g)
		}
		if !rd.Compute {
			return
		}
		r.ws[w].Compute(r.q[w].f)
		rd = stepW(t, r.ws[w], WorkerEvent{Kind: WorkerComputed, Ns: 1})
	}
}

// leave takes worker w out: its messages in flight are lost.
func (r *netRun) leave(t *testing.T, w int) {
	t.Helper()
	r.gone[w] = true
	r.inbox[w] = nil
	r.flight = slices.DeleteFunc(r.flight, func(g *Grad) bool { return g.Worker == w })
	ev := Event{Kind: EventLeave, Worker: w}
	rd, err := r.m.Step(ev)
	if err != nil {
		t.Fatal(err)
	}
	if r.log != nil {
		r.log(ev, rd)
	}
	r.released += len(rd.Replies)
	r.deliver(rd)
}

// run goes on until the master stops; leaver leaves at the first moment
// from update leaveAt on when it has a gradient in flight (so that the
// others may be waiting for it), or 50 updates later. It fails on a
// stall.
func (r *netRun) run(t *testing.T, rng *rand.Rand, leaver int, leaveAt int64) {
	t.Helper()
	if !r.started {
		r.started = true
		r.deliver(r.m.Start())
	}
	for steps := 0; !r.m.Done(); steps++ {
		if r.stopAt > 0 && r.m.T() >= r.stopAt {
			return
		}
		if steps > 200000 {
			t.Fatalf("no progress at t=%d", r.m.T())
		}
		inFlight := slices.ContainsFunc(r.flight, func(g *Grad) bool { return g.Worker == leaver })
		if leaver > 0 && !r.gone[leaver] && r.m.T() >= leaveAt && (inFlight || r.m.T() >= leaveAt+50) {
			r.leave(t, leaver)
		}
		var ready []int
		for w := 1; w < len(r.ws); w++ {
			if len(r.inbox[w]) > 0 {
				ready = append(ready, w)
			}
		}
		if len(ready) == 0 && len(r.flight) == 0 {
			t.Fatalf("stalled at t=%d: nothing in flight and no reply to read", r.m.T())
		}
		if len(ready) > 0 && (len(r.flight) == 0 || rng.IntN(2) == 0) {
			r.read(t, ready[rng.IntN(len(ready))])
			continue
		}
		k := rng.IntN(len(r.flight))
		g := r.flight[k]
		r.flight = slices.Delete(r.flight, k, k+1)
		ev := Event{Kind: EventGrad, Grad: g, Now: int64(steps)}
		rd, err := r.m.Step(ev)
		if err != nil {
			t.Fatal(err)
		}
		if r.log != nil {
			r.log(ev, rd)
		}
		r.deliver(rd)
	}
}

// TestWorkerSnapshotClears: a sparse snapshot replaces the pending one
// exactly (zero off its entries), whether the buffer it lands in last held
// a sparse snapshot (cleared on its entries only), a dense one (cleared
// all) or nothing, through the activations that swap the buffers.
func TestWorkerSnapshotClears(t *testing.T) {
	const d = 40
	v := newWorkerVR(d, 10)
	dense := make([]float64, d)
	for j := range dense {
		dense[j] = float64(j + 1)
	}
	snaps := []Reply{
		{Kind: ReplySnapshot, T: 1, Idx: []int32{1, 5, 9}, Val: []float64{1, 5, 9}},
		{Kind: ReplySnapshot, T: 2, Idx: []int32{2, 5}, Val: []float64{-2, -5}},
		{Kind: ReplySnapshot, T: 3, Dense: dense},
		{Kind: ReplySnapshot, T: 4, Idx: []int32{7}, Val: []float64{7}},
		{Kind: ReplySnapshot, T: 5, Idx: []int32{3}, Val: []float64{3}},
		{Kind: ReplySnapshot, T: 6, Idx: []int32{}, Val: []float64{}},
	}
	for _, r := range snaps {
		if _, err := v.control(&r); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, d)
		if r.Dense != nil {
			copy(want, r.Dense)
		}
		for k, j := range r.Idx {
			want[j] = r.Val[k]
		}
		if !slices.Equal(v.pending, want) {
			t.Fatalf("snapshot %d: pending %v, want %v", r.T, v.pending, want)
		}
		if _, err := v.control(&Reply{Kind: ReplyActivate, T: r.T}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.active, want) || v.activeID != r.T {
			t.Fatalf("snapshot %d: active %v (id %d) after its activation", r.T, v.active, v.activeID)
		}
	}
}

// TestReplicaClears: a sparse reply leaves the copy exactly its entries
// (zero elsewhere) whatever came before it: a dense reply (cleared all),
// a sparse one (cleared on its entries), deltas and keyed replies set in
// place after either (listed too, or forgotten once the list outgrows d).
func TestReplicaClears(t *testing.T) {
	const d = 8
	m := NewReplica(d)
	want := make([]float64, d)
	ones := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	for i, r := range []Reply{
		{Kind: ReplySparse, T: 1, Idx: []int32{1, 3}, Val: []float64{1, 3}},
		{Kind: ReplyDelta, T: 2, Base: 1, Idx: []int32{5}, Val: []float64{5}},
		{Kind: ReplyKeyed, T: 3, Idx: []int32{6, 7}, Val: []float64{6, 7}},
		{Kind: ReplySparse, T: 4, Idx: []int32{2}, Val: []float64{2}},
		{Kind: ReplyDense, T: 5, Dense: ones},
		{Kind: ReplySparse, T: 6, Idx: []int32{0}, Val: []float64{-1}},
		{Kind: ReplyKeyed, T: 7, Idx: []int32{0, 1, 2, 3, 4, 5, 6, 7}, Val: ones},
		{Kind: ReplyKeyed, T: 8, Idx: []int32{4}, Val: []float64{9}}, // the list passes d: forgotten
		{Kind: ReplySparse, T: 9, Idx: []int32{7}, Val: []float64{-7}},
	} {
		if err := m.Apply(&r); err != nil {
			t.Fatal(err)
		}
		switch r.Kind {
		case ReplyDense:
			copy(want, r.Dense)
		case ReplySparse:
			clear(want)
			fallthrough
		default:
			for k, j := range r.Idx {
				want[j] = r.Val[k]
			}
		}
		if !slices.Equal(m.X, want) || m.T != r.T {
			t.Fatalf("reply %d (%v): x %v at %d, want %v at %d", i, r.Kind, m.X, m.T, want, r.T)
		}
	}
}
