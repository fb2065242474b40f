package comm

import (
	"context"
	"net"
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
	defer nc.Close()
	peerConn := <-peerc
	defer peerConn.Close()
	c := &Comm{cfg: testConfig(0, 2, NewMemStore()), epoch: time.Now()}
	l := c.newLink(&peer{c: c, rank: 1}, nc) // not started: nobody reads
	every := int64(10 * time.Millisecond)

	now := c.now() + int64(time.Second)
	lv := newLiveness(now - every)
	l.lastRecv.Store(now - int64(500*time.Millisecond))
	lv.tick(l, now, every, every)
	if got := now - l.lastRecv.Load(); got != int64(500*time.Millisecond) {
		t.Fatalf("silent and nothing queued: silence %v, want 500ms", time.Duration(got))
	}
	peerConn.Write([]byte("bytes our reader has not read"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if inq, _, ok := l.sockQueues(); !ok {
			t.Skip("SIOCINQ not available")
		} else if inq > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the bytes never reached the receive queue")
		}
		time.Sleep(time.Millisecond)
	}
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
