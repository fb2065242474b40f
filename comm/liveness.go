package comm

import (
	"golang.org/x/sys/unix"
)

// Liveness: the watchdog must judge whether the peer is alive, not how far
// behind we are. Only the peer's silence fails a link: no byte from it
// (a frame, a heartbeat, a piece of a large frame) for the timeout. Besides
// the bytes our reader has taken (lastRecv), these count as the peer's
// liveness:
//
//   - bytes waiting in our kernel receive queue (SIOCINQ) while our reader
//     is not in a read (it is placing a frame, or short of CPU): they wait
//     for us, and the peer sent them; a full queue that the peer cannot add
//     to while we are behind is our backlog, not its silence;
//   - bytes in the receive queue that were not there, or were fewer, at
//     the last look while our reader waits in a read (the queue it left
//     counts once): the peer is sending,
//     our reader waits for more (a large message trickling in, a reader
//     waiting for its SO_RCVLOWAT);
//   - time during which our own watchdog did not run (the process was
//     descheduled or stopped): the peer's silence is not measured then.
//
// A write of ours that the peer does not take (it is busy, its queue
// full) fails nothing by itself: while the peer is alive its watchdog's
// heartbeats arrive (its writer is free: it is not writing to us).

// recvQueue returns the bytes in the socket's receive queue (unread by
// us); ok is false when the connection is not a socket we can ask. Only
// the watchdog calls it.
func (l *link) recvQueue() (inq int, ok bool) {
	if l.raw == nil {
		return 0, false
	}
	q := &l.queues
	if q.fn == nil {
		q.fn = q.ask // once: Control's argument must not allocate per call
	}
	q.err = nil
	if err := l.raw.rc.Control(q.fn); err != nil || q.err != nil {
		return 0, false
	}
	return q.inq, true
}

// sockQueueQuery is recvQueue's scratch.
type sockQueueQuery struct {
	fn  func(fd uintptr)
	inq int
	err error
}

func (q *sockQueueQuery) ask(fd uintptr) {
	q.inq, q.err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
}

// liveness is the watchdog's view between ticks.
type liveness struct {
	lastTick  int64 // when the watchdog last ran (Comm.now)
	inq       int   // the receive queue at the last look, -1 unknown
	credit    int64 // the lastRecv the last credit set: unchanged, our reader has read nothing since
	stalledNs int64 // total time the watchdog was late (our own stall)
}

func newLiveness(now int64) liveness { return liveness{lastTick: now, inq: -1} }

// tick updates lv at now (the watchdog's tick period every) and credits
// the link: our own stall moves lastRecv forward by as much, and, once the
// link has been silent for more than quietNs, bytes in the receive queue
// count as received now when our reader is not reading, or when they are
// more than at the last look (the queue as it was when our reader last
// read counts once: a reader waiting for the rest of a frame whose sender
// died must not be credited forever).
func (lv *liveness) tick(l *link, now, every, quietNs int64) {
	if late := now - lv.lastTick - every; late > every {
		lv.stalledNs += late
		for {
			old := l.lastRecv.Load()
			if l.lastRecv.CompareAndSwap(old, min(old+late, now)) {
				break
			}
		}
	}
	lv.lastTick = now
	recv := l.lastRecv.Load()
	if recv != lv.credit {
		lv.inq = -1 // our reader has read since the last look
	}
	if now-recv <= quietNs {
		return
	}
	// Read before the queue: a reader that was not reading when we
	// looked may have read the bytes since, which only moves lastRecv.
	reading := l.inRead.Load()
	inq, ok := l.recvQueue()
	if !ok {
		return
	}
	if inq > 0 && (!reading || inq > lv.inq) {
		l.lastRecv.Store(now) // the peer sent bytes our reader has not taken yet
		lv.credit = now
	}
	lv.inq = inq
}
