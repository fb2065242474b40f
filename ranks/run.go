package ranks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/solver"
)

// Run takes part in a training run as rank c.Rank(): rank 0 is the master,
// ranks 1..P are workers. Every rank must be given the same Config. It
// returns when the run is over on this rank (the master last, after the
// evaluation of the trace and the outputs).
//
// Cancelling ctx interrupts the run without losing it: the master stops
// training as if a stopping rule had fired (stop reason "interrupted"),
// evaluates what it recorded and writes every output; a worker leaves the
// run (see runWorker) and the master goes on without it.
func Run(ctx context.Context, c *comm.Comm, cfg *Config) error {
	if err := cfg.validate(c.Size() - 1); err != nil {
		return err
	}
	if c.Rank() == 0 {
		_, err := runMaster(ctx, c, cfg)
		return err
	}
	if cfg.Join {
		return runJoiner(ctx, c, cfg)
	}
	return runWorker(ctx, c, cfg)
}

var errNoPhiStar = errors.New("ranks: --target needs the optimal value phi* (from the reference cache or a reference solve)")

// phase wraps err (nil: none) with the phase of the run it ended:
// "setup", "estimate L", "train" or "evaluate" (errors.Is and errors.As
// still see through it).
func phase(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Result is what the master hands back besides the files it writes.
type Result struct {
	Summary *Summary
}

// schedule turns the step-size spec into a solver.Schedule and the output
// average, once L, sigma and the number of workers are known.
func schedule(cfg *Config, workers, d int, L, sigma float64) (solver.Schedule, solver.Averager, error) {
	sp := cfg.Step
	tau := sp.Tau
	if tau < 0 {
		tau = workers
	}
	if cfg.Mode == algo.ModeSync {
		tau = 0
	}
	if cfg.Mode == algo.ModeBounded && tau > cfg.MaxDelay {
		tau = cfg.MaxDelay
	}
	b := cfg.Batch
	if cfg.Mode == algo.ModeSync {
		b *= workers
	}
	return solver.BuildSchedule(solver.ScheduleSpec{Kind: sp.Kind, Alpha0: sp.Alpha0, R: sp.R, Mu: sp.Mu, Tau0: sp.Tau0,
		Average: sp.Average, Horizon: sp.Horizon}, solver.ScheduleFacts{L: L, Sigma: sigma, Tau: tau, Batch: b, D: d, Reg: cfg.Reg})
}

// progressState is what the master loop publishes for the progress line.
type progressState struct {
	t        int64
	samples  int64
	lossEMA  float64
	psi      float64 // Psi at the last snapshot
	maxDelay int64
	phi      float64 // latest exact phi of the output (target evaluator), NaN if none
}

func runMaster(interrupt context.Context, c *comm.Comm, cfg *Config) (*Result, error) {
	// Only the training loop watches for an interrupt; everything else
	// must finish, so that the outputs are written.
	ctx := context.WithoutCancel(interrupt)
	P := c.Size() - 1
	wallStart := time.Now()
	f, err := masterSetup(ctx, c, cfg)
	if err != nil {
		return nil, phase("setup", err)
	}
	d := f.d
	if err := f.resolveGroups(cfg); err != nil {
		return nil, abortRounds(ctx, c, phase("setup", err))
	}
	if err := cfg.Reg.Validate(d); err != nil {
		return nil, abortRounds(ctx, c, phase("setup", err))
	}
	x0 := make([]float64, d)
	cfg.Reg.Init(x0)

	hash, err := data.FileHash(cfg.Data)
	if err != nil {
		return nil, abortRounds(ctx, c, phase("setup", err))
	}
	// The full problem on the master, only when the target evaluator or a
	// reference solve needs it.
	var full *solver.Problem
	phiStar := cfg.PhiStar
	if cfg.Target > 0 || cfg.Tol > 0 || cfg.NeedFull || (math.IsNaN(phiStar) && cfg.Reference != nil) {
		full, err = loadFull(cfg, f)
		if err != nil {
			return nil, abortRounds(ctx, c, phase("setup", err))
		}
		if math.IsNaN(phiStar) && cfg.Reference != nil {
			phiStar, err = cfg.Reference(full, hash)
			if err != nil {
				return nil, abortRounds(ctx, c, phase("setup", err))
			}
		}
	}
	if cfg.Target > 0 && math.IsNaN(phiStar) {
		return nil, abortRounds(ctx, c, phase("setup", errNoPhiStar))
	}
	var test *heldOut
	if cfg.Test != "" {
		if test, err = loadHeldOut(cfg, f); err != nil {
			return nil, abortRounds(ctx, c, phase("setup", err))
		}
	}

	var (
		L, sigma float64
		plan     vrPlan
	)
	if cfg.Method == solver.MethodSVRG {
		plan, err = masterPlanVR(ctx, c, cfg, f)
		L = plan.L
	} else {
		L, sigma, err = masterEstimate(ctx, c, cfg, f, x0)
	}
	if err != nil {
		return nil, phase("estimate L", err)
	}
	if err := endRounds(ctx, c); err != nil {
		return nil, phase("estimate L", err)
	}
	sched, avg, err := schedule(cfg, P, d, L, sigma)
	if cfg.Method == solver.MethodSVRG {
		sched = solver.Schedule{Kind: solver.StepConst, Alpha0: plan.alpha}
		avg, err = vrAverage(cfg)
	}
	if err != nil {
		return nil, stopWorkers(ctx, c, phase("setup", err))
	}
	mc := algo.MasterConfig{
		Workers: P, X0: x0, Reg: cfg.Reg, Schedule: sched, Average: avg,
		Mode: cfg.Mode, MaxDelay: cfg.MaxDelay, SyncEvery: cfg.SyncEvery, Pipeline: cfg.Pipeline,
		Iters: cfg.Iters, SnapshotEvery: cfg.SnapshotEvery, Update: cfg.Update, Pull: cfg.Pull,
	}
	mc.Samples = sampleLimit(cfg, f.n)
	if epochsReason(cfg) == "max-epochs" {
		mc.SamplesStop = algo.StopMaxEpochs
	}
	if cfg.MaxEpochsMinTime > 0 && cfg.MaxEpochs > 0 {
		// capReached, decided by the master on the training time.
		mc.CapSamples, mc.CapMinNs = int64(math.Ceil(cfg.MaxEpochs*float64(f.n))), int64(cfg.MaxEpochsMinTime)
	}
	mc.TimeNs = int64(cfg.Time)
	if cfg.Target > 0 {
		mc.Target, mc.TargetPhi = true, phiStar+cfg.Target*math.Abs(phiStar)
	}
	mc.Tol, mc.Rows = cfg.Tol, f.n
	if !cfg.Replicate && !cfg.NoReweight && P > 1 {
		mc.Shares = make([]float64, P+1)
		for w := 1; w <= P; w++ {
			mc.Shares[w] = float64(f.rows[w]) / float64(f.n)
		}
	}
	if cfg.Method == solver.MethodSVRG {
		mc.VR = masterVRConfig(cfg, f, P, plan)
	}
	oldTrace, err := resume(cfg, hash, d, &mc)
	if err != nil {
		return nil, stopWorkers(ctx, c, phase("setup", err))
	}
	m, err := algo.NewMaster(mc)
	if err != nil {
		return nil, stopWorkers(ctx, c, phase("setup", err))
	}
	rec, err := newRecorder(cfg, f)
	var wallBaseNs int64
	if err == nil {
		wallBaseNs, err = continueTrace(cfg, oldTrace, m.T(), rec.tw)
	}
	if err != nil {
		return nil, stopWorkers(ctx, c, phase("setup", err))
	}
	tw, tracePath := rec.tw, rec.partial

	run := &masterRun{
		c: c, cfg: cfg, m: m, d: d, n: f.n, tw: tw, rowsNow: slices.Clone(f.rows),
		snap: Snapshot{X: make([]float64, d), Avg: make([]float64, d)},
	}
	run.prog.phi = math.NaN()
	run.f, run.full, run.wallBaseNs = f, full, wallBaseNs
	run.newCheckpointer(hash)
	run.held = make([][]int, c.Size())
	run.keys = make([]keyHist, c.Size())
	for w := 1; w < c.Size(); w++ {
		run.held[w] = []int{w}
	}
	if cfg.Target > 0 || cfg.Tol > 0 {
		if run.ev, err = newEvaluator(full, d); err != nil {
			tw.close()
			return nil, stopWorkers(ctx, c, phase("setup", err))
		}
	}
	loopErr := run.loop(ctx, interrupt)
	if loopErr == nil {
		loopErr = run.finalCheckpoint()
	}
	if cerr := tw.close(); cerr != nil && loopErr == nil {
		loopErr = cerr
	}
	if run.ev != nil {
		run.ev.close()
	}
	if loopErr != nil {
		return nil, phase("train", loopErr)
	}

	// After the run: evaluate the trace on the full data (on the workers'
	// shards; the master reads those of workers that left), write the
	// outputs.
	rows, model, err := run.evaluate(ctx, tracePath, f, phiStar, test)
	if err != nil {
		return nil, phase("evaluate", err)
	}
	if run.ev != nil && run.ev.hit.Load() {
		model = run.ev.hitX
	}
	sum := run.summary(f, hash, sched, avg, L, sigma, phiStar, rows, wallStart)
	sum.Step.Method = cfg.Method.String()
	if cfg.Method == solver.MethodSVRG {
		sum.Step.Metric = plan.metricName()
	}
	if model, err = run.finish(ctx, sum, f, model, sched, L, test, rows); err != nil {
		return nil, phase("evaluate", err)
	}
	if err := gatherPeakRSS(ctx, c, sum, !run.p2p); err != nil {
		return nil, phase("evaluate", err)
	}
	if !run.p2p {
		if err := endRounds(ctx, c); err != nil {
			return nil, phase("evaluate", err)
		}
	}
	sum.LostWorkers = append([]LostWorker{}, run.lost...)
	sum.JoinedWorkers = run.joinedSummary()
	if run.giveUp != nil {
		sum.Status = StatusFailed
	}
	if err := rec.write(sum, rows, model); err != nil {
		return nil, phase("evaluate", err)
	}
	if run.giveUp != nil {
		return &Result{Summary: sum}, run.giveUp
	}
	return &Result{Summary: sum}, finalErr(cfg, sum)
}

// abortRounds tells the workers (waiting for estimation rounds) to stop,
// then returns err.
func abortRounds(ctx context.Context, c *comm.Comm, err error) error {
	_ = endRounds(ctx, c)
	return stopWorkers(ctx, c, err)
}

// stopWorkers sends every worker a stop (they are, or will be, waiting for
// x), then returns err.
func stopWorkers(ctx context.Context, c *comm.Comm, err error) error {
	var out comm.Msg
	for w := 1; w < c.Size(); w++ {
		encodeReply(&out, &algo.Reply{Kind: algo.ReplyStop}, 0, nil)
		_ = c.Send(ctx, w, tagModel, &out)
	}
	_ = endRounds(ctx, c)
	return err
}

// loadFull reads the whole data set on the master with the agreed
// dimension and label map.
func loadFull(cfg *Config, f *facts) (*solver.Problem, error) {
	ds, err := data.Read(cfg.Data, data.Options{Features: f.dRaw})
	if err != nil {
		return nil, err
	}
	return loadFullFrom(cfg, f, ds)
}

// loadFullFrom maps the labels of ds, sets its dimension and appends the
// bias column as the setup decided, and builds the problem.
func loadFullFrom(cfg *Config, f *facts, ds *data.Dataset) (*solver.Problem, error) {
	if f.classes != nil {
		return loadFullMulti(cfg, f, ds)
	}
	if f.labelMap != nil {
		if err := ds.ApplyBinary(*f.labelMap); err != nil {
			return nil, err
		}
	}
	if err := ds.SetCols(f.dRaw); err != nil {
		return nil, err
	}
	a := &ds.X
	if cfg.Bias {
		a = solver.AppendBias(a)
	}
	return solver.NewProblem(matrixOf(a), ds.Y, cfg.Loss, cfg.Reg, runtime.GOMAXPROCS(0))
}

// masterRun is the master's driver state during training.
type masterRun struct {
	c    *comm.Comm
	cfg  *Config
	m    *algo.Master
	d    int
	n    int64
	tw   *traceWriter
	snap Snapshot
	// vrSnap: svrg snapshots go to the workers as their nonzeros when
	// they are few (proto.go).
	vrSnap snapSparse
	ev     *evaluator
	grd    guard
	div    *Divergence // set when the guard stopped the run
	// keys: each worker's key history (keyhist.go), by rank.
	keys []keyHist

	start      time.Time
	trainNs    int64
	busyNs     int64 // decode + update + replies
	stopReason string
	lost       []LostWorker // workers that left, in order
	rowsNow    []int64      // rows each worker samples (adopted shards included)
	held       [][]int      // the shards each worker samples
	joined     []JoinedWorker
	f          *facts
	giveUp     error           // too few workers left: stop, write, fail
	p2p        bool            // the trace was evaluated point-to-point (workers left): no collective rounds follow
	full       *solver.Problem // the whole data set on the master, if loaded
	ckpt       *checkpointer
	wallBaseNs int64 // a resumed run: the first run's training time
	lastSnapT  int64
	snapNs     int64 // time spent in snapshots (see snapshotDue)
	// the master's traffic during training (bytes on the wire, raw)
	trainWire, trainRaw uint64
	dilate              sleeper    // --dilate's sleeps
	progMu              sync.Mutex // guards prog
	prog                progressState
}

// loop trains until the master stops the run (its rules: iterations,
// epochs, time, target, tol) or the driver does (an interrupt, a
// divergence, too few workers); ctx bounds the sends (never cancelled by
// an interrupt).
func (r *masterRun) loop(ctx, interrupt context.Context) error {
	c, m := r.c, r.m
	// The receive waits on a context the evaluator's results and the
	// --time timer cancel, so that the loop hands them to the master.
	var wk waker
	recvCtx := wk.arm(interrupt)
	defer wk.arm(interrupt)
	if r.cfg.Time > 0 {
		tm := time.AfterFunc(r.cfg.Time, wk.wake)
		defer tm.Stop()
	}
	if r.ev != nil {
		r.ev.wake = wk.wake
		go r.ev.run()
	}
	stopProgress := r.startProgress()
	defer stopProgress()

	var in, out comm.Msg
	var g algo.Grad
	var stopRd algo.Ready // the Ready that stopped the run: sent last
	send := func(rd algo.Ready) error {
		if rd.Stop != algo.StopNone {
			stopRd = rd
			return nil
		}
		return r.sendReady(ctx, rd, &out)
	}
	c.ReportDepartures() // a worker that leaves is Left, not fatal
	r.start = time.Now()
	wire0, raw0 := commBytes(c)
	defer func() {
		wire, raw := commBytes(c)
		r.trainWire, r.trainRaw = wire-wire0, raw-raw0
	}()
	r.lastSnapT = -1
	rd := m.Start()
	// The first replies go before the trace's first record (x0 and its
	// average, 16d bytes written): the workers compute meanwhile.
	if err := send(rd); err != nil {
		return err
	}
	if err := r.snapshot(); err != nil {
		return err
	}
	for !m.Done() && r.giveUp == nil && r.div == nil {
		if r.ev != nil {
			if err := r.ev.drain(m, r.now(), send); err != nil || m.Done() {
				if err != nil {
					return err
				}
				break
			}
		}
		src, err := c.RecvAny(recvCtx, tagGrad, &in)
		if err != nil {
			if interrupt.Err() != nil {
				break
			}
			if recvCtx.Err() != nil {
				// Woken: an evaluation (drained above) or the time.
				recvCtx = wk.arm(interrupt)
				rd, err := m.Step(algo.Event{Kind: algo.EventTick, Now: r.now()})
				if err == nil {
					err = send(rd)
				}
				if err != nil {
					return err
				}
				continue
			}
			if err := r.onDeparture(ctx, err, &out); err != nil {
				return err
			}
			continue
		}
		if ok, err := r.onNotice(ctx, src, &in, &out); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		t0 := time.Now()
		if err := decodeGrad(&in, &g, r.d, &r.keys[src]); err != nil {
			// A worker that breaks the protocol is cut off.
			if err := r.leave(ctx, src, err, &out); err != nil {
				return err
			}
			continue
		}
		if r.grd.badLoss(g.Loss, g.Worker, r.c.Size()-1) {
			r.diverged(r.grd.what(g.Loss))
			break
		}
		rd, err := m.Step(algo.Event{Kind: algo.EventGrad, Now: int64(t0.Sub(r.start)), Grad: &g})
		if err != nil {
			return err
		}
		if err := send(rd); err != nil {
			return err
		}
		busy := time.Since(t0)
		if r.cfg.Dilate > 1 {
			busy += r.dilate.sleep(time.Duration(float64(busy) * (r.cfg.Dilate - 1)))
		}
		r.busyNs += int64(busy)
		if rd.Snapshot && r.snapshotDue() {
			if err := r.snapshot(); err != nil {
				return err
			}
		}
		if r.ev != nil && !m.Done() {
			r.ev.offer(m, r.start)
		}
		if m.T()&255 == 0 {
			r.publish()
			if err := r.maybeCheckpoint(false); err != nil {
				return err
			}
		}
	}
	r.trainNs = int64(time.Since(r.start))
	if !m.Done() {
		// The driver's own stop.
		reason := algo.StopInterrupted
		switch {
		case r.giveUp != nil:
			reason = algo.StopFewWorkers
		case r.div != nil:
			reason = algo.StopDiverged
		}
		rd, err := m.Step(algo.Event{Kind: algo.EventStop, Now: r.now(), Reason: reason})
		if err != nil {
			return err
		}
		stopRd = rd
	}
	if r.lastSnapT != m.T() {
		if err := r.snapshot(); err != nil {
			return err
		}
	}
	r.stopReason = m.StopReason().String()
	switch {
	// What the driver found overrides a rule of the master that fired
	// at the same update.
	case r.giveUp != nil:
		r.stopReason = algo.StopFewWorkers.String()
	case r.div != nil:
		r.stopReason = algo.StopDiverged.String()
	}
	r.publish()
	return r.sendReady(ctx, stopRd, &out)
}

// now is the training time so far, as the master's events carry it.
func (r *masterRun) now() int64 { return int64(time.Since(r.start)) }

// waker cancels the context the master loop's receive waits on (from the
// evaluator's goroutine or a timer), so that the loop looks at what woke
// it. Safe for concurrent use.
type waker struct {
	mu     sync.Mutex // guards cancel
	cancel context.CancelFunc
}

func (w *waker) wake() {
	w.mu.Lock()
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
}

// arm returns a fresh context for the next receives (and releases the
// last one).
func (w *waker) arm(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	w.mu.Lock()
	old := w.cancel
	w.cancel = cancel
	w.mu.Unlock()
	if old != nil {
		old()
	}
	return ctx
}

// commBytes is the traffic on c's links so far, on the wire and raw.
func commBytes(c *comm.Comm) (wire, raw uint64) {
	for _, p := range c.Stats().Peers {
		wire += p.SentWire + p.RecvWire
		raw += p.SentRaw + p.RecvRaw
	}
	return wire, raw
}

// The geometric snapshots (no --snapshot-every) may take snapBudget of the
// training time, or snapFloor in all: each is O(d) (the iterate and the
// average synchronised, 16d bytes written), about 50 ms at d = 2^20 and a
// second at 2^24, which at 25 per decade of t took a quarter of a d = 2^20
// run's training time; past the budget the driver skips the ones the
// master asks for until the run has caught up (the first and the last are
// always taken, and runs of small d never reach the budget).
const (
	snapBudget = 0.05
	snapFloor  = 250 * time.Millisecond
)

// snapshotDue reports whether a snapshot the master asks for is taken.
func (r *masterRun) snapshotDue() bool {
	if r.cfg.SnapshotEvery > 0 {
		return true
	}
	return time.Duration(r.snapNs) < max(snapFloor, time.Duration(snapBudget*float64(time.Since(r.start))))
}

// snapshot records the master's state in the trace.
func (r *masterRun) snapshot() error {
	t0 := time.Now()
	defer func() { r.snapNs += int64(time.Since(t0)) }()
	s := &r.snap
	s.T, s.Samples = r.m.T(), r.m.SamplesDone()
	s.WallNs = r.wallBaseNs + int64(time.Since(r.start))
	r.m.Iterate(s.X)
	r.m.Output(s.Avg)
	r.lastSnapT = s.T
	if what := badIterate(s.X); what != "" && r.div == nil {
		r.diverged(what)
	}
	psi := r.cfg.Reg.Value(s.X)
	r.progMu.Lock()
	r.prog.psi = psi
	r.progMu.Unlock()
	return r.tw.add(s)
}

func (r *masterRun) publish() {
	st := r.m.StatsView()
	r.progMu.Lock()
	r.prog.t, r.prog.samples = r.m.T(), r.m.SamplesDone()
	r.prog.lossEMA, r.prog.maxDelay = st.LossEMA, st.DelayMax
	if r.ev != nil {
		r.prog.phi = r.ev.lastPhi()
	}
	r.progMu.Unlock()
}

// startProgress prints the progress line until the returned stop is called.
func (r *masterRun) startProgress() (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	every := r.cfg.ProgressEvery
	if every <= 0 {
		every = time.Second
		if r.cfg.ProgressTTY {
			every = 200 * time.Millisecond
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		lastT, lastWall := int64(0), time.Now()
		line := func(final bool) {
			r.progMu.Lock()
			p := r.prog
			r.progMu.Unlock()
			now := time.Now()
			rate := float64(p.t-lastT) / now.Sub(lastWall).Seconds()
			lastT, lastWall = p.t, now
			obj := fmt.Sprintf("obj~%.6g", p.lossEMA+p.psi)
			if !math.IsNaN(p.phi) {
				obj = fmt.Sprintf("phi(avg)=%.8g", p.phi)
			}
			s := fmt.Sprintf("t=%d epoch=%.2f %s max-delay=%d %.0f upd/s %s",
				p.t, float64(p.samples)/float64(r.n), obj, p.maxDelay, rate, time.Since(r.start).Round(10*time.Millisecond))
			switch {
			case r.cfg.ProgressTTY && final:
				fmt.Fprintf(w, "\r\033[K%s\n", s)
			case r.cfg.ProgressTTY:
				fmt.Fprintf(w, "\r\033[K%s", s)
			default:
				fmt.Fprintln(w, s)
			}
		}
		for {
			select {
			case <-done:
				if r.cfg.ProgressTTY {
					line(true)
				}
				return
			case <-tick.C:
				line(false)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// evaluator computes phi of the output on the full data beside the
// master's loop, on snapshots the loop offers when it is idle, and hands
// each result back to the loop (drain), which gives it to the master as
// an EventEval: the master decides whether the target or --tol is
// reached. It never blocks the loop, and it rests evalRest times as long
// as each evaluation took, so that it takes at most 1/(1+evalRest) of a
// core from the workers.
type evaluator struct {
	prob    *solver.Problem
	in      chan evalReq
	done    chan evalReq // evaluated (phi set), for the loop
	free    chan []float64
	wake    func() // wakes the loop (set before run)
	hit     atomic.Bool
	bestPhi float64 // the smallest phi evaluated (read after close)
	hitT    atomic.Int64
	hitWall atomic.Int64
	hitX    []float64 // the output that reached the target (read after close)
	hitPhi  float64
	busyNs  atomic.Int64
	evals   atomic.Int64
	phiBits atomic.Uint64
	wg      sync.WaitGroup
	lastT   int64
	// notBefore is the earliest time (UnixNano) of the next evaluation.
	notBefore atomic.Int64
}

// evalRest is the evaluator's rest after each evaluation, in multiples of
// the evaluation's duration.
const evalRest = 9

type evalReq struct {
	x       []float64
	t       int64
	wallNs  int64
	samples int64
	phi     float64
}

// newEvaluator evaluates the output on full.
func newEvaluator(full *solver.Problem, d int) (*evaluator, error) {
	// One goroutine: the evaluator must not take the workers' cores.
	p, err := full.WithWorkers(1)
	if err != nil {
		return nil, err
	}
	e := &evaluator{prob: p, in: make(chan evalReq, 1), done: make(chan evalReq, 2), free: make(chan []float64, 2),
		bestPhi: math.NaN(), wake: func() {}}
	e.free <- make([]float64, d)
	e.free <- make([]float64, d)
	e.phiBits.Store(math.Float64bits(math.NaN()))
	e.wg.Add(1)
	return e, nil
}

// offer hands the evaluator a copy of the output if it is idle and at
// least a few updates have passed since the last offer.
func (e *evaluator) offer(m *algo.Master, start time.Time) {
	if m.T()-e.lastT < 8 {
		return
	}
	now := time.Now()
	if now.UnixNano() < e.notBefore.Load() {
		return
	}
	select {
	case buf := <-e.free:
		m.Output(buf)
		e.lastT = m.T()
		e.in <- evalReq{x: buf, t: m.T(), wallNs: int64(now.Sub(start)), samples: m.SamplesDone()}
	default:
	}
}

// drain gives the master the evaluations done since the last call (at
// training time now) and hands their Ready to send; the output that
// stopped the run by its target is kept as the model.
func (e *evaluator) drain(m *algo.Master, now int64, send func(algo.Ready) error) error {
	for {
		select {
		case req := <-e.done:
			rd, err := m.Step(algo.Event{Kind: algo.EventEval, Now: now, Phi: req.phi, Samples: req.samples})
			if err == nil {
				err = send(rd)
			}
			if rd.Stop == algo.StopTarget {
				e.hitX, e.hitPhi = append([]float64(nil), req.x...), req.phi
				e.hitT.Store(req.t)
				e.hitWall.Store(req.wallNs)
				e.hit.Store(true)
			}
			e.free <- req.x
			if err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (e *evaluator) run() {
	defer e.wg.Done()
	for req := range e.in {
		t0 := time.Now()
		phi := e.prob.Objective(req.x)
		took := time.Since(t0)
		e.busyNs.Add(int64(took))
		e.notBefore.Store(time.Now().Add(evalRest * took).UnixNano())
		e.evals.Add(1)
		e.phiBits.Store(math.Float64bits(phi))
		if phi < e.bestPhi || math.IsNaN(e.bestPhi) {
			e.bestPhi = phi
		}
		req.phi = phi
		e.done <- req // room for both buffers: never blocks
		e.wake()
	}
}

func (e *evaluator) lastPhi() float64 { return math.Float64frombits(e.phiBits.Load()) }

func (e *evaluator) close() {
	close(e.in)
	e.wg.Wait()
}
