package comm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeDialer returns a communicator shell (never started) with rank's
// config, used to speak the handshake by hand.
func fakeDialer(t *testing.T, rank, size int, mod func(*Config)) *Comm {
	t.Helper()
	cfg := testConfig(rank, size, NewMemStore())
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &Comm{cfg: cfg}
}

// startWithFake starts real ranks 0..size-2 and lets fake (the last rank)
// join rank 0 by hand. It returns the real ranks and fake's authenticated
// connection to rank 0 (the table frame still unread on it).
func startWithFake(t *testing.T, size int, mod func(*Config)) ([]*Comm, net.Conn) {
	t.Helper()
	store := NewMemStore()
	comms := make([]*Comm, size-1)
	errs := make([]error, size-1)
	var wg sync.WaitGroup
	for r := range size - 1 {
		cfg := testConfig(r, size, store)
		if mod != nil {
			mod(&cfg)
		}
		wg.Go(func() { comms[r], errs[r] = New(context.Background(), cfg) })
	}
	addr, err := store.Get(ctxT(t), AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	fake := fakeDialer(t, size-1, size, mod)
	nc, err := net.Dial("tcp", string(addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.handshakeDial(nc, 0, "127.0.0.1:9"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	t.Cleanup(func() { nc.Close(); closeAll(comms) })
	return comms, nc
}

// pingPong checks that ranks a and b still talk.
func pingPong(t *testing.T, comms []*Comm, a, b int) {
	t.Helper()
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() {
		var m Msg
		if err := comms[b].Recv(ctx, a, 5, &m); err != nil {
			errc <- err
			return
		}
		errc <- comms[b].Send(ctx, a, 6, &Msg{Ints: []int64{m.Ints[0] + 1}})
	}()
	if err := comms[a].Send(ctx, b, 5, &Msg{Ints: []int64{41}}); err != nil {
		t.Fatalf("rank %d -> %d: %v", a, b, err)
	}
	var m Msg
	if err := comms[a].Recv(ctx, b, 6, &m); err != nil || m.Ints[0] != 42 {
		t.Fatalf("rank %d <- %d: %v %v", a, b, err, m.Ints)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestBadFrames: a rank that sends a defective frame is reported lost with
// the right error, and the other ranks carry on.
func TestBadFrames(t *testing.T) {
	good, err := AppendFrame(nil, 2, 5, &Msg{Dense: []float64{1, 2, 3}}, CodecNone, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 100)
	rand.Read(junk)
	cases := []struct {
		name  string
		frame func() []byte
		want  error
	}{
		{"truncated frame", func() []byte { return good[:len(good)-5] }, io.ErrUnexpectedEOF},
		{"corrupted CRC", func() []byte {
			b := append([]byte(nil), good...)
			b[len(b)-2] ^= 0x40
			return b
		}, ErrChecksum},
		{"oversized length", func() []byte {
			b := append([]byte(nil), good[:frameHeaderLen]...)
			binary.LittleEndian.PutUint64(b[16:], 1<<20+1)
			binary.LittleEndian.PutUint64(b[24:], 1<<20+1)
			binary.LittleEndian.PutUint32(b[36:], crcOf(b[:36]))
			return b
		}, ErrFrameTooLarge},
		{"random bytes", func() []byte { return append([]byte("XXXX"), junk...) }, ErrBadMagic},
		{"wrong source rank", func() []byte {
			b, _ := AppendFrame(nil, 1, 5, &Msg{}, CodecNone, 0)
			return b
		}, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			comms, nc := startWithFake(t, 3, func(c *Config) { c.MaxFrame = 1 << 20 })
			if _, err := nc.Write(tc.frame()); err != nil {
				t.Fatal(err)
			}
			nc.(*net.TCPConn).CloseWrite()
			var m Msg
			err := comms[0].Recv(ctxT(t), 2, 5, &m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Recv from the bad rank: %v, want %v", err, tc.want)
			}
			var oe *OpError
			if !errors.As(err, &oe) || oe.Peer != 2 || oe.Addr == "" || oe.ExitCode() != 4 {
				t.Fatalf("error %#v does not name the peer and its address, or exit code != 4", err)
			}
			if _, err := comms[0].RecvAny(ctxT(t), 5, &m); !errors.Is(err, tc.want) {
				t.Fatalf("RecvAny after losing a peer: %v, want %v", err, tc.want)
			}
			pingPong(t, comms, 0, 1)
			pingPong(t, comms, 1, 0)
		})
	}
}

// TestRefusedHandshakes: a dialer with the wrong secret, job id or
// protocol version, or random bytes on the port, is refused with a clear
// error on both sides, and the listener keeps serving the real ranks.
func TestRefusedHandshakes(t *testing.T) {
	cases := []struct {
		name string
		// dial attacks the listener at addr and returns the dialer's error.
		dial func(t *testing.T, addr string) error
		want error // on the dialer side (nil: not checked) and in Refusals
	}{
		{"wrong secret", func(t *testing.T, addr string) error {
			return dialAs(t, addr, func(c *Config) { c.Secret = []byte("not the secret, but as long") })
		}, ErrAuth},
		{"other job", func(t *testing.T, addr string) error {
			return dialAs(t, addr, func(c *Config) { c.JobID = "another-job" })
		}, ErrJobID},
		{"wrong version", func(t *testing.T, addr string) error {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			hc := &hsConn{nc: nc}
			if _, kind, _, err := hc.read(); err != nil || kind != hsChallenge {
				return fmt.Errorf("first record: kind %d, %v; want a challenge", kind, err)
			}
			me := hello{rank: 1, size: 3, job: "test-job"}
			b := append([]byte(hsMagic), ProtocolVersion+1, hsHello, 0, 0)
			body := me.append(nil)
			binary.LittleEndian.PutUint16(b[6:], uint16(len(body)))
			nc.Write(append(b, body...))
			_, kind, reply, err := hc.read()
			if err != nil {
				return err
			}
			if kind != hsRefuse {
				return fmt.Errorf("kind %d, want refuse", kind)
			}
			return refusal(reply)
		}, ErrVersion},
		{"random bytes", func(t *testing.T, addr string) error {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			junk := make([]byte, 1<<16)
			rand.Read(junk)
			nc.Write(junk)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadAll(nc)
			return err // the listener just closes
		}, ErrBadMagic},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemStore()
			const p = 3
			comms := make([]*Comm, p)
			errs := make([]error, p)
			var wg sync.WaitGroup
			for r := range p - 1 {
				wg.Go(func() { comms[r], errs[r] = New(context.Background(), testConfig(r, p, store)) })
			}
			addr, err := store.Get(ctxT(t), AddrKey)
			if err != nil {
				t.Fatal(err)
			}
			// The attack happens during the rendezvous, on rank 0.
			derr := tc.dial(t, string(addr))
			if tc.name != "random bytes" && !errors.Is(derr, tc.want) {
				t.Errorf("dialer: %v, want %v", derr, tc.want)
			}
			// The real last rank still gets in.
			comms[p-1], errs[p-1] = New(context.Background(), testConfig(p-1, p, store))
			wg.Wait()
			t.Cleanup(func() { closeAll(comms) })
			for r, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", r, err)
				}
			}
			waitFor(t, func() bool { return len(comms[0].Refusals()) > 0 })
			ref := comms[0].Refusals()
			if !errors.Is(ref[0], tc.want) {
				t.Errorf("listener recorded %v, want %v", ref[0], tc.want)
			}
			runGoesOn(t, comms)
		})
	}
}

// dialAs dials addr as rank 2 of 3 (the one rank 0 still waits for) with
// a modified config, as a separate rank would at the rendezvous.
func dialAs(t *testing.T, addr string, mod func(*Config)) error {
	c := fakeDialer(t, 2, 3, mod)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_, err = c.handshakeDial(nc, 0, "127.0.0.1:9")
	return err
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRefusedRankNew: a whole rank started with the wrong secret fails
// New with ErrAuth (exit code 1), not a rendezvous timeout.
func TestRefusedRankNew(t *testing.T) {
	store := NewMemStore()
	var wg sync.WaitGroup
	var c0 *Comm
	var err0 error
	wg.Go(func() {
		cfg := testConfig(0, 2, store)
		cfg.RendezvousTimeout = 3 * time.Second
		c0, err0 = New(context.Background(), cfg)
	})
	cfg := testConfig(1, 2, store)
	cfg.Secret = []byte("the wrong secret, long enough")
	_, err := New(context.Background(), cfg)
	var oe *OpError
	if !errors.Is(err, ErrAuth) || !errors.As(err, &oe) || oe.ExitCode() != 1 {
		t.Fatalf("New with the wrong secret: %v, want ErrAuth with exit code 1", err)
	}
	wg.Wait()
	var re *RendezvousError
	if !errors.As(err0, &re) || re.ExitCode() != 3 || len(re.Missing) != 1 || re.Missing[0] != 1 {
		t.Fatalf("rank 0: %v, want a rendezvous timeout naming rank 1", err0)
	}
	if c0 != nil {
		c0.Close()
	}
}

// TestRendezvousTimeout names the ranks that never arrived.
func TestRendezvousTimeout(t *testing.T) {
	store := NewMemStore()
	const p = 5
	var wg sync.WaitGroup
	errs := make([]error, 3)
	comms := make([]*Comm, 3)
	for r := range 3 { // ranks 3 and 4 never come
		wg.Go(func() {
			cfg := testConfig(r, p, store)
			cfg.RendezvousTimeout = 500 * time.Millisecond
			comms[r], errs[r] = New(context.Background(), cfg)
		})
	}
	wg.Wait()
	var re *RendezvousError
	if !errors.As(errs[0], &re) || fmt.Sprint(re.Missing) != "[3 4]" || re.ExitCode() != 3 {
		t.Fatalf("rank 0: %v, want a rendezvous error naming [3 4]", errs[0])
	}
	for r := 1; r < 3; r++ {
		if !errors.As(errs[r], &re) {
			t.Errorf("rank %d: %v, want a RendezvousError", r, errs[r])
		}
	}
	// A rank whose rank 0 never comes times out too.
	cfg := testConfig(1, 2, NewMemStore())
	cfg.RendezvousTimeout = 300 * time.Millisecond
	if _, err := New(context.Background(), cfg); !errors.As(err, &re) || re.Missing[0] != 0 {
		t.Fatalf("rank 1 without rank 0: %v", err)
	}
}

// TestSilentPeer: a peer that stops sending anything (not even heartbeats)
// is reported lost within the heartbeat timeout; the others carry on.
func TestSilentPeer(t *testing.T) {
	const timeout = 400 * time.Millisecond
	comms, _ := startWithFake(t, 3, func(c *Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.HeartbeatTimeout = timeout
	})
	start := time.Now()
	var m Msg
	err := comms[0].Recv(ctxT(t), 2, 5, &m)
	took := time.Since(start)
	if !errors.Is(err, ErrHeartbeat) {
		t.Fatalf("Recv from a silent peer: %v, want ErrHeartbeat", err)
	}
	if took > timeout+time.Second {
		t.Fatalf("detected after %v, heartbeat timeout %v", took, timeout)
	}
	if err := comms[0].Send(ctxT(t), 2, 5, &Msg{}); err == nil {
		t.Fatal("Send to a lost peer succeeded")
	}
	pingPong(t, comms, 0, 1)
}

// TestKilledPeer: a rank whose sockets die without a bye (a killed
// process) gives errors on its operations at once, idle ranks still see
// heartbeats, and the others carry on.
func TestKilledPeer(t *testing.T) {
	comms := startRanks(t, 4, func(c *Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.HeartbeatTimeout = 500 * time.Millisecond
	})
	pingPong(t, comms, 3, 1) // open a lazy link too
	time.Sleep(200 * time.Millisecond)
	// Idle links survived several heartbeat intervals.
	pingPong(t, comms, 0, 1)
	victim := comms[3]
	start := time.Now()
	for _, p := range victim.peers {
		if p != nil {
			p.mu.Lock()
			for _, l := range p.links {
				l.nc.Close()
			}
			p.mu.Unlock()
		}
	}
	var m Msg
	for _, r := range []int{0, 1} {
		err := comms[r].Recv(ctxT(t), 3, 5, &m)
		if !errors.Is(err, ErrPeerLost) {
			t.Fatalf("rank %d: Recv from the killed rank: %v, want ErrPeerLost", r, err)
		}
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("took %v", took)
	}
	pingPong(t, comms, 0, 2)
	pingPong(t, comms, 1, 2)
}

// TestOrderlyClose: after a peer closes, what it sent is still delivered,
// then receives from it fail with ErrPeerClosed; RecvAny is not disturbed
// while other peers live.
func TestOrderlyClose(t *testing.T) {
	comms := startRanks(t, 3, nil)
	ctx := ctxT(t)
	if err := comms[2].Send(ctx, 0, 9, &Msg{Ints: []int64{1}}); err != nil {
		t.Fatal(err)
	}
	comms[2].Close()
	var m Msg
	if err := comms[0].Recv(ctx, 2, 9, &m); err != nil || m.Ints[0] != 1 {
		t.Fatalf("message sent before Close: %v", err)
	}
	if err := comms[0].Recv(ctx, 2, 9, &m); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("Recv after the peer closed: %v, want ErrPeerClosed", err)
	}
	go comms[1].Send(ctx, 0, 9, &Msg{Ints: []int64{2}})
	if src, err := comms[0].RecvAny(ctx, 9, &m); err != nil || src != 1 {
		t.Fatalf("RecvAny with one peer closed: %v from %d", err, src)
	}
	if err := comms[2].Send(ctx, 0, 9, &Msg{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// TestCloseDuringHandshake: Close does not wait for a stalled handshake's
// deadline.
func TestCloseDuringHandshake(t *testing.T) {
	comms := startRanks(t, 2, nil)
	nc, err := net.Dial("tcp", comms[1].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("AMBH")) // a handshake that never finishes
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	closeAll(comms)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with a stalled handshake", took)
	}
}
