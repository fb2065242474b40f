package ranks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// denseMaxDim is the largest dimension for which workers compute the
// gradient into a dense buffer; above it they accumulate it sparsely and
// send it sparse unless that is larger.
const denseMaxDim = 2048

// runWorker takes part in a run as a worker. Cancelling interrupt (a
// signal) stops it at once during the setup; during training it asks the
// master to let it leave and stops when the master agrees, or, if the
// master has already stopped the run, serves the evaluation first.
func runWorker(interrupt context.Context, c *comm.Comm, cfg *Config) error {
	ctx := context.WithoutCancel(interrupt)
	s, err := workerSetup(interrupt, c, cfg)
	if err != nil {
		return phase("setup", err)
	}
	contribute := !cfg.Replicate || c.Rank() == 1
	if err := workerServe(interrupt, c, cfg, s, contribute); err != nil {
		return phase("estimate L", err)
	}
	return workerRun(ctx, interrupt, c, cfg, s, contribute)
}

// workerRun trains, then serves the evaluation the master's stop asks for.
func workerRun(ctx, interrupt context.Context, c *comm.Comm, cfg *Config, s *shard, contribute bool) error {
	base, err := workerTrain(ctx, interrupt, c, cfg, s)
	switch {
	case err != nil:
		return phase("train", err)
	case base == stopLeft:
		return fmt.Errorf("ranks: rank %d left the run: %w", c.Rank(), context.Cause(interrupt))
	case base == stopEvalP2P:
		return phase("evaluate", workerServeP2P(ctx, c, cfg, s, contribute))
	}
	return phase("evaluate", workerServe(ctx, c, cfg, s, contribute))
}

// wantKeys reports whether the worker sends keys (Config.Pull): never for
// --pull all or K-class shards (whose x has K blocks per feature), always
// for --pull keys, and with auto for the sparse gradients of d >
// denseMaxDim.
func wantKeys(cfg *Config, s *shard) bool {
	switch {
	case cfg.Pull == algo.PullAll || s.mc.K > 0:
		return false
	case cfg.Pull == algo.PullKeys:
		return true
	}
	return s.d > denseMaxDim
}

// gradComputer computes one worker's mini-batch gradients.
type gradComputer struct {
	loss   kernels.Loss
	s      *shard
	dense  []float64
	acc    *kernels.SparseAcc
	sparse kernels.SparseVec
	multi  *multiGrad // K-class shards (computeMulti)
	// With keyed pull: local holds the recent batches whose keys were
	// asked for in local form, for sparse gradients (acc set); ks gives
	// the keys otherwise.
	local *localBatches
	ks    *algo.KeySet
	// fg computes svrg's full gradient over the shard (full) when the
	// sparse path is in use and d is at most the shard's nonzeros: three
	// passes (margins, derivatives, the transposed product into a dense
	// vector), which beat the sparse accumulator row by row there.
	fg *kernels.FullGrad
}

func newGradComputer(cfg *Config, s *shard) *gradComputer {
	g := &gradComputer{loss: cfg.Loss, s: s, dense: make([]float64, s.d)}
	if s.d > denseMaxDim && s.mc.K == 0 {
		g.acc = kernels.NewSparseAcc(s.d)
	}
	if g.acc != nil && s.mc.K == 0 && int64(s.d) <= s.a.Indptr[s.a.Rows] {
		g.fg = kernels.NewFullGrad(kernels.Matrix{CSR: s.a}, s.y, 1)
	}
	switch {
	case !wantKeys(cfg, s):
	case g.acc != nil:
		g.local = newLocalBatches(s.d)
	default:
		g.ks = algo.NewKeySet(s.d)
	}
	return g
}

// keys returns the keys of a batch of the shard (algo.KeyFunc), and with
// local keeps the batch in local form for when its gradient is computed.
func (gc *gradComputer) keys(rows []int) []int32 {
	if gc.local != nil {
		return gc.local.add(gc.s.a, gc.s.y, rows)
	}
	return gc.ks.Keys(gc.s.a.Indptr, gc.s.a.Indices, rows)
}

// compute fills out with the gradient and loss over rows at x.
func (gc *gradComputer) compute(rows []int, x []float64, out *algo.Grad) {
	out.Rows = len(rows)
	out.Dense, out.Idx, out.Val = nil, nil, nil
	if gc.s.mc.K > 0 {
		gc.computeMulti(rows, x, out)
		return
	}
	if gc.acc == nil {
		out.Loss = kernels.GradBatchCSR(gc.loss, gc.s.a, gc.s.y, rows, x, gc.dense)
		out.Dense = gc.dense
		return
	}
	if lb := gc.local.find(gc.s.a, rows); lb != nil { // gc.local may be nil
		l := gc.local
		l.xa = grow(l.xa, len(lb.Keys))
		kernels.Gather(lb.Keys, x, l.xa)
		gc.onLocal(lb, l.xa, nil, out)
		return
	}
	out.Loss = gc.acc.GradBatchCSR(gc.loss, gc.s.a, gc.s.y, rows, x, &gc.sparse)
	gc.sparseOrDense(gc.sparse.Idx, gc.sparse.Val, out)
}

// full computes svrg's full gradient over the shard (algo.WorkerConfig.Full:
// rows are all of its rows) with fg when there is one, else as compute.
// The mean loss and gradient are those of compute up to rounding (fg sums
// the unscaled terms and scales once); the gradient goes sparse, its
// nonzeros, when that is smaller.
func (gc *gradComputer) full(rows []int, x []float64, out *algo.Grad) {
	if gc.fg == nil || len(rows) != gc.s.a.Rows {
		gc.compute(rows, x, out)
		return
	}
	out.Rows = len(rows)
	out.Dense, out.Idx, out.Val = nil, nil, nil
	out.Loss = gc.fg.Eval(gc.loss, x, gc.dense)
	nz := 0
	for _, g := range gc.dense {
		if g != 0 {
			nz++
		}
	}
	if 10*nz >= 8*gc.s.d {
		out.Dense = gc.dense
		return
	}
	sv := &gc.sparse
	sv.Idx, sv.Val = slices.Grow(sv.Idx[:0], nz), slices.Grow(sv.Val[:0], nz)
	for j, g := range gc.dense {
		if g != 0 {
			sv.Idx, sv.Val = append(sv.Idx, int32(j)), append(sv.Val, g)
		}
	}
	out.Idx, out.Val = sv.Idx, sv.Val
}

// diff computes svrg's difference over rows at x and snap (algo.DiffFunc)
// when the batch is held in local form, on its keys (onLocal).
func (gc *gradComputer) diff(rows []int, x, snap []float64, out *algo.Grad) bool {
	lb := gc.local.find(gc.s.a, rows)
	if lb == nil {
		return false
	}
	l := gc.local
	l.xa = grow(l.xa, len(lb.Keys))
	kernels.Gather(lb.Keys, x, l.xa)
	gc.onLocal(lb, l.xa, snap, out)
	return true
}

// onKeys computes rows' gradient, or with snap svrg's difference, from x on
// the keyed reply's entries (algo.OnKeysFunc) when the batch is held in
// local form with exactly those keys: xk is then its x in local order, and
// nothing is gathered.
func (gc *gradComputer) onKeys(rows []int, keys []int32, xk, snap []float64, out *algo.Grad) bool {
	lb := gc.local.find(gc.s.a, rows)
	if lb == nil || !slices.Equal(lb.Keys, keys) {
		return false
	}
	gc.onLocal(lb, xk, snap, out)
	return true
}

// onLocal computes the gradient of the local batch lb at xa (x on its
// keys), or with snap svrg's difference, both gradients on its keys in one
// pass, subtracted in place: the entries are those of two compute calls
// (the same keys, each gradient bit for bit), so is their difference.
func (gc *gradComputer) onLocal(lb *algo.LocalBatch, xa, snap []float64, out *algo.Grad) {
	l, k := gc.local, len(lb.Keys)
	out.Rows = lb.M.Rows
	out.Dense, out.Idx, out.Val = nil, nil, nil
	l.ga = grow(l.ga, k)
	if snap == nil {
		out.Loss = kernels.GradBatchLocal(gc.loss, &lb.M, lb.Y, xa, l.ga)
		gc.sparseOrDense(lb.Keys, l.ga, out)
		return
	}
	l.xb, l.gb = grow(l.xb, k), grow(l.gb, k)
	kernels.Gather(lb.Keys, snap, l.xb)
	out.Loss = kernels.GradDiffLocal(gc.loss, &lb.M, lb.Y, xa, l.xb, l.ga, l.gb)
	gb := l.gb[:k]
	for p, g := range l.ga {
		l.ga[p] = g - gb[p]
	}
	gc.sparseOrDense(lb.Keys, l.ga, out)
}

// sparseOrDense sends the sparse gradient (idx, val) as it is, or dense
// when that is smaller.
func (gc *gradComputer) sparseOrDense(idx []int32, val []float64, out *algo.Grad) {
	if 10*len(idx) < 8*gc.s.d {
		out.Idx, out.Val = idx, val
		return
	}
	clear(gc.dense)
	for k, j := range idx {
		gc.dense[j] = val[k]
	}
	out.Dense = gc.dense
}

// localBatches keeps the last few batches whose keys a worker sent, in
// local form (algo.LocalBatch), so that their gradients are computed on
// their keys. A batch is found by its rows and matrix (an adopted shard
// is a new matrix: its batches start afresh); one not found (a refresh
// part, the batches drawn before an adoption) is computed the general way.
// With pipelining the keys go two batches ahead, and an svrg refresh in
// between asks for one batch's keys twice: localCap covers both, and the
// batch of the last gradient is never reused (its keys are that
// gradient's Idx until the next computation).
type localBatches struct {
	z              *algo.Localizer
	b              [localCap]algo.LocalBatch
	seq            [localCap]uint64 // when b[i] was built (0: never)
	n              uint64
	pinned         int // the batch of the last gradient, or -1
	xa, xb, ga, gb []float64
}

const localCap = 4

func newLocalBatches(d int) *localBatches {
	return &localBatches{z: algo.NewLocalizer(d), pinned: -1}
}

// add builds rows of a in local form, in place of the oldest batch held
// but the pinned one, and returns its keys.
func (l *localBatches) add(a *kernels.CSR, y []float64, rows []int) []int32 {
	k := -1
	for i := range l.b {
		if i != l.pinned && (k < 0 || l.seq[i] < l.seq[k]) {
			k = i
		}
	}
	l.n++
	l.seq[k] = l.n
	l.z.Build(a, y, rows, &l.b[k])
	return l.b[k].Keys
}

// find returns the newest batch held for these rows of a and pins it, or
// nil (and pins none; nil too for a nil l).
func (l *localBatches) find(a *kernels.CSR, rows []int) *algo.LocalBatch {
	if l == nil {
		return nil
	}
	k := -1
	for i := range l.b {
		if l.seq[i] > 0 && (k < 0 || l.seq[i] > l.seq[k]) && l.b[i].Matches(a, rows) {
			k = i
		}
	}
	l.pinned = k
	if k < 0 {
		return nil
	}
	return &l.b[k]
}

// grow returns s resliced to length n, reallocating only if cap(s) < n.
func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// workerTrain is the worker's socket loop around its state machine
// (algo.Worker): read a reply, step, compute, send — until the master says
// stop. The worker decides what to compute and send (pipelining and svrg
// included); this loop does the I/O, computes with the shard's gradient
// function, and measures the time waited and spent computing.
//
// It returns the Base of the master's stop (stopRounds, stopEvalP2P or
// stopLeft). Once interrupt is cancelled it sends a leave notice instead
// of computing its next gradient and waits for the stop.
func workerTrain(ctx, interrupt context.Context, c *comm.Comm, cfg *Config, s *shard) (int64, error) {
	rank := c.Rank()
	wc := algo.WorkerConfig{Worker: rank, Dim: s.d, Rows: s.a.Rows, Batch: cfg.Batch,
		Seed: cfg.Seed*1_000_003 + uint64(rank), Pipeline: cfg.Pipeline, VR: cfg.Method == solver.MethodSVRG}
	var gc *gradComputer
	if wantKeys(cfg, s) {
		// Keyed pull: the keys of a batch of the shard in use (an
		// adopted shard appends its rows to the worker's own).
		wc.Keys = func(rows []int) []int32 { return gc.keys(rows) }
		wc.OnKeys = func(rows []int, keys []int32, xk, snap []float64, out *algo.Grad) bool {
			return gc.onKeys(rows, keys, xk, snap, out)
		}
	}
	if wc.VR {
		wc.Full = func(rows []int, x []float64, out *algo.Grad) { gc.full(rows, x, out) }
	}
	w, err := algo.NewWorker(wc)
	if err != nil {
		return 0, err
	}
	gc = newGradComputer(cfg, s)
	actx, stopAdopter := context.WithCancel(ctx)
	defer stopAdopter()
	adopt := startAdopter(actx, c, cfg, s)
	slow := cfg.Slow[rank]
	jrng := rand.New(rand.NewPCG(cfg.Seed, uint64(rank)))
	var sl sleeper
	var in, out comm.Msg
	var reply algo.Reply
	var keys keyHist // the key lists sent, which replies and gradients name

	// adopted swaps in the lost shards the master handed over (adopt.go).
	adopted := func() error {
		select {
		case a := <-adopt.ready:
			if a.err != nil {
				return a.err
			}
			w.Adopt(a.s.a.Rows, cfg.Seed*1_000_003+uint64(rank)+uint64(a.from)<<32)
			gc = newGradComputer(cfg, a.s)
			return nil
		default:
			return nil
		}
	}
	// compute runs the worker's computation and returns the time it is
	// accounted (with --slow, --dilate and --jitter's sleeps).
	compute := func() int64 {
		t0 := time.Now()
		w.ComputeDiff(gc.compute, gc.diff)
		el := time.Since(t0)
		extra := time.Duration(0)
		if slow > 1 {
			extra = time.Duration(float64(el) * (slow - 1))
		}
		if cfg.Dilate > 1 {
			extra = time.Duration(float64(el+extra)*cfg.Dilate) - el
		}
		if cfg.Jitter > 0 {
			extra += time.Duration(jrng.Int64N(int64(cfg.Jitter)) * int64(max(1, cfg.Dilate)))
		}
		if extra > 0 {
			sl.sleep(extra)
		}
		return int64(el + extra)
	}

	var rd algo.WorkerReady
	for {
		if rd.Send != nil {
			encodeGrad(&out, rd.Send, s.d, &keys)
			if err := c.Send(ctx, 0, tagGrad, &out); err != nil {
				return 0, err
			}
		}
		var ev algo.WorkerEvent
		switch {
		case rd.Stop:
			return rd.StopBase, nil
		case rd.Compute && interrupt.Err() != nil:
			// Leave: a notice instead of the next gradient, then wait
			// for the master's stop.
			if err := c.Send(ctx, 0, tagGrad, &comm.Msg{Ints: []int64{leaveNotice}}); err != nil {
				return 0, err
			}
			w.Leave()
			rd = algo.WorkerReady{}
			continue
		case rd.Compute:
			if err := adopted(); err != nil {
				return 0, err
			}
			ev = algo.WorkerEvent{Kind: algo.WorkerComputed, Ns: compute()}
		default:
			t0 := time.Now()
			if err := c.Recv(ctx, 0, tagModel, &in); err != nil {
				return 0, err
			}
			if err := decodeReply(&in, &reply, s.d, &keys); err != nil {
				return 0, err
			}
			ev = algo.WorkerEvent{Kind: algo.WorkerReply, Reply: &reply, Ns: int64(time.Since(t0))}
		}
		if rd, err = w.Step(ev); err != nil {
			return 0, err
		}
	}
}
