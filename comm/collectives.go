package comm

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Op is a reduction operator for Reduce and Allreduce.
type Op uint8

// The reduction operators.
const (
	OpSum Op = iota
	OpMax
	OpMin
)

// reduceInto does dst[i] = op(dst[i], src[i]); len(src) >= len(dst).
//
// Reference loop (OpSum): for i := range dst { dst[i] += src[i] }
func reduceInto(op Op, dst, src []float64) {
	src = src[:len(dst)]
	switch op {
	case OpSum:
		addTo(dst, src)
	case OpMax:
		for i, v := range src {
			dst[i] = math.Max(dst[i], v)
		}
	case OpMin:
		for i, v := range src {
			dst[i] = math.Min(dst[i], v)
		}
	default:
		panic("comm: unknown reduction Op")
	}
}

// addGo does dst[i] += src[i]; len(src) >= len(dst).
//
// Reference loop: for i := range dst { dst[i] += src[i] }
func addGo(dst, src []float64) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

// Algorithm thresholds: messages up to smallBytes use binomial trees;
// larger Bcasts are pipelined along a chain in segments of segFloats (2 MiB:
// on loopback, smaller segments cost more in system calls and wake-ups than
// they gain in pipelining; 1 MiB and 512 KiB were no faster on 4 ranks), and
// larger Allreduces use a ring (reduce-scatter then allgather).
const (
	smallBytes = 64 << 10
	segFloats  = 256 << 10
)

// collState is the scratch of the collectives: one receive Msg, one
// accumulation buffer and the receive requests, grown to the largest size
// seen and then reused, so collectives of a fixed size do not allocate per
// call.
type collState struct {
	c      *Comm
	m      Msg
	acc    []float64
	out    Msg
	rq     []recvReq // receives in progress
	placed int       // receives placed by a link's reader (for tests)
}

func (s *collState) init(c *Comm) { s.c = c }

func (s *collState) accBuf(n int) []float64 {
	if cap(s.acc) < n {
		s.acc = make([]float64, n)
	}
	return s.acc[:n]
}

func (s *collState) send(ctx context.Context, dst, tag int, x []float64) error {
	return s.forward(ctx, dst, tag, x, nil)
}

// forward sends x, received placed by r, unchanged: it reuses r's CRCs
// (r.known) instead of computing them. A forwarded vector is thus checked
// against its original sender's CRC at every hop: one corrupted in our
// memory after it arrived is refused downstream rather than passed on
// under a new CRC.
func (s *collState) forward(ctx context.Context, dst, tag int, x []float64, known []uint32) error {
	s.out.Dense, s.out.crcs = x, known
	err := s.c.send(ctx, dst, tag, &s.out)
	s.out.Dense, s.out.crcs = nil, nil
	return err
}

// recvReq is a collective's receive of a dense vector into a place:
// posted (postRecv) before the sends that precede it, so that the link's
// reader finds the place when the message arrives, then completed by
// waitRecv (or withdrawn by cancelRecv).
type recvReq struct {
	pl     place
	known  []uint32 // after waitRecv: the CRCs of a copied message's frames, if placed
	src    int
	opName string
	f      *frame  // a frame already queued when posted
	w      *waiter // else the posted waiter
	err    error   // or why the receive cannot succeed
	start  time.Time
}

// postRecv starts receiving a dense vector of exactly len(dst) values from
// src into dst: copied, or with reduce combined with op (dst[i] =
// op(dst[i], v[i])). Large messages are placed by the link's reader as they
// arrive: the kernel copies a copied vector straight into dst, and a
// reduced one is read in pieces into a scratch buffer and combined while
// the piece is in cache; so neither goes through a pooled buffer. dst
// belongs to the receive until waitRecv or cancelRecv returns.
func (s *collState) postRecv(r *recvReq, src, tag int, dst []float64, reduce bool, op Op, opName string) {
	r.pl = place{dst: dst, reduce: reduce, op: op, crcs: r.pl.crcs[:0]}
	r.known = nil
	r.src, r.opName, r.start = src, opName, time.Now()
	r.f, r.w, r.err = s.c.mb.post(src, tag, &r.pl)
}

// waitRecv completes a posted receive. On error dst may hold part of the
// message.
func (s *collState) waitRecv(ctx context.Context, r *recvReq) error {
	c := s.c
	f, err := r.f, r.err
	if r.w != nil {
		f, err = c.mb.wait(ctx, r.w)
	}
	r.f, r.w, r.err = nil, nil, nil
	pl := r.pl
	dst := pl.dst
	r.pl = place{crcs: pl.crcs[:0]} // keep the CRCs' storage
	if err != nil {
		if _, ok := err.(*OpError); !ok {
			err = &OpError{Op: "recv", Rank: c.cfg.Rank, Peer: r.src, Err: err}
		}
		return err
	}
	if f == placed {
		s.placed++
		if !pl.reduce {
			r.known = pl.crcs
		}
	} else {
		// Queued before the receive was posted, or not a vector of the
		// expected length: decode it like Recv.
		s.m.Release()
		s.m.fr = f
		if err := s.m.decode(f.raw); err != nil {
			s.m.Release()
			return &OpError{Op: "recv", Rank: c.cfg.Rank, Peer: r.src, Err: err}
		}
		got := s.m.Dense
		if len(got) != len(dst) {
			s.m.Release()
			return &OpError{Op: r.opName, Rank: c.cfg.Rank, Peer: r.src, Err: fmt.Errorf("comm: %s: rank %d sent %d values, want %d (ranks disagree on the length)", r.opName, r.src, len(got), len(dst))}
		}
		if pl.reduce {
			reduceInto(pl.op, dst, got)
		} else {
			copy(dst, got)
		}
		s.m.Release()
	}
	c.peers[r.src].ctr.recvLat.observe(time.Since(r.start))
	return nil
}

// cancelRecv withdraws a posted receive after an error (see
// mailbox.cancel); a frame taken when posting is dropped.
func (s *collState) cancelRecv(r *recvReq) {
	if r.w != nil {
		s.c.mb.cancel(r.w)
	}
	if r.f != nil {
		r.f.release()
	}
	*r = recvReq{}
}

// reqs returns n receive requests (scratch reused across calls).
func (s *collState) reqs(n int) []recvReq {
	if cap(s.rq) < n {
		s.rq = make([]recvReq, n)
	}
	return s.rq[:n]
}

// sendThenWait sends out to rank to (unless out is nil; with its frames'
// CRCs when known, see forward), then completes the posted receive rq[i].
// On error it withdraws rq[i:], the receives still posted.
func (s *collState) sendThenWait(ctx context.Context, to, tag int, out []float64, known []uint32, rq []recvReq, i int) error {
	if out != nil {
		if err := s.forward(ctx, to, tag, out, known); err != nil {
			s.cancelRecvs(rq[i:])
			return err
		}
	}
	if err := s.waitRecv(ctx, &rq[i]); err != nil {
		s.cancelRecvs(rq[i+1:])
		return err
	}
	return nil
}

// cancelRecvs withdraws posted receives, the last first, so that frames
// put back first in line keep their order.
func (s *collState) cancelRecvs(rq []recvReq) {
	for i := len(rq) - 1; i >= 0; i-- {
		s.cancelRecv(&rq[i])
	}
}

// recvInto is postRecv then waitRecv.
func (s *collState) recvInto(ctx context.Context, src, tag int, dst []float64, reduce bool, op Op, opName string) error {
	r := &s.reqs(1)[0]
	s.postRecv(r, src, tag, dst, reduce, op, opName)
	return s.waitRecv(ctx, r)
}

// Barrier returns once every rank has entered it (dissemination barrier,
// ceil(log2 P) rounds).
func (c *Comm) Barrier(ctx context.Context) error {
	s := &c.coll
	p, r := c.cfg.Size, c.cfg.Rank
	for k := 1; k < p; k *= 2 {
		if err := s.send(ctx, (r+k)%p, tagBarrier, nil); err != nil {
			return err
		}
		if err := c.Recv(ctx, (r-k+p)%p, tagBarrier, &s.m); err != nil {
			return err
		}
	}
	s.m.Release()
	return nil
}

// Bcast copies root's x into x on every rank; all ranks pass slices of the
// same length. Small vectors go down a binomial tree, large ones along a
// pipelined chain.
func (c *Comm) Bcast(ctx context.Context, root int, x []float64) error {
	c.checkRoot(root)
	if c.cfg.Size == 1 {
		return nil
	}
	if 8*len(x) <= smallBytes {
		return c.bcastTree(ctx, root, x, tagBcast)
	}
	return c.bcastChain(ctx, root, x)
}

func (c *Comm) checkRoot(root int) {
	if root < 0 || root >= c.cfg.Size {
		panic("comm: root outside [0, Size)")
	}
}

// bcastTree: relative rank v = (rank-root) mod P receives from v - lowbit(v)
// and sends to v + 2^k for the powers of two below lowbit(v).
func (c *Comm) bcastTree(ctx context.Context, root int, x []float64, tag int) error {
	s := &c.coll
	p := c.cfg.Size
	v := (c.cfg.Rank - root + p) % p
	mask := 1
	for mask < p {
		if v&mask != 0 {
			if err := s.recvInto(ctx, (v-mask+root)%p, tag, x, false, 0, "bcast"); err != nil {
				return err
			}
			break
		}
		mask <<= 1
	}
	for mask >>= 1; mask > 0; mask >>= 1 {
		if v+mask < p {
			if err := s.send(ctx, (v+mask+root)%p, tag, x); err != nil {
				return err
			}
		}
	}
	s.m.Release()
	return nil
}

// bcastChain forwards segments along root -> root+1 -> ... so that every
// link carries the vector once and the ranks work in a pipeline. Segments
// are received straight into x (see postRecv) and forwarded from there.
func (c *Comm) bcastChain(ctx context.Context, root int, x []float64) error {
	s := &c.coll
	p := c.cfg.Size
	v := (c.cfg.Rank - root + p) % p
	prev, next := (c.cfg.Rank-1+p)%p, (c.cfg.Rank+1)%p
	nseg := (len(x) + segFloats - 1) / segFloats
	seg := func(k int) []float64 { return x[k*segFloats : min((k+1)*segFloats, len(x))] }
	if v == 0 {
		for k := range nseg {
			if err := s.send(ctx, next, tagBcast, seg(k)); err != nil {
				return err
			}
		}
		return nil
	}
	// Every segment's receive is posted first: each is placed in x as it
	// arrives, and forwarded from there.
	rq := s.reqs(nseg)
	for k := range nseg {
		s.postRecv(&rq[k], prev, tagBcast, seg(k), false, 0, "bcast")
	}
	for k := range nseg {
		if err := s.waitRecv(ctx, &rq[k]); err != nil {
			s.cancelRecvs(rq[k+1:])
			return err
		}
		if v < p-1 {
			if err := s.forward(ctx, next, tagBcast, seg(k), rq[k].known); err != nil {
				s.cancelRecvs(rq[k+1:])
				return err
			}
		}
	}
	s.m.Release()
	return nil
}

// Reduce combines x of every rank with op into root's x (binomial tree);
// other ranks' x are left unchanged.
func (c *Comm) Reduce(ctx context.Context, root int, x []float64, op Op) error {
	c.checkRoot(root)
	acc := x
	if c.cfg.Rank != root {
		acc = c.coll.accBuf(len(x))
		copy(acc, x)
	}
	return c.reduceTree(ctx, root, acc, op, tagReduce)
}

// reduceTree reduces acc of every rank into root's acc; other ranks' acc
// are clobbered.
func (c *Comm) reduceTree(ctx context.Context, root int, acc []float64, op Op, tag int) error {
	s := &c.coll
	p := c.cfg.Size
	v := (c.cfg.Rank - root + p) % p
	for mask := 1; mask < p; mask <<= 1 {
		if v&mask != 0 {
			if err := s.send(ctx, (v-mask+root)%p, tag, acc); err != nil {
				return err
			}
			break
		}
		if v+mask < p {
			// One receive at a time: children's links have their own
			// readers, which must not reduce into acc at once.
			if err := s.recvInto(ctx, (v+mask+root)%p, tag, acc, true, op, "reduce"); err != nil {
				return err
			}
		}
	}
	s.m.Release()
	return nil
}

// Allreduce replaces x on every rank by the op-combination of all ranks' x
// (same length everywhere). Small vectors: binomial reduce to rank 0, then
// binomial broadcast; large ones: ring reduce-scatter then ring allgather,
// which moves 2(P-1)/P of the vector per rank. (Recursive halving and
// doubling moves as much in fewer, larger steps; on 4 ranks sharing 2
// cores it was 5-10% slower than the ring.) After an error x is undefined.
func (c *Comm) Allreduce(ctx context.Context, x []float64, op Op) error {
	p := c.cfg.Size
	if p == 1 {
		return nil
	}
	if 8*len(x) <= smallBytes || len(x) < p {
		if err := c.reduceTree(ctx, 0, x, op, tagAllreduce); err != nil {
			return err
		}
		return c.bcastTree(ctx, 0, x, tagAllreduce)
	}
	return c.allreduceRing(ctx, x, op)
}

func (c *Comm) allreduceRing(ctx context.Context, x []float64, op Op) error {
	s := &c.coll
	p, r := c.cfg.Size, c.cfg.Rank
	left, right := (r-1+p)%p, (r+1)%p
	chunk := func(i int) []float64 {
		i = ((i % p) + p) % p
		return x[i*len(x)/p : (i+1)*len(x)/p]
	}
	// Reduce-scatter: after step s rank r holds the sum of s+2 ranks'
	// values of chunk r-s-1; after P-1 steps it owns chunk r+1 in full.
	// Every receive of a phase is posted before its first send, so that
	// each message is placed wherever in the phase it arrives (a message
	// of a later step may be reduced into its chunk early: that chunk is
	// sent on only after its step).
	rq := s.reqs(p - 1)
	for st := range p - 1 {
		s.postRecv(&rq[st], left, tagAllreduce, chunk(r-st-1), true, op, "allreduce")
	}
	for st := range p - 1 {
		if err := s.sendThenWait(ctx, right, tagAllreduce, chunk(r-st), nil, rq, st); err != nil {
			return err
		}
	}
	// Allgather: pass the finished chunks around the ring. (Posted only
	// now: chunk r, the first one received, was being sent until the
	// reduce-scatter's first step ended.)
	for st := range p - 1 {
		s.postRecv(&rq[st], left, tagAllreduce, chunk(r-st), false, 0, "allreduce")
	}
	for st := range p - 1 {
		// From step 1 on, the chunk sent is the one received the step
		// before, unchanged.
		var known []uint32
		if st > 0 {
			known = rq[st-1].known
		}
		if err := s.sendThenWait(ctx, right, tagAllreduce, chunk(r+1-st), known, rq, st); err != nil {
			return err
		}
	}
	s.m.Release()
	return nil
}

// Gather collects x (same length on every rank) into root's dst, rank r's
// values at dst[r*len(x):(r+1)*len(x)]; dst is ignored on other ranks and
// must have room for Size*len(x) values on root (else Gather panics).
func (c *Comm) Gather(ctx context.Context, root int, x, dst []float64) error {
	c.checkRoot(root)
	s := &c.coll
	n := len(x)
	if c.cfg.Rank != root {
		return s.send(ctx, root, tagGather, x)
	}
	if len(dst) < c.cfg.Size*n {
		panic("comm: Gather: dst shorter than Size*len(x)")
	}
	copy(dst[root*n:(root+1)*n], x)
	// Every receive is posted first: each rank's values are placed in dst
	// by its link's reader as they arrive (disjoint ranges).
	rq := s.reqs(c.cfg.Size)
	for r := range c.cfg.Size {
		if r != root {
			s.postRecv(&rq[r], r, tagGather, dst[r*n:(r+1)*n], false, 0, "gather")
		}
	}
	for r := range c.cfg.Size {
		if r == root {
			continue
		}
		if err := s.waitRecv(ctx, &rq[r]); err != nil {
			s.cancelRecvs(rq[r+1:])
			return err
		}
	}
	s.m.Release()
	return nil
}
