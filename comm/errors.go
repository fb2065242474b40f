package comm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel errors. They are wrapped in an *OpError naming the rank, the peer
// and its address; test them with errors.Is.
var (
	ErrClosed        = errors.New("comm: communicator closed")
	ErrPeerClosed    = errors.New("comm: peer closed the connection")
	ErrPeerLost      = errors.New("comm: peer lost")
	ErrHeartbeat     = errors.New("comm: no heartbeat from peer within the timeout")
	ErrBadMagic      = errors.New("comm: bad magic (not an asyncmb frame)")
	ErrVersion       = errors.New("comm: protocol version mismatch")
	ErrChecksum      = errors.New("comm: CRC32C mismatch")
	ErrFrameTooLarge = errors.New("comm: frame length exceeds MaxFrame")
	ErrCorrupt       = errors.New("comm: corrupt frame")
	ErrAuth          = errors.New("comm: authentication failed (wrong job secret?)")
	ErrJobID         = errors.New("comm: job id mismatch")
	ErrRefused       = errors.New("comm: connection refused by peer")
)

// OpError is the error of an operation on a link to a peer. It is modelled
// on net.OpError: Op names the operation ("send", "recv", "dial",
// "handshake", "read", "heartbeat", ...), Rank is our rank, Peer the peer's
// rank (-1 when not known yet, e.g. during a handshake), Addr the peer's
// network address.
type OpError struct {
	Op   string
	Rank int
	Peer int
	Addr string
	Err  error
}

func (e *OpError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "comm: rank %d: %s", e.Rank, e.Op)
	if e.Peer >= 0 {
		fmt.Fprintf(&b, " rank %d", e.Peer)
	}
	if e.Addr != "" {
		fmt.Fprintf(&b, " (%s)", e.Addr)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *OpError) Unwrap() error { return e.Err }

// ExitCode lets the asyncmb command map the error to its exit code: a
// refused handshake is a plain failure (1), anything else on an established
// link means the peer was lost (4).
func (e *OpError) ExitCode() int {
	switch {
	case errors.Is(e.Err, ErrAuth), errors.Is(e.Err, ErrJobID), errors.Is(e.Err, ErrVersion), errors.Is(e.Err, ErrRefused):
		return 1
	}
	return 4
}

// RendezvousError reports ranks that did not arrive before the rendezvous
// deadline. The asyncmb command exits with code 3 for it.
type RendezvousError struct {
	Rank    int   // our rank
	Missing []int // ranks that never arrived (for rank 0) or [0] (for others)
	Err     error // the last underlying error, if any
}

func (e *RendezvousError) Error() string {
	var b strings.Builder
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "comm: rank %d: rendezvous timed out; ranks that never arrived: %v", e.Rank, e.Missing)
	} else {
		fmt.Fprintf(&b, "comm: rank %d: rendezvous failed", e.Rank)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " (last error: %v)", e.Err)
	}
	return b.String()
}

func (e *RendezvousError) Unwrap() error { return e.Err }

// ExitCode is 3: the ranks did not all meet.
func (e *RendezvousError) ExitCode() int { return 3 }

// missingRanks lists the ranks in [0,size) that are not in seen, except self.
func missingRanks(size, self int, seen func(int) bool) []int {
	var m []int
	for r := range size {
		if r != self && !seen(r) {
			m = append(m, r)
		}
	}
	return slices.Clip(m)
}
