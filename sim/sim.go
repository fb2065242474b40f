// Package sim predicts training runs beyond one machine: the real master
// state machine (algo.Master) and step-size policies, with real
// mini-batch gradients computed on the data by real algo.Workers, driven
// by a discrete-event model of P workers (compute-time distribution, the
// master's service time, message latency and the master's link
// bandwidth). The event loop is memnet's (the in-memory network); sim adds
// the timing model (Model, as a memnet.Timing), its calibration from real
// runs and the reporting. Time is simulated, in seconds; the package opens
// no socket or file and reads no clock.
package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/memnet"
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
	shards, err := memnet.Shards(n, P, tc.Replicate)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if !tc.Replicate && !tc.NoReweight && P > 1 {
		mc.Shares = make([]float64, P+1)
		for w := 1; w <= P; w++ {
			mc.Shares[w] = float64(shards[w].N) / float64(n)
		}
	}
	m, err := algo.NewMaster(mc)
	if err != nil {
		return nil, err
	}
	var acc *kernels.SparseAcc
	if d > 2048 && prob.A.CSR != nil {
		acc = kernels.NewSparseAcc(d)
	}
	ws, grads := make([]*algo.Worker, P+1), make([]algo.GradFunc, P+1)
	tm := &timing{mod: &cfg.Model, rng: rand.New(rand.NewPCG(tc.Seed, 0x51)), factor: make([]float64, P+1), f: make([]float64, P+1)}
	for w := 1; w <= P; w++ {
		ws[w], err = algo.NewWorker(algo.WorkerConfig{Worker: w, Dim: d, Rows: shards[w].N, Batch: tc.Batch, Seed: tc.Seed*1_000_003 + uint64(w)})
		if err != nil {
			return nil, err
		}
		grads[w] = memnet.ProblemGrad(prob, shards[w], acc)
		tm.factor[w] = 1
		if f, ok := tc.Slow[w]; ok {
			tm.factor[w] = f
		}
	}
	s := &state{cfg: cfg, m: m, out: make([]float64, d), sentAt: make([]float64, P+1), sent: make([]bool, P+1)}
	s.net, err = memnet.New(memnet.Config{Master: m, Workers: ws, Grads: grads, Timing: tm, Sent: s.sent1, Observe: s.observe})
	if err != nil {
		return nil, err
	}
	return s.run()
}

// timing is the Model as a memnet.Timing: one lognormal factor, drawn
// when a reply leaves the master, stretches the whole turnaround it
// starts (reply latency, compute, gradient latency): on a shared machine
// a descheduled process is late in all three.
type timing struct {
	mod    *Model
	rng    *rand.Rand
	factor []float64 // per worker: its compute slow-down (--slow)
	f      []float64 // per worker: the factor of its turnaround
}

func (t *timing) Compute(w int) float64 { return t.mod.ComputeS * t.factor[w] * t.f[w] }

func (t *timing) Latency(w int, toMaster bool) float64 {
	if !toMaster {
		t.f[w] = memnet.Lognormal(t.rng, 1, t.mod.ComputeCV)
	}
	return t.mod.LatencyS * t.f[w]
}

func (t *timing) Receive(g *algo.Grad) float64 {
	if t.mod.Bandwidth == 0 {
		return 0
	}
	if g.Dense != nil {
		return (headerBytes + 8*float64(len(g.Dense))) / t.mod.Bandwidth
	}
	return (headerBytes + 12*float64(len(g.Idx))) / t.mod.Bandwidth
}

func (t *timing) Service(*algo.Grad) float64 { return t.mod.ServiceS }

func (t *timing) Send(r *algo.Reply) float64 {
	if t.mod.Bandwidth == 0 || r.Kind == algo.ReplyStop {
		return 0
	}
	return replyBytes(r) / t.mod.Bandwidth
}

type state struct {
	cfg     *Config
	m       *algo.Master
	net     *memnet.Net
	out     []float64
	sentAt  []float64 // per worker: when its last gradient was sent
	sent    []bool
	idleS   float64
	targets []float64
	reached int
	res     *Result
	maxUpd  int64
}

// sent1 accounts the idle time: from a worker's last gradient to the
// arrival of the reply that carries its next x.
func (s *state) sent1(m *memnet.Msg) {
	switch {
	case m.Grad != nil:
		s.sentAt[m.W], s.sent[m.W] = m.At, true
	case m.Reply.Kind != algo.ReplyStop && s.sent[m.W]:
		s.idleS += m.Arrive - s.sentAt[m.W]
	}
}

func (s *state) eval(now float64) {
	cfg, res := s.cfg, s.res
	s.m.Output(s.out)
	rel := math.NaN()
	if !math.IsNaN(cfg.PhiStar) {
		rel = (cfg.Problem.Objective(s.out) - cfg.PhiStar) / math.Abs(cfg.PhiStar)
	}
	res.Trace = append(res.Trace, Point{T: s.m.T(), SimS: now, Rel: rel})
	res.FinalRel = rel
	for s.reached < len(s.targets) && rel <= s.targets[s.reached] {
		res.TimeTo[s.reached], res.UpdatesTo[s.reached] = now, s.m.T()
		s.reached++
	}
}

// observe follows each master step: it evaluates the snapshots and
// applies the simulator's own stopping rules.
func (s *state) observe(_ algo.Event, rd algo.Ready, free float64) bool {
	if rd.Snapshot {
		s.eval(free)
	}
	switch {
	case len(s.targets) > 0 && s.reached == len(s.targets):
		s.res.StopReason = "target"
	case s.cfg.MaxSimS > 0 && free >= s.cfg.MaxSimS:
		s.res.StopReason = "time"
	case s.m.T() >= s.maxUpd:
		s.res.StopReason = "max-updates"
	default:
		return s.m.Done()
	}
	return true
}

func replyBytes(r *algo.Reply) float64 {
	if r.Kind == algo.ReplyDense {
		return headerBytes + 8*float64(len(r.Dense))
	}
	return headerBytes + 12*float64(len(r.Idx))
}

func (s *state) run() (*Result, error) {
	cfg := s.cfg
	s.targets = slices.Clone(cfg.Targets)
	slices.Sort(s.targets)
	slices.Reverse(s.targets)
	res := &Result{Workers: cfg.Workers, TimeTo: make([]float64, len(s.targets)), UpdatesTo: make([]int64, len(s.targets)), FinalRel: math.NaN()}
	s.res = res
	for j := range s.targets {
		res.TimeTo[j], res.UpdatesTo[j] = math.NaN(), -1
	}
	s.maxUpd = cfg.MaxUpdates
	if s.maxUpd <= 0 {
		s.maxUpd = 1e8
	}
	s.eval(0)
	res.StopReason = "epochs"
	if err := s.net.Run(0); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if s.m.StopReason() == algo.StopIters {
		res.StopReason = "iters"
	}
	free := s.net.Free()
	if n := len(res.Trace); n == 0 || res.Trace[n-1].T != s.m.T() {
		s.eval(free)
	}
	st := s.m.Stats()
	res.Updates, res.Grads, res.SimS = s.m.T(), st.Grads, free
	if free > 0 {
		res.UpdPerS, res.MasterUtil = float64(res.Updates)/free, s.net.Stats().MasterBusyS/free
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
