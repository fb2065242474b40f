package comm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// New validates cfg, opens this rank's listener and runs the rendezvous:
// rank 0 listens on cfg.Addr (publishing its actual address in cfg.Store),
// every other rank dials it with retries and backoff, introduces itself
// (protocol version, job id, rank, size, its own listen address) and
// receives the table of all ranks' addresses. Links between other pairs
// open lazily on first use. ctx and cfg.RendezvousTimeout bound the whole;
// a timeout returns a *RendezvousError naming the ranks that never arrived.
func New(ctx context.Context, cfg Config) (*Comm, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.checkSecret(); err != nil {
		return nil, err
	}
	c := &Comm{
		cfg:   cfg,
		epoch: time.Now(),
		peers: make([]*peer, cfg.Size),
		mb:    newMailbox(cfg.Rank, cfg.Size),
		hsSem: make(chan struct{}, 32),

		handshaking: map[net.Conn]struct{}{},
	}
	c.coll.init(c)
	for r := range c.peers {
		if r != cfg.Rank {
			c.peers[r] = &peer{c: c, rank: r, ready: make(chan struct{}), enc: newEncoder(&c.cfg)}
		}
	}
	if cfg.Size == 1 {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.RendezvousTimeout)
	defer cancel()
	var err error
	if cfg.Rank == 0 {
		err = c.rendezvousRoot(ctx)
	} else {
		err = c.rendezvousJoin(ctx)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// listen opens our listener on addr and starts accepting.
func (c *Comm) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("comm: rank %d: listen on %s: %w", c.cfg.Rank, addr, err)
	}
	c.ln = ln
	c.wg.Add(1)
	go c.acceptLoop()
	return nil
}

// publicAddr replaces an unspecified listen host by host (or 127.0.0.1).
func publicAddr(ln net.Addr, host string) string {
	ta := ln.(*net.TCPAddr)
	if ta.IP != nil && !ta.IP.IsUnspecified() {
		return ta.String()
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(ta.Port))
}

func (c *Comm) rendezvousRoot(ctx context.Context) error {
	addr := c.cfg.Addr
	if addr == "" {
		addr, _ = bindHost(c.cfg.Bind)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := c.listen(addr); err != nil {
		return err
	}
	c.myAddr = publicAddr(c.ln.Addr(), "")
	if c.cfg.Store != nil {
		if err := c.cfg.Store.Set(AddrKey, []byte(c.myAddr)); err != nil {
			return err
		}
	}
	// Wait for every rank to hold a link to us.
	for _, p := range c.peers[1:] {
		select {
		case <-p.ready:
		case <-ctx.Done():
			return &RendezvousError{Rank: 0, Missing: missingRanks(c.cfg.Size, 0, func(r int) bool {
				select {
				case <-c.peers[r].ready:
					return true
				default:
					return false
				}
			}), Err: ctx.Err()}
		}
	}
	// Send everyone the table.
	table := make([]byte, 0, 64*c.cfg.Size)
	table = binary.AppendUvarint(table, uint64(c.cfg.Size))
	for r := range c.cfg.Size {
		a := c.myAddr
		if r != 0 {
			a = c.peers[r].address()
		}
		table = binary.AppendUvarint(table, uint64(len(a)))
		table = append(table, a...)
	}
	for r := 1; r < c.cfg.Size; r++ {
		if err := c.send(ctx, r, tagTable, &Msg{Bytes: table}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Comm) rendezvousJoin(ctx context.Context) error {
	root := c.cfg.Addr
	if _, port, _ := net.SplitHostPort(root); root == "" || port == "0" {
		b, err := c.cfg.Store.Get(ctx, AddrKey)
		if err != nil {
			return &RendezvousError{Rank: c.cfg.Rank, Missing: []int{0}, Err: err}
		}
		root = string(b)
	}
	bind, _ := bindHost(c.cfg.Bind)
	if bind == "" {
		bind = ":0"
	}
	if err := c.listen(bind); err != nil {
		return err
	}
	p0 := c.peers[0]
	p0.addr = root
	// Dial rank 0 until it answers or the deadline passes; a refusal by
	// the handshake is final.
	backoff := 10 * time.Millisecond
	var lastErr error
	for {
		nc, err := c.dial(ctx, root)
		if err == nil {
			host, _, _ := net.SplitHostPort(nc.LocalAddr().String())
			c.myAddr = publicAddr(c.ln.Addr(), host)
			_, err = c.handshakeDial(nc, 0, c.myAddr)
			if err == nil {
				p0.addLink(c.newLink(p0, nc))
				break
			}
			nc.Close()
			if isRefusal(err) {
				return &OpError{Op: "handshake", Rank: c.cfg.Rank, Peer: 0, Addr: root, Err: err}
			}
		}
		lastErr = err
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &RendezvousError{Rank: c.cfg.Rank, Missing: []int{0}, Err: lastErr}
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	if c.cfg.Rejoin {
		return nil // a running job: rank 0 sends no table (see Config.Rejoin)
	}
	var m Msg
	defer m.Release()
	if err := c.Recv(ctx, 0, tagTable, &m); err != nil {
		// Rank 0 gave up (it reports the missing ranks) or vanished.
		return &RendezvousError{Rank: c.cfg.Rank, Err: fmt.Errorf("rank 0 did not send the table of ranks: %w", err)}
	}
	return c.setTable(m.Bytes)
}

func isRefusal(err error) bool {
	return errors.Is(err, ErrAuth) || errors.Is(err, ErrJobID) || errors.Is(err, ErrVersion) || errors.Is(err, ErrRefused)
}

func (c *Comm) setTable(b []byte) error {
	bad := &OpError{Op: "rendezvous", Rank: c.cfg.Rank, Peer: 0, Err: fmt.Errorf("%w: bad table of ranks", ErrCorrupt)}
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(c.cfg.Size) {
		return bad
	}
	b = b[k:]
	for r := range c.cfg.Size {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) || l > 255 {
			return bad
		}
		a := string(b[k : k+int(l)])
		b = b[k+int(l):]
		if p := c.peers[r]; p != nil && r != 0 {
			p.mu.Lock()
			p.addr = a
			p.mu.Unlock()
		}
	}
	return nil
}

// dial opens a tuned TCP connection to addr from our bind address.
func (c *Comm) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: c.cfg.HandshakeTimeout}
	if b, _ := bindHost(c.cfg.Bind); b != "" {
		host, _, _ := net.SplitHostPort(b)
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(host)}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.tune(nc)
	return nc, nil
}

func (c *Comm) acceptLoop() {
	defer c.wg.Done()
	for {
		nc, err := c.ln.Accept()
		if err != nil {
			if c.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case c.hsSem <- struct{}{}:
		default: // too many handshakes in progress: drop this one
			nc.Close()
			c.noteRefusal(errors.New("comm: too many concurrent handshakes"))
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() { <-c.hsSem }()
			c.accept(nc)
		}()
	}
}

// accept authenticates an incoming connection and registers its link. A
// refused connection is closed and counted; the listener keeps serving.
func (c *Comm) accept(nc net.Conn) {
	c.tune(nc)
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		nc.Close()
		return
	}
	c.handshaking[nc] = struct{}{}
	c.mu.Unlock()
	h, err := c.handshakeAccept(nc)
	c.mu.Lock()
	delete(c.handshaking, nc)
	c.mu.Unlock()
	if err == nil && c.closing.Load() {
		err = ErrClosed
	}
	if err != nil {
		nc.Close()
		peer := -1
		if h.size == c.cfg.Size && h.rank >= 0 && h.rank < c.cfg.Size {
			peer = h.rank
		}
		c.noteRefusal(&OpError{Op: "handshake", Rank: c.cfg.Rank, Peer: peer, Addr: nc.RemoteAddr().String(), Err: err})
		return
	}
	p := c.peers[h.rank]
	if c.cfg.Rank == 0 {
		p.mu.Lock()
		if p.addr == "" {
			p.addr = h.addr
		}
		p.mu.Unlock()
	}
	p.addLink(c.newLink(p, nc))
}

// admit refuses a second link from a rank that already has one to rank 0
// (rank 0's links are the rendezvous star; a second claimant of a rank is
// an impostor or a stale process).
func (c *Comm) admit(rank int) error {
	if c.cfg.Rank != 0 {
		return nil
	}
	p := c.peers[rank]
	if c.mb.forgotten(rank) {
		return c.readmit(p) // a rank that left comes back (Config.Rejoin)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.links) > 0 || p.lost != nil || p.closed {
		return fmt.Errorf("%w: rank %d has already joined", ErrRefused, rank)
	}
	return nil
}
