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
		return err
	}
	contribute := !cfg.Replicate || c.Rank() == 1
	if err := workerServe(interrupt, c, cfg, s, contribute); err != nil {
		return err
	}
	return workerRun(ctx, interrupt, c, cfg, s, contribute)
}

// workerRun trains, then serves the evaluation the master's stop asks for.
func workerRun(ctx, interrupt context.Context, c *comm.Comm, cfg *Config, s *shard, contribute bool) error {
	base, err := workerTrain(ctx, interrupt, c, cfg, s)
	switch {
	case err != nil:
		return err
	case base == stopLeft:
		return fmt.Errorf("ranks: rank %d left the run: %w", c.Rank(), context.Cause(interrupt))
	case base == stopEvalP2P:
		return workerServeP2P(ctx, c, cfg, s, contribute)
	}
	return workerServe(ctx, c, cfg, s, contribute)
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

// workerTrain is the worker's loop: read x, sample a mini-batch of the
// shard, compute the gradient, send it — until the master says stop. With
// Pipeline it computes the next gradient while the reply to the previous
// one is in flight.
//
// It returns the Base of the master's stop (stopRounds, stopEvalP2P or
// stopLeft). Once interrupt is cancelled it sends a leave notice instead
// of its next gradient and waits for the stop.
func workerTrain(ctx, interrupt context.Context, c *comm.Comm, cfg *Config, s *shard) (int64, error) {
	rank := c.Rank()
	model := algo.NewReplica(s.d)
	sampler := algo.NewSampler(s.a.Rows, cfg.Seed*1_000_003+uint64(rank))
	gc := newGradComputer(cfg, s)
	actx, stopAdopter := context.WithCancel(ctx)
	defer stopAdopter()
	adopt := startAdopter(actx, c, cfg, s)
	slow := cfg.Slow[rank]
	jrng := rand.New(rand.NewPCG(cfg.Seed, uint64(rank)))
	var sl sleeper
	var in, out comm.Msg
	var reply algo.Reply
	var g algo.Grad
	g.Worker, g.Snap = rank, -1
	var vr *workerVR
	if cfg.Method == solver.MethodSVRG {
		vr = newWorkerVR(s.d, s.a.Rows)
	}

	// recv waits for the next reply and applies it; it reports a stop.
	var base int64
	var recv func() (bool, error)
	recvNext := func() (bool, error) { return recv() }
	recv = func() (bool, error) {
		if err := c.Recv(ctx, 0, tagModel, &in); err != nil {
			return false, err
		}
		if err := decodeReply(&in, &reply, s.d); err != nil {
			return false, err
		}
		if vr != nil {
			if ctl, err := vr.control(&reply); ctl || err != nil {
				if err != nil {
					return false, err
				}
				return recvNext()
			}
		}
		if reply.Kind == algo.ReplyStop {
			base = reply.Base
			return true, nil
		}
		return false, model.Apply(&reply)
	}
	// leave sends a leave notice and waits for the master's stop.
	leave := func() (int64, error) {
		if err := c.Send(ctx, 0, tagGrad, &comm.Msg{Ints: []int64{leaveNotice}}); err != nil {
			return 0, err
		}
		for {
			stop, err := recv()
			if err != nil || stop {
				return base, err
			}
		}
	}
	// adopted swaps in the lost shards the master handed over (adopt.go).
	adopted := func() error {
		select {
		case a := <-adopt.ready:
			if a.err != nil {
				return a.err
			}
			sampler = algo.NewSampler(a.s.a.Rows, cfg.Seed*1_000_003+uint64(rank)+uint64(a.from)<<32)
			gc = newGradComputer(cfg, a.s)
			return nil
		default:
			return nil
		}
	}
	compute := func() {
		t0 := time.Now()
		g.TRead = model.T
		if vr != nil {
			vr.compute(gc, sampler.Next(cfg.Batch), model.X, &g)
		} else {
			gc.compute(sampler.Next(cfg.Batch), model.X, &g)
		}
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
		g.ComputeNs = int64(el + extra)
	}
	send := func() error {
		encodeGrad(&out, &g, s.d)
		return c.Send(ctx, 0, tagGrad, &out)
	}

	idle := time.Now()
	stop, err := recv()
	if err != nil || stop {
		return base, err
	}
	if cfg.Pipeline {
		g.IdleNs = int64(time.Since(idle))
		compute()
		if err := send(); err != nil {
			return base, err
		}
		for {
			if interrupt.Err() != nil {
				return leave()
			}
			if err := adopted(); err != nil {
				return base, err
			}
			g.IdleNs = 0
			compute()
			idle = time.Now()
			stop, err := recv()
			if err != nil || stop {
				return base, err
			}
			g.IdleNs = int64(time.Since(idle))
			if err := send(); err != nil {
				return base, err
			}
		}
	}
	for {
		if interrupt.Err() != nil {
			return leave()
		}
		if err := adopted(); err != nil {
			return base, err
		}
		g.IdleNs = int64(time.Since(idle))
		compute()
		if err := send(); err != nil {
			return base, err
		}
		idle = time.Now()
		stop, err := recv()
		if err != nil || stop {
			return base, err
		}
	}
}
