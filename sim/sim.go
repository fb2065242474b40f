// Package sim predicts training runs beyond one machine: the real master
// state machine (algo.Master) and step-size policies, with real
// mini-batch gradients computed on the data, driven by a discrete-event
// model of P workers (compute-time distribution, the master's service
// time, message latency and the master's link bandwidth). Time is
// simulated, in seconds; the package opens no socket or file and reads no
// clock.
package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
)

// Model is the timing model, in seconds.
type Model struct {
	// ComputeS is a worker's mean time to compute one mini-batch gradient;
	// ComputeCV the coefficient of variation of a lognormal factor of mean
	// 1 that stretches each turnaround (reply latency, compute, gradient
	// latency) as a whole (0: every gradient takes ComputeS).
	ComputeS  float64
	ComputeCV float64
	// ServiceS is the master's time per arriving gradient (decode, update,
	// encode and send the replies), without the link time below.
	ServiceS float64
	// LatencyS is the one-way latency of a message between a worker and
	// the master.
	LatencyS float64
	// Bandwidth is the master's link in bytes per second (every gradient
	// and reply passes through it); 0: unlimited.
	Bandwidth float64
}

func (m *Model) validate() error {
	for _, v := range []float64{m.ComputeS, m.ComputeCV, m.ServiceS, m.LatencyS, m.Bandwidth} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("sim: model %+v: every figure must be finite and >= 0", *m)
		}
	}
	if m.ComputeS == 0 && m.ServiceS == 0 && m.LatencyS == 0 {
		return errors.New("sim: the model takes no time (give compute, service or latency times)")
	}
	return nil
}

// Config is one simulated run.
type Config struct {
	Problem *solver.Problem // the data and objective (A must be CSR for sparse gradients)
	// Train holds the run's settings as train's flags give them: Mode,
	// MaxDelay, SyncEvery, Batch, Step, Update, Replicate, NoReweight,
	// Seed, Slow (worker -> compute factor), Iters and Epochs.
	Train   ranks.Config
	Workers int
	PhiStar float64   // for the suboptimality (NaN: none, then no targets)
	Targets []float64 // the run stops when the output reaches the smallest
	Model   Model
	// MaxSimS stops the run after this much simulated time (0: none);
	// MaxUpdates after this many updates (0: 10^8).
	MaxSimS    float64
	MaxUpdates int64
}

// Point is one evaluated snapshot.
type Point struct {
	T    int64
	SimS float64
	Rel  float64 // relative suboptimality of the output
}

// Result is a simulated run's outcome.
type Result struct {
	Workers    int
	StopReason string
	Updates    int64
	Grads      int64
	SimS       float64 // simulated time at the end
	UpdPerS    float64
	MasterUtil float64 // fraction of the time the master was busy
	DelayMean  float64
	DelayP50   int64
	DelayP99   int64
	DelayMax   int64
	DelayHist  []int64
	IdleS      float64 // mean worker idle time per gradient (waiting for x)
	// TimeTo and UpdatesTo are per target (NaN, -1 when not reached).
	TimeTo    []float64
	UpdatesTo []int64
	FinalRel  float64
	Trace     []Point
}

// arrival is a gradient reaching the master.
type arrival struct {
	at float64
	w  int
	// seq breaks ties in the order gradients were sent.
	seq int64
}

type arrivals []arrival

func (a arrivals) Len() int { return len(a) }
func (a arrivals) Less(i, j int) bool {
	if a[i].at != a[j].at {
		return a[i].at < a[j].at
	}
	return a[i].seq < a[j].seq
}
func (a arrivals) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *arrivals) Push(x any)   { *a = append(*a, x.(arrival)) }
func (a *arrivals) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}

// worker is one simulated worker: its shard, sampler and the gradient in
// flight.
type worker struct {
	lo, n   int // first row and rows of its shard
	sampler *algo.Sampler
	g       algo.Grad
	dense   []float64
	idx     []int32
	val     []float64
	factor  float64 // compute slow-down
	sentAt  float64 // when its last gradient was sent (for idle time)
	sent    bool
}

// headerBytes approximates a message's framing: the 40-byte frame header
// and the words of the message header (versions, rows, loss, times).
const headerBytes = 40 + 8*6

// Run simulates one run.
func Run(cfg *Config) (*Result, error) {
	if cfg.Problem == nil {
		return nil, errors.New("sim: no problem")
	}
	if err := cfg.Model.validate(); err != nil {
		return nil, err
	}
	P := cfg.Workers
	if P < 1 {
		return nil, fmt.Errorf("sim: %d workers, want >= 1", P)
	}
	tc := &cfg.Train
	if tc.Batch < 1 {
		return nil, fmt.Errorf("sim: batch %d, want >= 1", tc.Batch)
	}
	prob := cfg.Problem
	n, d := prob.Dims()
	x0 := make([]float64, d)
	tc.Reg = prob.Reg
	prob.Reg.Init(x0)
	L, sigma := tc.Step.L, tc.Step.Sigma
	if L == 0 && (tc.Step.Kind == solver.StepConvex || tc.Step.Kind == solver.StepStrong) {
		L = prob.EstimateL(100, tc.Seed)
	}
	if sigma == 0 && tc.Step.Kind == solver.StepConvex {
		sigma = prob.EstimateSigma(x0, 64, 32, tc.Seed)
	}
	sched, avg, err := ranks.Schedule(tc, P, d, L, sigma)
	if err != nil {
		return nil, err
	}
	mc := algo.MasterConfig{
		Workers: P, X0: x0, Reg: prob.Reg, Schedule: sched, Average: avg,
		Mode: tc.Mode, MaxDelay: tc.MaxDelay, SyncEvery: tc.SyncEvery, Iters: tc.Iters, Update: tc.Update,
	}
	if tc.Epochs > 0 {
		mc.Samples = int64(math.Ceil(tc.Epochs * float64(n)))
	}
	ws := make([]worker, P+1)
	for w := 1; w <= P; w++ {
		lo, hi := 0, n
		if !tc.Replicate {
			lo, hi = (w-1)*n/P, w*n/P
		}
		if hi == lo {
			return nil, fmt.Errorf("sim: %d workers for %d rows leave worker %d an empty shard (use replicated data)", P, n, w)
		}
		ws[w] = worker{lo: lo, n: hi - lo, sampler: algo.NewSampler(hi-lo, tc.Seed*1_000_003+uint64(w)), factor: 1}
		if f, ok := tc.Slow[w]; ok {
			ws[w].factor = f
		}
		ws[w].g.Worker = w
	}
	if !tc.Replicate && !tc.NoReweight && P > 1 {
		mc.Shares = make([]float64, P+1)
		for w := 1; w <= P; w++ {
			mc.Shares[w] = float64(ws[w].n) / float64(n)
		}
	}
	m, err := algo.NewMaster(mc)
	if err != nil {
		return nil, err
	}
	s := &state{cfg: cfg, m: m, ws: ws, d: d, x: make([]float64, d), out: make([]float64, d),
		rng: rand.New(rand.NewPCG(tc.Seed, 0x51)), sparse: d > 2048 && prob.A.CSR != nil}
	if s.sparse {
		s.acc = kernels.NewSparseAcc(d)
	}
	return s.run()
}

type state struct {
	cfg    *Config
	m      *algo.Master
	ws     []worker
	d      int
	x, out []float64
	rng    *rand.Rand
	sparse bool
	acc    *kernels.SparseAcc
	sv     kernels.SparseVec
	q      arrivals
	seq    int64
	idleS  float64
	grads  int64
}

// lognormal draws a time of mean mean and coefficient of variation cv.
func (s *state) lognormal(mean, cv float64) float64 {
	if cv == 0 || mean == 0 {
		return mean
	}
	sl := math.Sqrt(math.Log1p(cv * cv))
	return mean * math.Exp(sl*s.rng.NormFloat64()-sl*sl/2)
}

func (s *state) gradBytes(w *worker) float64 {
	if w.g.Dense != nil {
		return headerBytes + 8*float64(len(w.g.Dense))
	}
	return headerBytes + 12*float64(len(w.g.Idx))
}

func replyBytes(r *algo.Reply) float64 {
	if r.Kind == algo.ReplyDense {
		return headerBytes + 8*float64(len(r.Dense))
	}
	return headerBytes + 12*float64(len(r.Idx))
}

// dispatch delivers the replies of rd, sent at time at: each worker computes
// its next gradient at the x it receives (the master's iterate now) and
// sends it. It returns the link time the replies took at the master.
func (s *state) dispatch(rd algo.Ready, at float64) float64 {
	mod := &s.cfg.Model
	var link float64
	haveX := false
	for i := range rd.Replies {
		r := &rd.Replies[i]
		if r.Kind == algo.ReplyStop {
			continue
		}
		if mod.Bandwidth > 0 {
			link += replyBytes(r) / mod.Bandwidth
		}
		if !haveX {
			s.m.Iterate(s.x)
			haveX = true
		}
		w := &s.ws[r.Worker]
		rows := w.sampler.Next(s.cfg.Train.Batch)
		for k := range rows {
			rows[k] += w.lo
		}
		g := &w.g
		g.TRead, g.Rows = r.T, len(rows)
		g.Dense, g.Idx, g.Val = nil, nil, nil
		if s.sparse {
			g.Loss = s.acc.GradBatchCSR(s.cfg.Problem.Loss, s.cfg.Problem.A.CSR, s.cfg.Problem.Y, rows, s.x, &s.sv)
			w.idx, w.val = append(w.idx[:0], s.sv.Idx...), append(w.val[:0], s.sv.Val...)
			g.Idx, g.Val = w.idx, w.val
		} else {
			if w.dense == nil {
				w.dense = make([]float64, s.d)
			}
			g.Loss = s.cfg.Problem.GradBatch(rows, s.x, w.dense)
			g.Dense = w.dense
		}
		for k := range rows {
			rows[k] -= w.lo
		}
		// One lognormal factor stretches the whole turnaround (reply,
		// compute, gradient): on a shared machine a descheduled process
		// is late in all three.
		f := s.lognormal(1, mod.ComputeCV)
		c, lat := mod.ComputeS*w.factor*f, mod.LatencyS*f
		g.ComputeNs = int64(c * 1e9)
		recv := at + link + lat
		if w.sent {
			s.idleS += recv - w.sentAt
		}
		send := recv + c
		w.sentAt, w.sent = send, true
		s.seq++
		heap.Push(&s.q, arrival{at: send + lat, w: r.Worker, seq: s.seq})
	}
	return link
}

func (s *state) run() (*Result, error) {
	cfg := s.cfg
	mod := &cfg.Model
	targets := slices.Clone(cfg.Targets)
	slices.Sort(targets)
	slices.Reverse(targets)
	res := &Result{Workers: cfg.Workers, TimeTo: make([]float64, len(targets)), UpdatesTo: make([]int64, len(targets)), FinalRel: math.NaN()}
	for j := range targets {
		res.TimeTo[j], res.UpdatesTo[j] = math.NaN(), -1
	}
	maxUpd := cfg.MaxUpdates
	if maxUpd <= 0 {
		maxUpd = 1e8
	}
	var free, busy float64
	reached := 0
	eval := func(now float64) {
		s.m.Output(s.out)
		rel := math.NaN()
		if !math.IsNaN(cfg.PhiStar) {
			rel = (cfg.Problem.Objective(s.out) - cfg.PhiStar) / math.Abs(cfg.PhiStar)
		}
		res.Trace = append(res.Trace, Point{T: s.m.T(), SimS: now, Rel: rel})
		res.FinalRel = rel
		for reached < len(targets) && rel <= targets[reached] {
			res.TimeTo[reached], res.UpdatesTo[reached] = now, s.m.T()
			reached++
		}
	}
	rd := s.m.Start()
	eval(0)
	free = s.dispatch(rd, 0)
	busy = free
	res.StopReason = "epochs"
	for !s.m.Done() {
		if s.q.Len() == 0 {
			return nil, errors.New("sim: no gradient in flight and the master is not done (a deadlock in the mode's rules)")
		}
		ev := heap.Pop(&s.q).(arrival)
		start := max(ev.at, free)
		w := &s.ws[ev.w]
		link := 0.0
		if mod.Bandwidth > 0 {
			link = s.gradBytes(w) / mod.Bandwidth
		}
		rd, err := s.m.Step(algo.Event{Kind: algo.EventGrad, Now: int64(start * 1e9), Grad: &w.g})
		if err != nil {
			return nil, err
		}
		s.grads++
		end := start + link + mod.ServiceS
		end += s.dispatch(rd, end)
		busy += end - start
		free = end
		if rd.Snapshot {
			eval(free)
		}
		switch {
		case len(targets) > 0 && reached == len(targets):
			res.StopReason = "target"
		case cfg.MaxSimS > 0 && free >= cfg.MaxSimS:
			res.StopReason = "time"
		case s.m.T() >= maxUpd:
			res.StopReason = "max-updates"
		default:
			continue
		}
		break
	}
	if s.m.StopReason() == algo.StopIters {
		res.StopReason = "iters"
	}
	if n := len(res.Trace); n == 0 || res.Trace[n-1].T != s.m.T() {
		eval(free)
	}
	st := s.m.Stats()
	res.Updates, res.Grads, res.SimS = s.m.T(), st.Grads, free
	if free > 0 {
		res.UpdPerS, res.MasterUtil = float64(res.Updates)/free, busy/free
	}
	res.DelayMean, res.DelayP50, res.DelayP99, res.DelayMax = st.MeanDelay(), st.DelayQuantile(0.5), st.DelayQuantile(0.99), st.DelayMax
	last := 0
	for k, c := range st.DelayHist {
		if c > 0 {
			last = k
		}
	}
	res.DelayHist = st.DelayHist[:last+1]
	if st.Grads > 0 {
		res.IdleS = s.idleS / float64(st.Grads)
	}
	return res, nil
}
