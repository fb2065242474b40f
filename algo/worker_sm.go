package algo

import (
	"errors"
	"fmt"
)

// GradFunc computes the mini-batch gradient and loss over rows of a
// worker's shard at x into out: it sets Rows, Loss, and Dense or Idx/Val
// (which may be the function's own buffers, valid until its next call).
type GradFunc func(rows []int, x []float64, out *Grad)

// DiffFunc computes svrg's difference over rows of a worker's shard, the
// gradient at x minus the one at the snapshot snap, into out, exactly as
// two calls of the worker's GradFunc and the subtraction of their results
// would (bit for bit; Loss the loss at x), and reports true; or it reports
// false, leaving out alone, and the two calls are made.
type DiffFunc func(rows []int, x, snap []float64, out *Grad) bool

// OnKeysFunc computes a batch's gradient (snap nil) or svrg's difference at
// the snapshot snap from x on keys alone (xk[p] = x at keys[p], the last
// keyed reply's entries), exactly as the GradFunc or DiffFunc would at the
// full x (bit for bit), and reports true; or it reports false, leaving out
// alone (keys are not the batch's, or it cannot), and the worker syncs its
// copy of x and calls those.
type OnKeysFunc func(rows []int, keys []int32, xk, snap []float64, out *Grad) bool

// WorkerConfig configures a worker's state machine.
type WorkerConfig struct {
	Worker   int    // its number, 1..P
	Dim      int    // d
	Rows     int    // rows of its shard (>= 1)
	Batch    int    // rows per mini-batch (>= 1)
	Seed     uint64 // the sampler's seed
	Pipeline bool   // see MasterConfig.Pipeline
	VR       bool   // solver.MethodSVRG: differences at the active snapshot (see VRConfig)
	// Keys, when set, makes the worker ask for keyed replies (keyed.go):
	// it returns the keys of a batch of the shard (sorted, within [0, d);
	// a KeySet's Keys over the shard, valid until the next call), and every
	// gradient sent carries those of the batch its reply will be used for.
	Keys KeyFunc
	// OnKeys, when set with Keys, computes on a keyed reply's entries in
	// place (see Replica's Defer): they are not written into the copy of
	// x when it succeeds.
	OnKeys OnKeysFunc
	// Full, when set, computes svrg's full gradient over the shard (rows
	// are all of its rows, in order) in place of the GradFunc: a kernel
	// for the whole shard may be faster than the mini-batch one.
	Full GradFunc
}

// WorkerEventKind says what happened to a worker.
type WorkerEventKind uint8

const (
	// WorkerReply: a reply from the master arrived (WorkerEvent.Reply),
	// after the worker waited WorkerEvent.Ns for it.
	WorkerReply WorkerEventKind = iota + 1
	// WorkerComputed: the computation asked for is done (Worker.Compute
	// ran); it took WorkerEvent.Ns, as the driver accounts it.
	WorkerComputed
)

// WorkerEvent is one input to a worker.
type WorkerEvent struct {
	Kind  WorkerEventKind
	Reply *Reply // WorkerReply (only read during Step)
	Ns    int64  // time waited (WorkerReply) or computing (WorkerComputed)
}

// WorkerReady is what the driver does after a Step, in this order: send
// Send to the master (if set); then compute (Compute: call Worker.Compute
// and Step with WorkerComputed), or stop (Stop: the master ended the
// worker's part, StopBase says what comes next), or else wait for the
// next reply.
type WorkerReady struct {
	// Send is the gradient to send: the worker's own, valid until the
	// next Compute.
	Send *Grad
	// Compute asks for the next gradient at the worker's copy of x,
	// version T (its batch is drawn when Compute runs).
	Compute  bool
	T        int64
	Stop     bool
	StopBase int64
}

// Worker is a worker's side of the algorithm as a pure state machine: its
// copy of x (Replica), its sampler and, with svrg, its snapshots. It
// decides what to compute and what to send; the driver does the I/O and
// the computing, and measures the time. With pipelining it computes the
// next gradient at the x it holds while the reply to the last one is in
// flight, and sends it when that reply arrives (the master's first reply
// serves two gradients). Not safe for concurrent use.
type Worker struct {
	cfg   WorkerConfig
	model *Replica
	ahead *Ahead // the sampler's batches, drawn ahead for their keys
	vr    *workerVR
	g     Grad
	rows  int   // rows of the shard (grown by Adopt)
	idle  int64 // time waited since the last gradient was computed
	// computing: a Compute is asked for and its WorkerComputed not yet
	// seen; held: a computed gradient waits for a reply (pipelining);
	// sent: gradients sent so far.
	computing, held bool
	sent            int64
	leaving         bool
	stopped         bool
}

// NewWorker checks cfg and builds the worker, waiting for its first x.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	switch {
	case cfg.Worker < 1:
		return nil, fmt.Errorf("algo: worker number %d, want >= 1", cfg.Worker)
	case cfg.Dim < 1 || cfg.Rows < 1 || cfg.Batch < 1:
		return nil, fmt.Errorf("algo: worker with d=%d, %d rows, batch %d", cfg.Dim, cfg.Rows, cfg.Batch)
	}
	w := &Worker{cfg: cfg, model: NewReplica(cfg.Dim), ahead: NewAhead(NewSampler(cfg.Rows, cfg.Seed), cfg.Batch), rows: cfg.Rows}
	w.model.Defer = cfg.Keys != nil && cfg.OnKeys != nil
	w.g.Worker, w.g.Snap = cfg.Worker, -1
	if cfg.VR {
		w.vr = newWorkerVR(cfg.Dim, cfg.Rows)
	}
	return w, nil
}

// X is the worker's copy of x (read only), at version T: current on the
// keys of the last keyed reply, or everywhere after a full one.
func (w *Worker) X() []float64 {
	w.model.Sync()
	return w.model.X
}

// T is the version of the worker's copy of x (-1 before the first reply).
func (w *Worker) T() int64 { return w.model.T }

// Sent is the number of gradients sent so far.
func (w *Worker) Sent() int64 { return w.sent }

// Adopt makes the worker sample a shard of rows rows (its own and the
// ones it adopted, which follow them) from the next Compute on, with a
// fresh sampler of the given seed.
func (w *Worker) Adopt(rows int, seed uint64) {
	w.ahead.SetSampler(NewSampler(rows, seed))
	w.rows = rows
}

// Leave: the worker asked to leave and waits for the master's stop; from
// now on replies are applied and nothing more is computed or sent.
func (w *Worker) Leave() { w.leaving = true }

// Compute runs the computation the last Step asked for, with f: the
// mini-batch gradient at the worker's copy of x (with svrg, the difference
// at the active snapshot, or the shard's full gradient at the pending
// one).
func (w *Worker) Compute(f GradFunc) { w.ComputeDiff(f, nil) }

// ComputeDiff is Compute with svrg's differences computed by diff when it
// can (nil: never), which saves the copy and comparison of the two
// gradients when diff computes both at once.
func (w *Worker) ComputeDiff(f GradFunc, diff DiffFunc) {
	g := &w.g
	g.TRead = w.model.T
	if w.vr != nil {
		w.vr.compute(w, f, diff, g)
		return
	}
	rows := w.ahead.Next()
	if !w.onKeys(rows, nil, g) {
		f(rows, w.model.X, g)
	}
}

// onKeys computes rows' gradient (snap nil) or difference with OnKeys on
// the pending keyed reply and reports true; otherwise it syncs the copy of
// x for the general path and reports false.
func (w *Worker) onKeys(rows []int, snap []float64, out *Grad) bool {
	if k, v, ok := w.model.Keyed(); ok && w.cfg.OnKeys != nil && w.cfg.OnKeys(rows, k, v, snap, out) {
		w.model.Take()
		return true
	}
	w.model.Sync()
	return false
}

// Step consumes one event and returns what to do next.
func (w *Worker) Step(ev WorkerEvent) (WorkerReady, error) {
	if w.stopped {
		return WorkerReady{}, errors.New("algo: worker stepped after its stop")
	}
	switch ev.Kind {
	case WorkerReply:
		if ev.Reply == nil {
			return WorkerReady{}, errors.New("algo: a reply event without a reply")
		}
		return w.reply(ev.Reply, ev.Ns)
	case WorkerComputed:
		if !w.computing {
			return WorkerReady{}, errors.New("algo: a computation finished that was not asked for")
		}
		w.computing = false
		w.g.ComputeNs = ev.Ns
		return w.computed(), nil
	}
	return WorkerReady{}, fmt.Errorf("algo: unknown worker event kind %d", ev.Kind)
}

func (w *Worker) reply(r *Reply, waited int64) (WorkerReady, error) {
	w.idle += waited
	if w.vr != nil {
		if ctl, err := w.vr.control(r); ctl || err != nil {
			return WorkerReady{}, err // wait for the reply that carries x
		}
	}
	if r.Kind == ReplyStop {
		w.stopped = true
		return WorkerReady{Stop: true, StopBase: r.Base}, nil
	}
	if err := w.model.Apply(r); err != nil {
		return WorkerReady{}, err
	}
	if w.leaving {
		return WorkerReady{}, nil
	}
	var rd WorkerReady
	if w.held {
		// Pipelining: the gradient computed while this reply was in
		// flight goes now.
		w.held = false
		w.g.IdleNs, w.idle = w.idle, 0
		rd.Send = w.send()
	}
	return w.compute(rd), nil
}

// computed handles a finished computation: send it, or (pipelining, after
// the first) hold it until the reply to the last gradient arrives.
func (w *Worker) computed() WorkerReady {
	if w.leaving {
		return WorkerReady{}
	}
	if w.cfg.Pipeline && w.sent > 0 {
		w.held = true
		return WorkerReady{}
	}
	// Idle is the wait for the x it was computed at.
	w.g.IdleNs, w.idle = w.idle, 0
	rd := WorkerReady{Send: w.send()}
	if w.cfg.Pipeline {
		// The second gradient at the same x, while the first is in
		// flight.
		return w.compute(rd)
	}
	return rd
}

func (w *Worker) send() *Grad {
	w.sent++
	w.setKeys()
	return &w.g
}

func (w *Worker) compute(rd WorkerReady) WorkerReady {
	w.computing = true
	rd.Compute, rd.T = true, w.model.T
	return rd
}
