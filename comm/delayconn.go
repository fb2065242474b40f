package comm

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// DelayConn is a net.Conn that holds what is written to it for Delay plus
// a uniform random time in [0, Jitter) before it goes out on the
// underlying connection, in order (a write is never released before the
// one before it): a message delay for experiments on a network without
// netem. Write copies b and returns at once, so the delay adds latency
// without limiting throughput; reads are the underlying connection's.
// Close sends what is held (waiting for its release times), then closes.
// Safe for concurrent use like a net.Conn.
type DelayConn struct {
	net.Conn
	delay, jitter time.Duration

	mu      sync.Mutex // guards the fields below
	queue   []heldWrite
	last    time.Time // release time of the last queued write
	err     error     // the first write error of the underlying connection
	closing bool
	rng     *rand.Rand
	wake    chan struct{}
	done    chan struct{}
	closeMu sync.Once
}

type heldWrite struct {
	b   []byte
	due time.Time
}

// NewDelayConn wraps nc; seed fixes the jitter's sequence.
func NewDelayConn(nc net.Conn, delay, jitter time.Duration, seed uint64) *DelayConn {
	c := &DelayConn{Conn: nc, delay: delay, jitter: jitter, rng: rand.New(rand.NewPCG(seed, 0x6c8e9cf570932bd5)),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.pump()
	return c
}

var errDelayClosed = errors.New("comm: write to a closed delayed connection")

// Write queues a copy of b for release after the delay.
func (c *DelayConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if c.closing {
		c.mu.Unlock()
		return 0, errDelayClosed
	}
	d := c.delay
	if c.jitter > 0 {
		d += time.Duration(c.rng.Int64N(int64(c.jitter)))
	}
	due := time.Now().Add(d)
	if due.Before(c.last) {
		due = c.last
	}
	c.last = due
	c.queue = append(c.queue, heldWrite{b: append([]byte(nil), b...), due: due})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// pump releases the held writes at their due times.
func (c *DelayConn) pump() {
	defer close(c.done)
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			closing := c.closing
			c.mu.Unlock()
			if closing {
				return
			}
			<-c.wake
			continue
		}
		h := c.queue[0]
		c.mu.Unlock()
		if wait := time.Until(h.due); wait > 0 {
			time.Sleep(wait)
		}
		_, err := c.Conn.Write(h.b)
		c.mu.Lock()
		c.queue = c.queue[1:]
		if err != nil && c.err == nil {
			c.err = err
		}
		if c.err != nil {
			c.queue = nil
		}
		c.mu.Unlock()
	}
}

// Close releases what is held, then closes the underlying connection.
func (c *DelayConn) Close() error {
	var err error
	c.closeMu.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
		// A peer that stopped reading must not hold Close forever.
		select {
		case <-c.done:
		case <-time.After(c.delay + c.jitter + 5*time.Second):
		}
		err = c.Conn.Close()
	})
	return err
}
