package comm

import (
	"context"
	"math/bits"
	"slices"
	"sync"
)

// frame is a received message: the raw payload in a pooled buffer.
type frame struct {
	pool     *framePool
	class    int    // size class of buf (-1: not pooled)
	buf      []byte // owned buffer
	raw      []byte // payload, a prefix of buf
	src, tag int
}

func (f *frame) release() {
	if f.pool != nil {
		f.pool.put(f)
	}
}

// framePool recycles receive buffers by size class (quarter powers of
// two), so that steady-state receiving does not allocate. Unlike a
// sync.Pool it is not emptied by the garbage collector, which matters for
// multi-MiB frames; each class keeps at most poolBytes worth of buffers.
type framePool struct {
	mu   sync.Mutex // protects free
	free [4 * 64][]*frame
}

const (
	poolBytes    = 64 << 20
	maxPoolClass = 4 * 31 // larger frames (> 1 GiB) get unpooled buffers
)

// sizeClass returns the class of an n-byte buffer and its capacity: n
// rounded up to a quarter of the power of two below it.
func sizeClass(n int) (class, size int) {
	if n <= 64 {
		return 0, 64
	}
	e := bits.Len(uint(n - 1))  // 2^(e-1) < n <= 2^e
	q := 1 << (e - 3)           // an eighth of 2^e: a quarter of 2^(e-1)
	k := (n - 1 - 1<<(e-1)) / q // 0..3
	return 4*e + k, 1<<(e-1) + (k+1)*q
}

func (fp *framePool) get(n int) *frame {
	class, size := sizeClass(n)
	if class > maxPoolClass {
		return &frame{pool: fp, class: -1, buf: make([]byte, n)}
	}
	fp.mu.Lock()
	if l := len(fp.free[class]); l > 0 {
		f := fp.free[class][l-1]
		fp.free[class] = fp.free[class][:l-1]
		fp.mu.Unlock()
		return f
	}
	fp.mu.Unlock()
	return &frame{pool: fp, class: class, buf: make([]byte, size)}
}

func (fp *framePool) put(f *frame) {
	if f.class < 0 {
		return
	}
	f.raw = nil
	fp.mu.Lock()
	if (len(fp.free[f.class])+1)*cap(f.buf) <= poolBytes || len(fp.free[f.class]) < 2 {
		fp.free[f.class] = append(fp.free[f.class], f)
	}
	fp.mu.Unlock()
}

// anySrc is the source of a RecvAny waiter.
const anySrc = -1

// waiter is a blocked Recv (src >= 0) or RecvAny (src == anySrc). A pusher
// that removes it from the queue under mailbox.mu sends exactly one frame
// on ch (capacity 1, so the send never blocks). A waiter with a place (a
// collective's receive) may instead be claimed by the reader of src's link
// (claimPlaced), which reads the payload into the place and then sends
// placed, or a frame when the message does not fit the place.
type waiter struct {
	src, tag int
	pl       *place
	ch       chan *frame
}

// place is where a collective wants a dense vector of len(dst) values:
// copied into dst, or combined into it with op when reduce is set. It
// belongs to the receiving goroutine, which does not touch it until its
// waiter has been answered. A reader that copies a message into dst also
// leaves its frames' payload CRCs in crcs.
type place struct {
	dst    []float64
	reduce bool
	op     Op
	crcs   []uint32
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan *frame, 1)} }}

// tagQueue holds the undelivered frames of one tag in arrival order and the
// receivers waiting for that tag.
type tagQueue struct {
	pending []*frame
	waiters []*waiter
}

// peerState records why no more frames will come from a rank.
type peerState struct {
	err       error // nil while the peer may still send
	orderly   bool  // err is an orderly close (bye), not a loss
	forgotten bool  // Forget acknowledged the departure: RecvAny ignores it
}

// mailbox matches received frames to Recv(src, tag) and RecvAny(tag):
// frames of one (src, tag) are delivered in arrival order; RecvAny takes the
// earliest frame of the tag from any source.
type mailbox struct {
	self int

	mu     sync.Mutex // protects the fields below
	queues map[int]*tagQueue
	peers  []peerState
	closed error
	strict bool // RecvAny reports orderly closes too (ReportDepartures)
}

func newMailbox(self, size int) *mailbox {
	return &mailbox{self: self, queues: map[int]*tagQueue{}, peers: make([]peerState, size)}
}

func (mb *mailbox) queue(tag int) *tagQueue {
	q := mb.queues[tag]
	if q == nil {
		q = &tagQueue{}
		mb.queues[tag] = q
	}
	return q
}

// push delivers f to a waiting receiver or queues it.
func (mb *mailbox) push(f *frame) {
	mb.mu.Lock()
	if mb.closed != nil {
		mb.mu.Unlock()
		f.release()
		return
	}
	q := mb.queue(f.tag)
	for i, w := range q.waiters {
		if w.src == anySrc || w.src == f.src {
			q.waiters = slices.Delete(q.waiters, i, i+1)
			mb.mu.Unlock()
			w.ch <- f
			return
		}
	}
	q.pending = append(q.pending, f)
	mb.mu.Unlock()
}

// takeLocked removes and returns the first pending frame of q from src (or
// from anyone), or nil.
func takeLocked(q *tagQueue, src int) *frame {
	for i, f := range q.pending {
		if src == anySrc || f.src == src {
			// Shift rather than reslice, so the queue keeps its capacity
			// and pushing does not allocate (queues are short).
			q.pending = slices.Delete(q.pending, i, i+1)
			return f
		}
	}
	return nil
}

// deadErrLocked reports why a receive from src (or anySrc) can never be
// satisfied, or nil. RecvAny fails when any peer was lost, or when every
// peer has closed.
func (mb *mailbox) deadErrLocked(src int) error {
	if mb.closed != nil {
		return mb.closed
	}
	if src != anySrc {
		return mb.peers[src].err
	}
	var last error
	for r, st := range mb.peers {
		if r == mb.self {
			continue
		}
		if st.err == nil {
			return nil
		}
		if !st.orderly && !st.forgotten {
			return st.err
		}
		last = st.err
	}
	return last
}

// lostErrLocked is the first non-orderly peer failure (RecvAny reports it
// even while other peers live), or with strict the first departure of any
// kind; forgotten peers are skipped.
func (mb *mailbox) lostErrLocked() error {
	for r, st := range mb.peers {
		if r != mb.self && st.err != nil && !st.forgotten && (!st.orderly || mb.strict) {
			return st.err
		}
	}
	return nil
}

// claimPlaced is called by the reader of src's link with the header of a
// message of tag, before reading its payload. When the receiver next in
// line for it (the first waiter of tag for src or any source) has a place,
// it removes that waiter from the queue and returns it: no frame of (src,
// tag) is queued (pop would have taken it instead of waiting), so this
// message is the one the waiter wants. The reader must then answer it.
func (mb *mailbox) claimPlaced(src, tag int) *waiter {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	q := mb.queues[tag]
	if q == nil || mb.closed != nil {
		return nil
	}
	for i, w := range q.waiters {
		if w.src == anySrc || w.src == src {
			if w.pl == nil || w.src != src {
				return nil
			}
			q.waiters = slices.Delete(q.waiters, i, i+1)
			return w
		}
	}
	return nil
}

// pop waits for a frame of tag from src (anySrc: any source). With pl,
// the links' reader may place the payload itself and answer placed.
func (mb *mailbox) pop(ctx context.Context, src, tag int, pl *place) (*frame, error) {
	f, w, err := mb.post(src, tag, pl)
	if w == nil {
		return f, err
	}
	return mb.wait(ctx, w)
}

// post starts a receive of tag from src (anySrc: any source): it returns
// the first queued frame, or the error that makes the receive impossible,
// or a waiter queued for the next frame, to be given to wait or cancel.
func (mb *mailbox) post(src, tag int, pl *place) (*frame, *waiter, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	q := mb.queue(tag)
	if f := takeLocked(q, src); f != nil {
		return f, nil, nil
	}
	err := mb.deadErrLocked(src)
	if err == nil && src == anySrc {
		err = mb.lostErrLocked()
	}
	if err != nil {
		return nil, nil, err
	}
	w := waiterPool.Get().(*waiter)
	w.src, w.tag, w.pl = src, tag, pl
	q.waiters = append(q.waiters, w)
	return nil, w, nil
}

// wait waits for the answer to posted waiter w (a frame, or placed) and
// recycles w. A waiter woken because its receive may have become
// impossible posts again, which reports the error.
func (mb *mailbox) wait(ctx context.Context, w *waiter) (*frame, error) {
	select {
	case f := <-w.ch:
		src, tag, pl := w.src, w.tag, w.pl
		putWaiter(w)
		if f == wakeup {
			return mb.pop(ctx, src, tag, pl)
		}
		return f, nil
	case <-ctx.Done():
	}
	mb.cancel(w)
	return nil, ctx.Err()
}

// cancel withdraws posted waiter w and recycles it. If a pusher has
// already taken w from the queue and is handing over a frame, the frame is
// put back first in line; if a reader is placing a message, cancel waits
// until the reader has done with the place (the message is then consumed).
func (mb *mailbox) cancel(w *waiter) {
	mb.mu.Lock()
	q := mb.queue(w.tag)
	if i := slices.Index(q.waiters, w); i >= 0 {
		q.waiters = slices.Delete(q.waiters, i, i+1)
		mb.mu.Unlock()
		putWaiter(w)
		return
	}
	mb.mu.Unlock()
	f := <-w.ch
	if f != wakeup && f != placed {
		mb.mu.Lock()
		q.pending = slices.Insert(q.pending, 0, f)
		mb.mu.Unlock()
	}
	putWaiter(w)
}

func putWaiter(w *waiter) {
	w.pl = nil
	waiterPool.Put(w)
}

// wakeup is sent to waiters whose wait can no longer succeed; they then
// re-check and return the error. placed answers a waiter whose message a
// reader has placed.
var wakeup, placed = &frame{}, &frame{}

// fail records that no more frames will come from src and wakes the
// receivers that depend on it.
func (mb *mailbox) fail(src int, err error, orderly bool) {
	mb.mu.Lock()
	if mb.peers[src].err == nil {
		mb.peers[src] = peerState{err: err, orderly: orderly}
	}
	mb.wakeLocked(func(w *waiter) bool { return w.src == src || w.src == anySrc })
	mb.mu.Unlock()
}

// close fails every current and future receive with err and drops the
// queued frames.
func (mb *mailbox) close(err error) {
	mb.mu.Lock()
	if mb.closed == nil {
		mb.closed = err
	}
	mb.wakeLocked(func(*waiter) bool { return true })
	for _, q := range mb.queues {
		for _, f := range q.pending {
			f.release()
		}
		q.pending = nil
	}
	mb.mu.Unlock()
}

func (mb *mailbox) wakeLocked(match func(*waiter) bool) {
	for _, q := range mb.queues {
		q.waiters = slices.DeleteFunc(q.waiters, func(w *waiter) bool {
			if match(w) {
				w.ch <- wakeup
				return true
			}
			return false
		})
	}
}
