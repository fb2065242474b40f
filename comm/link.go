package comm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// link is one authenticated TCP connection to a peer. A reader goroutine
// decodes its frames into the mailbox; a watchdog goroutine sends
// heartbeats when it is idle and fails it when the peer stays silent longer
// than HeartbeatTimeout (liveness.go).
type link struct {
	c    *Comm
	p    *peer
	nc   net.Conn
	addr string
	br   *bufio.Reader

	wmu     sync.Mutex // protects bw, byeSent, werr, iov and every write on nc
	bw      *bufio.Writer
	byeSent bool
	werr    error       // first error of a writev that bypassed bw
	iov     [][]byte    // writev scratch
	bufs    net.Buffers // writev argument (a field, so it does not escape)

	// Monotonic times (Comm.now) of the last byte read and written.
	lastRecv, lastSend atomic.Int64
	// inRead is set while the reader waits in a read of the socket: bytes
	// queued in the kernel meanwhile are too few for it (or just came);
	// bytes queued while it is not reading wait for us, not for the peer.
	inRead atomic.Bool

	failOnce sync.Once
	err      error         // first failure, set in failOnce before nc is closed
	byeRecv  atomic.Bool   // the peer said bye: an EOF after it is orderly
	done     chan struct{} // closed when the reader has ended

	hb       [frameHeaderLen]byte // a heartbeat frame from us
	hdr      []byte               // writer: frame headers (under wmu)
	rhb      [frameHeaderLen]byte // reader: frame header
	frag     [5][]byte            // writer: one fragment's pieces (under wmu)
	wire     []byte               // reader: compressed payload (reused)
	tmp      []byte               // reader: shuffled raw payload (reused)
	quickAck func()
	raw      *rawIO             // nil: use nc's methods
	queues   sockQueueQuery     // watchdog: receive queue length (liveness.go)
	claimed  *waiter            // reader: the receiver whose message is being placed
	mhead    [msgHeaderLen]byte // reader: a placed message's header
	mwant    []byte             // reader: the header a place expects
	scratch  []float64          // reader: pieces of a message being reduced
}

// Buffer sizes. The reader's buffer is small because whatever it holds
// beyond a frame header is copied once more into the frame: large
// payloads are read straight into their buffers. Frames above writevMin
// bypass the writer's buffer and go out with writev.
const (
	linkReadBuf  = 16 << 10
	linkWriteBuf = 64 << 10
	writevMin    = 16 << 10
)

func (c *Comm) newLink(p *peer, nc net.Conn) *link {
	if c.cfg.NetDelay > 0 || c.cfg.NetJitter > 0 {
		nc = NewDelayConn(nc, c.cfg.NetDelay, c.cfg.NetJitter, uint64(c.cfg.Rank)<<32|uint64(p.rank))
	}
	l := &link{c: c, p: p, nc: nc, addr: nc.RemoteAddr().String(), done: make(chan struct{})}
	l.br = bufio.NewReaderSize(linkIO{l}, linkReadBuf)
	l.bw = bufio.NewWriterSize(linkIO{l}, linkWriteBuf)
	now := c.now()
	l.lastRecv.Store(now)
	l.lastSend.Store(now)
	appendHeader(l.hb[:0], &frameHeader{typ: frameHeartbeat, src: uint32(c.cfg.Rank)})
	if c.cfg.QuickAck {
		l.quickAck = quickAcker(nc)
	}
	l.raw = newRawIO(nc, c.cfg.SockBuf)
	if !c.cfg.CompressLocal && c.cfg.NetDelay == 0 && c.cfg.NetJitter == 0 && sameHost(nc) {
		p.sendMu.Lock()
		p.enc.local = true
		p.sendMu.Unlock()
	}
	return l
}

// sameHost reports whether nc's peer is on this host: a loopback address,
// or the connection's own local address (the kernel routes it through
// loopback).
func sameHost(nc net.Conn) bool {
	la, ok1 := nc.LocalAddr().(*net.TCPAddr)
	ra, ok2 := nc.RemoteAddr().(*net.TCPAddr)
	return ok1 && ok2 && (ra.IP.IsLoopback() || ra.IP.Equal(la.IP))
}

// start launches the reader and the watchdog.
func (l *link) start() {
	l.c.wg.Add(2)
	go l.readLoop()
	go l.watch()
}

// linkIO is the io.Reader/io.Writer under the link's bufio pair: it records
// progress for the watchdog (and whether the reader is waiting in a read)
// and cuts long writes into chunks.
type linkIO struct{ l *link }

func (x linkIO) Read(b []byte) (int, error) {
	var n int
	var err error
	x.l.inRead.Store(true)
	if x.l.raw != nil && len(b) > 0 {
		n, err = x.l.raw.read(b)
	} else {
		n, err = x.l.nc.Read(b)
	}
	x.l.inRead.Store(false)
	if n > 0 {
		x.l.lastRecv.Store(x.l.c.now())
	}
	return n, err
}

const writeChunk = 1 << 20

func (x linkIO) Write(b []byte) (int, error) {
	l := x.l
	total := 0
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		m, err := l.nc.Write(b[:n])
		l.lastSend.Store(l.c.now())
		total += m
		if err != nil {
			return total, err
		}
		b = b[n:]
	}
	return total, nil
}

// fail records err as the link's failure (the first one wins) and closes
// the connection, which ends the reader.
func (l *link) fail(err error) {
	l.failOnce.Do(func() {
		l.err = err
		l.nc.Close()
	})
}

func (l *link) opError(op string, err error) *OpError {
	return &OpError{Op: op, Rank: l.c.cfg.Rank, Peer: l.p.rank, Addr: l.addr, Err: err}
}

// write sends a message's frame (or fragments) as a unit and flushes; it
// returns the bytes written. known are the frames' payload CRCs if known
// (see writeFrames).
func (l *link) write(h frameHeader, payload [][]byte, known []uint32) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.byeSent {
		return 0, ErrPeerClosed
	}
	var n int
	n, l.hdr = writeFrames(l, l.hdr, &l.frag, h, payload, known)
	// bufio.Writer keeps its first error: Flush reports any write's.
	err := l.werr
	if err == nil {
		err = l.bw.Flush()
	}
	if err != nil {
		l.fail(err)
		return 0, err
	}
	return n, nil
}

// writeFrame implements frameWriter (under wmu): small frames are
// buffered, large ones written with writev straight from their pieces.
func (l *link) writeFrame(hdr []byte, parts [][]byte) {
	if l.werr != nil {
		return
	}
	n := len(hdr)
	for _, p := range parts {
		n += len(p)
	}
	if n <= writevMin {
		l.bw.Write(hdr)
		for _, p := range parts {
			l.bw.Write(p)
		}
		return
	}
	if err := l.bw.Flush(); err != nil {
		l.werr = err
		return
	}
	l.iov = append(append(l.iov[:0], hdr), parts...)
	var err error
	if l.raw != nil {
		err = l.raw.writev(l.iov)
	} else {
		l.bufs = l.iov
		_, err = l.bufs.WriteTo(l.nc)
	}
	l.lastSend.Store(l.c.now())
	if err != nil {
		l.werr = err
	}
}

// sendBye sends a bye frame (once) and shuts our write half: we will send
// nothing more on this link.
func (l *link) sendBye() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.byeSent {
		return
	}
	l.byeSent = true
	var h [frameHeaderLen]byte
	appendHeader(h[:0], &frameHeader{typ: frameBye, src: uint32(l.c.cfg.Rank)})
	l.nc.SetWriteDeadline(time.Now().Add(l.c.cfg.HeartbeatTimeout))
	l.bw.Write(h[:])
	l.bw.Flush()
	if tc, ok := l.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
}

func (l *link) readLoop() {
	defer l.c.wg.Done()
	defer close(l.done)
	err := l.readFrames()
	orderly := l.byeRecv.Load() && errors.Is(err, io.EOF)
	l.fail(err)
	l.p.linkDown(l, orderly)
	if l.claimed != nil {
		// A receiver whose message we were placing: the peer is now
		// marked lost, and its receive fails when it looks again.
		l.claimed.ch <- wakeup
		l.claimed = nil
	}
}

func (l *link) readFrames() error {
	c := l.c
	hb := &l.rhb
	for {
		if _, err := io.ReadFull(l.br, hb[:]); err != nil {
			if err == io.ErrUnexpectedEOF || (err == io.EOF && !l.byeRecv.Load()) {
				err = fmt.Errorf("%w: connection closed: %w", ErrPeerLost, err)
			}
			return err
		}
		h, err := parseHeader(hb[:], c.cfg.MaxFrame)
		if err != nil {
			return err
		}
		if int(h.src) != l.p.rank {
			return fmt.Errorf("%w: frame claims source rank %d on rank %d's link", ErrCorrupt, h.src, l.p.rank)
		}
		if l.byeRecv.Load() {
			return fmt.Errorf("%w: frame after bye", ErrCorrupt)
		}
		switch h.typ {
		case frameHeartbeat:
			continue
		case frameBye:
			l.byeRecv.Store(true)
			l.sendBye()
			continue
		}
		if readerPause != nil {
			readerPause(l, h)
		}
		if err := l.readMessage(h); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: frame cut off: %w", ErrPeerLost, err)
			}
			return err
		}
	}
}

// readerPause, set only by tests, is called by the reader before it reads
// a data frame's payload: a reader that falls behind (a process short of
// CPU) while the rest of the frame waits in the socket.
var readerPause func(l *link, h frameHeader)

// readMessage reads the payload of data frame h and delivers it: placed
// straight into the vector of the receiver waiting for it when that
// receiver has a place (readPlaced), else into a pooled frame pushed to the
// mailbox.
func (l *link) readMessage(h frameHeader) error {
	c := l.c
	if h.codec == CodecNone && h.rawLen >= placeMin && littleEndian {
		if w := c.mb.claimPlaced(l.p.rank, int(h.tag)); w != nil {
			err := l.readPlaced(h, w)
			if err != nil {
				l.claimed = w // readLoop wakes it once the peer is marked lost
			}
			return err
		}
	}
	f := c.pool.get(int(h.rawLen))
	raw, wire, tmp, extra, err := readData(l.br, h, c.cfg.MaxFrame, &l.rhb, f.buf, l.wire, l.tmp)
	l.wire, l.tmp = wire, tmp
	if err != nil {
		f.release()
		return err
	}
	f.raw, f.src, f.tag = raw, l.p.rank, int(h.tag)
	l.received(h, extra)
	c.mb.push(f)
	return nil
}

// received counts a message read and re-arms TCP_QUICKACK.
func (l *link) received(h frameHeader, extra uint64) {
	if l.quickAck != nil {
		l.quickAck()
	}
	l.p.ctr.recvMsgs.Add(1)
	l.p.ctr.recvWire.Add(frameHeaderLen + h.wireLen + extra)
	l.p.ctr.recvRaw.Add(frameHeaderLen + h.rawLen)
}

// placeMin is the smallest payload the reader places straight into a
// collective's vector; smaller ones go through a pooled buffer, as one
// more copy costs less than the mailbox round trip of a claim.
const placeMin = 64 << 10

// reduceChunk is how many values of a reduced message are read at a time
// into the link's scratch and combined into the place: small enough to
// stay in cache between the kernel's copy, the CRC and the reduction.
const reduceChunk = 16 << 10

// readPlaced reads the payload of uncompressed message h, whose receiver w
// has a place, and answers w: when the message is a dense vector of the
// place's length, its values go straight into the place (copied by the
// kernel into it, or read reduceChunk at a time into scratch and combined
// into it) and w gets placed; otherwise w gets the message as a frame, to
// decode and judge itself. On error w is left for readLoop to wake.
func (l *link) readPlaced(h frameHeader, w *waiter) error {
	c := l.c
	pl := w.pl
	pl.crcs = pl.crcs[:0]
	ps := payloadStream{r: l.br, maxFrame: c.cfg.MaxFrame, hb: &l.rhb}
	if err := ps.start(h); err != nil {
		return err
	}
	n := int(h.rawLen)
	head := l.mhead[:min(msgHeaderLen, n)]
	if err := ps.readFull(head); err != nil {
		return err
	}
	l.mwant = (&msgLayout{kind: vecDense, vecLen: len(pl.dst)}).appendHeader(l.mwant[:0])
	if n != msgHeaderLen+8*len(pl.dst) || string(head) != string(l.mwant) {
		f := c.pool.get(n)
		b := f.buf[:n]
		copy(b, head)
		if err := ps.readFull(b[len(head):]); err != nil {
			f.release()
			return err
		}
		f.raw, f.src, f.tag = b, l.p.rank, int(h.tag)
		l.received(h, ps.extra)
		w.ch <- f
		return nil
	}
	if !pl.reduce {
		// Keep the frames' CRCs: forwarding the vector unchanged, the
		// receiver sends them again instead of computing them.
		ps.crcs = &pl.crcs
		if err := ps.readFull(floatBytes(pl.dst, nil)); err != nil {
			return err
		}
	} else {
		if l.scratch == nil {
			l.scratch = make([]float64, reduceChunk)
		}
		for lo := 0; lo < len(pl.dst); lo += reduceChunk {
			dst := pl.dst[lo:min(lo+reduceChunk, len(pl.dst))]
			src := l.scratch[:len(dst)]
			if err := ps.readFull(floatBytes(src, nil)); err != nil {
				return err
			}
			reduceInto(pl.op, dst, src)
		}
	}
	l.received(h, ps.extra)
	w.ch <- placed
	return nil
}

// watch sends heartbeats on an idle link and fails a silent one.
func (l *link) watch() {
	defer l.c.wg.Done()
	cfg := &l.c.cfg
	every := max(cfg.HeartbeatInterval/4, 5*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	iv, to := int64(cfg.HeartbeatInterval), int64(cfg.HeartbeatTimeout)
	lv := newLiveness(l.c.now())
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		now := l.c.now()
		lv.tick(l, now, int64(every), to/4)
		// Only the peer's silence fails the link. A write blocked for
		// longer than the timeout while the peer's heartbeats (or other
		// bytes) keep coming is the peer's backlog, not its death: it is
		// alive and will read, as we do not fail a peer whose bytes wait
		// in our own receive queue.
		if now-l.lastRecv.Load() > to {
			l.fail(fmt.Errorf("%w (%v)", ErrHeartbeat, cfg.HeartbeatTimeout))
			return
		}
		if now-l.lastSend.Load() >= iv && l.wmu.TryLock() {
			if !l.byeSent {
				l.nc.SetWriteDeadline(time.Now().Add(cfg.HeartbeatTimeout))
				l.bw.Write(l.hb[:])
				if err := l.bw.Flush(); err != nil {
					l.fail(err)
				}
				l.nc.SetWriteDeadline(time.Time{})
			}
			l.wmu.Unlock()
		}
	}
}
