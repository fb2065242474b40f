package comm

import (
	"errors"
	"fmt"
	"time"
)

// Hostile and stray connections: every connection the listener refuses is
// counted as refused (a well-formed handshake that failed: wrong secret,
// version, job, size or rank) or garbage (anything else: bytes that are
// not a handshake, a client that stays silent past HandshakeTimeout, a
// connection dropped half-way), and logged to Config.Log at most once per
// refusalLogEvery, with the count since the last line.

// refusalLogEvery is the shortest time between two refusal log lines.
const refusalLogEvery = time.Second

// MinSecretLen is the shortest job secret New accepts (for more than one
// rank): a short hand-set secret could be guessed.
const MinSecretLen = 16

// ErrShortSecret refuses a job secret shorter than MinSecretLen.
var ErrShortSecret = fmt.Errorf("comm: the job secret is shorter than %d bytes (a short secret can be guessed; launchers generate 64 hex digits)", MinSecretLen)

// checkSecret refuses a short secret (New calls it after Validate).
func (c *Config) checkSecret() error {
	if c.Size > 1 && len(c.Secret) < MinSecretLen {
		return fmt.Errorf("%w: it has %d", ErrShortSecret, len(c.Secret))
	}
	return nil
}

// refusalLog is the rate-limited log state (under Comm.mu).
type refusalLog struct {
	last    time.Time   // the last line
	pending int         // refusals since the last line
	lastErr error       // the latest of them
	timer   *time.Timer // flushes pending after the rate limit, or nil
}

// isGarbage reports whether a refused connection never spoke a well-formed
// handshake.
func isGarbage(err error) bool {
	return !(errors.Is(err, ErrAuth) || errors.Is(err, ErrJobID) || errors.Is(err, ErrVersion) || errors.Is(err, ErrRefused))
}

// logRefusalLocked logs err now, or counts it for a line after the rate
// limit. c.mu is held.
func (c *Comm) logRefusalLocked(err error) {
	if c.cfg.Log == nil {
		return
	}
	rl := &c.rlog
	rl.pending++
	rl.lastErr = err
	if since := time.Since(rl.last); since >= refusalLogEvery {
		c.flushRefusalsLocked()
	} else if rl.timer == nil && !c.closing.Load() {
		rl.timer = time.AfterFunc(refusalLogEvery-since, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.rlog.timer = nil
			c.flushRefusalsLocked()
		})
	}
}

// flushRefusalsLocked writes the pending refusals' line. c.mu is held.
func (c *Comm) flushRefusalsLocked() {
	rl := &c.rlog
	if rl.pending == 0 || c.cfg.Log == nil {
		return
	}
	if rl.pending == 1 {
		fmt.Fprintf(c.cfg.Log, "comm: rank %d: refused a connection: %v\n", c.cfg.Rank, rl.lastErr)
	} else {
		fmt.Fprintf(c.cfg.Log, "comm: rank %d: refused %d connections since %s (the last: %v)\n",
			c.cfg.Rank, rl.pending, rl.last.Format("15:04:05.000"), rl.lastErr)
	}
	rl.pending, rl.last = 0, time.Now()
}

// stopRefusalLog flushes and stops the refusal log (at Close).
func (c *Comm) stopRefusalLog() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rlog.timer != nil {
		c.rlog.timer.Stop()
		c.rlog.timer = nil
	}
	c.flushRefusalsLocked()
}
