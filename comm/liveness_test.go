package comm

import (
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestBusyReceiver: a receiver that does not call Recv for 5 heartbeat
// timeouts while its peer keeps sending 1 MiB messages does not declare
// the peer lost (issue 10, item 4): liveness is the peer's bytes arriving,
// not our application taking them.
func TestBusyReceiver(t *testing.T) {
	comms := startRanks(t, 2, func(c *Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = 20*time.Millisecond, 200*time.Millisecond
	})
	const n = 40
	sent := make(chan error, 1)
	go func() {
		m := Msg{Dense: make([]float64, 1<<17)}
		for i := range n {
			m.Dense[0] = float64(i)
			if err := comms[1].Send(ctxT(t), 0, 7, &m); err != nil {
				sent <- err
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		sent <- nil
	}()
	time.Sleep(5 * 200 * time.Millisecond) // busy: no Recv
	var m Msg
	for i := range n {
		if err := comms[0].Recv(ctxT(t), 1, 7, &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Dense[0] != float64(i) {
			t.Fatalf("message %d carries %v", i, m.Dense[0])
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	runGoesOn(t, comms)
}

// TestLivenessCredits: the watchdog counts bytes waiting in the kernel's
// receive queue as the peer's liveness, and does not count the time it did
// not run itself (our own stall) as the peer's silence.
func TestLivenessCredits(t *testing.T) {
	c, l, peerConn := unreadLink(t)
	every := int64(10 * time.Millisecond)

	now := c.now() + int64(time.Second)
	lv := newLiveness(now - every)
	l.lastRecv.Store(now - int64(500*time.Millisecond))
	lv.tick(l, now, every, every)
	if got := now - l.lastRecv.Load(); got != int64(500*time.Millisecond) {
		t.Fatalf("silent and nothing queued: silence %v, want 500ms", time.Duration(got))
	}
	peerConn.Write([]byte("bytes our reader has not read"))
	waitQueued(t, l, 1)
	now += every
	lv.tick(l, now, every, every)
	if l.lastRecv.Load() != now {
		t.Fatalf("queued bytes did not count as liveness")
	}
	// Our own stall of 3 s: not the peer's silence.
	l.lastRecv.Store(now - every)
	now += int64(3 * time.Second)
	lv.tick(l, now, every, every)
	if silence := now - l.lastRecv.Load(); silence > 3*every {
		t.Fatalf("after our own 3 s stall the peer counts as silent for %v", time.Duration(silence))
	}
}

// TestSlowReaderLargeFrame: while rank 0's reader stops for 5 heartbeat
// timeouts in the middle of an 8 MiB message (small socket buffers: the
// rest of it fills rank 0's receive queue and blocks rank 1's write, so
// neither the frame's bytes nor rank 1's heartbeats can reach rank 0's
// reader), neither rank declares the other lost: the bytes waiting in the
// queue are rank 0's backlog, and rank 0's heartbeats tell rank 1 it is
// alive. The message arrives whole (issue 10, item 4).
func TestSlowReaderLargeFrame(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var paused atomic.Bool
	readerPause = func(l *link, h frameHeader) {
		if l.c.cfg.Rank == 0 && h.tag == 7 && !paused.Swap(true) {
			time.Sleep(5 * timeout)
		}
	}
	t.Cleanup(func() { readerPause = nil }) // after the comms are closed
	comms := startRanks(t, 2, func(c *Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = 20*time.Millisecond, timeout
		c.SockBuf = 64 << 10
	})
	sent := make(chan error, 1)
	big := Msg{Dense: make([]float64, 1<<20)}
	rng := rand.New(rand.NewPCG(1, 2)) // incompressible
	for i := range big.Dense {
		big.Dense[i] = rng.NormFloat64()
	}
	go func() { sent <- comms[1].Send(ctxT(t), 0, 7, &big) }()
	var m Msg
	if err := comms[0].Recv(ctxT(t), 1, 7, &m); err != nil {
		t.Fatalf("receive: %v", err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
	if !paused.Load() {
		t.Fatal("the reader never paused")
	}
	if len(m.Dense) != len(big.Dense) {
		t.Fatalf("received %d values, sent %d", len(m.Dense), len(big.Dense))
	}
	for i, v := range m.Dense {
		if v != big.Dense[i] {
			t.Fatalf("value %d is %v, sent %v", i, v, big.Dense[i])
		}
	}
	runGoesOn(t, comms)
}

// TestQueuedWhileNotReading: bytes in the receive queue count as the
// peer's liveness at every look while our reader is not reading (they
// wait for us), but only when fresh while it waits in a read.
func TestQueuedWhileNotReading(t *testing.T) {
	c, l, peerConn := unreadLink(t)
	peerConn.Write([]byte("bytes our reader has not read"))
	waitQueued(t, l, 1)
	every := int64(10 * time.Millisecond)
	now := c.now() + int64(time.Second)
	lv := newLiveness(now - every)
	for look := range 3 {
		l.lastRecv.Store(now - 5*every)
		lv.tick(l, now, every, every)
		if l.lastRecv.Load() != now {
			t.Fatalf("look %d: bytes waiting for a reader that is not reading were not credited", look)
		}
		now += every
	}
	// A reader waiting for more than is queued (the rest of a frame
	// whose sender died, SO_RCVLOWAT): the queue it saw is not credited
	// again, however long it waits: the silence grows to the timeout.
	l.inRead.Store(true)
	last := l.lastRecv.Load()
	for look := range 100 {
		now += every
		lv.tick(l, now, every, every)
		if l.lastRecv.Load() != last {
			t.Fatalf("look %d: the same queued bytes were credited again to a waiting reader", look)
		}
	}
	// More bytes while it waits: the peer is sending.
	peerConn.Write([]byte("more"))
	waitQueued(t, l, len("bytes our reader has not read")+1)
	now += every
	lv.tick(l, now, every, every)
	if l.lastRecv.Load() != now {
		t.Fatal("fresh bytes for a waiting reader were not credited")
	}
}

// unreadLink returns a link over loopback that nobody reads (not
// started), and the peer's end of its connection.
func unreadLink(t *testing.T) (*Comm, *link, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peerc := make(chan net.Conn, 1)
	go func() { nc, _ := ln.Accept(); peerc <- nc }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peerConn := <-peerc
	if peerConn == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { nc.Close(); peerConn.Close() })
	c := &Comm{cfg: testConfig(0, 2, NewMemStore()), epoch: time.Now()}
	return c, c.newLink(&peer{c: c, rank: 1}, nc), peerConn
}

// waitQueued waits until at least n bytes are in l's receive queue (it
// skips the test where the queue cannot be asked).
func waitQueued(t *testing.T, l *link, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		inq, ok := l.recvQueue()
		if !ok {
			t.Skip("SIOCINQ not available")
		}
		if inq >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes in the receive queue, waited for %d", inq, n)
		}
		time.Sleep(time.Millisecond)
	}
}
