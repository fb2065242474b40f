package ranks

import (
	"context"
	"fmt"
	"math/rand/v2"
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
}

func newGradComputer(cfg *Config, s *shard) *gradComputer {
	g := &gradComputer{loss: cfg.Loss, s: s, dense: make([]float64, s.d)}
	if s.d > denseMaxDim && s.mc.K == 0 {
		g.acc = kernels.NewSparseAcc(s.d)
	}
	return g
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
	out.Loss = gc.acc.GradBatchCSR(gc.loss, gc.s.a, gc.s.y, rows, x, &gc.sparse)
	gc.sparseOrDense(out)
}

// sparseOrDense sends the sparse gradient in gc.sparse as it is, or dense
// when that is smaller.
func (gc *gradComputer) sparseOrDense(out *algo.Grad) {
	if 10*len(gc.sparse.Idx) < 8*gc.s.d {
		out.Idx, out.Val = gc.sparse.Idx, gc.sparse.Val
		return
	}
	clear(gc.dense)
	for k, j := range gc.sparse.Idx {
		gc.dense[j] = gc.sparse.Val[k]
	}
	out.Dense = gc.dense
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
		ks := algo.NewKeySet(s.d)
		wc.Keys = func(rows []int) []int32 { return ks.Keys(gc.s.a.Indptr, gc.s.a.Indices, rows) }
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
		w.Compute(gc.compute)
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
			encodeGrad(&out, rd.Send, s.d)
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
			if err := decodeReply(&in, &reply, s.d); err != nil {
				return 0, err
			}
			ev = algo.WorkerEvent{Kind: algo.WorkerReply, Reply: &reply, Ns: int64(time.Since(t0))}
		}
		if rd, err = w.Step(ev); err != nil {
			return 0, err
		}
	}
}
