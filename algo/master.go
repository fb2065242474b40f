package algo

import (
	"errors"
	"fmt"
	"slices"

	"github.com/asyncmb/asyncmb/solver"
)

// Mode is how the master orders updates and replies.
type Mode uint8

const (
	// ModeAsync is the paper's algorithm: one update per arriving
	// gradient, in arrival order, and a reply to that worker only.
	ModeAsync Mode = iota
	// ModeSync waits for one gradient from every worker (all computed at
	// the same x), applies their mean once and replies to all: the
	// baseline that waits for stragglers.
	ModeSync
	// ModeBounded is async, but no applied gradient is more than MaxDelay
	// updates stale: a worker whose next gradient could arrive more than
	// MaxDelay updates late waits for fresh x (its reply is withheld until
	// it is safe).
	ModeBounded
	numModes
)

var modeNames = [numModes]string{"async", "sync", "bounded"}

// ParseMode maps "async", "sync" or "bounded" to a Mode.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("algo: unknown mode %q (want async, sync or bounded)", s)
}

func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// MasterConfig configures the master's state machine.
type MasterConfig struct {
	Workers   int             // P >= 1
	X0        []float64       // starting point (len d; copied)
	Reg       solver.Reg      // Psi
	Schedule  solver.Schedule // step sizes; Alpha(t, delay)
	Average   solver.Averager // the output: Kind, T0, Horizon (state fields zero)
	Mode      Mode
	MaxDelay  int   // ModeBounded: the largest delay applied (>= 0)
	SyncEvery int64 // ModeAsync/ModeBounded: a barrier every SyncEvery updates (0: none)
	Iters     int64 // stop after this many updates (0: no limit)
	Samples   int64 // stop after this many mini-batch rows in applied gradients (0: no limit)
	// SamplesStop is the reason recorded when Samples stops the run
	// (StopNone: StopEpochs).
	SamplesStop StopReason
	// CapSamples stops the run (StopMaxEpochs) once this many rows are
	// applied and the training time (Event.Now) is at least CapMinNs
	// (0: no cap).
	CapSamples, CapMinNs int64
	// TimeNs stops the run (StopTime) at the first event whose Now is at
	// least TimeNs (0: no limit).
	TimeNs int64
	// Target: an EventEval with Phi <= TargetPhi stops the run
	// (StopTarget).
	Target    bool
	TargetPhi float64
	// Tol, when > 0 (with Rows, one epoch), is the --tol rule on the
	// EventEval phis (see TolCheck; StopTol).
	Tol  float64
	Rows int64
	// SnapshotEvery asks the driver for a snapshot every this many updates;
	// 0 spaces them geometrically instead (see NextSnapshot), which suits
	// log-log plots of suboptimality against t and bounds their number by
	// about 25 per decade of t. The driver records the first and the last.
	SnapshotEvery int64
	// Pipeline: workers send a gradient and compute the next one at the
	// same x while the reply is in flight (two gradients per worker in
	// flight, one more update of delay).
	Pipeline bool
	// Update chooses the lazy O(nnz(g)) or the eager O(d) update.
	Update Update
	// LazyWindow is the lazy history window (0: default).
	LazyWindow int
	// VR, when set, runs solver.MethodSVRG (see VRConfig); Update and
	// LazyWindow are then ignored, and Schedule only validated.
	VR *VRConfig
	// Shares, when set (len Workers+1, index 0 unused, summing to 1), are
	// the fractions of the data set held by each worker's shard. Workers
	// that run at different speeds then contribute gradients of their
	// shards at different rates, and plain asynchronous steps would
	// minimize a reweighted objective; the master corrects this by scaling
	// worker k's gradient by Shares[k] / (its fraction of the gradients
	// applied so far), clamped to [1/MaxReweight, MaxReweight]. In sync
	// mode the mean becomes the Shares-weighted sum. Nil: no correction
	// (replicated data: every gradient is unbiased).
	Shares []float64
	// Resume, when set, starts the master at a checkpoint's state (see
	// Master.Export) instead of X0 at version 0.
	Resume *solver.Checkpoint
	// Pull says how replies to gradients that carry keys are built (see
	// Pull); the zero value is PullAuto.
	Pull Pull
}

// MaxReweight bounds the correction of MasterConfig.Shares.
const MaxReweight = 4

func (c *MasterConfig) validate() error {
	switch {
	case c.Workers < 1:
		return fmt.Errorf("algo: need at least one worker, got %d", c.Workers)
	case len(c.X0) == 0:
		return errors.New("algo: empty starting point")
	case c.Mode >= numModes:
		return fmt.Errorf("algo: unknown mode %d", c.Mode)
	case c.Pull >= numPulls:
		return fmt.Errorf("algo: unknown pull %d", c.Pull)
	case c.MaxDelay < 0:
		return fmt.Errorf("algo: max delay %d < 0", c.MaxDelay)
	case c.SyncEvery < 0 || c.Iters < 0 || c.Samples < 0 || c.SnapshotEvery < 0 || c.CapSamples < 0 || c.TimeNs < 0:
		return errors.New("algo: negative sync-every, iters, samples, snapshot-every, cap or time")
	case c.Tol > 0 && c.Rows < 1:
		return errors.New("algo: --tol needs the rows of an epoch")
	case c.SamplesStop >= numStopReasons:
		return fmt.Errorf("algo: unknown stop reason %d", c.SamplesStop)
	case c.Mode == ModeSync && (c.Pipeline || c.SyncEvery > 0):
		return errors.New("algo: sync mode takes neither pipelining nor sync-every")
	case c.Shares != nil && len(c.Shares) != c.Workers+1:
		return fmt.Errorf("algo: %d shares for %d workers", len(c.Shares)-1, c.Workers)
	}
	if err := c.Reg.Validate(len(c.X0)); err != nil {
		return err
	}
	if c.VR != nil {
		if c.Mode == ModeSync {
			return errors.New("algo: svrg runs in async or bounded mode")
		}
		if err := c.VR.validate(c.Workers, len(c.X0), c.Reg); err != nil {
			return err
		}
	}
	return c.Schedule.Validate()
}

// Update is how the master applies a step.
type Update uint8

const (
	// UpdateAuto is lazy where the regularizer allows it and d is at least
	// LazyMinDim: below that, the eager loop over d is faster
	// (BenchmarkMasterStep: a9a, d = 123, 1.5 us eager against 2.9 us lazy;
	// rcv1_small, d = 47117, 279 us against 114 us).
	UpdateAuto Update = iota
	// UpdateLazy is lazy wherever the regularizer allows it.
	UpdateLazy
	// UpdateEager is always the O(d) Reg.Step.
	UpdateEager
	numUpdates
)

// LazyMinDim is the smallest dimension UpdateAuto makes lazy.
const LazyMinDim = 1024

var updateNames = [numUpdates]string{"auto", "lazy", "eager"}

// ParseUpdate maps "auto", "lazy" or "eager" to an Update.
func ParseUpdate(s string) (Update, error) {
	for i, n := range updateNames {
		if n == s {
			return Update(i), nil
		}
	}
	return 0, fmt.Errorf("algo: unknown update %q (want auto, lazy or eager)", s)
}

func (u Update) String() string {
	if u < numUpdates {
		return updateNames[u]
	}
	return fmt.Sprintf("Update(%d)", uint8(u))
}

func (u Update) lazy(r solver.Reg, d int) bool {
	switch u {
	case UpdateLazy:
		return Lazyable(r)
	case UpdateAuto:
		return Lazyable(r) && d >= LazyMinDim
	}
	return false
}

// Grad is a worker's mini-batch gradient as the master receives it. The
// vector is dense (Dense, len d) or sparse (Idx strictly increasing, Val);
// the master only reads it during Step (it may be a view into a receive
// buffer).
type Grad struct {
	Worker    int     // 1..P
	TRead     int64   // version (update count) of the x it was computed at
	Rows      int     // rows in the mini-batch
	Loss      float64 // mini-batch loss at x_TRead
	ComputeNs int64   // time the worker spent computing it
	IdleNs    int64   // time the worker waited for x before computing it
	Dense     []float64
	Idx       []int32
	Val       []float64
	Kind      GradKind // svrg: a mini-batch difference or a refresh part
	Snap      int64    // svrg: the snapshot it refers to (-1: none)
	// Keys, when not nil, asks for a keyed reply: the sorted feature
	// support of the worker's next mini-batch, on which the reply carries
	// x (see keyed.go). Nil asks for all of x.
	Keys []int32
}

// ReplyKind says how a reply carries x.
type ReplyKind uint8

const (
	// ReplyDense carries all of x.
	ReplyDense ReplyKind = iota + 1
	// ReplySparse carries x's nonzeros; every other coordinate is 0.
	ReplySparse
	// ReplyDelta carries the coordinates that changed since the version
	// the worker holds (Base); the others keep their values.
	ReplyDelta
	// ReplyStop ends the worker's loop.
	ReplyStop
	// ReplySnapshot (svrg) carries the snapshot x~ number T (Dense, and
	// with the sparse step its nonzeros in Idx and Val too: a driver may
	// send either, a worker reads Dense when it has it): the worker
	// answers the reply that follows with its shard's full gradient
	// there, and keeps x~ for when it is activated.
	ReplySnapshot
	// ReplyActivate (svrg): from now on the worker's differences use
	// snapshot T.
	ReplyActivate
	// ReplyKeyed carries x_T on the keys the worker asked for (Idx, the
	// keys of its last gradient; Val); its other coordinates are stale and
	// its next mini-batch does not read them (see keyed.go).
	ReplyKeyed
)

func (k ReplyKind) String() string {
	switch k {
	case ReplyDense:
		return "dense"
	case ReplySparse:
		return "sparse"
	case ReplyDelta:
		return "delta"
	case ReplyStop:
		return "stop"
	case ReplySnapshot:
		return "snapshot"
	case ReplyActivate:
		return "activate"
	case ReplyKeyed:
		return "keyed"
	}
	return fmt.Sprintf("ReplyKind(%d)", uint8(k))
}

// Reply is one message from the master to a worker. Its slices are owned by
// the master and valid until the next call of Start or Step.
type Reply struct {
	Worker int
	Kind   ReplyKind
	T      int64 // version of x carried
	Base   int64 // ReplyDelta: the version the delta applies to
	Dense  []float64
	Idx    []int32
	Val    []float64
}

// Ready is what one input to the master produced: the replies to send (in
// order), whether the driver should record a snapshot of x now, and, when
// the run is over, why (the replies then end with a stop to every worker
// still in the run).
type Ready struct {
	Replies  []Reply
	Snapshot bool
	Stop     StopReason
}

// Master is the master's logic as a pure state machine: it never opens a
// socket, starts a goroutine or reads a clock. Start gives the first
// replies; Step consumes one Event (a gradient, the time, an evaluation, a
// worker leaving or joining, the driver's stop) and decides when the run
// stops, and why. Versions and delays are counted in updates, time is
// what the events say. Not safe for concurrent use.
type Master struct {
	cfg     MasterConfig
	d       int
	t       int64 // updates applied
	samples int64 // rows in applied gradients
	done    bool
	now     int64 // the largest Event.Now seen
	// stopReason is why the run stopped (StopNone: it goes on).
	stopReason StopReason
	tol        *TolCheck // the --tol rule, or nil

	vr    *masterVR // svrg state, or nil
	lazy  *Lazy     // lazy iterate and average, or nil
	x     []float64 // eager iterate (nil when lazy)
	avg   solver.Averager
	gbuf  []float64 // eager: dense gradient scratch (kept zero); sync: the sum
	all   []int32   // 0..d-1, for dense gradients on the lazy path
	delta bool      // the regularizer leaves untouched coordinates alone

	workers []mworker
	// withheld lists, in arrival order, one entry per reply owed and not
	// yet sent: waiting for the other workers' gradients (sync), for a
	// barrier (sync-every) or for staleness to allow it (bounded).
	withheld    []int
	computing   int // gradients being computed (replies sent, not yet returned)
	inBarrier   bool
	nextBarrier int64
	nextSnap    int64 // the update count of the next snapshot

	// log of gradient supports for delta replies: the support of update
	// logBase+k is logIdx[logStart[k]:logStart[k+1]].
	logBase  int64
	logStart []int
	logIdx   []int32

	// reply arenas, reset by each call
	ready  Ready
	outIdx []int32
	outVal []float64
	xOut   []float64
	mark   []int64 // delta dedup stamps
	stamp  int64

	stats MasterStats

	// workers that left (see EventLeave)
	active      int       // workers still in the run
	shares      []float64 // Shares, as moved by Adopt (nil without)
	activeShare float64   // sum of shares over the workers in the run
	lostGrads   int64     // gradients applied from workers that left
	// grads and gradsOf[w] count the gradients received (all, and from
	// worker w) for the reweighting: algorithm state, apart from the
	// telemetry in stats.
	grads      int64
	gradsOf    []int64
	roundW     float64 // sync: the weight summed into gbuf this round
	roundShort bool    // sync: a gradient of this round was refused
}

type mworker struct {
	sent    []int64 // versions of the gradients it computes, oldest first
	holds   int64   // version of the worker's copy of x (for deltas), -1 none
	keys    []int32 // the keys of its last gradient (copied), nil: none
	started bool    // it has been sent x once
	gone    bool    // it left the run (EventLeave)
}

// NewMaster checks cfg and builds the master at x0, version 0.
func NewMaster(cfg MasterConfig) (*Master, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := len(cfg.X0)
	m := &Master{cfg: cfg, d: d, avg: cfg.Average}
	m.avg.N, m.avg.W, m.avg.Cur, m.avg.Prev, m.avg.CurN, m.avg.PrevN = 0, 0, nil, nil, 0, 0
	if cfg.VR != nil {
		m.vr = newMasterVR(*cfg.VR, cfg.Workers, cfg.X0, cfg.Reg)
		// The last iterate as the output: no update reads all of x, which
		// can then live in the sparse step's records.
		m.vr.holdX = cfg.VR.Sparse && m.avg.Kind == solver.AvgLast
		m.x = slices.Clone(cfg.X0)
		m.all = make([]int32, d)
		for j := range m.all {
			m.all[j] = int32(j)
		}
	} else if cfg.Update.lazy(cfg.Reg, d) {
		z, err := NewLazy(cfg.Reg, m.avg, cfg.X0, cfg.LazyWindow)
		if err != nil {
			return nil, err
		}
		m.lazy = z
		m.all = make([]int32, d)
		for j := range m.all {
			m.all[j] = int32(j)
		}
	} else {
		m.x = slices.Clone(cfg.X0)
	}
	m.gbuf = make([]float64, d)
	m.delta = cfg.Reg.Still() && cfg.Mode != ModeSync
	if cfg.VR != nil {
		// The sparse svrg step moves only the gradient's support; the
		// dense one moves every coordinate.
		m.delta = cfg.VR.Sparse
	}
	m.workers = make([]mworker, cfg.Workers+1)
	for i := range m.workers {
		m.workers[i].holds = -1
	}
	m.mark = make([]int64, d)
	if cfg.SyncEvery > 0 {
		m.nextBarrier = cfg.SyncEvery
	}
	m.stats.init(cfg.Workers)
	m.gradsOf = make([]int64, cfg.Workers+1)
	m.active = cfg.Workers
	m.shares = slices.Clone(cfg.Shares)
	for _, s := range cfg.Shares {
		m.activeShare += s
	}
	m.nextSnap = NextSnapshot(0, cfg.SnapshotEvery)
	m.tol = NewTolCheck(cfg.Tol, cfg.Rows)
	if cfg.Resume != nil {
		if err := m.restore(cfg.Resume); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// T is the number of updates applied (the version of x).
func (m *Master) T() int64 { return m.t }

// SamplesDone is the number of mini-batch rows in the applied gradients.
func (m *Master) SamplesDone() int64 { return m.samples }

// Dim is the dimension d.
func (m *Master) Dim() int { return m.d }

// Done reports whether the run is over.
func (m *Master) Done() bool { return m.done }

// Stats returns the master's counters (a copy).
func (m *Master) Stats() MasterStats { return m.stats.clone() }

// StatsView returns the master's counters without copying them: read
// only, and valid until the next input to the master.
func (m *Master) StatsView() *MasterStats { return &m.stats }

// Lazy reports whether updates use the lazy O(nnz(g)) path.
func (m *Master) Lazy() bool { return m.lazy != nil }

// LazySyncs is the number of O(d) synchronizations of the lazy iterate
// (window full, snapshots, dense replies, tail-average blocks); 0 when eager.
func (m *Master) LazySyncs() int64 {
	if m.lazy == nil {
		return 0
	}
	return m.lazy.Syncs()
}

// Iterate writes the current iterate x_t into dst (O(d)).
func (m *Master) Iterate(dst []float64) {
	if m.lazy != nil {
		m.lazy.CopyX(dst)
		return
	}
	m.copyX(dst)
}

// Output writes the run's output (the average the policy prescribes, or
// the last iterate) into dst (O(d)).
func (m *Master) Output(dst []float64) {
	if m.lazy != nil {
		m.lazy.Average(dst)
		return
	}
	m.avg.Value(m.xNow(), dst)
}

// Checkpoint returns copies of the iterate and the averaging state (for
// solver checkpoints and for resuming).
func (m *Master) Checkpoint() (x []float64, avg solver.Averager) {
	if m.lazy != nil {
		return m.lazy.Export()
	}
	a := m.avg
	a.Cur, a.Prev = slices.Clone(a.Cur), slices.Clone(a.Prev)
	return slices.Clone(m.xNow()), a
}

func (m *Master) reset() {
	m.ready = Ready{Replies: m.ready.Replies[:0]}
	m.outIdx, m.outVal = m.outIdx[:0], m.outVal[:0]
}

// Start returns the first replies: x_0 to every worker (in bounded mode,
// to as many as the delay bound allows; the others wait for fresh x).
func (m *Master) Start() Ready {
	m.reset()
	if m.vr != nil {
		m.startRefresh()
	}
	for w := 1; w <= m.cfg.Workers; w++ {
		m.withhold(w)
	}
	m.release()
	if m.vr != nil {
		// The first snapshot, x0: no update before its mu~ is complete.
		m.vr.waiting = true
	}
	m.ready.Snapshot = true
	return m.ready
}

// stepGrad consumes one gradient (EventGrad). A gradient from an unknown
// worker is an error; one that arrives after the run is over is ignored.
// g's slices are only read during the call.
func (m *Master) stepGrad(g *Grad) error {
	m.reset()
	if g == nil {
		return fmt.Errorf("algo: a gradient event without a gradient")
	}
	if g.Worker < 1 || g.Worker > m.cfg.Workers {
		return fmt.Errorf("algo: gradient from unknown worker %d", g.Worker)
	}
	if m.done || m.workers[g.Worker].gone {
		return nil // late, or from a worker that left
	}
	w := &m.workers[g.Worker]
	i := slices.Index(w.sent, g.TRead)
	if i < 0 {
		return fmt.Errorf("algo: worker %d sent a gradient at version %d it was never sent", g.Worker, g.TRead)
	}
	w.sent = slices.Delete(w.sent, i, i+1)
	m.computing--
	if err := m.checkGrad(g); err != nil {
		w.keys = nil // the reply it is owed carries all of x
		if g.Kind == GradFull {
			m.vrLost(g.Worker)
		}
		m.refuse(g.Worker, err)
		return nil
	}
	m.takeKeys(g)
	if g.Kind == GradFull {
		return m.stepFull(g)
	}
	if m.cfg.Mode == ModeSync {
		m.stepSync(g)
		return nil
	}
	if m.vrDrop(g) {
		m.observe(g, m.t-g.TRead)
	} else if err := m.apply(g); err != nil {
		return err
	}
	if !m.done {
		m.withhold(g.Worker)
		m.release()
	}
	return nil
}

func (m *Master) checkGrad(g *Grad) error {
	if g.Rows < 1 || !finite(g.Loss) {
		return fmt.Errorf("algo: worker %d sent a gradient of %d rows with loss %v", g.Worker, g.Rows, g.Loss)
	}
	if err := checkKeys(g, m.d); err != nil {
		return err
	}
	if g.Dense != nil {
		if len(g.Dense) != m.d {
			return fmt.Errorf("algo: worker %d sent a dense gradient of length %d, want %d", g.Worker, len(g.Dense), m.d)
		}
		return checkFinite(g.Worker, g.Dense)
	}
	if len(g.Idx) != len(g.Val) {
		return fmt.Errorf("algo: worker %d sent a sparse gradient with %d indices and %d values", g.Worker, len(g.Idx), len(g.Val))
	}
	prev := int32(-1)
	for _, j := range g.Idx {
		if j <= prev || int(j) >= m.d {
			return fmt.Errorf("algo: worker %d sent a sparse gradient with index %d out of order or range [0,%d)", g.Worker, j, m.d)
		}
		prev = j
	}
	if g.TRead < 0 || g.TRead > m.t {
		return fmt.Errorf("algo: worker %d sent a gradient at version %d, master is at %d", g.Worker, g.TRead, m.t)
	}
	return checkFinite(g.Worker, g.Val)
}

// apply is one asynchronous update with g.
func (m *Master) apply(g *Grad) error {
	delay := m.t - g.TRead
	m.observe(g, delay)
	alpha := m.cfg.Schedule.Alpha(m.t, int(delay))
	w := m.reweight(g.Worker)
	if m.vr != nil {
		if err := m.applyVR(g, w); err != nil {
			return err
		}
	} else if g.Dense != nil {
		m.applyDense(g.Dense, alpha, w)
	} else {
		m.applySparse(g.Idx, g.Val, alpha, w)
	}
	m.samples += int64(g.Rows)
	m.afterUpdate()
	if m.cfg.SyncEvery > 0 && !m.inBarrier && m.t >= m.nextBarrier {
		m.inBarrier = true
		m.nextBarrier = m.t + m.cfg.SyncEvery
	}
	m.vrDue()
	return nil
}

// withhold queues a reply owed to worker w.
func (m *Master) withhold(w int) { m.withheld = append(m.withheld, w) }

// release sends the withheld replies the mode allows now.
func (m *Master) release() {
	if m.vr != nil && m.vr.waiting {
		return // the first snapshot is not complete
	}
	switch {
	case m.inBarrier:
		// Everyone checks in (nothing left in flight), then all restart
		// from the same x.
		if m.computing > 0 {
			return
		}
		m.inBarrier = false
		m.stats.Barriers++
	case m.cfg.Mode == ModeBounded:
		n := 0
		for _, w := range m.withheld {
			if !m.safeToSend(w) {
				break
			}
			m.send(w)
			n++
		}
		m.withheld = append(m.withheld[:0], m.withheld[n:]...)
		if n == 0 && len(m.withheld) > 0 && m.stalled() {
			m.unstall()
		}
		return
	}
	for _, w := range m.withheld {
		m.send(w)
	}
	m.withheld = m.withheld[:0]
}

// safeToSend reports whether the gradients a reply to worker w adds to
// those in flight (one, or two for a pipelining worker's first x), computed
// at the current version, can be in flight without any gradient in flight
// being applied more than MaxDelay updates after its version: with u
// updates still to come from what is in flight, the last is applied at the
// latest at t + u - 1, and the oldest version must be within MaxDelay of
// that. Every mini-batch gradient is one update. The svrg refresh parts
// (answers to a snapshot) are one update together at most: the jump back
// when the completed snapshot is rejected. Counting each part as an
// update, as this did, held all but MaxDelay+1 workers at t = 0 for ever
// (the first snapshot needs every worker's part before any update).
func (m *Master) safeToSend(w int) bool {
	oldest := m.t
	u, parts := int64(m.computing), false
	for v := 1; v <= m.cfg.Workers; v++ {
		if m.vr != nil && m.vr.asked[v] == 1 {
			if len(m.workers[v].sent) > 0 {
				u-- // its refresh part
				parts = true
			}
			continue
		}
		if s := m.workers[v].sent; len(s) > 0 && s[0] < oldest {
			oldest = s[0]
		}
	}
	if m.vr != nil && m.vr.pending >= 0 && m.vr.asked[w] == 0 {
		parts = true // the reply asks w for its part
	} else {
		u++ // the reply's gradient is a mini-batch one
	}
	if parts {
		u++ // the jump back, if the snapshot they complete is rejected
	}
	if m.cfg.Pipeline && !m.workers[w].started {
		u++ // the pipelined gradient computed at the same first x
	}
	return m.t+u-1-oldest <= int64(m.cfg.MaxDelay)
}

// stalled reports whether no gradient can arrive without a reply the
// bounded mode withholds: every gradient in flight is held by a
// pipelining worker that waits for its reply before sending it.
func (m *Master) stalled() bool {
	for w := 1; w <= m.cfg.Workers; w++ {
		if len(m.workers[w].sent) > 0 && !slices.Contains(m.withheld, w) {
			return false
		}
	}
	return true
}

// unstall sends the withheld reply whose worker holds the oldest gradient:
// the bound cannot be kept (MaxDelay is too small for the pipeline), and
// withholding would stop the run.
func (m *Master) unstall() {
	k := 0
	for i, w := range m.withheld {
		if s, best := m.workers[w].sent, m.workers[m.withheld[k]].sent; len(s) > 0 && (len(best) == 0 || s[0] < best[0]) {
			k = i
		}
	}
	w := m.withheld[k]
	m.withheld = slices.Delete(m.withheld, k, k+1)
	m.stats.Unstalls++
	m.send(w)
}

// send replies to a withheld worker with the current x.
func (m *Master) send(w int) {
	wk := &m.workers[w]
	n := 1
	if m.cfg.Pipeline && !wk.started {
		n = 2 // the first x serves the first two gradients
	}
	wk.started = true
	for range n {
		wk.sent = append(wk.sent, m.t)
		m.computing++
	}
	m.askSnapshot(w)
	m.reply(w)
}

// stepSync gathers one gradient per worker into their mean; the last one
// triggers the update and the replies to all.
func (m *Master) stepSync(g *Grad) {
	m.observe(g, m.t-g.TRead)
	inv := 1 / float64(m.cfg.Workers)
	if m.shares != nil {
		inv = m.shares[g.Worker]
	}
	if g.Dense != nil {
		for j, v := range g.Dense {
			m.gbuf[j] += inv * v
		}
	} else {
		for k, j := range g.Idx {
			m.gbuf[j] += inv * g.Val[k]
		}
	}
	m.samples += int64(g.Rows)
	m.roundW += inv
	m.withhold(g.Worker)
	if m.computing > 0 {
		return // a worker still in the run has not sent its gradient
	}
	m.syncUpdate()
}

// syncUpdate applies the round's gradients gathered in gbuf and replies
// to every worker of the round. After a worker left, their weights no
// longer add up to one: the sum is rescaled to the mean over the round.
func (m *Master) syncUpdate() {
	if (m.active < m.cfg.Workers || m.roundShort) && m.roundW > 0 {
		s := 1 / m.roundW
		for j := range m.gbuf {
			m.gbuf[j] *= s
		}
	}
	m.roundShort = false
	if m.roundW == 0 {
		m.release() // every gradient of the round was refused
		return
	}
	m.roundW = 0
	alpha := m.cfg.Schedule.Alpha(m.t, 0)
	if m.lazy != nil {
		m.lazy.Step(m.all, m.gbuf, alpha)
	} else {
		m.cfg.Reg.Step(m.x, m.gbuf, alpha)
		m.avg.Add(m.x)
	}
	clear(m.gbuf)
	m.afterUpdate()
	if !m.done {
		m.release()
	}
}

// observe counts gradient g, delay updates stale, for the reweighting and
// in the statistics.
func (m *Master) observe(g *Grad, delay int64) {
	m.grads++
	m.gradsOf[g.Worker]++
	m.stats.observe(g, delay)
}

// reweight is the correction factor of worker w's gradient (see
// MasterConfig.Shares); 1 without shares. The gradient being applied is
// already counted in the statistics.
func (m *Master) reweight(w int) float64 {
	if m.shares == nil {
		return 1
	}
	P, share, grads := float64(m.cfg.Workers), m.shares[w], m.grads
	if m.active < m.cfg.Workers {
		// The shards of the workers that left are gone: the others'
		// shares and gradients make the whole.
		P, share, grads = float64(m.active), share/m.activeShare, grads-m.lostGrads
	}
	// Add-one smoothing: equal rates until gradients have been counted.
	frac := (float64(m.gradsOf[w]) + 1) / (float64(grads) + P)
	r := share / frac
	return min(max(r, 1/MaxReweight), MaxReweight)
}

func (m *Master) applyDense(g []float64, alpha, w float64) {
	if m.lazy != nil {
		m.lazy.StepScaled(m.all, g, alpha, w)
	} else {
		if w != 1 {
			// Reg.Step takes the gradient as it is: scale a copy.
			for j, v := range g {
				m.gbuf[j] = w * v
			}
			g = m.gbuf
		}
		m.cfg.Reg.Step(m.x, g, alpha)
		m.avg.Add(m.x)
		if w != 1 {
			clear(m.gbuf)
		}
	}
	m.logSupport(m.all)
}

func (m *Master) applySparse(idx []int32, val []float64, alpha, w float64) {
	if m.lazy != nil {
		m.lazy.StepScaled(idx, val, alpha, w)
	} else {
		for k, j := range idx {
			m.gbuf[j] = w * val[k]
		}
		m.cfg.Reg.Step(m.x, m.gbuf, alpha)
		m.avg.Add(m.x)
		for _, j := range idx {
			m.gbuf[j] = 0
		}
	}
	m.logSupport(idx)
}

// afterUpdate advances t and checks the stopping rules and snapshots.
func (m *Master) afterUpdate() {
	m.t++
	m.stats.Updates = m.t
	if m.t >= m.nextSnap {
		m.ready.Snapshot = true
		m.nextSnap = NextSnapshot(m.t, m.cfg.SnapshotEvery)
	}
	switch {
	case m.cfg.Iters > 0 && m.t >= m.cfg.Iters:
		m.stop(StopIters)
	case m.cfg.Samples > 0 && m.samples >= m.cfg.Samples:
		r := m.cfg.SamplesStop
		if r == StopNone {
			r = StopEpochs
		}
		m.stop(r)
	}
}

// NextSnapshot is the update count of the snapshot after the one at t:
// t + every, or with every = 0 the geometric sequence 1, 2, ..., 10, 11,
// 12, 13, 15, ... (each about 10% beyond the last).
func NextSnapshot(t, every int64) int64 {
	if every > 0 {
		return t + every
	}
	return max(t+1, t+t/10)
}

// maxLogSteps bounds the support log used for delta replies.
func (m *Master) maxLogSteps() int { return 4*m.cfg.Workers + 64 }

// logSupport records the support of update t (before the increment) for
// delta replies; only regularizers that leave untouched coordinates alone
// need it.
func (m *Master) logSupport(idx []int32) {
	if !m.delta {
		return
	}
	if m.logStart == nil {
		m.logBase = m.t
		m.logStart = append(m.logStart, 0)
	}
	m.logIdx = append(m.logIdx, idx...)
	m.logStart = append(m.logStart, len(m.logIdx))
	if steps := len(m.logStart) - 1; steps > 2*m.maxLogSteps() || len(m.logIdx) > 4*m.d+1024 {
		drop := steps - m.maxLogSteps()
		if drop < 1 {
			drop = 1
		}
		off := m.logStart[drop]
		m.logIdx = append(m.logIdx[:0], m.logIdx[off:]...)
		m.logStart = append(m.logStart[:0], m.logStart[drop:]...)
		for k := range m.logStart {
			m.logStart[k] -= off
		}
		m.logBase += int64(drop)
	}
}

// reply sends the current x to worker w, in whichever form is smallest.
func (m *Master) reply(w int) {
	wk := &m.workers[w]
	r := Reply{Worker: w, T: m.t}
	if m.keyedReply(wk, &r) {
		m.stats.countReply(r.Kind, len(r.Idx))
		wk.holds = -1 // the worker's copy is exact on its keys only
		m.ready.Replies = append(m.ready.Replies, r)
		return
	}
	denseBytes := 8 * m.d
	const sparseEntry = 10 // 8-byte value + about 2 bytes of delta-varint index
	switch {
	case m.delta && wk.holds >= 0 && wk.holds >= m.logBase && m.logStart != nil:
		// Coordinates changed since the worker's version.
		start := len(m.outIdx)
		m.stamp++
		lo := m.logStart[wk.holds-m.logBase]
		for _, j := range m.logIdx[lo:] {
			if m.mark[j] != m.stamp {
				m.mark[j] = m.stamp
				m.outIdx = append(m.outIdx, j)
			}
		}
		n := len(m.outIdx) - start
		if sparseEntry*n < denseBytes {
			idx := m.outIdx[start:]
			if n > m.d/16 {
				// Many entries: a sweep of the stamps is cheaper than a
				// sort (rcv1_small svrg: 6000 entries, 300 us sorted).
				k := 0
				for j, st := range m.mark {
					if st == m.stamp {
						idx[k] = int32(j)
						k++
					}
				}
			} else {
				slices.Sort(idx)
			}
			vs := len(m.outVal)
			for _, j := range idx {
				m.outVal = append(m.outVal, m.at(int(j)))
			}
			r.Kind, r.Base, r.Idx, r.Val = ReplyDelta, wk.holds, idx, m.outVal[vs:]
			break
		}
		m.outIdx = m.outIdx[:start]
		m.fullReply(&r)
	default:
		m.fullReply(&r)
	}
	m.stats.countReply(r.Kind, len(r.Idx))
	wk.holds = m.t
	m.ready.Replies = append(m.ready.Replies, r)
}

// at returns the current x_j.
func (m *Master) at(j int) float64 {
	if m.lazy != nil {
		return m.lazy.At(j)
	}
	if m.xHeld() {
		return m.vr.step.X(j)
	}
	return m.x[j]
}

// fullReply fills r with all of x, sparse when that is smaller.
func (m *Master) fullReply(r *Reply) {
	denseBytes := 8 * m.d
	const sparseEntry = 10
	if m.lazy != nil {
		if sparseEntry*m.lazy.NNZUpper() < denseBytes {
			is, vs := len(m.outIdx), len(m.outVal)
			m.outIdx, m.outVal = m.lazy.AppendNonzeros(m.outIdx, m.outVal)
			r.Kind, r.Idx, r.Val = ReplySparse, m.outIdx[is:], m.outVal[vs:]
			return
		}
		s := len(m.outVal)
		m.outVal = slices.Grow(m.outVal, m.d)[:s+m.d]
		m.lazy.PeekAll(m.outVal[s:])
		r.Kind, r.Dense = ReplyDense, m.outVal[s:]
		return
	}
	x := m.xNow()
	nnz := 0
	for _, v := range x {
		if v != 0 {
			nnz++
		}
	}
	if sparseEntry*nnz < denseBytes {
		is, vs := len(m.outIdx), len(m.outVal)
		for j, v := range x {
			if v != 0 {
				m.outIdx = append(m.outIdx, int32(j))
				m.outVal = append(m.outVal, v)
			}
		}
		r.Kind, r.Idx, r.Val = ReplySparse, m.outIdx[is:], m.outVal[vs:]
		return
	}
	m.denseReply(r, x)
}

// denseReply copies x into the reply arena: a later update in the same
// call must not change what an earlier reply carries.
func (m *Master) denseReply(r *Reply, x []float64) {
	s := len(m.outVal)
	m.outVal = append(m.outVal, x...)
	r.Kind, r.Dense = ReplyDense, m.outVal[s:]
}
