// Package memnet runs one algo.Master and N algo.Workers in memory,
// deterministically, on a virtual clock: a discrete-event network with a
// model of each worker's compute time, of every message's latency (per
// link, FIFO per link unless Config.Reorder) and of the master as a single
// server (service time and link time per message). It can drop messages,
// make a worker leave (the master gets an EventLeave) and inject Tick
// events. Gradients are computed for real, by each worker's
// algo.GradFunc (ProblemGrads computes them on a solver.Problem).
//
// Time is virtual, in seconds (float64); the package opens no socket or
// file and reads no clock. It is the core of the simulator (package sim)
// and the network of the protocol tests. Not safe for concurrent use.
package memnet

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/asyncmb/asyncmb/algo"
)

// Timing is the network's time model, in seconds. The network asks for
// each figure when it is needed, in a deterministic order, so an
// implementation may draw them from a seeded generator.
type Timing interface {
	// Compute is worker w's time to compute the gradient it starts now.
	Compute(w int) float64
	// Latency is the one-way latency of the message sent now between
	// worker w and the master (toMaster: a gradient; else a reply).
	Latency(w int, toMaster bool) float64
	// Receive is the master's link time for an arriving gradient, Service
	// its time to process it (both before its replies leave), Send the
	// link time of one reply (the replies of one step leave one after the
	// other).
	Receive(g *algo.Grad) float64
	Service(g *algo.Grad) float64
	Send(r *algo.Reply) float64
}

// Msg is a message on the network: a gradient from worker W to the
// master, or a reply from the master to worker W.
type Msg struct {
	W      int
	Grad   *algo.Grad  // set for a gradient (the network's copy)
	Reply  *algo.Reply // set for a reply (the network's copy)
	Seq    int64       // the order messages were sent in (1, 2, ...)
	At     float64     // when it was sent
	Arrive float64     // when it arrives (unless dropped)
}

// Config sets up a network. Workers and Grads are indexed by worker
// number (1..P; index 0 unused); the master and the workers are built by
// the caller, so that their configurations stay the caller's.
type Config struct {
	Master  *algo.Master
	Workers []*algo.Worker
	Grads   []algo.GradFunc
	Timing  Timing
	// Reorder lets a message overtake an earlier one on the same link
	// (by default each link is FIFO: a message never arrives before the
	// one sent before it).
	Reorder bool
	// Drop, if set, sees every message as it is sent; true loses it.
	Drop func(m *Msg) bool
	// Sent, if set, sees every message that is sent and not dropped.
	Sent func(m *Msg)
	// Observe, if set, sees every event the master steps on (after
	// Start), what it produced and when the master is free again (its
	// replies have left); true ends Run.
	Observe func(ev algo.Event, rd algo.Ready, free float64) bool
}

// ErrStalled: nothing is in flight or being computed, and the master is
// not done (a deadlock in the mode's rules, or a lost message nothing
// released).
var ErrStalled = errors.New("memnet: stalled: nothing in flight and the master is not done")

type evKind uint8

const (
	evGrad     evKind = iota + 1 // a gradient reaches the master
	evReply                      // a reply reaches worker w
	evComputed                   // worker w's computation is done
	evLeave                      // worker w leaves
	evTick                       // the master gets a Tick
)

type event struct {
	at   float64
	seq  int64
	kind evKind
	w    int
	msg  *Msg
	ns   int64 // evComputed: the compute time in ns
}

type queue []*event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *queue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// node is a worker's side of the network.
type node struct {
	computing bool
	stopped   bool
	gone      bool
	inbox     []*Msg  // replies that arrived while it computed
	waitSince float64 // when it last started waiting for a reply
	// lastUp, lastDown: the latest arrival on its link to and from the
	// master (FIFO links).
	lastUp, lastDown float64
	stats            WorkerStats
}

// WorkerStats is what the network measured of one worker.
type WorkerStats struct {
	Sent     int64   // gradients sent (dropped ones included)
	Received int64   // replies that reached it
	ComputeS float64 // time computing
	IdleS    float64 // time waiting for a reply carrying x
}

// Stats is what the network measured.
type Stats struct {
	Msgs, Dropped int64
	MasterBusyS   float64 // time the master was receiving, serving or sending
	Workers       []WorkerStats
}

// Net is the network. Build it with New, then Start and Run.
type Net struct {
	cfg     Config
	m       *algo.Master
	nodes   []node
	q       queue
	seq     int64 // of events
	msgSeq  int64
	now     float64
	free    float64 // when the master is free
	busy    float64
	msgs    int64
	dropped int64
	started bool
	halted  bool
}

// New checks cfg and builds the network.
func New(cfg Config) (*Net, error) {
	switch {
	case cfg.Master == nil:
		return nil, errors.New("memnet: no master")
	case cfg.Timing == nil:
		return nil, errors.New("memnet: no timing model")
	case len(cfg.Workers) < 2 || len(cfg.Grads) != len(cfg.Workers):
		return nil, fmt.Errorf("memnet: %d workers and %d gradient functions (indexed 1..P), want P >= 1 of each", len(cfg.Workers)-1, len(cfg.Grads)-1)
	}
	for w := 1; w < len(cfg.Workers); w++ {
		if cfg.Workers[w] == nil || cfg.Grads[w] == nil {
			return nil, fmt.Errorf("memnet: worker %d has no state machine or no gradient function", w)
		}
	}
	return &Net{cfg: cfg, m: cfg.Master, nodes: make([]node, len(cfg.Workers))}, nil
}

// Master is the network's master.
func (n *Net) Master() *algo.Master { return n.m }

// Now is the virtual time of the last event handled.
func (n *Net) Now() float64 { return n.now }

// Free is when the master is free (its last replies have left).
func (n *Net) Free() float64 { return n.free }

// Stats is what the network measured so far.
func (n *Net) Stats() Stats {
	s := Stats{Msgs: n.msgs, Dropped: n.dropped, MasterBusyS: n.busy, Workers: make([]WorkerStats, len(n.nodes))}
	for w := range n.nodes {
		s.Workers[w] = n.nodes[w].stats
	}
	return s
}

// Start starts the master at time 0 and sends its first replies.
func (n *Net) Start() {
	if n.started {
		return
	}
	n.started = true
	rd := n.m.Start()
	n.free = n.replies(rd, 0)
	n.busy = n.free
}

// Leave makes worker w leave at time at (or now, if later): what it has
// in flight or computes is lost, and the master steps on an EventLeave.
func (n *Net) Leave(w int, at float64) error {
	if w < 1 || w >= len(n.nodes) {
		return fmt.Errorf("memnet: leave of worker %d, want 1..%d", w, len(n.nodes)-1)
	}
	n.push(&event{at: max(at, n.now), kind: evLeave, w: w})
	return nil
}

// Tick makes the master step on an EventTick at time at (or now, if
// later).
func (n *Net) Tick(at float64) { n.push(&event{at: max(at, n.now), kind: evTick}) }

// Halted reports whether Run ended because Config.Observe asked.
func (n *Net) Halted() bool { return n.halted }

// Run handles events in time order until the master is done and nothing
// is left in flight, until Observe asks to end, or until the time until
// has passed (until <= 0: no limit; events after it stay queued). It
// returns ErrStalled (wrapped, with the time and update count) when
// nothing is left to happen before the master is done.
func (n *Net) Run(until float64) error {
	n.Start()
	n.halted = false
	for {
		if n.q.Len() == 0 {
			if n.m.Done() {
				return nil
			}
			return fmt.Errorf("%w (t=%d, %.6g s)", ErrStalled, n.m.T(), n.now)
		}
		if until > 0 && n.q[0].at > until {
			return nil
		}
		ev := heap.Pop(&n.q).(*event)
		n.now = ev.at
		stop, err := n.handle(ev)
		if err != nil {
			return err
		}
		if stop {
			n.halted = true
			return nil
		}
	}
}

func (n *Net) push(ev *event) {
	n.seq++
	ev.seq = n.seq
	heap.Push(&n.q, ev)
}

func (n *Net) handle(ev *event) (bool, error) {
	switch ev.kind {
	case evGrad:
		if n.nodes[ev.w].gone {
			return false, nil
		}
		return n.master(ev.at, algo.Event{Kind: algo.EventGrad, Grad: ev.msg.Grad}, ev.msg.Grad)
	case evLeave:
		nd := &n.nodes[ev.w]
		if nd.gone {
			return false, nil
		}
		nd.gone, nd.inbox = true, nil
		return n.master(ev.at, algo.Event{Kind: algo.EventLeave, Worker: ev.w}, nil)
	case evTick:
		return n.master(ev.at, algo.Event{Kind: algo.EventTick}, nil)
	case evReply:
		nd := &n.nodes[ev.w]
		if nd.gone || nd.stopped {
			return false, nil
		}
		nd.stats.Received++
		if nd.computing {
			nd.inbox = append(nd.inbox, ev.msg)
			return false, nil
		}
		return false, n.deliver(ev.w, ev.msg)
	case evComputed:
		nd := &n.nodes[ev.w]
		if nd.gone {
			return false, nil
		}
		nd.computing = false
		rd, err := n.cfg.Workers[ev.w].Step(algo.WorkerEvent{Kind: algo.WorkerComputed, Ns: ev.ns})
		if err != nil {
			return false, fmt.Errorf("memnet: worker %d: %w", ev.w, err)
		}
		return false, n.act(ev.w, rd)
	}
	return false, fmt.Errorf("memnet: unknown event kind %d", ev.kind)
}

// master steps the master on ev at time at (it starts when the master is
// free), g being the gradient it receives (nil for other events).
func (n *Net) master(at float64, ev algo.Event, g *algo.Grad) (bool, error) {
	t := n.cfg.Timing
	start := max(at, n.free)
	ev.Now = int64(start * 1e9)
	end := start
	if g != nil {
		end = start + t.Receive(g) + t.Service(g)
	}
	rd, err := n.m.Step(ev)
	if err != nil {
		return false, fmt.Errorf("memnet: master at t=%d: %w", n.m.T(), err)
	}
	end += n.replies(rd, end)
	n.busy += end - start
	n.free = end
	if n.cfg.Observe != nil {
		return n.cfg.Observe(ev, rd, n.free), nil
	}
	return false, nil
}

// replies sends rd's replies, the first leaving at time at; it returns
// their link time at the master.
func (n *Net) replies(rd algo.Ready, at float64) float64 {
	var link float64
	for i := range rd.Replies {
		r := copyReply(&rd.Replies[i])
		link += n.cfg.Timing.Send(r)
		n.send(&Msg{W: r.Worker, Reply: r, At: at + link})
	}
	return link
}

// send puts m on its link (m.At set).
func (n *Net) send(m *Msg) {
	nd := &n.nodes[m.W]
	if nd.gone {
		return
	}
	n.msgSeq++
	m.Seq = n.msgSeq
	n.msgs++
	up := m.Grad != nil
	m.Arrive = m.At + n.cfg.Timing.Latency(m.W, up)
	last := &nd.lastDown
	if up {
		last = &nd.lastUp
	}
	if !n.cfg.Reorder {
		m.Arrive = max(m.Arrive, *last)
	}
	if n.cfg.Drop != nil && n.cfg.Drop(m) {
		n.dropped++
		return
	}
	*last = max(*last, m.Arrive)
	if n.cfg.Sent != nil {
		n.cfg.Sent(m)
	}
	kind := evReply
	if up {
		kind = evGrad
	}
	n.push(&event{at: m.Arrive, kind: kind, w: m.W, msg: m})
}

// deliver gives worker w a reply now.
func (n *Net) deliver(w int, m *Msg) error {
	nd := &n.nodes[w]
	waited := n.now - nd.waitSince
	if m.Reply.Kind != algo.ReplyStop {
		nd.stats.IdleS += waited
	}
	rd, err := n.cfg.Workers[w].Step(algo.WorkerEvent{Kind: algo.WorkerReply, Reply: m.Reply, Ns: int64(waited * 1e9)})
	if err != nil {
		return fmt.Errorf("memnet: worker %d: %w", w, err)
	}
	return n.act(w, rd)
}

// act carries out what worker w's Step asked for: send, then compute,
// or stop, or read the next reply that arrived while it computed.
func (n *Net) act(w int, rd algo.WorkerReady) error {
	nd := &n.nodes[w]
	if rd.Send != nil {
		nd.stats.Sent++
		n.send(&Msg{W: w, Grad: copyGrad(rd.Send), At: n.now})
	}
	switch {
	case rd.Stop:
		nd.stopped, nd.inbox = true, nil
	case rd.Compute:
		n.cfg.Workers[w].Compute(n.cfg.Grads[w])
		c := n.cfg.Timing.Compute(w)
		nd.computing = true
		nd.stats.ComputeS += c
		n.push(&event{at: n.now + c, kind: evComputed, w: w, ns: int64(c * 1e9)})
	default:
		nd.waitSince = n.now
		if len(nd.inbox) > 0 {
			m := nd.inbox[0]
			nd.inbox = nd.inbox[1:]
			return n.deliver(w, m)
		}
	}
	return nil
}

func copyGrad(g *algo.Grad) *algo.Grad {
	c := *g
	c.Dense, c.Idx, c.Val = slices.Clone(g.Dense), slices.Clone(g.Idx), slices.Clone(g.Val)
	return &c
}

func copyReply(r *algo.Reply) *algo.Reply {
	c := *r
	c.Dense, c.Idx, c.Val = slices.Clone(r.Dense), slices.Clone(r.Idx), slices.Clone(r.Val)
	return &c
}

// finite reports whether every figure is finite and >= 0.
func finite(vs ...float64) bool {
	for _, v := range vs {
		if !(v >= 0) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
