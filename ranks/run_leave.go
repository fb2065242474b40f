package ranks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/solver"
)

// The master's side of workers leaving a run (the state machine's part is
// Master.Leave): noticing a departure, logging it, going on with the
// others or giving up below Config.MinWorkers, and evaluating the trace
// without the workers that left (the master reads their shards itself).

// Protocol additions:
//
//   - leave notice (worker -> master, tagGrad): Ints {leaveNotice}. A worker
//     stopped by a signal sends it instead of its next gradient; the master
//     answers with a stop of kind stopLeft and forgets the worker, or, if
//     it has already stopped the run, ignores it (the worker then gets an
//     ordinary stop and serves the evaluation as usual).
//   - the stop reply's Base says what follows: stopRounds (the evaluation
//     rounds over collectives), stopEvalP2P (evaluation by point-to-point
//     messages on tagEval, because some worker is gone) or stopLeft.
//   - evaluation request (master -> worker, tagEval): Ints {1}, Dense x|avg;
//     the worker answers on tagEval with Dense {sum loss(x), sum loss(avg)}
//     over its shard; Ints {0} ends the evaluation.
const (
	tagEval     = 4
	leaveNotice = -1

	stopRounds  = 0
	stopEvalP2P = 1
	stopLeft    = 2
)

// LostWorker is a worker that left the run: when (t, seconds into
// training) and why.
type LostWorker struct {
	Rank   int     `json:"rank"`
	T      int64   `json:"t"`
	TrainS float64 `json:"train_s"`
	Phase  string  `json:"phase"` // "training" or "evaluation" (after the run)
	Reason string  `json:"reason"`
}

// lostInEval records worker w lost during the evaluation of the trace.
func (r *masterRun) lostInEval(w int, why error) {
	r.lost = append(r.lost, LostWorker{Rank: w, T: r.m.T(), TrainS: float64(r.trainNs) / 1e9, Phase: "evaluation", Reason: why.Error()})
}

// ErrTooFewWorkers is returned when fewer than Config.MinWorkers workers
// remain; its *FewWorkersError exits 4 (lost peer).
var ErrTooFewWorkers = errors.New("ranks: too few workers left")

// FewWorkersError reports the run given up after losing workers.
type FewWorkersError struct {
	Left, Min int
	Last      error // the last departure
}

func (e *FewWorkersError) Error() string {
	return fmt.Sprintf("%v: %d left, --min-workers is %d (last: %v)", ErrTooFewWorkers, e.Left, e.Min, e.Last)
}
func (e *FewWorkersError) Unwrap() []error { return []error{ErrTooFewWorkers, e.Last} }

// ExitCode is 4, the lost-peer code.
func (e *FewWorkersError) ExitCode() int { return 4 }

// departed reports the worker whose departure err is (a lost or closed
// link of a peer), or false for any other error.
func (r *masterRun) departed(err error) (int, bool) {
	var oe *comm.OpError
	if !errors.As(err, &oe) || oe.Peer < 1 || oe.Peer >= r.c.Size() || errors.Is(err, comm.ErrClosed) {
		return 0, false
	}
	return oe.Peer, true
}

// sendReady sends rd's replies, skipping workers that have left; a worker
// found gone while sending leaves the run once every reply is out (Leave
// would invalidate rd's replies).
func (r *masterRun) sendReady(ctx context.Context, rd algo.Ready, out *comm.Msg) error {
	var lost []int
	var why []error
	for i := range rd.Replies {
		rp := &rd.Replies[i]
		if r.m.Gone(rp.Worker) {
			continue
		}
		if !r.vrSnap.encode(out, rp, r.d) {
			encodeReply(out, rp, r.d, &r.keys[rp.Worker])
		}
		if rp.Kind == algo.ReplyStop {
			out.Ints[2] = r.stopBase(rp)
		}
		if err := r.c.Send(ctx, rp.Worker, tagModel, out); err != nil {
			if w, ok := r.departed(err); ok && w == rp.Worker {
				lost, why = append(lost, w), append(why, err)
				continue
			}
			return err
		}
	}
	for i, w := range lost {
		if err := r.leave(ctx, w, why[i], out); err != nil {
			return err
		}
	}
	return nil
}

// stopBase is the Base of a stop reply: what the worker does next.
func (r *masterRun) stopBase(rp *algo.Reply) int64 {
	switch {
	case rp.Base == stopLeft:
		return stopLeft
	case len(r.lost) > 0:
		return stopEvalP2P
	}
	return stopRounds
}

// leave takes worker w out of the run because of why (a departure, or a
// leave notice), logs it, and sends the replies its departure released. It
// fails when fewer than MinWorkers workers remain.
func (r *masterRun) leave(ctx context.Context, w int, why error, out *comm.Msg) error {
	if r.m.Gone(w) {
		r.c.Forget(w)
		return nil
	}
	r.c.Forget(w)
	lw := LostWorker{Rank: w, T: r.m.T(), TrainS: time.Since(r.start).Seconds(), Phase: "training", Reason: why.Error()}
	r.lost = append(r.lost, lw)
	rd, err := r.m.Step(algo.Event{Kind: algo.EventLeave, Now: r.now(), Worker: w})
	if err != nil {
		return err
	}
	left, minW := r.m.Active(), max(r.cfg.MinWorkers, 1)
	r.note("worker %d left at t=%d (%.3f s into training): %s; %d of %d workers remain",
		w, lw.T, lw.TrainS, lw.Reason, left, r.c.Size()-1)
	if left < minW {
		// Stop the run; the master still evaluates and writes what was
		// trained (status "failed"), then fails with this error.
		r.giveUp = &FewWorkersError{Left: left, Min: minW, Last: why}
		return nil
	}
	if err := r.handOver(ctx, w); err != nil {
		return err
	}
	if err := r.sendReady(ctx, rd, out); err != nil {
		return err
	}
	if rd.Snapshot {
		return r.snapshot()
	}
	return nil
}

// errLeaveNotice is the reason recorded for a worker that asked to leave.
var errLeaveNotice = errors.New("it was stopped by a signal and asked to leave")

// isLeaveNotice reports whether a gradient message is a leave notice.
func isLeaveNotice(m *comm.Msg) bool { return len(m.Ints) == 1 && m.Ints[0] == leaveNotice }

// leaveOnNotice handles worker w's leave notice: it leaves, and is told so.
func (r *masterRun) leaveOnNotice(ctx context.Context, w int, out *comm.Msg) error {
	if r.m.Gone(w) {
		return nil
	}
	encodeReply(out, &algo.Reply{Worker: w, Kind: algo.ReplyStop, T: r.m.T(), Base: stopLeft}, r.d, nil)
	if err := r.c.Send(ctx, w, tagModel, out); err != nil {
		if _, ok := r.departed(err); !ok {
			return err
		}
	}
	return r.leave(ctx, w, errLeaveNotice, out)
}

// workerData reads what worker w (of P) trains on: its byte-range shard,
// or the whole file with Replicate.
func workerData(cfg *Config, w, P int) (*data.Dataset, error) {
	if cfg.Replicate {
		return data.Read(cfg.Data, data.Options{Features: cfg.Features})
	}
	return data.ReadShard(cfg.Data, w-1, P, data.Options{Features: cfg.Features})
}

// evaluateWithout evaluates the trace when some workers have left: the
// others answer point-to-point requests for their shards' loss sums, and
// the master reads the shards of those that left (and of any that leaves
// during the evaluation) and sums them itself; alone, it reads every
// shard.
func (r *masterRun) evaluateWithout(ctx context.Context, path string, f *facts, phiStar float64, h *heldOut, alone bool) ([]TraceRow, []float64, error) {
	cfg, c := r.cfg, r.c
	P := c.Size() - 1
	local := make([]*shard, P+1) // shards the master sums itself
	live := make([]bool, P+1)    // workers that answer requests
	load := func(w int) error {
		live[w] = false
		if local[w] != nil || (cfg.Replicate && w != 1) {
			return nil // with Replicate, worker 1's copy is the data set
		}
		ds, err := workerData(cfg, w, P)
		if err != nil {
			return fmt.Errorf("ranks: evaluating without worker %d: %w", w, err)
		}
		local[w], err = newShard(cfg, ds, factsOf(f))
		return err
	}
	for w := 1; w <= P; w++ {
		live[w] = !alone && !r.m.Gone(w)
		if !live[w] {
			if err := load(w); err != nil {
				return nil, nil, err
			}
		}
	}
	drop := func(w int, err error) error {
		c.Forget(w)
		r.lostInEval(w, err)
		r.note("worker %d left during the evaluation (%v); the master reads its shard", w, err)
		return load(w)
	}
	var req, ans comm.Msg
	var scratch []float64
	addLocal := func(s *shard, v, res []float64) {
		if s == nil {
			return
		}
		if len(scratch) < s.a.Rows {
			scratch = make([]float64, s.a.Rows)
		}
		d := f.d
		l0, l1 := shardLossSums(cfg, s, v[:d], v[d:], scratch[:s.a.Rows])
		res[0] += l0
		res[1] += l1
	}
	sums := func(v, res []float64) error {
		req.Ints, req.Dense = []int64{1}, v
		for w := 1; w <= P; w++ {
			if live[w] {
				if err := c.Send(ctx, w, tagEval, &req); err != nil {
					if err := drop(w, err); err != nil {
						return err
					}
				}
			}
		}
		// In rank order, so that the sums do not depend on timing.
		res[0], res[1] = 0, 0
		for w := 1; w <= P; w++ {
			if !live[w] {
				addLocal(local[w], v, res)
				continue
			}
			err := c.Recv(ctx, w, tagEval, &ans)
			if err == nil && len(ans.Dense) != 2 {
				err = fmt.Errorf("ranks: worker %d answered an evaluation with %d values", w, len(ans.Dense))
			}
			if err != nil {
				if err := drop(w, err); err != nil {
					return err
				}
				addLocal(local[w], v, res)
				continue
			}
			res[0] += ans.Dense[0]
			res[1] += ans.Dense[1]
		}
		return nil
	}
	rows, model, err := evaluateTraceBy(cfg, path, f, phiStar, h, sums)
	end := comm.Msg{Ints: []int64{0}}
	for w := 1; w <= P; w++ {
		if live[w] {
			_ = c.Send(ctx, w, tagEval, &end)
		}
	}
	return rows, model, err
}

// workerServeP2P answers the master's point-to-point evaluation requests
// (see evaluateWithout) until it ends them.
func workerServeP2P(ctx context.Context, c *comm.Comm, cfg *Config, s *shard, contribute bool) error {
	d := s.d
	rows := make([]float64, s.a.Rows)
	var in comm.Msg
	out := comm.Msg{Dense: make([]float64, 2)}
	for {
		if err := c.Recv(ctx, 0, tagEval, &in); err != nil {
			return err
		}
		if len(in.Ints) != 1 || in.Ints[0] == 0 {
			return nil
		}
		if len(in.Dense) != 2*d {
			return fmt.Errorf("ranks: evaluation request of %d values, want %d", len(in.Dense), 2*d)
		}
		out.Dense[0], out.Dense[1] = 0, 0
		if contribute {
			out.Dense[0], out.Dense[1] = shardLossSums(cfg, s, in.Dense[:d], in.Dense[d:], rows)
		}
		if err := c.Send(ctx, 0, tagEval, &out); err != nil {
			return err
		}
	}
}

// note logs one of the master's notices.
func (r *masterRun) note(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "asyncmb: rank 0: "+format+"\n", args...)
	}
}

// BatchError is a mini-batch larger than a worker's shard: a usage error
// (exit code 2) found at setup, before training starts.
type BatchError struct {
	Batch, Rank int
	Rows        int64
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("ranks: --batch %d is larger than worker %d's shard of %d rows (use a smaller batch or fewer workers)", e.Batch, e.Rank, e.Rows)
}

// ExitCode is 2, a usage error.
func (e *BatchError) ExitCode() int { return 2 }

// checkBatch refuses a batch given by the user (Config.BatchSet) larger
// than the smallest worker's rows.
func checkBatch(cfg *Config, f *facts) error {
	for w := 1; w < len(f.rows) && cfg.BatchSet; w++ {
		if int64(cfg.Batch) > f.rows[w] {
			return &BatchError{Batch: cfg.Batch, Rank: w, Rows: f.rows[w]}
		}
	}
	return nil
}

// Run statuses (Summary.Status).
const (
	StatusComplete    = "complete"
	StatusInterrupted = "interrupted"
	StatusFailed      = "failed"
)

// OutputMode is the mode of every output file: results are meant to be
// read by the people and tools around a run (plots, liblinear-predict, a
// group's shared directory), and none of them holds anything secret (the
// job secret is never a flag, so the command line in the manifest does not
// carry it). The same mode for all, whatever the umask, so that no output
// is more or less readable than another.
const OutputMode = 0o644

// finish sets the summary's status from its stop reason if not set, and
// returns the model's file name: model for a complete run, model.partial
// otherwise.
func (s *Summary) finish() string {
	if s.Status == "" {
		s.Status = StatusComplete
		if s.StopReason == "interrupted" {
			s.Status = StatusInterrupted
		}
	}
	if s.Status == StatusComplete {
		return "model"
	}
	return "model.partial"
}

// evaluate evaluates the trace after the run: over collectives on the
// workers' shards when all are there, else point-to-point with the master
// reading the shards of those that left; a worker that leaves during the
// collective rounds leaves the others stuck in a collective, so the
// master then evaluates on its own.
//
// After a point-to-point evaluation (r.p2p) the workers have been let go:
// the rounds after it (the polish) run on the master's own copy of the
// data (smoothFunc).
func (r *masterRun) evaluate(ctx context.Context, path string, f *facts, phiStar float64, h *heldOut) ([]TraceRow, []float64, error) {
	if len(r.lost) > 0 {
		r.p2p = true
		return r.evaluateWithout(ctx, path, f, phiStar, h, false)
	}
	rows, model, err := evaluateTrace(ctx, r.c, r.cfg, path, f, phiStar, h)
	if err == nil {
		return rows, model, nil
	}
	w, ok := r.departed(err)
	if !ok {
		return nil, nil, err
	}
	r.lostInEval(w, err)
	r.note("worker %d left during the evaluation (%v); the master reads every shard", w, err)
	r.p2p = true
	return r.evaluateWithout(ctx, path, f, phiStar, h, true)
}

// smoothFunc is f and its gradient for the rounds after the evaluation:
// on the workers' shards, or, once they have been let go (r.p2p), on the
// whole data set, which the master then reads if it has not yet.
func (r *masterRun) smoothFunc(ctx context.Context, f *facts, err *error) solver.SmoothFunc {
	if !r.p2p {
		return shardSmooth(ctx, r.c, f.d, f.n, err)
	}
	if r.full == nil {
		if r.full, *err = loadFull(r.cfg, f); *err != nil {
			return func(x, g []float64) float64 { return math.NaN() }
		}
	}
	return r.full.Smooth
}

// onDeparture handles a receive error during training: a worker that left
// leaves the run; anything else fails it.
func (r *masterRun) onDeparture(ctx context.Context, err error, out *comm.Msg) error {
	w, ok := r.departed(err)
	if !ok {
		return err
	}
	return r.leave(ctx, w, err, out)
}

// onNotice handles the control messages that share the gradients' tag
// (join and leave notices); it reports whether in was one.
func (r *masterRun) onNotice(ctx context.Context, src int, in, out *comm.Msg) (bool, error) {
	switch {
	case isJoinNotice(in):
		return true, r.join(ctx, src, r.f, out)
	case isLeaveNotice(in):
		return true, r.leaveOnNotice(ctx, src, out)
	}
	return false, nil
}

// shardLossSums is the sum of the losses over shard s at x and at avg
// (as the estEval round computes it, K classes included).
func shardLossSums(cfg *Config, s *shard, x, avg, scratch []float64) (float64, float64) {
	if s.mc.K > 0 {
		return multiLossSum(s, x), multiLossSum(s, avg)
	}
	return lossSum(cfg.Loss, s, x, scratch), lossSum(cfg.Loss, s, avg, scratch)
}
