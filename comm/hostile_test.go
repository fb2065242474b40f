package comm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawRecord writes one handshake record of kind with body (version ours).
func rawRecord(kind byte, body []byte) []byte {
	b := append([]byte(hsMagic), ProtocolVersion, kind, 0, 0)
	binary.LittleEndian.PutUint16(b[6:], uint16(len(body)))
	return append(b, body...)
}

// forgedHello is a hello as rank 1 of size in job with a proof made with
// the wrong secret over challenge.
func forgedHello(job string, size int, challenge []byte) []byte {
	me := hello{rank: 1, size: size, job: job, addr: "127.0.0.1:9"}
	body := me.append(nil)
	return rawRecord(hsHello, append(body, mac([]byte("a guess at the secret, 32 bytes!"), labelDialer, challenge, body)...))
}

// TestListenerRevealsNothing: before the dialer has proven the secret, the
// listener sends only a random challenge, and its answer to a wrong proof
// is the same bytes whatever its secret, job id and size, and whatever
// the dialer claimed: nothing that depends on the secret or names the job,
// so guesses of the secret cannot be checked offline.
func TestListenerRevealsNothing(t *testing.T) {
	type listener struct {
		secret, job string
		size        int
	}
	var seen [][]byte
	for _, ln := range []listener{
		{"first secret, long enough to pass", "job-a", 3},
		{"second secret, another one again", "job-bb", 5},
	} {
		store := NewMemStore()
		cfg := testConfig(0, ln.size, store)
		cfg.Secret, cfg.JobID = []byte(ln.secret), ln.job
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := New(ctx, cfg); done <- err }()
		addr, err := store.Get(ctxT(t), AddrKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, claim := range []struct {
			job  string
			size int
		}{{ln.job, ln.size}, {"other", 2}} {
			nc, err := net.Dial("tcp", string(addr))
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			hc := &hsConn{nc: nc}
			ver, kind, body, err := hc.read()
			if err != nil || kind != hsChallenge || len(body) != nonceLen || ver != ProtocolVersion {
				t.Fatalf("first record: version %d kind %d, %d bytes, %v; want a %d-byte challenge", ver, kind, len(body), err, nonceLen)
			}
			challenge := append([]byte(nil), body...)
			nc.Write(forgedHello(claim.job, claim.size, challenge))
			rest, _ := io.ReadAll(nc)
			nc.Close()
			if bytes.Contains(rest, []byte(ln.job)) {
				t.Errorf("the refusal names the job %q: %q", ln.job, rest)
			}
			seen = append(seen, rest)
		}
		cancel()
		<-done
	}
	want := rawRecord(hsRefuse, append([]byte{refuseAuth}, refusedText...))
	for i, b := range seen {
		if !bytes.Equal(b, want) {
			t.Errorf("answer %d to a wrong proof: %q, want exactly %q", i, b, want)
		}
	}
}

// logBuf is a concurrency-safe log.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHostileConnections: during a run, every kind of hostile or stray
// connection to rank 0's listener is refused, counted as refused or
// garbage, and logged at most once a second with a count; the run's
// traffic and results are unaffected.
func TestHostileConnections(t *testing.T) {
	log := &logBuf{}
	comms := startRanks(t, 3, func(c *Config) {
		c.HandshakeTimeout = 300 * time.Millisecond
		if c.Rank == 0 {
			c.Log = log
		}
	})
	addr := comms[0].Addr()
	dial := func() net.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		return nc
	}
	challenge := func(nc net.Conn) []byte {
		_, kind, body, err := (&hsConn{nc: nc}).read()
		if err != nil || kind != hsChallenge {
			t.Fatalf("no challenge: kind %d, %v", kind, err)
		}
		return append([]byte(nil), body...)
	}
	cases := []struct {
		name    string
		attack  func(nc net.Conn)
		garbage bool
	}{
		{"random bytes", func(nc net.Conn) {
			junk := make([]byte, 1<<16)
			rand.Read(junk)
			nc.Write(junk)
		}, true},
		{"silent", func(nc net.Conn) {}, true},
		{"wrong proof", func(nc net.Conn) { nc.Write(forgedHello("test-job", 3, challenge(nc))) }, false},
		{"impostor of a joined rank", func(nc net.Conn) {
			// Claims rank 1 (already in the run) with a replayed-looking proof.
			c := challenge(nc)
			nc.Write(forgedHello("test-job", 3, c[:16]))
		}, false},
		{"truncated hello", func(nc net.Conn) {
			challenge(nc)
			b := forgedHello("test-job", 3, make([]byte, nonceLen))
			nc.Write(b[:len(b)/2])
		}, true},
		{"oversized record", func(nc net.Conn) {
			challenge(nc)
			nc.Write([]byte{'A', 'M', 'B', 'H', ProtocolVersion, hsHello, 0xff, 0xff})
		}, true},
		{"hello without proof", func(nc net.Conn) {
			me := hello{rank: 2, size: 3, job: "test-job"}
			challenge(nc)
			nc.Write(rawRecord(hsHello, me.append(nil)))
		}, true},
	}
	var wantRefused, wantGarbage uint64
	for _, tc := range cases {
		nc := dial()
		tc.attack(nc)
		io.ReadAll(nc) // until the listener closes it
		nc.Close()
		if tc.garbage {
			wantGarbage++
		} else {
			wantRefused++
		}
	}
	// A burst of connect/drop cycles: counted, logged in a line or two.
	const burst = 200
	for range burst {
		dial().Close()
	}
	wantGarbage += burst
	waitFor(t, func() bool {
		s := comms[0].Stats()
		return s.Refused == wantRefused && s.Garbage == wantGarbage
	})
	for _, err := range comms[0].Refusals() {
		if strings.Contains(err.Error(), string(testSecret[:8])) {
			t.Errorf("a refusal shows the secret: %v", err)
		}
	}
	time.Sleep(refusalLogEvery + 100*time.Millisecond) // the rate-limited line is flushed
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if n := len(lines); n < 1 || n > 4 {
		t.Errorf("%d log lines for %d refusals, want 1..4 (one per second):\n%s", n, len(cases)+burst, log.String())
	}
	if !strings.Contains(log.String(), "refused") || !strings.Contains(log.String(), " connections since ") {
		t.Errorf("log does not count the refusals:\n%s", log.String())
	}
	runGoesOn(t, comms)
}

// runGoesOn checks that comms still exchange messages and reduce right.
func runGoesOn(t *testing.T, comms []*Comm) {
	t.Helper()
	pingPong(t, comms, 0, len(comms)-1)
	want := float64(len(comms) * (len(comms) - 1) / 2)
	onAll(t, comms, func(c *Comm) error {
		x := []float64{float64(c.Rank())}
		if err := c.Allreduce(ctxT(t), x, OpSum); err != nil {
			return err
		}
		if x[0] != want {
			return fmt.Errorf("allreduce = %v, want %v", x[0], want)
		}
		return nil
	})
}

// TestShortSecret: a secret shorter than MinSecretLen is refused at start,
// before anything listens.
func TestShortSecret(t *testing.T) {
	cfg := testConfig(0, 2, NewMemStore())
	cfg.Secret = []byte(strings.Repeat("s", MinSecretLen-1))
	if _, err := New(ctxT(t), cfg); !errors.Is(err, ErrShortSecret) {
		t.Fatalf("New with a %d-byte secret: %v, want ErrShortSecret", len(cfg.Secret), err)
	}
	cfg.Secret = []byte(strings.Repeat("s", MinSecretLen))
	if err := cfg.checkSecret(); err != nil {
		t.Fatal(err)
	}
}

// fuzzConn is a net.Conn that reads from a byte slice and discards writes.
type fuzzConn struct {
	net.Conn
	r *bytes.Reader
}

func (c fuzzConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c fuzzConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c fuzzConn) Close() error                     { return nil }
func (c fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzHandshake feeds arbitrary bytes to both sides of the handshake as
// the other party's records. Nothing may panic or allocate beyond a
// record, and no input may complete a handshake: without the secret the
// other side's proof over our fresh nonce cannot be forged.
func FuzzHandshake(f *testing.F) {
	c := &Comm{cfg: testConfig(0, 3, NewMemStore())}
	c.cfg.fillDefaults()
	c.peers = make([]*peer, 3)
	for r := 1; r < 3; r++ {
		c.peers[r] = &peer{c: c, rank: r}
	}
	me := hello{rank: 1, size: 3, job: "test-job", addr: "127.0.0.1:1"}
	f.Add(rawRecord(hsHello, append(me.append(nil), make([]byte, macLen)...)))
	f.Add(append(rawRecord(hsChallenge, make([]byte, nonceLen)), rawRecord(hsWelcome, append(me.append(nil), make([]byte, macLen)...))...))
	f.Add(rawRecord(hsRefuse, []byte{refuseAuth, 'x'}))
	f.Add([]byte("AMBH\x02\x01\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := c.handshakeAccept(fuzzConn{r: bytes.NewReader(data)}); err == nil {
			t.Fatal("the listener accepted a dialer without the secret")
		}
		if _, err := c.handshakeDial(fuzzConn{r: bytes.NewReader(data)}, -1, ""); err == nil {
			t.Fatal("the dialer accepted a listener without the secret")
		}
	})
}
