package algo

import (
	"fmt"
	"math"
)

// EventKind says what happened to the master.
type EventKind uint8

const (
	// EventGrad: a gradient arrived (Event.Grad).
	EventGrad EventKind = iota + 1
	// EventTick: time passed (Event.Now only); the time rules are
	// checked.
	EventTick
	// EventEval: the output was evaluated on the full data: its
	// objective Event.Phi after Event.Samples rows of applied gradients
	// (the target and --tol rules).
	EventEval
	// EventJoin: worker Event.Worker, which had left, joins again and
	// takes back its own share of the data from worker Event.From (0:
	// none) that had adopted it.
	EventJoin
	// EventLeave: worker Event.Worker left the run (died, was lost or
	// asked to go).
	EventLeave
	// EventStop: the driver ends the run for Event.Reason (an interrupt,
	// a divergence it detected, too few workers left).
	EventStop
)

// Event is one input to the master. Every kind carries Now, the training
// time so far in nanoseconds as the driver measures it (wall-clock time,
// or simulated time): the master keeps the largest it has seen and
// checks its time rules (MasterConfig.TimeNs, CapSamples) against it.
// The other fields are read by the kinds that name them.
type Event struct {
	Kind    EventKind
	Now     int64
	Grad    *Grad      // EventGrad (only read during Step)
	Worker  int        // EventJoin, EventLeave
	From    int        // EventJoin
	Phi     float64    // EventEval
	Samples int64      // EventEval
	Reason  StopReason // EventStop
}

// StopReason is why a run stopped; the zero value is "not stopped".
type StopReason uint8

const (
	StopNone StopReason = iota
	StopIters
	StopEpochs    // the sample budget of MasterConfig.Samples (--epochs)
	StopMaxEpochs // the epoch cap (--max-epochs)
	StopTime
	StopTarget
	StopTol
	StopInterrupted
	StopDiverged
	StopFewWorkers
	numStopReasons
)

var stopNames = [numStopReasons]string{"", "iters", "epochs", "max-epochs", "time", "target", "tol", "interrupted", "diverged", "too few workers"}

// String is the reason as summary.json records it ("" for StopNone).
func (s StopReason) String() string {
	if s < numStopReasons {
		return stopNames[s]
	}
	return fmt.Sprintf("StopReason(%d)", uint8(s))
}

// Step consumes one event and returns what it produced. An event that
// names an unknown worker is an error; a gradient that arrives after the
// run is over, or from a worker that left, is ignored. Once the master
// stops (Ready.Stop set), the Ready carries a stop reply for every worker
// still in the run, and later events produce nothing.
func (m *Master) Step(ev Event) (Ready, error) {
	m.now = max(m.now, ev.Now)
	var err error
	switch ev.Kind {
	case EventGrad:
		err = m.stepGrad(ev.Grad)
	case EventTick:
		m.reset()
	case EventEval:
		m.reset()
		m.eval(ev.Phi, ev.Samples)
	case EventJoin:
		err = m.join(ev.Worker, ev.From)
	case EventLeave:
		err = m.leave(ev.Worker)
	case EventStop:
		m.reset()
		if ev.Reason == StopNone || ev.Reason >= numStopReasons {
			return m.ready, fmt.Errorf("algo: stop for reason %d", ev.Reason)
		}
		m.stop(ev.Reason)
	default:
		return m.ready, fmt.Errorf("algo: unknown event kind %d", ev.Kind)
	}
	if err != nil {
		return m.ready, err
	}
	m.checkTime()
	return m.ready, nil
}

// StopReason is why the run stopped (StopNone while it goes on).
func (m *Master) StopReason() StopReason { return m.stopReason }

// TolChange is the --tol rule's last relative change of phi per epoch
// (NaN before its first comparison, or without the rule).
func (m *Master) TolChange() float64 {
	if m.tol == nil {
		return math.NaN()
	}
	return m.tol.Last
}

// stop ends the run for reason: a snapshot of the end and a stop reply
// to every worker still in the run. Only the first reason counts.
func (m *Master) stop(reason StopReason) {
	if m.done {
		return
	}
	m.done, m.stopReason = true, reason
	m.ready.Stop, m.ready.Snapshot = reason, true
	for w := 1; w <= m.cfg.Workers; w++ {
		if !m.workers[w].gone {
			m.ready.Replies = append(m.ready.Replies, Reply{Worker: w, Kind: ReplyStop, T: m.t})
		}
	}
}

// checkTime applies the rules that depend on the training time.
func (m *Master) checkTime() {
	c := &m.cfg
	switch {
	case m.done:
	case c.TimeNs > 0 && m.now >= c.TimeNs:
		m.stop(StopTime)
	case c.CapSamples > 0 && m.now >= c.CapMinNs && m.samples >= c.CapSamples:
		m.stop(StopMaxEpochs)
	}
}

// eval applies the target and the --tol rule to phi(output) after
// samples rows.
func (m *Master) eval(phi float64, samples int64) {
	if m.done {
		return
	}
	if m.cfg.Target && phi <= m.cfg.TargetPhi {
		m.stop(StopTarget)
		return
	}
	if m.tol != nil && m.tol.Observe(phi, samples) {
		m.stop(StopTol)
	}
}

// TolCheck is the --tol rule: it compares phi(output) at evaluations at
// least one epoch apart, and fires when the relative change per epoch,
// |phi_prev - phi| / |phi| / epochs between them, is at most Tol. Spacing
// the comparison by epochs, not by evaluations, makes it independent of
// how often the driver evaluates (on a small data set, every few updates).
type TolCheck struct {
	Tol        float64
	N          int64 // rows: one epoch
	refPhi     float64
	refSamples int64
	started    bool
	// Last is the last relative change per epoch (NaN before the first
	// comparison).
	Last float64
}

// NewTolCheck returns the check for tol over epochs of n rows, or nil
// for tol <= 0 (no check).
func NewTolCheck(tol float64, n int64) *TolCheck {
	if !(tol > 0) {
		return nil
	}
	return &TolCheck{Tol: tol, N: n, Last: math.NaN()}
}

// Observe takes phi(output) after samples rows and reports whether the
// change has fallen to Tol.
func (c *TolCheck) Observe(phi float64, samples int64) bool {
	if math.IsNaN(phi) || math.IsInf(phi, 0) {
		return false
	}
	if !c.started {
		c.refPhi, c.refSamples, c.started = phi, samples, true
		return false
	}
	if samples-c.refSamples < c.N {
		return false
	}
	epochs := float64(samples-c.refSamples) / float64(c.N)
	c.Last = math.Abs(c.refPhi-phi) / math.Max(math.Abs(phi), 1e-300) / epochs
	c.refPhi, c.refSamples = phi, samples
	return c.Last <= c.Tol
}
