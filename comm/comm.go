package comm

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Tags: user messages use tags in [0, MaxTag]; larger tags are reserved for
// the rendezvous and the collectives.
const (
	MaxTag       = 1<<30 - 1
	tagTable     = MaxTag + 1
	tagBarrier   = MaxTag + 2
	tagBcast     = MaxTag + 3
	tagReduce    = MaxTag + 4
	tagAllreduce = MaxTag + 5
	tagGather    = MaxTag + 6
)

// Comm is one rank's communicator. Send, Recv and RecvAny are safe for
// concurrent use (one sender and one receiver goroutine per peer is the
// intended pattern; messages of one (source, tag) pair arrive in the order
// they were sent). The collectives must be called by all ranks in the same
// order, and by one goroutine per rank at a time. After Close every
// operation returns an error wrapping ErrClosed; Stats still works.
//
// Received messages are queued without bound until a Recv takes them (the
// asynchronous algorithm bounds them: a worker waits for the master's
// reply before sending again).
type Comm struct {
	cfg    Config
	epoch  time.Time
	ln     net.Listener
	myAddr string  // our listen address as published in the table
	peers  []*peer // indexed by rank; nil at our own rank
	mb     *mailbox
	pool   framePool
	hsSem  chan struct{} // bounds concurrent incoming handshakes

	refused  atomic.Uint64
	garbage  atomic.Uint64
	rejoined atomic.Uint64
	mu       sync.Mutex // protects refusals, rlog and handshaking
	refusals []error
	rlog     refusalLog
	// handshaking holds incoming connections still in their handshake, so
	// that Close does not wait for their deadlines.
	handshaking map[net.Conn]struct{}

	closing   atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup // reader, watchdog and accept goroutines

	selfMu  sync.Mutex // protects selfBuf (sends to our own rank)
	selfBuf []byte

	coll collState // collective scratch, used by one goroutine at a time
}

// now is the monotonic time since the communicator started, in ns.
func (c *Comm) now() int64 { return int64(time.Since(c.epoch)) }

// Rank is this communicator's rank.
func (c *Comm) Rank() int { return c.cfg.Rank }

// Size is the number of ranks.
func (c *Comm) Size() int { return c.cfg.Size }

// Addr is the address this rank listens on ("" for Size 1).
func (c *Comm) Addr() string { return c.myAddr }

// Refusals returns the errors of refused incoming connections (wrong
// secret, job or version, garbage on the port), oldest first, at most 64.
func (c *Comm) Refusals() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.refusals...)
}

func (c *Comm) noteRefusal(err error) {
	if isGarbage(err) {
		c.garbage.Add(1)
	} else {
		c.refused.Add(1)
	}
	c.mu.Lock()
	if len(c.refusals) < 64 {
		c.refusals = append(c.refusals, err)
	}
	c.logRefusalLocked(err)
	c.mu.Unlock()
}

// peer is everything we know about another rank.
type peer struct {
	c    *Comm
	rank int
	ctr  peerCounters

	mu     sync.Mutex // protects addr, links, lost, closed
	addr   string     // listen address from the table
	links  []*link
	lost   error // set when a link failed: the peer is gone
	closed bool  // every link ended with an orderly bye

	sendLink atomic.Pointer[link] // the link our sends use (first to open)
	ready    chan struct{}        // closed when the first link is up
	readyOne sync.Once

	dialMu sync.Mutex // serializes lazy dials

	sendMu sync.Mutex // protects enc
	enc    encoder
}

func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// addLink registers an opened link and starts it.
func (p *peer) addLink(l *link) {
	p.mu.Lock()
	p.links = append(p.links, l)
	p.mu.Unlock()
	p.sendLink.CompareAndSwap(nil, l)
	l.start()
	p.readyOne.Do(func() { close(p.ready) })
}

// linkDown is called by a link's reader when it ends.
func (p *peer) linkDown(l *link, orderly bool) {
	p.mu.Lock()
	for i, x := range p.links {
		if x == l {
			p.links = append(p.links[:i], p.links[i+1:]...)
			break
		}
	}
	p.sendLink.CompareAndSwap(l, nil)
	if !orderly && p.lost == nil && !p.c.closing.Load() {
		p.lost = l.opError("link", l.err)
	}
	if orderly && len(p.links) == 0 {
		p.closed = true
	}
	lost, closed := p.lost, p.closed
	p.mu.Unlock()
	switch {
	case lost != nil:
		p.c.mb.fail(p.rank, lost, false)
	case closed:
		p.c.mb.fail(p.rank, l.opError("recv", ErrPeerClosed), true)
	}
}

// link returns the link to send on, dialing the peer's listener on first
// use.
func (p *peer) link(ctx context.Context) (*link, error) {
	if l := p.sendLink.Load(); l != nil {
		return l, nil
	}
	p.dialMu.Lock()
	defer p.dialMu.Unlock()
	if l := p.sendLink.Load(); l != nil {
		return l, nil
	}
	p.mu.Lock()
	lost, closed, addr := p.lost, p.closed, p.addr
	p.mu.Unlock()
	c := p.c
	switch {
	case lost != nil:
		return nil, lost
	case closed:
		return nil, &OpError{Op: "send", Rank: c.cfg.Rank, Peer: p.rank, Addr: addr, Err: ErrPeerClosed}
	case addr == "":
		return nil, &OpError{Op: "dial", Rank: c.cfg.Rank, Peer: p.rank, Err: fmt.Errorf("comm: no address for rank %d (rendezvous not done)", p.rank)}
	}
	nc, err := c.dial(ctx, addr)
	if err == nil {
		_, err = c.handshakeDial(nc, p.rank, c.myAddr)
		if err != nil {
			nc.Close()
		}
	}
	if err != nil {
		return nil, &OpError{Op: "dial", Rank: c.cfg.Rank, Peer: p.rank, Addr: addr, Err: err}
	}
	l := c.newLink(p, nc)
	p.addLink(l)
	// If the peer dialed us meanwhile, its link may have become the send
	// link: always send on that one so our frames stay in order.
	if sl := p.sendLink.Load(); sl != nil {
		return sl, nil
	}
	return l, nil
}

// Send sends m to rank dst with tag in [0, MaxTag]. It returns once the
// frame is handed to the kernel; m's slices may then be reused. It opens
// the link to dst on first use. ctx bounds the dial and is checked before
// writing; a frame, once started, is written whole. Send panics on a
// malformed m or tag (caller bugs).
func (c *Comm) Send(ctx context.Context, dst, tag int, m *Msg) error {
	if tag < 0 || tag > MaxTag {
		panic("comm: Send: tag outside [0, MaxTag]")
	}
	return c.send(ctx, dst, tag, m)
}

func (c *Comm) send(ctx context.Context, dst, tag int, m *Msg) error {
	if dst < 0 || dst >= c.cfg.Size {
		return &OpError{Op: "send", Rank: c.cfg.Rank, Peer: dst, Err: fmt.Errorf("comm: rank %d outside [0,%d)", dst, c.cfg.Size)}
	}
	if c.closing.Load() {
		return &OpError{Op: "send", Rank: c.cfg.Rank, Peer: dst, Err: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		return &OpError{Op: "send", Rank: c.cfg.Rank, Peer: dst, Err: err}
	}
	if dst == c.cfg.Rank {
		return c.sendSelf(tag, m)
	}
	p := c.peers[dst]
	l, err := p.link(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	wire, raw, err := p.sendOn(l, tag, m)
	if err != nil {
		if oe, ok := err.(*OpError); ok {
			return oe
		}
		return l.opError("send", err)
	}
	p.ctr.sentMsgs.Add(1)
	p.ctr.sentWire.Add(uint64(frameHeaderLen + wire))
	p.ctr.sentRaw.Add(uint64(frameHeaderLen + raw))
	p.ctr.sendLat.observe(time.Since(start))
	return nil
}

// sendOn encodes m and writes it on l; it returns the wire and raw payload
// lengths.
func (p *peer) sendOn(l *link, tag int, m *Msg) (wire, raw int, err error) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	h, payload, _, raw, err := p.enc.encode(tag, m)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	n, err := l.write(h, payload, m.crcs)
	if err != nil {
		return 0, 0, l.opError("send", err)
	}
	p.enc.noteWrite(n, time.Since(start))
	return n - frameHeaderLen, raw, nil
}

// sendSelf delivers m to our own mailbox (a copy).
func (c *Comm) sendSelf(tag int, m *Msg) error {
	lay := layoutOf(m)
	c.selfMu.Lock()
	defer c.selfMu.Unlock()
	var idx []byte
	if m.Idx != nil {
		idx = appendIdx(nil, m.Idx, m.Dim)
		lay.idxLen = len(idx)
	}
	lay.finish()
	f := c.pool.get(lay.total)
	b := lay.appendHeader(f.buf[:0])
	b = appendInt64s(b, m.Ints)
	b = AppendFloat64s(b, m.floats())
	b = append(b, idx...)
	b = append(b, m.Bytes...)
	f.raw, f.src, f.tag = b, c.cfg.Rank, tag
	c.mb.push(f)
	return nil
}

// Recv waits for the next message with tag from rank src and decodes it
// into m (see Msg for who owns the result). It fails with an *OpError when
// src is lost or has closed and nothing more is queued from it, when ctx is
// done, or after Close.
func (c *Comm) Recv(ctx context.Context, src, tag int, m *Msg) error {
	if src < 0 || src >= c.cfg.Size {
		return &OpError{Op: "recv", Rank: c.cfg.Rank, Peer: src, Err: fmt.Errorf("comm: rank %d outside [0,%d)", src, c.cfg.Size)}
	}
	_, err := c.recv(ctx, src, tag, m)
	return err
}

// RecvAny waits for the earliest message with tag from any rank (the
// master's "whichever worker is first"), decodes it into m and returns its
// source (also in m.Src). It fails as soon as any peer is lost, or when
// every peer has closed.
func (c *Comm) RecvAny(ctx context.Context, tag int, m *Msg) (int, error) {
	return c.recv(ctx, anySrc, tag, m)
}

func (c *Comm) recv(ctx context.Context, src, tag int, m *Msg) (int, error) {
	start := time.Now()
	// Give m's buffer back first: the reader can then receive the next
	// frame into it, keeping one buffer hot instead of alternating two.
	m.Release()
	f, err := c.mb.pop(ctx, src, tag, nil)
	if err != nil {
		if _, ok := err.(*OpError); !ok {
			err = &OpError{Op: "recv", Rank: c.cfg.Rank, Peer: src, Err: err}
		}
		return -1, err
	}
	m.fr = f
	if err := m.decode(f.raw); err != nil {
		m.Release()
		return -1, &OpError{Op: "recv", Rank: c.cfg.Rank, Peer: f.src, Err: err}
	}
	m.Src, m.Tag = f.src, f.tag
	if f.src != c.cfg.Rank {
		c.peers[f.src].ctr.recvLat.observe(time.Since(start))
	}
	return f.src, nil
}

// Close says bye on every link, waits briefly for the peers to answer, and
// releases everything. Pending and later operations fail with ErrClosed.
// It is safe to call more than once.
func (c *Comm) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		if c.ln != nil {
			c.ln.Close()
		}
		c.mu.Lock()
		for nc := range c.handshaking {
			nc.Close()
		}
		c.mu.Unlock()
		var links []*link
		for _, p := range c.peers {
			if p == nil {
				continue
			}
			p.mu.Lock()
			links = append(links, p.links...)
			p.mu.Unlock()
		}
		for _, l := range links {
			l.sendBye()
		}
		// Wait for each peer to answer bye (its reader then sees EOF), so
		// that closing does not reset connections with data in flight.
		grace := time.NewTimer(min(c.cfg.HeartbeatTimeout, 2*time.Second))
		expired := false
		for _, l := range links {
			if !expired {
				select {
				case <-l.done:
				case <-grace.C:
					expired = true
				}
			}
		}
		grace.Stop()
		for _, l := range links {
			l.fail(ErrClosed)
		}
		c.mb.close(&OpError{Op: "recv", Rank: c.cfg.Rank, Peer: -1, Err: ErrClosed})
		c.wg.Wait()
		c.stopRefusalLog()
	})
	return nil
}
