package comm

import (
	"golang.org/x/sys/unix"
)

// Liveness: the watchdog must judge whether the peer is alive, not how far
// behind we are. Three things count besides the frames our reader has
// decoded (lastRecv):
//
//   - bytes waiting in our kernel receive buffer (SIOCINQ) that were not
//     there, or were fewer, at the last look: the peer is sending, our
//     reader has not caught up (a large message trickling in, a reader
//     waiting for its SO_RCVLOWAT, a process short of CPU);
//   - bytes of ours the peer has acknowledged (SIOCOUTQ shrinking) while a
//     write is blocked: the peer is reading, only slowly;
//   - time during which our own watchdog did not run (the process was
//     descheduled or stopped): the peer's silence is not measured then.

// sockQueues returns the bytes in the socket's receive queue (unread by
// us) and send queue (not yet acknowledged by the peer); ok is false when
// the connection is not a socket we can ask. Only the watchdog calls it.
func (l *link) sockQueues() (inq, outq int, ok bool) {
	if l.raw == nil {
		return 0, 0, false
	}
	q := &l.queues
	if q.fn == nil {
		q.fn = q.ask // once: Control's argument must not allocate per call
	}
	q.err = nil
	if err := l.raw.rc.Control(q.fn); err != nil || q.err != nil {
		return 0, 0, false
	}
	return q.inq, q.outq, true
}

// sockQueueQuery is sockQueues' scratch.
type sockQueueQuery struct {
	fn        func(fd uintptr)
	inq, outq int
	err       error
}

func (q *sockQueueQuery) ask(fd uintptr) {
	var err error
	if q.inq, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ); err != nil {
		q.err = err
		return
	}
	if q.outq, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err != nil {
		q.err = err
	}
}

// liveness is the watchdog's view between ticks.
type liveness struct {
	lastTick   int64 // when the watchdog last ran (Comm.now)
	inq, outq  int   // the socket queues at the last look, -1 unknown
	stalledNs  int64 // total time the watchdog was late (our own stall)
	progressNs int64 // when a blocked write last saw the peer acknowledge bytes
}

func newLiveness(now int64) liveness { return liveness{lastTick: now, inq: -1, outq: -1} }

// tick updates lv at now (the watchdog's tick period every) and credits
// the link: our own stall moves lastRecv forward by as much, and, once the
// link has been silent or a write blocked for more than quietNs, fresh
// bytes in the receive queue count as received now. It returns when a
// blocked write last made progress (the peer acknowledged bytes).
func (lv *liveness) tick(l *link, now, every, quietNs int64) (writeProgress int64) {
	if late := now - lv.lastTick - every; late > every {
		lv.stalledNs += late
		for {
			old := l.lastRecv.Load()
			if l.lastRecv.CompareAndSwap(old, min(old+late, now)) {
				break
			}
		}
		lv.progressNs = min(lv.progressNs+late, now)
	}
	lv.lastTick = now
	quiet := now-l.lastRecv.Load() > quietNs
	ws := l.writeStart.Load()
	blocked := ws != 0 && now-ws > quietNs
	if !quiet && !blocked {
		lv.inq, lv.outq = -1, -1
		return lv.progressNs
	}
	inq, outq, ok := l.sockQueues()
	if !ok {
		return lv.progressNs
	}
	if quiet && inq > 0 && inq != lv.inq {
		l.lastRecv.Store(now) // the peer sent bytes our reader has not taken yet
	}
	if blocked && lv.outq >= 0 && outq < lv.outq {
		lv.progressNs = now // the peer acknowledged some of ours
	}
	lv.inq, lv.outq = inq, outq
	return lv.progressNs
}
