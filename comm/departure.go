package comm

import (
	"fmt"
	"slices"
)

// Departures: by default RecvAny fails as soon as any peer is lost and
// ignores peers that closed in order (bye) while others remain. A master
// that goes on without a departed worker needs both reported once and then
// forgotten: ReportDepartures makes RecvAny fail for a peer that closed as
// well as for one that was lost, and Forget(rank) acknowledges that rank's
// departure, after which RecvAny neither fails for it nor returns its
// queued messages.

// ReportDepartures makes RecvAny fail with an *OpError naming the peer
// when any peer that has not been forgotten has closed its links (an
// orderly bye), not only when one is lost. Safe for concurrent use.
func (c *Comm) ReportDepartures() {
	c.mb.mu.Lock()
	c.mb.strict = true
	c.mb.mu.Unlock()
}

// Forget acknowledges that rank is gone (lost or closed): RecvAny no
// longer fails because of it, its undelivered messages are dropped, and its
// links are closed. Recv from rank and Send to it keep failing. Forgetting
// a live peer cuts it off. Safe for concurrent use; rank 0 .. Size-1 other
// than our own.
func (c *Comm) Forget(rank int) {
	if rank < 0 || rank >= c.cfg.Size || rank == c.cfg.Rank {
		return
	}
	p := c.peers[rank]
	p.mu.Lock()
	if p.lost == nil && !p.closed {
		p.lost = &OpError{Op: "forget", Rank: c.cfg.Rank, Peer: rank, Addr: p.addr, Err: ErrPeerLost}
	}
	links := slices.Clone(p.links)
	p.mu.Unlock()
	for _, l := range links {
		l.fail(ErrPeerLost)
	}
	c.mb.forget(rank, p.lost)
}

// forget marks src as forgotten and drops its queued frames.
func (mb *mailbox) forget(src int, err error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	st := &mb.peers[src]
	if st.err == nil {
		st.err = err
	}
	st.forgotten = true
	for _, q := range mb.queues {
		q.pending = slices.DeleteFunc(q.pending, func(f *frame) bool {
			if f.src == src {
				f.release()
				return true
			}
			return false
		})
	}
	mb.wakeLocked(func(w *waiter) bool { return w.src == src || w.src == anySrc })
}

// forgotten reports whether src's departure was acknowledged by Forget.
func (mb *mailbox) forgotten(src int) bool {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.peers[src].forgotten
}

// readmit lets a forgotten rank in again (on rank 0, after its dialer has
// proven the secret): its old links are gone, its state is reset, and
// messages from it are delivered again.
func (c *Comm) readmit(p *peer) error {
	p.mu.Lock()
	if len(p.links) > 0 {
		p.mu.Unlock()
		return fmt.Errorf("%w: rank %d is still connected", ErrRefused, p.rank)
	}
	p.lost, p.closed, p.addr = nil, false, ""
	p.mu.Unlock()
	p.sendLink.Store(nil)
	c.mb.mu.Lock()
	c.mb.peers[p.rank] = peerState{}
	c.mb.mu.Unlock()
	c.rejoined.Add(1)
	return nil
}

// Rejoined counts the ranks readmitted after they had left (rank 0).
func (c *Comm) Rejoined() uint64 { return c.rejoined.Load() }
